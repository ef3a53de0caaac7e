// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ITreasury} from "../interfaces/ITreasury.sol";
import {IRoleNFT} from "../interfaces/IRoleNFT.sol";

/// @title Treasury
/// @notice The gridcoop DAO's multisig: holds ETH and ERC-20s and every admin role of the
///         system (after the hand-over). Role holders (RoleNFT) propose batches of calls, vote
///         for/against/abstain, and a passing proposal executes after an optional delay.
///         Role tokens with budget authority pay from a per-token, per-period budget without a
///         vote (the Safe allowance-module pattern), each payment an event.
/// @dev The treasury is its own admin: its voting rules and budgets change only through a
///      proposal calling `setVotingParams`/`setBudget` on itself. Votes are re-weighed at tally
///      and execution time as min(weight at vote, weight now), so a role revoked or expired
///      during the vote stops counting and a role granted later adds nothing.
contract Treasury is ReentrancyGuard, ITreasury {
    using SafeERC20 for IERC20;

    struct Proposal {
        address proposer;
        uint64 voteEnd;
        uint64 eta;
        uint64 executionDelay;
        uint64 gracePeriod;
        uint128 threshold;
        uint16 quorumBps;
        bool executed;
        bool canceled;
    }

    struct Receipt {
        bool hasVoted;
        Support support;
        uint128 weight;
    }

    /// @notice The role registry whose holders govern this treasury.
    IRoleNFT public immutable roles;

    VotingParams private _params;
    uint256 public proposalCount;
    mapping(uint256 id => Proposal) private _proposals;
    // slither-disable-next-line uninitialized-state -- false positive: filled through a `Call[] storage` pointer in propose
    mapping(uint256 id => Call[]) private _calls;
    mapping(uint256 id => string) private _descriptions;
    mapping(uint256 id => address[]) private _voters;
    mapping(uint256 id => mapping(address voter => Receipt)) private _receipts;
    mapping(uint256 roleId => mapping(address token => Budget)) private _budgets;

    modifier onlySelf() {
        if (msg.sender != address(this)) revert TreasuryOnlySelf(msg.sender);
        _;
    }

    /// @param roles_ The RoleNFT registry.
    /// @param params Initial voting rules.
    constructor(IRoleNFT roles_, VotingParams memory params) {
        if (address(roles_) == address(0)) revert TreasuryInvalidArgument();
        roles = roles_;
        _setParams(params);
    }

    /// @notice Accepts ETH (membership payments, revenue) and logs it.
    receive() external payable {
        emit Received(msg.sender, msg.value);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc ITreasury
    function propose(Call[] calldata calls, string calldata description) external returns (uint256 id) {
        if (!roles.canPropose(msg.sender)) revert TreasuryNotProposer(msg.sender);
        if (calls.length == 0) revert TreasuryEmptyProposal();
        id = ++proposalCount;
        VotingParams memory p = _params;
        uint64 voteEnd = uint64(block.timestamp) + p.votingPeriod;
        _proposals[id] = Proposal({
            proposer: msg.sender,
            voteEnd: voteEnd,
            eta: 0,
            executionDelay: p.executionDelay,
            gracePeriod: p.gracePeriod,
            threshold: p.threshold,
            quorumBps: p.quorumBps,
            executed: false,
            canceled: false
        });
        Call[] storage stored = _calls[id];
        for (uint256 i = 0; i < calls.length; ++i) {
            stored.push(calls[i]);
        }
        _descriptions[id] = description;
        emit ProposalCreated(id, msg.sender, calls, description, voteEnd);
    }

    /// @inheritdoc ITreasury
    /// @dev Open while the voting period runs and the proposal is neither cancelled, queued nor
    ///      executed. Votes after an early decision are still recorded (they cannot undo it: an
    ///      absolute majority for it stays one), which saves re-tallying on every vote.
    function castVote(uint256 id, Support support) external {
        Proposal storage p = _proposals[id];
        if (p.voteEnd == 0 || block.timestamp >= p.voteEnd || p.canceled || p.executed || p.eta != 0) {
            revert TreasuryWrongState(id, state(id));
        }
        Receipt storage r = _receipts[id][msg.sender];
        if (r.hasVoted) revert TreasuryAlreadyVoted(id, msg.sender);
        uint256 weight = roles.votingWeight(msg.sender);
        if (weight == 0) revert TreasuryNotVoter(msg.sender);
        r.hasVoted = true;
        r.support = support;
        r.weight = uint128(weight);
        _voters[id].push(msg.sender);
        emit VoteCast(id, msg.sender, support, weight);
    }

    /// @inheritdoc ITreasury
    function queue(uint256 id) external returns (uint64 eta) {
        ProposalState s = state(id);
        if (s != ProposalState.Succeeded) revert TreasuryWrongState(id, s);
        Proposal storage p = _proposals[id];
        eta = uint64(block.timestamp) + p.executionDelay;
        p.eta = eta;
        emit ProposalQueued(id, eta);
    }

    /// @inheritdoc ITreasury
    /// @dev nonReentrant: a call that re-enters execute/spend reverts the whole batch.
    function execute(uint256 id) external payable nonReentrant {
        ProposalState s = state(id);
        Proposal storage p = _proposals[id];
        if (s == ProposalState.Queued) {
            if (block.timestamp < p.eta) revert TreasuryTooEarly(id, p.eta);
            (uint256 f, uint256 a, uint256 ab) = tally(id);
            if (!_passes(p, f, a, ab, roles.totalVotingWeight())) revert TreasuryNoLongerPasses(id);
        } else if (!(s == ProposalState.Succeeded && p.executionDelay == 0)) {
            revert TreasuryWrongState(id, s);
        }
        p.executed = true;
        Call[] storage calls = _calls[id];
        for (uint256 i = 0; i < calls.length; ++i) {
            (bool ok, bytes memory ret) = calls[i].target.call{value: calls[i].value}(calls[i].data);
            if (!ok) revert TreasuryCallFailed(i, ret);
        }
        emit ProposalExecuted(id);
    }

    /// @inheritdoc ITreasury
    function cancel(uint256 id) external {
        ProposalState s = state(id);
        if (s != ProposalState.Active) revert TreasuryWrongState(id, s);
        if (msg.sender != _proposals[id].proposer) revert TreasuryNotProposalOwner(id, msg.sender);
        _proposals[id].canceled = true;
        emit ProposalCanceled(id);
    }

    /// @notice Change the voting rules for proposals created from now on. Only by a proposal.
    function setVotingParams(VotingParams calldata params) external onlySelf {
        _setParams(params);
    }

    // ---------------------------------------------------------------- budgets

    /// @notice Give role token `roleId` a budget of `amount` of `token` (0 = ETH) per `period`
    ///         seconds (0 = a one-off allowance that never resets). Resets what was spent.
    ///         Only by a proposal.
    function setBudget(uint256 roleId, address token, uint128 amount, uint64 period) external onlySelf {
        _budgets[roleId][token] = Budget(amount, 0, period, uint64(block.timestamp));
        emit BudgetSet(roleId, token, amount, period);
    }

    /// @inheritdoc ITreasury
    function spend(uint256 roleId, address token, address to, uint256 amount, string calldata memo) external nonReentrant {
        if (!roles.hasBudgetAuthority(msg.sender, roleId)) revert TreasuryNoBudgetAuthority(msg.sender, roleId);
        if (to == address(0) || amount == 0) revert TreasuryInvalidArgument();
        Budget storage b = _budgets[roleId][token];
        _roll(b);
        uint256 remaining = b.amount - b.spent;
        if (amount > remaining) revert TreasuryBudgetExceeded(roleId, token, remaining, amount);
        b.spent += uint128(amount); // amount <= remaining <= type(uint128).max
        emit BudgetSpent(roleId, token, to, amount, msg.sender, memo);
        if (token == address(0)) {
            // slither-disable-next-line arbitrary-send-eth -- by design: a holder of the role's budget authority pays `to`, capped by the budget a passed proposal set
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert TreasuryEthTransferFailed(to, amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }

    /// @notice Budget of `roleId` for `token` as it stands now (spent is 0 once a new period began).
    function budget(uint256 roleId, address token) external view returns (Budget memory b) {
        b = _budgets[roleId][token];
        if (b.period != 0 && block.timestamp >= uint256(b.periodStart) + b.period) {
            // slither-disable-next-line divide-before-multiply -- intended flooring: skip whole periods only, so periods stay aligned to the start
            b.periodStart += uint64(((block.timestamp - b.periodStart) / b.period) * b.period);
            b.spent = 0;
        }
    }

    function _roll(Budget storage b) private {
        if (b.period != 0 && block.timestamp >= uint256(b.periodStart) + b.period) {
            // periods stay aligned to the start: skip every whole period that has passed
            // slither-disable-next-line divide-before-multiply -- intended flooring: skip whole periods only, so periods stay aligned to the start
            b.periodStart += uint64(((block.timestamp - b.periodStart) / b.period) * b.period);
            b.spent = 0;
        }
    }

    // ---------------------------------------------------------------- views

    /// @notice Current voting rules.
    function votingParams() external view returns (VotingParams memory) {
        return _params;
    }

    /// @notice Stored data of proposal `id`.
    function proposal(uint256 id) external view returns (Proposal memory) {
        return _proposals[id];
    }

    /// @notice Calls of proposal `id`.
    function proposalCalls(uint256 id) external view returns (Call[] memory) {
        return _calls[id];
    }

    /// @notice Description of proposal `id`.
    function proposalDescription(uint256 id) external view returns (string memory) {
        return _descriptions[id];
    }

    /// @notice Accounts that voted on proposal `id`.
    function voters(uint256 id) external view returns (address[] memory) {
        return _voters[id];
    }

    /// @notice `voter`'s receipt on proposal `id` (weight as recorded at vote time).
    function receipt(uint256 id, address voter) external view returns (Receipt memory) {
        return _receipts[id][voter];
    }

    /// @notice For/against/abstain weight counting each vote as min(weight at vote, weight now).
    function tally(uint256 id) public view returns (uint256 forW, uint256 againstW, uint256 abstainW) {
        address[] storage vs = _voters[id];
        for (uint256 i = 0; i < vs.length; ++i) {
            Receipt storage r = _receipts[id][vs[i]];
            uint256 now_ = roles.votingWeight(vs[i]);
            uint256 w = now_ < r.weight ? now_ : r.weight;
            if (r.support == Support.For) forW += w;
            else if (r.support == Support.Against) againstW += w;
            else abstainW += w;
        }
    }

    /// @notice Lifecycle state of proposal `id`, computed now.
    function state(uint256 id) public view returns (ProposalState) {
        Proposal storage p = _proposals[id];
        if (p.voteEnd == 0) return ProposalState.None;
        if (p.executed) return ProposalState.Executed;
        if (p.canceled) return ProposalState.Canceled;
        if (p.eta != 0) {
            return block.timestamp >= uint256(p.eta) + p.gracePeriod ? ProposalState.Expired : ProposalState.Queued;
        }
        (uint256 f, uint256 a, uint256 ab) = tally(id);
        uint256 total = roles.totalVotingWeight();
        bool passes = _passes(p, f, a, ab, total);
        if (block.timestamp < p.voteEnd) {
            // decided early: an absolute majority of all active weight is for it
            return (passes && f * 2 > total) ? ProposalState.Succeeded : ProposalState.Active;
        }
        if (!passes) return ProposalState.Defeated;
        if (block.timestamp >= uint256(p.voteEnd) + p.gracePeriod) return ProposalState.Expired;
        return ProposalState.Succeeded;
    }

    function _passes(Proposal storage p, uint256 f, uint256 a, uint256 ab, uint256 total) private view returns (bool) {
        if (f == 0 || f <= a) return false;
        if (p.threshold != 0 && f < p.threshold) return false;
        if (p.quorumBps != 0 && (f + a + ab) * 10_000 < total * p.quorumBps) return false;
        return true;
    }

    function _setParams(VotingParams memory params) private {
        if (params.votingPeriod == 0 || (params.threshold == 0 && params.quorumBps == 0) || params.quorumBps > 10_000) {
            revert TreasuryInvalidParams();
        }
        if (params.gracePeriod == 0) params.gracePeriod = 14 days;
        _params = params;
        emit VotingParamsChanged(params);
    }
}
