// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./utils/Vm.sol";
import {RoleNFT} from "../../contracts/dao/RoleNFT.sol";
import {Treasury} from "../../contracts/dao/Treasury.sol";
import {ITreasury} from "../../contracts/interfaces/ITreasury.sol";
import {LocalCurrency} from "../../contracts/tokens/LocalCurrency.sol";

/// @dev A DAO-owned parameter: only the treasury may bump it; counts every executed call.
contract Target {
    address public immutable treasury;
    uint256 public calls;

    constructor(address t) {
        treasury = t;
    }

    function bump() external {
        require(msg.sender == treasury, "only treasury");
        ++calls;
    }
}

/// @dev Drives the DAO with random proposals, votes, revocations, re-grants, time and budget
///      payments, and checks every success against an independent model of the rules.
contract DaoHandler is TestBase {
    uint256 internal constant N = 4;
    uint256 internal constant PERIOD = 1 hours;
    uint256 internal constant BUDGET = 1000;
    uint256 internal constant BUDGET_PERIOD = 1 days;

    RoleNFT public roles;
    Treasury public treasury;
    Target public target;
    LocalCurrency public coin;
    address[N] public actors;
    uint256[N] public roleOf; // current token id (0 = revoked)
    uint256 public budgetRole; // actor 0's first token: the one with a budget

    // model
    uint256[] public ids;
    mapping(uint256 => uint256) public voteEnd;
    mapping(uint256 => mapping(uint256 => uint8)) public voted; // 0 none, 1 against, 2 for, 3 abstain
    mapping(uint256 => bool) public done;
    uint256 public budgetStart;
    uint256 public spentInPeriod;

    // ghosts
    uint256 public executed;
    uint256 public violations;
    uint256 public paid;

    constructor() {
        roles = new RoleNFT(address(this));
        roles.defineRoleType(1, "member", true, 1, true);
        treasury = new Treasury(roles, ITreasury.VotingParams(uint64(PERIOD), 0, 1 days, 2, 0));
        target = new Target(address(treasury));
        coin = new LocalCurrency("Coin", "C", 18, address(this));
        coin.issue(address(treasury), 1e24);
        for (uint256 i = 0; i < N; ++i) {
            actors[i] = address(uint160(0xA11CE + i));
            roleOf[i] = roles.grant(actors[i], 1, 0);
        }
        budgetRole = roleOf[0];
        vm.prank(address(treasury));
        treasury.setBudget(budgetRole, address(coin), uint128(BUDGET), uint64(BUDGET_PERIOD));
        budgetStart = block.timestamp;
    }

    function _active(uint256 i) internal view returns (bool) {
        return roleOf[i] != 0;
    }

    function _activeCount() internal view returns (uint256 n) {
        for (uint256 i = 0; i < N; ++i) if (_active(i)) ++n;
    }

    function _counts(uint256 id) public view returns (uint256 f, uint256 a) {
        for (uint256 i = 0; i < N; ++i) {
            // a vote counts only while the voter's role is active (weight min(then, now))
            if (!_active(i)) continue;
            if (voted[id][i] == 2) ++f;
            else if (voted[id][i] == 1) ++a;
        }
    }

    function _executable(uint256 id) internal view returns (bool) {
        if (done[id]) return false;
        (uint256 f, uint256 a) = _counts(id);
        bool passes = f > a && f >= 2;
        if (block.timestamp < voteEnd[id]) return passes && f * 2 > _activeCount();
        return passes && block.timestamp < voteEnd[id] + 1 days;
    }

    function propose(uint256 who) external {
        uint256 i = who % N;
        ITreasury.Call[] memory calls = new ITreasury.Call[](1);
        calls[0] = ITreasury.Call(address(target), 0, abi.encodeCall(Target.bump, ()));
        vm.prank(actors[i]);
        try treasury.propose(calls, "bump") returns (uint256 id) {
            if (!_active(i)) ++violations;
            ids.push(id);
            voteEnd[id] = block.timestamp + PERIOD;
        } catch {
            if (_active(i)) ++violations;
        }
    }

    function vote(uint256 who, uint256 which, uint8 support) external {
        if (ids.length == 0) return;
        uint256 i = who % N;
        uint256 id = ids[which % ids.length];
        support = uint8(bound(support, 0, 2));
        bool open = block.timestamp < voteEnd[id] && !done[id];
        vm.prank(actors[i]);
        try treasury.castVote(id, ITreasury.Support(support)) {
            if (!_active(i) || voted[id][i] != 0 || !open) ++violations;
            voted[id][i] = support == 0 ? 1 : (support == 1 ? 2 : 3);
        } catch {
            if (_active(i) && voted[id][i] == 0 && open) ++violations;
        }
    }

    function execute(uint256 which) external {
        if (ids.length == 0) return;
        uint256 id = ids[which % ids.length];
        bool expect = _executable(id);
        uint256 before = target.calls();
        try treasury.execute(id) {
            if (!expect) ++violations;
            if (target.calls() != before + 1) ++violations;
            done[id] = true;
            ++executed;
        } catch {
            if (expect) ++violations;
        }
    }

    function revoke(uint256 who) external {
        uint256 i = who % N;
        if (!_active(i)) return;
        roles.revoke(roleOf[i]);
        roleOf[i] = 0;
    }

    function regrant(uint256 who) external {
        uint256 i = who % N;
        if (_active(i)) return;
        roleOf[i] = roles.grant(actors[i], 1, 0);
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 2 hours));
    }

    function spend(uint256 amount) external {
        amount = bound(amount, 1, 1500);
        if (block.timestamp >= budgetStart + BUDGET_PERIOD) {
            budgetStart += ((block.timestamp - budgetStart) / BUDGET_PERIOD) * BUDGET_PERIOD;
            spentInPeriod = 0;
        }
        // only actor 0's original token carries the budget; once revoked it is gone for good
        bool allowed = roleOf[0] == budgetRole && spentInPeriod + amount <= BUDGET;
        uint256 before = coin.balanceOf(address(0xB0B));
        vm.prank(actors[0]);
        try treasury.spend(budgetRole, address(coin), address(0xB0B), amount, "") {
            if (!allowed) ++violations;
            spentInPeriod += amount;
            paid += amount;
            if (coin.balanceOf(address(0xB0B)) != before + amount) ++violations;
        } catch {
            if (allowed) ++violations;
        }
    }

    function idsLength() external view returns (uint256) {
        return ids.length;
    }
}

