// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./utils/Vm.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {TeslaToken} from "../../contracts/tokens/TeslaToken.sol";
import {WattToken} from "../../contracts/tokens/WattToken.sol";
import {BatteryStorage} from "../../contracts/storage/BatteryStorage.sol";
import {IBatteryStorage} from "../../contracts/interfaces/IBatteryStorage.sol";
import {IParticipantRegistry} from "../../contracts/interfaces/IMeterHooks.sol";
import {TestParticipantRegistry} from "../../contracts/test/TestParticipantRegistry.sol";
import {HostileToken} from "../../contracts/test/HostileToken.sol";

/// @dev Drives BatteryStorage with random users, batteries, amounts, time and fee changes, and keeps
///      ghost sums the invariants compare against the contract's own books.
contract StorageHandler is TestBase {
    BatteryStorage public store;
    WattToken public watt;
    TeslaToken public tsl;
    TestParticipantRegistry public reg;
    address[] public users;
    address[] public payees;
    uint256 public ghostFeesPaid;
    uint256 public ghostClaimed;
    uint256 public ghostGranted;
    uint256 public ghostFunded;

    constructor(
        BatteryStorage store_,
        WattToken watt_,
        TeslaToken tsl_,
        TestParticipantRegistry reg_,
        address[] memory users_,
        address[] memory payees_
    ) {
        store = store_;
        watt = watt_;
        tsl = tsl_;
        reg = reg_;
        users = users_;
        payees = payees_;
    }

    function usersLength() external view returns (uint256) {
        return users.length;
    }

    function payeesLength() external view returns (uint256) {
        return payees.length;
    }

    function _user(uint256 seed) private view returns (address) {
        return users[seed % users.length];
    }

    function _battery(uint256 seed) private view returns (uint256) {
        return 1 + (seed % store.batteryCount());
    }

    function deposit(uint256 userSeed, uint256 batterySeed, uint256 wh) external {
        address u = _user(userSeed);
        uint256 id = _battery(batterySeed);
        IBatteryStorage.Battery memory b = store.batteries(id);
        uint256 free = b.capacityWh - b.storedWh;
        if (free == 0) return;
        wh = bound(wh, 1, free);
        vm.prank(u);
        store.deposit(id, wh, bytes32("solar"));
    }

    function withdraw(uint256 userSeed, uint256 batterySeed, uint256 wh) external {
        address u = _user(userSeed);
        uint256 id = _battery(batterySeed);
        uint256 s = store.stored(id, u);
        if (s == 0) return;
        wh = bound(wh, 1, s);
        uint256 due = store.owed(id, u);
        vm.prank(u);
        store.withdraw(id, wh);
        ghostFeesPaid += due;
        assertEq(store.owed(id, u), 0, "owed after withdraw");
    }

    function payFees(uint256 userSeed, uint256 batterySeed) external {
        address u = _user(userSeed);
        uint256 id = _battery(batterySeed);
        uint256 due = store.owed(id, u);
        vm.prank(u);
        uint256 paid = store.payFees(id);
        assertEq(paid, due, "paid == owed");
        ghostFeesPaid += paid;
    }

    function prepay(uint256 userSeed, uint256 amount) external {
        address u = _user(userSeed);
        amount = bound(amount, 1, 1e21);
        vm.prank(u);
        store.prepay(amount);
    }

    function withdrawPrepaid(uint256 userSeed, uint256 amount) external {
        address u = _user(userSeed);
        uint256 c = store.credit(u);
        if (c == 0) return;
        amount = bound(amount, 1, c);
        vm.prank(u);
        store.withdrawPrepaid(amount);
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 0, 6 hours));
    }

    function setFeeRate(uint256 batterySeed, uint256 rate) external {
        store.setFeeRate(_battery(batterySeed), bound(rate, 0, 1e17 + 7));
    }

    function claim(uint256 payeeSeed) external {
        address p = payees[payeeSeed % payees.length];
        if (store.claimable(p) == 0) return;
        uint256 before = tsl.balanceOf(p);
        vm.prank(p);
        store.claim();
        ghostClaimed += tsl.balanceOf(p) - before;
    }

    /// @dev A user pushes a payee's credit to the payee: the payee's TSL grows by exactly what the
    ///      books release, the caller's does not move, the marketing pool stays.
    function claimFor(uint256 payeeSeed, uint256 userSeed) external {
        address p = payees[payeeSeed % payees.length];
        address u = _user(userSeed);
        uint256 due = store.credited(p);
        if (due == 0) return;
        uint256 pool = store.marketingPool();
        uint256 before = tsl.balanceOf(p);
        uint256 callerBefore = tsl.balanceOf(u);
        vm.prank(u);
        uint256 paid = store.claimFor(p);
        assertEq(paid, due, "claimFor pays the credit");
        assertEq(tsl.balanceOf(p) - before, due, "payee received it");
        assertEq(tsl.balanceOf(u), callerBefore, "caller received nothing");
        assertEq(store.marketingPool(), pool, "pool untouched");
        ghostClaimed += due;
    }

    function fundPool(uint256 amount) external {
        amount = bound(amount, 1, 1e20);
        store.fundMarketingPool(amount);
        ghostFunded += amount;
    }

    function claimGrant(uint256 userSeed) external {
        address u = _user(userSeed);
        if (store.grantClaimed(u) || store.marketingPool() < store.welcomeGrant()) return;
        vm.prank(u);
        ghostGranted += store.claimWelcomeGrant();
    }
}

