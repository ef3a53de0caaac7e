// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./utils/Vm.sol";
import {CarbonReductionValue} from "../../contracts/tokens/CarbonReductionValue.sol";
import {RetirementCertificate} from "../../contracts/tokens/RetirementCertificate.sol";
import {ICarbonReductionValue} from "../../contracts/interfaces/ICarbonReductionValue.sol";
import {IRetirementCertificate} from "../../contracts/interfaces/IRetirementCertificate.sol";

/// @notice Drives C-REV with random issuance (intervals of random lengths 60 … 86,400 s, as the
///         meter registry would pass them: per meter never overlapping, each reported at most 900 s
///         before it ends), factor changes, FIFO and explicit-lot transfers, and retirements,
///         keeping ghost totals the invariants compare against.
contract CrevHandler is TestBase {
    CarbonReductionValue public immutable crev;
    RetirementCertificate public immutable cert;
    address[4] public actors = [address(0xA11CE), address(0xB0B), address(0xCA201), address(0xDA7E)];
    uint256 public ghostIssued;
    uint256 public ghostRetired;
    uint256 public certs;
    mapping(uint256 certificateId => uint256) public ghostCertAmount;
    mapping(uint256 certificateId => address) public ghostCertHolder;
    /// @dev The handler's clock (forge does not keep `vm.warp` between invariant calls): only forward.
    uint64 public clock = 1_800_000_000;
    mapping(bytes32 meterId => uint64) public lastEnd;
    uint64 internal constant MAX_CLOCK_DRIFT = 900; // the registry's largest `maxClockDrift`

    constructor(CarbonReductionValue crev_) {
        crev = crev_;
        cert = RetirementCertificate(crev_.certificate());
    }

    function actorCount() external pure returns (uint256) {
        return 4;
    }

    function issue(uint256 actorSeed, uint256 meterSeed, uint256 wh, uint256 lenSeed, uint256 gap) external {
        address owner = actors[actorSeed % 4];
        wh = bound(wh, 1, 50_000);
        bytes32 meter = bytes32(meterSeed % 3);
        // Mostly the lengths regions use, sometimes any allowed length.
        uint64[5] memory common = [uint64(900), 1800, 60, 3600, 86_400];
        uint64 len = lenSeed % 8 < 5 ? common[lenSeed % 8] : uint64(bound(lenSeed, 60, 86_400));
        // The registry: a reading starts no earlier than the meter's last one ends, aligned to its length.
        // Late readings are fine (up to an hour back here); the meter's last end is never crossed.
        uint64 from = lastEnd[meter] > clock - 1 hours ? lastEnd[meter] : clock - 1 hours;
        uint64 start = (from + len - 1) / len * len + uint64(bound(gap, 0, 3)) * len;
        // ... and arrives at most MAX_CLOCK_DRIFT before its end: move the clock there if needed.
        if (start + len > clock + MAX_CLOCK_DRIFT) clock = start + len - MAX_CLOCK_DRIFT;
        vm.warp(clock);
        lastEnd[meter] = start + len;
        uint256 before = crev.totalSupply();
        crev.onSelfConsumption(meter, owner, start, uint32(len), wh);
        ghostIssued += crev.totalSupply() - before;
    }

    function advance(uint256 secs) external {
        clock += uint64(bound(secs, 0, 3 days));
    }

    /// @dev The DAO changes the factor: from 15 minutes ahead, or at a chosen later time.
    function scheduleFactor(uint256 factor, uint256 ahead, bool chosen) external {
        vm.warp(clock);
        factor = bound(factor, 0, 2000);
        if (chosen) {
            // Often as early as allowed: that is where a change could reach an issued interval.
            uint64 extra = ahead % 2 == 0 ? uint64(ahead % 960) : uint64(bound(ahead, 0, 2 days));
            uint64 at = clock + crev.FACTOR_LEAD_SECONDS() + extra;
            try crev.scheduleEmissionFactor(factor, at) {} catch {} // refused before a scheduled entry
        } else {
            try crev.setEmissionFactor(factor) {} catch {}
        }
    }

    function transfer(uint256 fromSeed, uint256 toSeed, uint256 amount) external {
        address from = actors[fromSeed % 4];
        address to = actors[toSeed % 4];
        amount = bound(amount, 0, crev.balanceOf(from));
        vm.prank(from);
        crev.transfer(to, amount);
    }

    function transferLot(uint256 fromSeed, uint256 toSeed, uint256 pick, uint256 amount) external {
        address from = actors[fromSeed % 4];
        address to = actors[toSeed % 4];
        (uint256[] memory ids, uint256[] memory bals) = crev.lotsOf(from);
        if (ids.length == 0) return;
        uint256 k = pick % ids.length;
        uint256[] memory one = new uint256[](1);
        uint256[] memory amt = new uint256[](1);
        one[0] = ids[k];
        amt[0] = bound(amount, 1, bals[k]);
        vm.prank(from);
        crev.transferLots(to, one, amt);
    }

    function retire(uint256 fromSeed, uint256 amount) external {
        address from = actors[fromSeed % 4];
        uint256 bal = crev.balanceOf(from);
        if (bal < crev.minimumRetirement() || bal == 0) return;
        amount = bound(amount, crev.minimumRetirement() == 0 ? 1 : crev.minimumRetirement(), bal);
        vm.prank(from);
        uint256 id = crev.retire(amount, address(0xBEEF), "", "invariant run", 0, 1);
        ghostRetired += amount;
        ghostCertAmount[id] = amount;
        ghostCertHolder[id] = from;
        certs = id;
    }

    /// @dev Tries to move a certificate; must always fail (counted if it ever succeeds).
    uint256 public certificateMoves;

    function moveCertificate(uint256 idSeed, uint256 toSeed) external {
        if (certs == 0) return;
        uint256 id = 1 + idSeed % certs;
        address holder = cert.ownerOf(id);
        vm.prank(holder);
        try cert.transferFrom(holder, actors[toSeed % 4], id) {
            certificateMoves++;
        } catch {}
    }
}

