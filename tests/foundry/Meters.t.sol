// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase, Vm} from "./utils/Vm.sol";
import {WattToken} from "../../contracts/tokens/WattToken.sol";
import {MeterRegistry} from "../../contracts/meters/MeterRegistry.sol";
import {IMeterRegistry} from "../../contracts/interfaces/IMeterRegistry.sol";

abstract contract MetersSetup is TestBase {
    WattToken internal watt;
    MeterRegistry internal reg;
    uint64 internal constant T0 = 1_800_000_000 / 900 * 900;
    uint256 internal constant N = 3;
    uint256[N] internal keys;
    bytes32[N] internal ids;
    address[N] internal owners;

    function _deploy() internal {
        watt = new WattToken(address(this));
        reg = new MeterRegistry(address(this), watt);
        watt.grantRole(watt.MINTER_ROLE(), address(reg));
        watt.grantRole(watt.BURNER_ROLE(), address(reg));
        reg.grantRole(reg.REGISTRAR_ROLE(), address(this));
        // Registered a day before T0; the clock then stands long after every reading these tests
        // sign (the registry refuses intervals that are not over or began before registration).
        vm.warp(T0 - 1 days);
        for (uint256 i; i < N; ++i) {
            keys[i] = 0xA11CE + i;
            ids[i] = keccak256(abi.encode("meter", i));
            owners[i] = address(uint160(0xB0B0 + i));
            reg.registerMeter(
                ids[i], vm.addr(keys[i]), owners[i], IMeterRegistry.Kind.Prosumer, "solar", true, 8000, "xn76"
            );
        }
        vm.warp(T0 + 900 * 100_000);
    }

    function _reading(uint256 m, uint64 seq, uint64 gen, uint64 cons) internal view returns (IMeterRegistry.Reading memory r) {
        uint64 exp = gen > cons ? gen - cons : 0;
        uint64 imp = cons > gen ? cons - gen : 0;
        r = IMeterRegistry.Reading(ids[m], seq, T0 + 900 * seq, T0 + 900 * seq + 900, gen, cons, exp, imp, 50_000);
    }

    function _sign(uint256 key, IMeterRegistry.Reading memory r) internal view returns (bytes memory) {
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(key, reg.readingDigest(r));
        return abi.encodePacked(rr, s, v);
    }

    function _one(IMeterRegistry.Reading memory r, bytes memory sig)
        internal
        returns (uint256 accepted, uint256 duplicates)
    {
        IMeterRegistry.Reading[] memory rs = new IMeterRegistry.Reading[](1);
        bytes[] memory sigs = new bytes[](1);
        rs[0] = r;
        sigs[0] = sig;
        return reg.submitReadings(rs, sigs);
    }
}