contract StorageInvariantTest is TestBase {
    BatteryStorage internal store;
    WattToken internal watt;
    TeslaToken internal tsl;
    TestParticipantRegistry internal reg;
    StorageHandler internal handler;
    address internal constant PLATFORM = address(0x9A7F);
    address internal constant MARKETING = address(0x3A4C);
    address[] internal owners;

    function setUp() public {
        watt = new WattToken(address(this));
        tsl = new TeslaToken(address(this));
        reg = new TestParticipantRegistry();
        store = new BatteryStorage(
            address(this), IERC20(address(watt)), IERC20(address(tsl)), PLATFORM, MARKETING,
            IParticipantRegistry(address(reg)), 3e18 + 1
        );
        watt.grantRole(watt.MINTER_ROLE(), address(this));
        watt.grantRole(watt.BURNER_ROLE(), address(store));
        store.grantRole(store.REGISTRAR_ROLE(), address(this));

        owners.push(address(0x0A1));
        owners.push(address(0x0A2));
        owners.push(address(0x0A3));
        uint256[] memory shares = new uint256[](3);
        shares[0] = 3;
        shares[1] = 5;
        shares[2] = 7;
        store.registerBattery(bytes32("bat-1"), 13_500, 9_000, 1e15 + 3, owners, shares);
        address[] memory solo = new address[](1);
        solo[0] = address(0x0A2);
        uint256[] memory one = new uint256[](1);
        one[0] = 1;
        store.registerBattery(bytes32("bat-2"), 5_000, 9_500, 7e14 + 1, solo, one);

        address[] memory users = new address[](3);
        users[0] = address(0xA11CE);
        users[1] = address(0xB0B);
        users[2] = address(0xCA401);
        address[] memory payees = new address[](5);
        payees[0] = owners[0];
        payees[1] = owners[1];
        payees[2] = owners[2];
        payees[3] = PLATFORM;
        payees[4] = MARKETING;

        handler = new StorageHandler(store, watt, tsl, reg, users, payees);
        store.grantRole(store.FEE_MANAGER_ROLE(), address(handler));
        tsl.transfer(address(handler), 1e24);
        vm.prank(address(handler));
        tsl.approve(address(store), type(uint256).max);
        for (uint256 i; i < users.length; ++i) {
            watt.mint(users[i], 100_000 * 1e15);
            tsl.transfer(users[i], 1e24);
            reg.setParticipant(users[i], true);
            vm.startPrank(users[i]);
            watt.approve(address(store), type(uint256).max);
            tsl.approve(address(store), type(uint256).max);
            vm.stopPrank();
        }

        bytes4[] memory sel = new bytes4[](12);
        sel[0] = StorageHandler.deposit.selector;
        sel[1] = StorageHandler.withdraw.selector;
        sel[2] = StorageHandler.payFees.selector;
        sel[3] = StorageHandler.prepay.selector;
        sel[4] = StorageHandler.withdrawPrepaid.selector;
        sel[5] = StorageHandler.warp.selector;
        sel[6] = StorageHandler.setFeeRate.selector;
        sel[7] = StorageHandler.claim.selector;
        sel[8] = StorageHandler.fundPool.selector;
        sel[9] = StorageHandler.claimGrant.selector;
        sel[10] = StorageHandler.warp.selector;
        sel[11] = StorageHandler.claimFor.selector;
        targetContract(address(handler));
        targetSelector(address(handler), sel);
    }

    function _sumClaimable() internal view returns (uint256 s) {
        for (uint256 i; i < handler.payeesLength(); ++i) {
            s += store.claimable(handler.payees(i));
        }
    }

    /// Fees paid in (plus pool top-ups) == owners + marketing + platform, claimed or still claimable.
    function invariant_feesEqualSplitClaimedPlusClaimable() public view {
        assertEq(store.totalFeesPaid(), handler.ghostFeesPaid(), "fees paid (contract vs ghost)");
        assertEq(
            handler.ghostFeesPaid() + handler.ghostFunded(),
            _sumClaimable() + handler.ghostClaimed() + handler.ghostGranted(),
            "fees + funding == claimable + claimed + granted"
        );
        assertEq(store.totalClaimed(), handler.ghostClaimed(), "claimed (contract vs ghost)");
    }

    /// The contract holds exactly the prepaid credit plus everything claimable, in TSL.
    function invariant_tslHeldEqualsCreditPlusClaimable() public view {
        uint256 credits;
        for (uint256 i; i < handler.usersLength(); ++i) {
            credits += store.credit(handler.users(i));
        }
        assertEq(credits, store.totalCredit(), "credits");
        assertEq(tsl.balanceOf(address(store)), credits + _sumClaimable(), "TSL held");
    }

    /// Stored energy never exceeds capacity; users' positions add up; WATT held == Σ stored.
    function invariant_energyBooks() public view {
        uint256 total;
        for (uint256 id = 1; id <= store.batteryCount(); ++id) {
            IBatteryStorage.Battery memory b = store.batteries(id);
            assertLe(b.storedWh, b.capacityWh, "stored <= capacity");
            uint256 sumUsers;
            for (uint256 i; i < handler.usersLength(); ++i) {
                sumUsers += store.stored(id, handler.users(i));
            }
            assertEq(sumUsers, b.storedWh, "positions add up");
            total += b.storedWh;
        }
        assertEq(watt.balanceOf(address(store)), total * 1e15, "WATT held == sum stored");
    }
}