contract CrevInvariantTest is TestBase {
    CarbonReductionValue internal crev;
    CrevHandler internal handler;

    function setUp() public {
        crev = new CarbonReductionValue(address(this), address(0), 450, 1e9, "test");
        handler = new CrevHandler(crev);
        crev.grantRole(crev.ISSUER_ROLE(), address(handler));
        crev.grantRole(crev.PARAMETER_ROLE(), address(handler));
        targetContract(address(handler));
        bytes4[] memory sel = new bytes4[](7);
        sel[0] = CrevHandler.issue.selector;
        sel[1] = CrevHandler.transfer.selector;
        sel[2] = CrevHandler.transferLot.selector;
        sel[3] = CrevHandler.retire.selector;
        sel[4] = CrevHandler.moveCertificate.selector;
        sel[5] = CrevHandler.advance.selector;
        sel[6] = CrevHandler.scheduleFactor.selector;
        targetSelector(address(handler), sel);
    }

    /// Every lot is keyed by (meter, interval start), used the factor the schedule gives for its
    /// start (forward-only changes never reach an issued lot, at any interval length), has an exact
    /// amount, and one meter's lots never overlap in time.
    function invariant_lotsKeyedByStartWithTheirFactor() public view {
        uint256 n = crev.lotCount();
        for (uint256 id = 1; id <= n; ++id) {
            ICarbonReductionValue.Lot memory l = crev.lot(id);
            assertEq(crev.lotOf(l.meterId, l.intervalStart), id, "lot key");
            assertEq(l.factorGPerKwh, crev.emissionFactorAt(l.intervalStart), "factor of the interval's start");
            assertEq(l.amount, uint256(l.selfConsumedWh) * l.factorGPerKwh * 1e9, "exact amount");
            assertEq(l.intervalStart % l.intervalSeconds, 0, "aligned");
            for (uint256 j = 1; j < id; ++j) {
                ICarbonReductionValue.Lot memory k = crev.lot(j);
                if (k.meterId != l.meterId) continue;
                assertGe(l.intervalStart, k.intervalStart + k.intervalSeconds, "a meter's lots never overlap");
            }
        }
    }

    function invariant_supplyIsIssuedMinusRetired() public view {
        assertEq(crev.totalSupply(), handler.ghostIssued() - handler.ghostRetired(), "supply");
        assertEq(crev.totalIssued(), handler.ghostIssued(), "issued");
        assertEq(crev.totalRetired(), handler.ghostRetired(), "retired");
    }

    function invariant_lotBalancesSumToBalance() public view {
        uint256 n = crev.lotCount();
        for (uint256 a; a < 4; ++a) {
            address holder = handler.actors(a);
            uint256 sum;
            for (uint256 id = 1; id <= n; ++id) sum += crev.lotBalanceOf(id, holder);
            assertEq(sum, crev.balanceOf(holder), "sum of lot balances == balanceOf");
            (, uint256[] memory amounts) = crev.lotsOf(holder);
            uint256 listed;
            for (uint256 i; i < amounts.length; ++i) listed += amounts[i];
            assertEq(listed, sum, "lotsOf lists every lot");
        }
    }

    /// Each lot's issued amount is exactly what holders hold of it plus what certificates retired.
    function invariant_eachLotConserved() public view {
        uint256 n = crev.lotCount();
        uint256[] memory retiredOf = new uint256[](n + 1);
        uint256 certs = handler.certs();
        for (uint256 c = 1; c <= certs; ++c) {
            (uint256[] memory ids, uint256[] memory amounts) = crev.certificateLots(c);
            for (uint256 i; i < ids.length; ++i) retiredOf[ids[i]] += amounts[i];
        }
        for (uint256 id = 1; id <= n; ++id) {
            uint256 held = retiredOf[id];
            for (uint256 a; a < 4; ++a) held += crev.lotBalanceOf(id, handler.actors(a));
            assertEq(held, crev.lot(id).amount, "lot conserved");
        }
    }

    /// Retired value never moves again: each certificate keeps its amount, lots and holder.
    function invariant_retiredValueNeverMoves() public view {
        uint256 certs = handler.certs();
        RetirementCertificate cert = RetirementCertificate(crev.certificate());
        assertEq(cert.count(), certs, "certificate count");
        assertEq(handler.certificateMoves(), 0, "a certificate moved");
        for (uint256 c = 1; c <= certs; ++c) {
            (, uint256[] memory amounts) = crev.certificateLots(c);
            uint256 sum;
            for (uint256 i; i < amounts.length; ++i) sum += amounts[i];
            assertEq(sum, handler.ghostCertAmount(c), "certificate lots sum");
            assertEq(cert.retirement(c).amount, handler.ghostCertAmount(c), "certificate amount");
            assertTrue(cert.ownerOf(c) == handler.ghostCertHolder(c), "certificate holder");
        }
    }
}

