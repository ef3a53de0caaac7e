// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase, Vm} from "./utils/Vm.sol";
import {WattToken} from "../../contracts/tokens/WattToken.sol";
import {MeterRegistry} from "../../contracts/meters/MeterRegistry.sol";
import {CarbonReductionValue} from "../../contracts/tokens/CarbonReductionValue.sol";
import {IMeterRegistry} from "../../contracts/interfaces/IMeterRegistry.sol";
import {ICarbonReductionValue} from "../../contracts/interfaces/ICarbonReductionValue.sol";

/// @notice Issue 19, part 4: C-REV at every interval length the registry allows (60 … 86,400 s),
///         end to end: real signed readings through the MeterRegistry, its self-consumption hook,
///         C-REV lots keyed by interval start, and the factor schedule in Unix seconds.
contract CrevIntervalsTest is TestBase {
    WattToken internal watt;
    MeterRegistry internal reg;
    CarbonReductionValue internal crev;

    uint256 internal constant KEY = 0xA11CE;
    bytes32 internal constant METER = keccak256("roof-1");
    address internal constant OWNER = address(0xB0B0);
    uint64 internal constant T0 = 1_800_057_600; // a UTC midnight: every length that divides a day aligns
    uint64 internal constant RATED_W = 8000;
    bytes32 internal constant HOOK_FAILED = keccak256("SelfConsumptionHookFailed(bytes32,uint64,bytes)");
    uint64 internal seq;
    uint64 internal lastEnd;

    function setUp() public {
        watt = new WattToken(address(this));
        reg = new MeterRegistry(address(this), watt);
        watt.grantRole(watt.MINTER_ROLE(), address(reg));
        watt.grantRole(watt.BURNER_ROLE(), address(reg));
        reg.grantRole(reg.REGISTRAR_ROLE(), address(this));
        reg.grantRole(reg.PARAMETER_ROLE(), address(this));
        crev = new CarbonReductionValue(address(this), address(reg), 450, 0, "test");
        reg.setSelfConsumptionHook(address(crev));
        reg.setHookGasLimit(600_000);
        vm.warp(T0 - 1 days);
        reg.registerMeter(METER, vm.addr(KEY), OWNER, IMeterRegistry.Kind.Prosumer, "solar", true, uint32(RATED_W), "xn76");
        vm.warp(T0);
        lastEnd = T0;
    }

    /// @dev Signs and submits the meter's reading of [start, start + len) once it is over; the
    ///      registry must accept it and the hook must not fail. Self-consumed = `wh` (gen = cons).
    function _submit(uint64 start, uint64 len, uint64 wh) internal {
        if (block.timestamp < start + len) vm.warp(start + len);
        IMeterRegistry.Reading memory r =
            IMeterRegistry.Reading(METER, ++seq, start, start + len, wh, wh, 0, 0, 50_000);
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(KEY, reg.readingDigest(r));
        IMeterRegistry.Reading[] memory rs = new IMeterRegistry.Reading[](1);
        bytes[] memory sigs = new bytes[](1);
        rs[0] = r;
        sigs[0] = abi.encodePacked(rr, s, v);
        vm.recordLogs();
        (uint256 accepted,) = reg.submitReadings(rs, sigs);
        assertEq(accepted, 1, "reading accepted");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            assertTrue(logs[i].topics[0] != HOOK_FAILED, "the C-REV hook must not fail");
        }
        lastEnd = start + len;
    }

    /// @dev Checks lot `id`: keyed by (meter, start), the interval's length, the factor of its start, exact amount.
    function _checkLot(uint256 id, uint64 start, uint64 len, uint64 wh, uint256 factor) internal view {
        ICarbonReductionValue.Lot memory l = crev.lot(id);
        assertEq(crev.lotOf(METER, start), id, "lot keyed by (meter, interval start)");
        assertTrue(l.meterId == METER && l.owner == OWNER, "meter and owner");
        assertEq(l.intervalStart, start, "interval start (Unix seconds)");
        assertEq(l.intervalSeconds, len, "interval length");
        assertEq(l.selfConsumedWh, wh, "energy");
        assertEq(l.factorGPerKwh, factor, "factor");
        assertEq(crev.emissionFactorAt(start), factor, "schedule agrees with the lot");
        assertEq(l.amount, uint256(wh) * factor * 1e9, "exact amount");
    }

    function _whFor(uint64 len) internal pure returns (uint64) {
        uint64 max = RATED_W * len / 3600; // the most the meter can measure in the interval
        return max < 1000 ? max : 1000;
    }

    function _firstStart(uint64 len) internal view returns (uint64) {
        return (lastEnd + len - 1) / len * len;
    }

    /// Any allowed length, set while the hook is installed: lots keyed by start, the factor in force
    /// at the interval's start, and a factor change reaching exactly the intervals that start from it.
    function testFuzz_everyAllowedLength(uint32 lenSeed) public {
        uint64 len = uint64(bound(lenSeed, 60, 86_400));
        reg.setIntervalLength(uint32(len)); // no longer refused while a hook is set
        uint64 wh = _whFor(len);
        uint64 s1 = _firstStart(len);
        _submit(s1, len, wh);
        _checkLot(1, s1, len, wh, 450);

        crev.setEmissionFactor(300); // for intervals starting 900 s from now on
        ICarbonReductionValue.FactorEntry[] memory sched = crev.factorSchedule();
        uint64 from = sched[1].effectiveFrom;
        assertEq(from, block.timestamp + 900, "the lead ahead");
        uint64 s2 = s1 + len; // starts before `from` (it starts at the latest now): old factor, even read late
        uint64 s3 = (from + len - 1) / len * len; // the first interval starting at or after `from`
        if (s3 < s2 + len) s3 = s2 + len;
        _submit(s2, len, wh);
        _submit(s3, len, wh);
        _checkLot(2, s2, len, wh, 450);
        _checkLot(3, s3, len, wh, 300);
        assertEq(crev.lotCount(), 3, "one lot per reading");
    }

    /// 15-minute intervals (the default): a day-boundary factor change and the exact amounts.
    function test_900sIntervals() public {
        crev.scheduleEmissionFactor(300, T0 + 3600); // from 01:00 UTC
        for (uint64 k; k < 6; ++k) {
            _submit(T0 + 900 * k, 900, 1000 + uint64(k));
        }
        for (uint64 k; k < 6; ++k) {
            _checkLot(k + 1, T0 + 900 * k, 900, 1000 + uint64(k), k < 4 ? 450 : 300);
        }
        assertEq(crev.balanceOf(OWNER), (4 * 1000 + 6) * 450e9 + (2 * 1000 + 9) * 300e9, "exact total");
    }

    /// 30-minute intervals: the same change applies from the first half hour starting at or after it
    /// (with `start / 1800` ids the change would have applied only in 2084, and 900-s lot keys collided).
    function test_1800sIntervals() public {
        reg.setIntervalLength(1800);
        crev.scheduleEmissionFactor(300, T0 + 4500); // 01:15 UTC, inside the half hour 01:00–01:30
        for (uint64 k; k < 4; ++k) {
            _submit(T0 + 1800 * k, 1800, 2000);
        }
        _checkLot(1, T0, 1800, 2000, 450);
        _checkLot(2, T0 + 1800, 1800, 2000, 450);
        _checkLot(3, T0 + 3600, 1800, 2000, 450); // started before 01:15
        _checkLot(4, T0 + 5400, 1800, 2000, 300);
        assertEq(crev.balanceOf(OWNER), 3 * 2000 * 450e9 + 2000 * 300e9, "exact total");
    }

    /// The DAO changes the length back and forth under the hook: every reading earns exactly once,
    /// no key repeats, and each lot records the length its reading had.
    function test_lengthChangesUnderTheHook() public {
        uint64[7] memory lengths = [uint64(900), 1800, 60, 3600, 86_400, 900, 1800];
        for (uint256 i; i < lengths.length; ++i) {
            uint64 len = lengths[i];
            reg.setIntervalLength(uint32(len));
            uint64 start = _firstStart(len);
            _submit(start, len, _whFor(len));
            _checkLot(i + 1, start, len, _whFor(len), 450);
        }
        assertEq(crev.lotCount(), lengths.length, "every reading earned once");
    }
}