/// @dev Fixed-scenario and fuzz tests: fee maths, forward-only rate changes, split rounding, hostile tokens.
contract StorageUnitTest is TestBase {
    BatteryStorage internal store;
    WattToken internal watt;
    TeslaToken internal tsl;
    address internal constant PLATFORM = address(0x9A7F);
    address internal constant MARKETING = address(0x3A4C);
    address internal constant USER = address(0xA11CE);

    function setUp() public {
        vm.warp(1_800_000_000); // slot-aligned: 1_800_000_000 / 900 = 2_000_000
        watt = new WattToken(address(this));
        tsl = new TeslaToken(address(this));
        store = new BatteryStorage(
            address(this), IERC20(address(watt)), IERC20(address(tsl)), PLATFORM, MARKETING,
            IParticipantRegistry(address(0)), 0
        );
        watt.grantRole(watt.MINTER_ROLE(), address(this));
        watt.grantRole(watt.BURNER_ROLE(), address(store));
        store.grantRole(store.REGISTRAR_ROLE(), address(this));
        store.grantRole(store.FEE_MANAGER_ROLE(), address(this));
        watt.mint(USER, 1_000_000 * 1e15);
        tsl.transfer(USER, 1e27);
        vm.startPrank(USER);
        watt.approve(address(store), type(uint256).max);
        tsl.approve(address(store), type(uint256).max);
        vm.stopPrank();
    }

    function _register(uint256 rate, uint256[] memory shares) internal returns (uint256) {
        address[] memory o = new address[](shares.length);
        for (uint256 i; i < shares.length; ++i) {
            o[i] = address(uint160(0x1000 + i));
        }
        return store.registerBattery(bytes32("bat"), 1_000_000, 9_000, rate, o, shares);
    }

    function testFuzz_feeIsWhTimesRateTimesStartedSlots(uint256 wh, uint256 rate, uint256 secs, uint256 offset)
        public
    {
        uint256[] memory shares = new uint256[](1);
        shares[0] = 1;
        rate = bound(rate, 0, 1e20);
        uint256 id = _register(rate, shares);
        wh = bound(wh, 1, 1_000_000);
        vm.warp(block.timestamp + bound(offset, 0, 899));
        vm.prank(USER);
        store.deposit(id, wh, bytes32(0));
        uint256 start = block.timestamp / 900;
        vm.warp(block.timestamp + bound(secs, 0, 30 days));
        uint256 slots = block.timestamp / 900 - start + 1;
        assertEq(store.owed(id, USER), (wh * rate * slots) / 1000, "owed");
        uint256 before = tsl.balanceOf(USER);
        vm.prank(USER);
        store.withdraw(id, wh);
        assertEq(before - tsl.balanceOf(USER), (wh * rate * slots) / 1000, "paid");
        assertEq(watt.balanceOf(USER), (1_000_000 - wh + (wh * 9_000) / 10_000) * 1e15, "WATT back");
    }

    function test_feeRateChangeAppliesFromNextSlotOnly() public {
        uint256[] memory shares = new uint256[](1);
        shares[0] = 1;
        uint256 id = _register(1e15, shares);
        vm.prank(USER);
        store.deposit(id, 1000, bytes32(0)); // slot s: 1e15 * 1 kWh
        vm.warp(block.timestamp + 100); // still slot s
        uint64 eff = store.setFeeRate(id, 5e15);
        assertEq(eff, store.currentSlot() + 1, "effective next slot");
        assertEq(store.owed(id, USER), 1e15, "current slot keeps the old rate");
        vm.warp(block.timestamp + 900); // slot s+1 at the new rate
        assertEq(store.owed(id, USER), 1e15 + 5e15, "next slot at the new rate");
        vm.warp(block.timestamp + 900); // s+2
        assertEq(store.owed(id, USER), 1e15 + 2 * 5e15, "s+2");
    }

    function testFuzz_splitAddsUpToTheUnit(uint256 rate, uint256 wh, uint256 s0, uint256 s1, uint256 s2) public {
        uint256[] memory shares = new uint256[](3);
        shares[0] = bound(s0, 1, 1e9);
        shares[1] = bound(s1, 1, 1e9);
        shares[2] = bound(s2, 1, 1e9);
        rate = bound(rate, 1, 1e22);
        uint256 id = _register(rate, shares);
        wh = bound(wh, 1, 1_000_000);
        vm.prank(USER);
        store.deposit(id, wh, bytes32(0));
        vm.prank(USER);
        uint256 fee = store.payFees(id);
        uint256 sum = store.claimable(PLATFORM) + store.claimable(MARKETING);
        uint256 ownersSum;
        for (uint256 i; i < 3; ++i) {
            ownersSum += store.claimable(address(uint160(0x1000 + i)));
        }
        assertEq(sum + ownersSum, fee, "parts add up");
        assertEq(store.claimable(MARKETING), fee / 10, "marketing 10% rounded down");
        assertEq(store.claimable(PLATFORM), fee / 10, "platform 10% rounded down");
        uint256 total = shares[0] + shares[1] + shares[2];
        uint256 ownersPart = fee - 2 * (fee / 10);
        assertEq(store.claimable(address(0x1001)), (ownersPart * shares[1]) / total, "owner 1");
        assertEq(store.claimable(address(0x1002)), (ownersPart * shares[2]) / total, "owner 2");
    }

    function test_tslReturningFalseIsRefused() public {
        HostileToken bad = new HostileToken();
        BatteryStorage s = new BatteryStorage(
            address(this), IERC20(address(watt)), IERC20(address(bad)), PLATFORM, MARKETING,
            IParticipantRegistry(address(0)), 0
        );
        bad.mint(USER, 1e18);
        vm.prank(USER);
        bad.approve(address(s), 1e18);
        bad.setMode(HostileToken.Mode.ReturnFalse, address(0), "");
        vm.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(bad)));
        vm.prank(USER);
        s.prepay(1e18);
        assertEq(s.credit(USER), 0, "no credit without tokens");
    }

    function test_reentrantWattIsRefused() public {
        HostileToken bad = new HostileToken();
        BatteryStorage s = new BatteryStorage(
            address(this), IERC20(address(bad)), IERC20(address(tsl)), PLATFORM, MARKETING,
            IParticipantRegistry(address(0)), 0
        );
        s.grantRole(s.REGISTRAR_ROLE(), address(this));
        address[] memory o = new address[](1);
        o[0] = address(0x1000);
        uint256[] memory sh = new uint256[](1);
        sh[0] = 1;
        uint256 id = s.registerBattery(bytes32("b"), 10_000, 10_000, 0, o, sh);
        bad.mint(USER, 10_000 * 1e15);
        vm.prank(USER);
        bad.approve(address(s), type(uint256).max);
        vm.prank(USER);
        s.deposit(id, 500, bytes32(0));
        // On the next transfer the token calls back into withdraw(): the guard must stop it.
        bad.setMode(HostileToken.Mode.Reenter, address(s), abi.encodeCall(s.withdraw, (id, 500)));
        vm.expectRevert(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        vm.prank(USER);
        s.deposit(id, 100, bytes32(0));
        assertEq(s.stored(id, USER), 500, "stored unchanged");
        assertEq(bad.balanceOf(address(s)), 500 * 1e15, "held unchanged");
    }

    function testFuzz_claimForPaysThePayeeNotTheCaller(uint256 wh, address caller) public {
        vm.assume(caller != PLATFORM && caller != address(store));
        uint256[] memory shares = new uint256[](1);
        shares[0] = 1;
        uint256 id = _register(1e15 + 3, shares);
        wh = bound(wh, 1, 1_000_000);
        vm.prank(USER);
        store.deposit(id, wh, bytes32(0));
        vm.prank(USER);
        uint256 fee = store.payFees(id);
        uint256 due = fee / 10;
        vm.assume(due > 0);
        uint256 callerBefore = tsl.balanceOf(caller);
        uint256 claimedBefore = store.totalClaimed();
        uint256 claimableBefore = store.totalClaimable();
        vm.expectEmit();
        emit IBatteryStorage.Claimed(PLATFORM, due);
        vm.prank(caller);
        assertEq(store.claimFor(PLATFORM), due, "returned");
        assertEq(tsl.balanceOf(PLATFORM), due, "platform paid");
        assertEq(tsl.balanceOf(caller), callerBefore, "caller unpaid");
        assertEq(store.totalClaimed(), claimedBefore + due, "totalClaimed");
        assertEq(store.totalClaimable(), claimableBefore - due, "totalClaimable");
        assertEq(store.claimable(PLATFORM), 0, "nothing left");
        vm.expectRevert(abi.encodeWithSelector(IBatteryStorage.StorageNothingToClaim.selector, PLATFORM));
        vm.prank(caller);
        store.claimFor(PLATFORM);
        // the marketing pool is never pushed: only the marketing payee's own claim() takes it
        assertEq(store.claimable(MARKETING), due, "pool");
        vm.expectRevert(abi.encodeWithSelector(IBatteryStorage.StorageNothingToClaim.selector, MARKETING));
        vm.prank(caller);
        store.claimFor(MARKETING);
        vm.prank(MARKETING);
        assertEq(store.claim(), due, "marketing claims the pool");
    }

    function test_tslReentryThroughClaimForIsRefused() public {
        HostileToken bad = new HostileToken();
        BatteryStorage s = new BatteryStorage(
            address(this), IERC20(address(watt)), IERC20(address(bad)), PLATFORM, MARKETING,
            IParticipantRegistry(address(0)), 0
        );
        s.grantRole(s.REGISTRAR_ROLE(), address(this));
        address[] memory o = new address[](1);
        o[0] = address(0x1000);
        uint256[] memory sh = new uint256[](1);
        sh[0] = 1;
        uint256 id = s.registerBattery(bytes32("b"), 10_000, 10_000, 1e18, o, sh);
        watt.mint(address(this), 1_000 * 1e15);
        watt.approve(address(s), type(uint256).max);
        bad.mint(address(this), 1e18);
        bad.approve(address(s), type(uint256).max);
        s.deposit(id, 1_000, bytes32(0));
        s.payFees(id); // 1 kWh x 1e18: platform credited 1e17
        // On the payout transfer the token calls claimFor again: the guard must stop the second payout.
        bad.setMode(HostileToken.Mode.Reenter, address(s), abi.encodeCall(s.claimFor, (PLATFORM)));
        vm.expectRevert(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        s.claimFor(PLATFORM);
        assertEq(s.claimable(PLATFORM), 1e17, "credit unchanged");
    }

    function test_tslReentryThroughClaimIsRefused() public {
        HostileToken bad = new HostileToken();
        BatteryStorage s = new BatteryStorage(
            address(this), IERC20(address(watt)), IERC20(address(bad)), PLATFORM, MARKETING,
            IParticipantRegistry(address(0)), 0
        );
        bad.mint(address(this), 1e18);
        bad.approve(address(s), 1e18);
        s.fundMarketingPool(1e18);
        bad.setMode(HostileToken.Mode.Reenter, address(s), abi.encodeCall(s.claim, ()));
        vm.expectRevert(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        vm.prank(MARKETING);
        s.claim();
        assertEq(s.claimable(MARKETING), 1e18, "pool unchanged");
    }
}