/// @notice Hostile signatures: each is refused as BadSignature and mints nothing.
contract MetersSignatureTest is MetersSetup {
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint8 internal constant BAD_SIGNATURE = uint8(IMeterRegistry.Reason.BadSignature);

    function setUp() public {
        _deploy();
    }

    function test_validSignature_isAccepted() public {
        IMeterRegistry.Reading memory r = _reading(0, 1, 400, 100);
        bytes memory sig = _sign(keys[0], r);
        assertEq(reg.whyRefused(r, sig), 0, "reason");
        (uint256 a,) = _one(r, sig);
        assertEq(a, 1, "accepted");
        assertEq(watt.balanceOf(owners[0]), 300e15, "minted export");
    }

    function test_highS_isRefused() public {
        IMeterRegistry.Reading memory r = _reading(0, 1, 400, 100);
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(keys[0], reg.readingDigest(r));
        bytes32 highS = bytes32(SECP256K1_N - uint256(s));
        bytes memory sig = abi.encodePacked(rr, highS, v == 27 ? uint8(28) : uint8(27));
        assertEq(reg.whyRefused(r, sig), BAD_SIGNATURE, "high-s malleable twin");
        _one(r, sig);
        assertEq(watt.totalSupply(), 0, "nothing minted");
    }

    function test_wrongV_isRefused() public {
        IMeterRegistry.Reading memory r = _reading(0, 1, 400, 100);
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(keys[0], reg.readingDigest(r));
        assertEq(reg.whyRefused(r, abi.encodePacked(rr, s, v - 27)), BAD_SIGNATURE, "v as 0/1");
        assertEq(reg.whyRefused(r, abi.encodePacked(rr, s, uint8(29))), BAD_SIGNATURE, "v = 29");
        assertEq(reg.whyRefused(r, abi.encodePacked(rr, s, v == 27 ? uint8(28) : uint8(27))), BAD_SIGNATURE, "flipped v");
    }

    function test_otherMetersSignature_isRefused() public {
        IMeterRegistry.Reading memory r = _reading(0, 1, 400, 100);
        assertEq(reg.whyRefused(r, _sign(keys[1], r)), BAD_SIGNATURE, "meter 1 signs for meter 0");
        // A signature meter 1 made for its own reading does not carry over to meter 0's.
        IMeterRegistry.Reading memory r1 = _reading(1, 1, 400, 100);
        assertEq(reg.whyRefused(r, _sign(keys[1], r1)), BAD_SIGNATURE, "signature of another reading");
    }

    function test_malformedLengths_areRefused() public {
        IMeterRegistry.Reading memory r = _reading(0, 1, 400, 100);
        (, bytes32 rr, bytes32 s) = vm.sign(keys[0], reg.readingDigest(r));
        assertEq(reg.whyRefused(r, abi.encodePacked(rr, s)), BAD_SIGNATURE, "64-byte compact form");
        assertEq(reg.whyRefused(r, ""), BAD_SIGNATURE, "empty");
        assertEq(reg.whyRefused(r, new bytes(65)), BAD_SIGNATURE, "all zero");
    }

    function testFuzz_duplicateNeverAppliesTwice(uint8 count, uint8 repush) public {
        uint64 n = uint64(bound(count, 1, 20));
        IMeterRegistry.Reading[] memory rs = new IMeterRegistry.Reading[](n);
        bytes[] memory sigs = new bytes[](n);
        for (uint64 i; i < n; ++i) {
            rs[i] = _reading(0, i + 1, 300, 100);
            sigs[i] = _sign(keys[0], rs[i]);
        }
        reg.submitReadings(rs, sigs);
        uint256 supply = watt.totalSupply();
        assertEq(supply, uint256(n) * 200e15, "minted once each");
        uint64 k = uint64(bound(repush, 0, n - 1));
        // The last accepted reading is a no-op Duplicate; an older one is skipped as StaleSequence
        // (its ReadingAccepted log is the proof it is on chain). Neither is applied again.
        uint8 expected = uint8(k == n - 1 ? IMeterRegistry.Reason.Duplicate : IMeterRegistry.Reason.StaleSequence);
        assertEq(reg.whyRefused(rs[k], sigs[k]), expected, "reason");
        (uint256 a, uint256 d) = _one(rs[k], sigs[k]);
        assertEq(a, 0, "not accepted again");
        assertEq(d, k == n - 1 ? 1 : 0, "duplicate only for the last");
        assertEq(watt.totalSupply(), supply, "supply unchanged");
    }

    function test_sequenceAbove32Bits_isRefused() public {
        IMeterRegistry.Reading memory r = _reading(0, 1, 400, 100);
        r.sequence = uint64(type(uint32).max) + 1;
        assertEq(reg.whyRefused(r, _sign(keys[0], r)), uint8(IMeterRegistry.Reason.SequenceTooLarge), "2^32");
        r.sequence = type(uint32).max;
        assertEq(reg.whyRefused(r, _sign(keys[0], r)), 0, "2^32 - 1 is fine");
    }

    function test_exportThenImportInOneBatch_burnSeesTheExport() public {
        IMeterRegistry.Reading[] memory rs = new IMeterRegistry.Reading[](2);
        bytes[] memory sigs = new bytes[](2);
        rs[0] = _reading(0, 1, 500, 200); // +300 Wh exported
        rs[1] = _reading(0, 2, 0, 200); // 200 Wh imported: burnt from the 300 just minted
        sigs[0] = _sign(keys[0], rs[0]);
        sigs[1] = _sign(keys[0], rs[1]);
        (uint256 a,) = reg.submitReadings(rs, sigs);
        assertEq(a, 2, "both accepted");
        assertEq(watt.balanceOf(owners[0]), 100e15, "300 minted - 200 burnt");
        assertEq(reg.energyDebtWh(owners[0]), 0, "no debt: the burn saw the export");
        assertEq(watt.totalSupply(), 100e15, "supply");
    }
}

