// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./utils/Vm.sol";
import {CarbonReductionValue} from "../../contracts/tokens/CarbonReductionValue.sol";
import {RetirementCertificate} from "../../contracts/tokens/RetirementCertificate.sol";
import {ICarbonReductionValue} from "../../contracts/interfaces/ICarbonReductionValue.sol";
import {IRetirementCertificate} from "../../contracts/interfaces/IRetirementCertificate.sol";

/// @notice Drives C-REV with random issuance, FIFO and explicit-lot transfers, and retirements,
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
    uint64 internal nextInterval = 1;

    constructor(CarbonReductionValue crev_) {
        crev = crev_;
        cert = RetirementCertificate(crev_.certificate());
    }

    function actorCount() external pure returns (uint256) {
        return 4;
    }

    function issue(uint256 actorSeed, uint256 meterSeed, uint256 wh) external {
        address owner = actors[actorSeed % 4];
        wh = bound(wh, 1, 50_000);
        bytes32 meter = bytes32(meterSeed % 3);
        uint256 before = crev.totalSupply();
        crev.onSelfConsumption(meter, owner, nextInterval++, wh);
        ghostIssued += crev.totalSupply() - before;
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
        targetContract(address(handler));
        bytes4[] memory sel = new bytes4[](5);
        sel[0] = CrevHandler.issue.selector;
        sel[1] = CrevHandler.transfer.selector;
        sel[2] = CrevHandler.transferLot.selector;
        sel[3] = CrevHandler.retire.selector;
        sel[4] = CrevHandler.moveCertificate.selector;
        targetSelector(address(handler), sel);
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

    function testFuzz_amountIsExact(uint64 wh, uint16 factor) public {
        uint256 f = bound(factor, 0, 2000);
        uint64 iid = uint64(block.timestamp / 900) + 1;
        crev.scheduleEmissionFactor(f, iid);
        crev.onSelfConsumption(bytes32("m"), ALICE, iid, wh);
        // wh * g/kWh = mg... → t-CO2e with 18 decimals: wh * f * 1e18 / (1000 * 1e6).
        assertEq(crev.balanceOf(ALICE), uint256(wh) * f * 1e18 / (1000 * 1e6), "amount");
    }

    function test_factorChangeAppliesForwardOnly() public {
        uint64 now_ = uint64(block.timestamp / 900);
        crev.setEmissionFactor(300);
        assertEq(crev.emissionFactorAt(now_), 450, "current interval keeps the old factor");
        assertEq(crev.emissionFactorAt(now_ + 1), 300, "next interval uses the new one");
        vm.expectRevert(
            abi.encodeWithSelector(ICarbonReductionValue.CrevFactorNotForward.selector, now_, now_ + 1)
        );
        crev.scheduleEmissionFactor(100, now_);
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
        crev.onSelfConsumption(bytes32("m"), ALICE, 1, 1000);
        crev.onSelfConsumption(bytes32("m"), ALICE, 2, 2000);
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