contract CrevUnitTest is TestBase {
    CarbonReductionValue internal crev;
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);

    function setUp() public {
        vm.warp(1_800_000_000);
        crev = new CarbonReductionValue(address(this), address(this), 450, 1e15, "test");
    }

    function testFuzz_amountIsExact(uint64 wh, uint16 factor, uint32 lenSeed) public {
        uint256 f = bound(factor, 0, 2000);
        uint32 len = uint32(bound(lenSeed, 60, 86_400));
        uint64 from = uint64(block.timestamp) + crev.FACTOR_LEAD_SECONDS();
        crev.scheduleEmissionFactor(f, from);
        uint64 start = (from + len - 1) / len * len; // first interval of this length starting at or after it
        crev.onSelfConsumption(bytes32("m"), ALICE, start, len, wh);
        // wh * g/kWh = mg... → t-CO2e with 18 decimals: wh * f * 1e18 / (1000 * 1e6).
        assertEq(crev.balanceOf(ALICE), uint256(wh) * f * 1e18 / (1000 * 1e6), "amount");
    }

    function test_factorChangeAppliesForwardOnly() public {
        uint64 now_ = uint64(block.timestamp); // 1,800,000,000: a quarter-hour boundary
        uint64 lead = crev.FACTOR_LEAD_SECONDS();
        assertEq(lead, 900, "lead = the registry's largest clock drift");
        crev.setEmissionFactor(300); // for intervals starting 900 s from now on
        assertEq(crev.emissionFactorAt(now_ + lead - 1), 450, "intervals starting before keep the old factor");
        assertEq(crev.emissionFactorAt(now_ + lead), 300, "intervals starting from then use the new one");
        vm.warp(now_ + 1);
        crev.setEmissionFactor(350);
        assertEq(crev.emissionFactorAt(now_ + 900), 300, "until 900 s after the second change");
        assertEq(crev.emissionFactorAt(now_ + 901), 350, "from then");
        vm.expectRevert(
            abi.encodeWithSelector(ICarbonReductionValue.CrevFactorNotForward.selector, now_ + lead, now_ + 901)
        );
        crev.scheduleEmissionFactor(100, now_ + lead); // before the scheduled entry
        vm.warp(now_ + 1000);
        vm.expectRevert(
            abi.encodeWithSelector(ICarbonReductionValue.CrevFactorNotForward.selector, now_ + 1899, now_ + 1900)
        );
        crev.scheduleEmissionFactor(100, now_ + 1899); // less than the lead ahead
        crev.scheduleEmissionFactor(100, now_ + 1900); // any time at least the lead ahead
        assertEq(crev.emissionFactorAt(now_ + 1900), 100, "unaligned start is fine");
    }

    function test_lotKeyIsTheIntervalStart_atEveryLength() public {
        // The same meter at 900 s, then 1,800 s, then 60 s, then a day: (start / length) ids would
        // repeat or jump; start times cannot collide because a meter's intervals do not overlap.
        crev.onSelfConsumption(bytes32("m"), ALICE, 1_800_000_000, 900, 1000);
        crev.onSelfConsumption(bytes32("m"), ALICE, 1_800_001_800, 1800, 1000);
        crev.onSelfConsumption(bytes32("m"), ALICE, 1_800_003_600, 60, 1000);
        crev.onSelfConsumption(bytes32("m"), ALICE, 1_800_057_600, 86_400, 1000);
        assertEq(crev.lotCount(), 4, "four lots");
        assertEq(crev.lotOf(bytes32("m"), 1_800_001_800), 2, "keyed by start");
        ICarbonReductionValue.Lot memory l = crev.lot(2);
        assertEq(l.intervalStart, 1_800_001_800, "start");
        assertEq(l.intervalSeconds, 1800, "length");
        vm.expectRevert(
            abi.encodeWithSelector(
                ICarbonReductionValue.CrevLotAlreadyIssued.selector, bytes32("m"), uint64(1_800_001_800), 2
            )
        );
        crev.onSelfConsumption(bytes32("m"), ALICE, 1_800_001_800, 900, 1000); // same start, other length
    }

    function test_certificateCannotBeMinted_byOthers() public {
        IRetirementCertificate.Retirement memory r;
        r.holder = ALICE;
        RetirementCertificate cert = RetirementCertificate(crev.certificate());
        vm.expectRevert(
            abi.encodeWithSelector(IRetirementCertificate.CertificateOnlyMinter.selector, address(this), address(crev))
        );
        cert.mint(r);
    }

    function test_selfTransferKeepsLots() public {
        crev.onSelfConsumption(bytes32("m"), ALICE, 900, 900, 1000);
        crev.onSelfConsumption(bytes32("m"), ALICE, 1800, 900, 2000);
        vm.prank(ALICE);
        crev.transfer(ALICE, 5e14); // crosses lot 1 (4.5e14)
        assertEq(crev.lotBalanceOf(1, ALICE) + crev.lotBalanceOf(2, ALICE), crev.balanceOf(ALICE), "sum");
        uint256 all = crev.balanceOf(ALICE);
        vm.prank(ALICE);
        crev.transfer(BOB, all);
        assertEq(crev.lotBalanceOf(1, BOB) + crev.lotBalanceOf(2, BOB), all, "bob got both lots");
        assertEq(crev.balanceOf(ALICE), 0, "alice empty");
        (uint256[] memory ids,) = crev.lotsOf(ALICE);
        assertEq(ids.length, 0, "no lots left");
    }
}