/// @notice Readings whose calldata words hold bits their types cannot: refused with a reason, the
///         batch goes on (a raw-word struct has the same ABI layout as `Reading`).
contract MetersDirtyWordsTest is MetersSetup {
    struct RawReading {
        bytes32 meterId;
        uint256[8] words; // sequence … frequencyMHz, as raw 256-bit words
    }

    function setUp() public {
        _deploy();
    }

    function _raw(IMeterRegistry.Reading memory r) internal pure returns (RawReading memory x) {
        x.meterId = r.meterId;
        x.words = [
            uint256(r.sequence), r.intervalStart, r.intervalEnd, r.generationWh, r.consumptionWh, r.exportWh,
            r.importWh, r.frequencyMHz
        ];
    }

    function _signRaw(uint256 key, RawReading memory x) internal view returns (bytes memory) {
        bytes32 structHash = keccak256(abi.encode(reg.READING_TYPEHASH(), x.meterId, x.words));
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", reg.domainSeparator(), structHash));
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(rr, s, v);
    }

    function test_dirtyWordsAreRefusedWithAReason() public {
        // word index (0 = sequence) → the reason a dirty value of it gets
        uint256[5] memory word = [uint256(0), 1, 5, 6, 7];
        IMeterRegistry.Reason[5] memory why = [
            IMeterRegistry.Reason.SequenceTooLarge,
            IMeterRegistry.Reason.BadInterval,
            IMeterRegistry.Reason.OverCapacity,
            IMeterRegistry.Reason.OverCapacity,
            IMeterRegistry.Reason.BadFrequency
        ];
        for (uint256 i; i < word.length; ++i) {
            RawReading[] memory xs = new RawReading[](2);
            bytes[] memory sigs = new bytes[](2);
            xs[0] = _raw(_reading(0, uint64(2 * i + 1), 400, 100));
            xs[0].words[word[i]] |= 1 << 200; // set a bit far above the field's type
            sigs[0] = _signRaw(keys[0], xs[0]);
            xs[1] = _raw(_reading(1, uint64(i + 1), 400, 100)); // a clean reading in the same batch
            sigs[1] = _signRaw(keys[1], xs[1]);
            vm.recordLogs();
            (bool ok, bytes memory ret) =
                address(reg).call(abi.encodeWithSelector(IMeterRegistry.submitReadings.selector, xs, sigs));
            assertTrue(ok, "the batch does not revert");
            (uint256 a,) = abi.decode(ret, (uint256, uint256));
            assertEq(a, 1, "only the clean reading is accepted");
            Vm.Log[] memory logs = vm.getRecordedLogs();
            bool seen;
            for (uint256 j; j < logs.length; ++j) {
                if (logs[j].topics[0] == IMeterRegistry.ReadingRejected.selector) {
                    assertEq(abi.decode(logs[j].data, (uint8)), uint8(why[i]), "reason");
                    // the sequence topic: the reading's, or 2^64 - 1 for one that does not fit 64 bits
                    assertEq(uint256(logs[j].topics[2]), i == 0 ? type(uint64).max : 2 * i + 1, "sequence");
                    seen = true;
                }
            }
            assertTrue(seen, "ReadingRejected emitted");
        }
        assertEq(watt.balanceOf(owners[0]), 0, "nothing minted for the dirty readings");
        assertEq(watt.balanceOf(owners[1]), 5 * 300e15, "the clean ones minted");
    }
}

