// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ITreasury
/// @notice The gridcoop DAO's multisig treasury: proposals (batches of calls) voted by role
///         holders, executed after an optional delay; per-role spending budgets paid without a vote.
interface ITreasury {
    enum ProposalState {
        None,
        Active,
        Canceled,
        Defeated,
        Succeeded,
        Queued,
        Expired,
        Executed
    }

    /// @notice 0 = against, 1 = for, 2 = abstain (OpenZeppelin Governor's convention).
    enum Support {
        Against,
        For,
        Abstain
    }

    /// @notice Voting rules. A proposal passes when, counting only votes of roles still active,
    ///         for > against, for ≥ `threshold` (absolute vote weight, the M of M-of-N; 0 = off)
    ///         and for+against+abstain ≥ `quorumBps`/10000 of the total active weight (0 = off).
    struct VotingParams {
        uint64 votingPeriod;
        uint64 executionDelay;
        uint64 gracePeriod;
        uint128 threshold;
        uint16 quorumBps;
    }

    struct Call {
        address target;
        uint256 value;
        bytes data;
    }

    struct Budget {
        uint128 amount;
        uint128 spent;
        uint64 period;
        uint64 periodStart;
    }

    /// @notice Emitted when a proposal is created.
    event ProposalCreated(uint256 indexed id, address indexed proposer, Call[] calls, string description, uint64 voteEnd);
    /// @notice Emitted for every vote.
    event VoteCast(uint256 indexed id, address indexed voter, Support support, uint256 weight);
    /// @notice Emitted when a proposal is queued for execution after the delay.
    event ProposalQueued(uint256 indexed id, uint64 eta);
    /// @notice Emitted when a proposal's calls have all executed.
    event ProposalExecuted(uint256 indexed id);
    /// @notice Emitted when the proposer cancels a proposal.
    event ProposalCanceled(uint256 indexed id);
    /// @notice Emitted when the voting rules change (only through a proposal).
    event VotingParamsChanged(VotingParams params);
    /// @notice Emitted when a role token's budget for a token changes (token 0 = ETH).
    event BudgetSet(uint256 indexed roleId, address indexed token, uint128 amount, uint64 period);
    /// @notice Emitted for every payment from a budget.
    event BudgetSpent(uint256 indexed roleId, address indexed token, address indexed to, uint256 amount, address spender, string memo);
    /// @notice Emitted when ETH arrives.
    event Received(address indexed from, uint256 amount);

    /// @notice Thrown when the caller holds no active role that may propose.
    error TreasuryNotProposer(address account);
    /// @notice Thrown when the caller holds no active voting weight.
    error TreasuryNotVoter(address account);
    /// @notice Thrown on a second vote by the same account on the same proposal.
    error TreasuryAlreadyVoted(uint256 id, address voter);
    /// @notice Thrown when the proposal is not in the state the action needs.
    error TreasuryWrongState(uint256 id, ProposalState current);
    /// @notice Thrown when a proposal has no calls, or call arrays are malformed.
    error TreasuryEmptyProposal();
    /// @notice Thrown when someone other than the proposer cancels.
    error TreasuryNotProposalOwner(uint256 id, address caller);
    /// @notice Thrown when execute is called before the delay has passed.
    error TreasuryTooEarly(uint256 id, uint64 eta);
    /// @notice Thrown when a proposal no longer passes at execution time (a role was revoked or expired).
    error TreasuryNoLongerPasses(uint256 id);
    /// @notice Thrown when one of a proposal's calls reverts; the whole execution is undone.
    error TreasuryCallFailed(uint256 index, bytes returndata);
    /// @notice Thrown when a function reserved to proposals is called directly.
    error TreasuryOnlySelf(address caller);
    /// @notice Thrown when voting rules are unusable (no period, or neither threshold nor quorum).
    error TreasuryInvalidParams();
    /// @notice Thrown when the caller may not spend from role token `roleId`'s budget.
    error TreasuryNoBudgetAuthority(address caller, uint256 roleId);
    /// @notice Thrown when a budget payment exceeds what is left in this period.
    error TreasuryBudgetExceeded(uint256 roleId, address token, uint256 remaining, uint256 requested);
    /// @notice Thrown when an ETH payment fails.
    error TreasuryEthTransferFailed(address to, uint256 amount);
    /// @notice Thrown for a zero address or amount where one is needed.
    error TreasuryInvalidArgument();

    /// @notice Create a proposal from `calls` (executed in order, all or nothing) and `description`.
    function propose(Call[] calldata calls, string calldata description) external returns (uint256 id);
    /// @notice Vote on an active proposal with the caller's current role weight.
    function castVote(uint256 id, Support support) external;
    /// @notice Queue a succeeded proposal; executable after the execution delay.
    function queue(uint256 id) external returns (uint64 eta);
    /// @notice Execute a queued proposal after its delay (or a succeeded one when the delay is 0).
    function execute(uint256 id) external payable;
    /// @notice Cancel an active proposal (proposer only, before it passes).
    function cancel(uint256 id) external;
    /// @notice Pay `amount` of `token` (0 = ETH) to `to` from role token `roleId`'s budget.
    function spend(uint256 roleId, address token, address to, uint256 amount, string calldata memo) external;
}