contract DaoInvariantTest is TestBase {
    DaoHandler internal h;

    function setUp() public {
        h = new DaoHandler();
        targetContract(address(h));
        bytes4[] memory sel = new bytes4[](7);
        sel[0] = DaoHandler.propose.selector;
        sel[1] = DaoHandler.vote.selector;
        sel[2] = DaoHandler.execute.selector;
        sel[3] = DaoHandler.revoke.selector;
        sel[4] = DaoHandler.regrant.selector;
        sel[5] = DaoHandler.warp.selector;
        sel[6] = DaoHandler.spend.selector;
        targetSelector(address(h), sel);
    }

    /// No call executes without a passed proposal, and every refusal was deserved.
    function invariant_noExecutionWithoutPassedProposal() public view {
        assertEq(h.violations(), 0, "model violations");
        assertEq(h.target().calls(), h.executed(), "target calls == executed passed proposals");
    }

    /// The live tally never counts a revoked voter.
    function invariant_revokedRolesHaveNoEffect() public view {
        uint256 n = h.idsLength();
        for (uint256 k = 0; k < n; ++k) {
            uint256 id = h.ids(k);
            (uint256 f, uint256 a,) = h.treasury().tally(id);
            (uint256 mf, uint256 ma) = h._counts(id);
            assertEq(f, mf, "for weight");
            assertEq(a, ma, "against weight");
        }
    }

    /// Budget payments never exceed what the budget allows and every unit paid left the treasury.
    function invariant_budgetPaymentsAccounted() public view {
        assertEq(h.coin().balanceOf(address(0xB0B)), h.paid(), "paid to bob");
        assertEq(h.coin().balanceOf(address(h.treasury())), 1e24 - h.paid(), "treasury balance");
        assertLe(h.spentInPeriod(), 1000, "spent within one period");
    }

    /// The handler's paths are reachable: a proposal passes and executes, a revoked voter is refused.
    function test_handlerDrivesAFullLifecycle() public {
        h.propose(0);
        h.vote(0, 0, 1);
        h.vote(1, 0, 1);
        h.revoke(2);
        h.vote(2, 0, 1); // refused: revoked (a success would count as a violation)
        h.warp(2 hours);
        h.execute(0);
        h.spend(599); // bound(599, 1, 1500) = 600
        h.spend(599); // refused: 1,200 > the 1,000 budget
        assertEq(h.executed(), 1, "one execution");
        assertEq(h.target().calls(), 1, "target bumped once");
        assertEq(h.paid(), 600, "one payment");
        assertEq(h.violations(), 0, "no violations");
    }

    function test_handlerStartsClean() public view {
        assertEq(h.roles().totalVotingWeight(), 4, "4 founders");
        assertEq(h.treasury().budget(h.budgetRole(), address(h.coin())).amount, 1000, "budget");
    }
}

import {ContributionShares} from "../../contracts/dao/ContributionShares.sol";

contract ContributionSharesFuzzTest is TestBase {
    /// Revenue is conserved under the rounding rule: everyone claims, at most one unit per
    /// holder stays behind as dust, and nobody ever gets more than arrived.
    function testFuzz_revenueConservedWithinOneUnitPerHolder(uint64[4] memory s, uint96[3] memory rev) public {
        LocalCurrency coin = new LocalCurrency("C", "C", 18, address(this));
        address[] memory tokens = new address[](1);
        tokens[0] = address(coin);
        ContributionShares cs = new ContributionShares(address(this), tokens);
        uint256 total;
        for (uint256 r = 0; r < 3; ++r) {
            // holder r joins before arrival r (late joiners), holder 3 joins last and gets nothing
            cs.recordContribution(address(uint160(0x100 + r)), bound(s[r], 1, type(uint64).max), "c");
            uint256 amount = bound(rev[r], 0, type(uint96).max);
            coin.issue(address(cs), amount);
            total += amount;
        }
        cs.recordContribution(address(0x103), bound(s[3], 1, type(uint64).max), "late");
        uint256 claimed;
        for (uint256 i = 0; i < 4; ++i) {
            vm.prank(address(uint160(0x100 + i)));
            claimed += cs.claim(address(coin), address(uint160(0x100 + i)));
        }
        assertEq(coin.balanceOf(address(0x103)), 0, "late joiner gets nothing of earlier revenue");
        assertLe(claimed, total, "never more than arrived");
        assertLe(total - claimed, 3, "at most one unit of dust per earning holder");
        assertEq(coin.balanceOf(address(cs)), total - claimed, "dust stays in the contract");
    }
}