/// @notice Drives the registry with valid, stale, duplicate and forged readings and keeps a model.
contract MetersHandler is MetersSetup {
    uint256 public ghostMinted;
    uint256 public ghostBurnt;
    uint256 public ghostDebtWh;
    uint256 public applications;
    bool public appliedTwice;
    bool public sequenceWentBack;
    bool public validRefused;
    uint64[N] internal nextSeq;
    mapping(bytes32 => mapping(uint64 => uint256)) internal appliedCount;
    IMeterRegistry.Reading[] internal accepted;
    bytes[] internal acceptedSigs;

    constructor() {
        _deploy();
    }

    function submitValid(uint256 m, uint64 gen, uint64 cons, uint8 skip) external {
        m = bound(m, 0, N - 1);
        gen = uint64(bound(gen, 0, 2000));
        cons = uint64(bound(cons, 0, 2000));
        uint64 seq = nextSeq[m] + 1 + uint64(bound(skip, 0, 3)); // gaps are allowed, order is not
        IMeterRegistry.Reading memory r = _reading(m, seq, gen, cons);
        bytes memory sig = _sign(keys[m], r);
        uint256 heldWh = watt.balanceOf(owners[m]) / 1e15 + r.exportWh;
        uint256 burnWh = r.importWh <= heldWh ? r.importWh : heldWh;
        uint64 before = reg.getMeter(ids[m]).lastSequence;
        (uint256 a,) = _one(r, sig);
        if (a == 1) {
            ghostMinted += uint256(r.exportWh) * 1e15;
            ghostBurnt += burnWh * 1e15;
            ghostDebtWh += r.importWh - burnWh;
            nextSeq[m] = seq;
            _applied(r.meterId, seq);
            accepted.push(r);
            acceptedSigs.push(sig);
        } else {
            validRefused = true;
        }
        if (reg.getMeter(ids[m]).lastSequence < before) sequenceWentBack = true;
    }

    function repushOld(uint256 k) external {
        if (accepted.length == 0) return;
        k = bound(k, 0, accepted.length - 1);
        (uint256 a,) = _one(accepted[k], acceptedSigs[k]);
        if (a != 0) _applied(accepted[k].meterId, accepted[k].sequence);
    }

    function submitStale(uint256 m, uint64 back) external {
        m = bound(m, 0, N - 1);
        if (nextSeq[m] == 0) return;
        uint64 seq = uint64(bound(back, 1, nextSeq[m]));
        IMeterRegistry.Reading memory r = _reading(m, seq, 1999, 1); // differs from what was accepted
        (uint256 a,) = _one(r, _sign(keys[m], r));
        if (a != 0) _applied(r.meterId, seq);
    }

    function submitForged(uint256 m, uint256 wrongKey) external {
        m = bound(m, 0, N - 1);
        IMeterRegistry.Reading memory r = _reading(m, nextSeq[m] + 1, 2000, 0);
        uint256 key = bound(wrongKey, 1, 1e30);
        if (key == keys[m]) key += 1;
        (uint256 a,) = _one(r, _sign(key, r));
        if (a != 0) _applied(r.meterId, r.sequence);
    }

    function _applied(bytes32 id, uint64 seq) internal {
        applications += 1;
        if (++appliedCount[id][seq] > 1) appliedTwice = true;
    }

    function debtOf() external view returns (uint256 total) {
        for (uint256 i; i < N; ++i) total += reg.energyDebtWh(owners[i]);
    }

    function wattAddr() external view returns (address) {
        return address(watt);
    }
}

contract MetersInvariantTest is TestBase {
    MetersHandler internal h;

    function setUp() public {
        h = new MetersHandler();
        targetContract(address(h));
        bytes4[] memory sels = new bytes4[](4);
        sels[0] = MetersHandler.submitValid.selector;
        sels[1] = MetersHandler.repushOld.selector;
        sels[2] = MetersHandler.submitStale.selector;
        sels[3] = MetersHandler.submitForged.selector;
        targetSelector(address(h), sels);
    }

    function invariant_supplyIsMintedMinusBurnt() public view {
        assertEq(WattToken(h.wattAddr()).totalSupply(), h.ghostMinted() - h.ghostBurnt(), "WATT supply");
        assertEq(h.debtOf(), h.ghostDebtWh(), "energy debt");
    }

    function invariant_readingNeverAppliedTwice() public view {
        assertTrue(!h.appliedTwice(), "a reading was applied twice");
        assertTrue(!h.validRefused(), "a valid reading was refused");
    }

    function invariant_sequenceNeverGoesBack() public view {
        assertTrue(!h.sequenceWentBack(), "sequence went back");
    }
}

/// @notice Drives meters of every kind with readings for any interval — long before registration,
///         around now, far in the future — at up to twice the rated power, while time moves on.
contract MetersTimeHandler is TestBase {
    WattToken internal watt;
    MeterRegistry internal reg;
    uint256 internal constant M = 4;
    uint256[M] internal keys;
    bytes32[M] public ids;
    address[M] internal owners;
    IMeterRegistry.Kind[M] internal kinds;
    uint32[M] internal rated;
    uint64[M] internal registeredAt;
    uint64[M] internal nextSeq;
    uint256[M] public ghostMinted;
    uint64[M] internal firstRegistered;
    uint256 public accepted;
    /// @dev Set when a reading breaks a rule; the invariant says which.
    string public violation;

    constructor() {
        vm.warp(1_800_000_000);
        watt = new WattToken(address(this));
        reg = new MeterRegistry(address(this), watt);
        watt.grantRole(watt.MINTER_ROLE(), address(reg));
        watt.grantRole(watt.BURNER_ROLE(), address(reg));
        reg.grantRole(reg.REGISTRAR_ROLE(), address(this));
        kinds = [
            IMeterRegistry.Kind.Producer,
            IMeterRegistry.Kind.Consumer,
            IMeterRegistry.Kind.Prosumer,
            IMeterRegistry.Kind.Battery
        ];
        rated = [uint32(5000), 7000, 8000, 4000];
        for (uint256 i; i < M; ++i) {
            vm.warp(block.timestamp + 777); // registration times off the interval grid
            keys[i] = 0xC0FFEE + i;
            ids[i] = keccak256(abi.encode("kind", i));
            owners[i] = address(uint160(0xD0D0 + i));
            reg.registerMeter(ids[i], vm.addr(keys[i]), owners[i], kinds[i], "solar", true, rated[i], "");
            registeredAt[i] = uint64(block.timestamp);
            firstRegistered[i] = uint64(block.timestamp);
        }
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 0, 6 hours));
    }

    /// @dev Suspend for a while, then reactivate: the time in between must never be back-filled.
    function suspendAndReactivate(uint256 m, uint256 secs) external {
        m = bound(m, 0, M - 1);
        reg.suspendMeter(ids[m]);
        vm.warp(block.timestamp + bound(secs, 0, 2 days));
        reg.reactivateMeter(ids[m]);
        registeredAt[m] = uint64(block.timestamp);
    }

    /// @dev A new device key: it must not vouch for the time before it.
    function rotateKey(uint256 m, uint256 newKey) external {
        m = bound(m, 0, M - 1);
        keys[m] = bound(newKey, 1, 1e30);
        reg.rotateKey(ids[m], vm.addr(keys[m]));
        registeredAt[m] = uint64(block.timestamp);
    }

    function submit(uint256 m, int256 offset, uint64 gen, uint64 cons) external {
        m = bound(m, 0, M - 1);
        IMeterRegistry.Reading memory r = _make(m, offset, gen, cons);
        uint256 supply = watt.totalSupply();
        uint256 a = _send(m, r);
        uint256 after_ = watt.totalSupply();
        if (a == 0) {
            if (after_ != supply) violation = "a refused reading changed the WATT supply";
            return;
        }
        ++accepted;
        nextSeq[m] = r.sequence;
        _check(m, r, supply, after_);
    }

    function _make(uint256 m, int256 offset, uint64 gen, uint64 cons)
        internal
        view
        returns (IMeterRegistry.Reading memory r)
    {
        uint256 maxWh = uint256(rated[m]) * 900 / 3600;
        gen = uint64(bound(gen, 0, 2 * maxWh));
        cons = uint64(bound(cons, 0, 2 * maxWh));
        // From 300 intervals back (before registration, at first) to 100 ahead (not over yet).
        int256 k = int256(block.timestamp / 900) + (offset % 400) - 300;
        if (k < 1) k = 1;
        uint64 start = uint64(uint256(k) * 900);
        uint64 exp = gen > cons ? gen - cons : 0;
        uint64 imp = cons > gen ? cons - gen : 0;
        r = IMeterRegistry.Reading(ids[m], nextSeq[m] + 1, start, start + 900, gen, cons, exp, imp, 50_000);
    }

    function _send(uint256 m, IMeterRegistry.Reading memory r) internal returns (uint256 a) {
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(keys[m], reg.readingDigest(r));
        IMeterRegistry.Reading[] memory rs = new IMeterRegistry.Reading[](1);
        bytes[] memory sigs = new bytes[](1);
        rs[0] = r;
        sigs[0] = abi.encodePacked(rr, s, v);
        (a,) = reg.submitReadings(rs, sigs);
    }

    function _check(uint256 m, IMeterRegistry.Reading memory r, uint256 supply, uint256 after_) internal {
        if (r.intervalEnd > block.timestamp + reg.maxClockDrift()) violation = "accepted an interval not over yet";
        if (r.intervalStart < registeredAt[m]) {
            violation = "accepted an interval begun before registration, reactivation or key rotation";
        }
        IMeterRegistry.Kind kind = kinds[m];
        if (after_ > supply) {
            uint256 minted = after_ - supply;
            ghostMinted[m] += minted;
            if (minted > uint256(rated[m]) * 900 / 3600 * 1e15) violation = "minted more than rated power x interval";
            if (kind == IMeterRegistry.Kind.Consumer) violation = "a consumer meter minted WATT";
            if (kind == IMeterRegistry.Kind.Battery) violation = "a battery meter minted WATT";
        } else if (after_ < supply && kind == IMeterRegistry.Kind.Battery) {
            violation = "a battery meter burnt WATT";
        }
    }

    /// @notice The most WATT meter `m` may have minted by now: rated power x (now + drift − registration).
    function mintBound(uint256 m) external view returns (uint256) {
        uint256 horizon = block.timestamp + reg.maxClockDrift();
        return uint256(rated[m]) * (horizon - firstRegistered[m]) / 3600 * 1e15;
    }

    function count() external pure returns (uint256) {
        return M;
    }
}

contract MetersTimeInvariantTest is TestBase {
    MetersTimeHandler internal h;

    function setUp() public {
        h = new MetersTimeHandler();
        targetContract(address(h));
        bytes4[] memory sels = new bytes4[](6);
        sels[0] = MetersTimeHandler.submit.selector;
        sels[1] = MetersTimeHandler.submit.selector; // more readings than anything else
        sels[2] = MetersTimeHandler.submit.selector;
        sels[3] = MetersTimeHandler.warp.selector;
        sels[4] = MetersTimeHandler.suspendAndReactivate.selector;
        sels[5] = MetersTimeHandler.rotateKey.selector;
        targetSelector(address(h), sels);
    }

    /// @notice No WATT for an interval not over or begun before registration; per meter and interval
    ///         at most rated power x interval length; none at all from consumer and battery meters; and
    ///         so per meter at most rated power x the time since its registration.
    function invariant_mintBoundedByTimeAndKind() public view {
        assertTrue(bytes(h.violation()).length == 0, h.violation());
        for (uint256 m; m < h.count(); ++m) {
            assertLe(h.ghostMinted(m), h.mintBound(m), "minted beyond rated power x time since registration");
        }
    }
}
