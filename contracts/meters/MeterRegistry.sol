// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IWattToken} from "../interfaces/IWattToken.sol";
import {ISelfConsumptionHook, IParticipantRegistry} from "../interfaces/IMeterHooks.sol";
import {IMeterRegistry} from "../interfaces/IMeterRegistry.sol";
import {IEnergyDebtLedger} from "../interfaces/IEnergyDebtLedger.sol";
import {IOriginLedger} from "../interfaces/IOriginLedger.sol";

/// @title MeterRegistry
/// @notice Registered smart meters and their EIP-712 signed 15-minute readings. An accepted
///         reading mints WATT for exported Wh to the meter's owner, burns WATT for imported Wh
///         (what the owner holds; the rest is recorded as energy debt drawn from the public grid)
///         and passes the self-consumed renewable energy (DGC-C rule) of certified meters to the
///         C-REV issuer hook.
/// @dev Time: a reading is accepted only for an interval that has ended (its end ≤ block time +
///      `maxClockDrift`, the gateway clock drift tolerated) and that began at or after the meter's
///      `validFrom` — its registration, its last reactivation or its last key rotation — so the
///      rated-power cap bounds how fast a meter key can mint: no more than rated power × elapsed
///      time since `validFrom`, whatever the key signs; a suspension or a new key cannot be used to
///      back-fill the time before it.
///      Kind: a consumer meter cannot report generation; a battery meter's readings mint, burn
///      and issue nothing (BatteryStorage is the ledger of the WATT in a community battery).
///      Storage per meter is two hot slots (`_Hot`: signer, rated power, kind, flags, `validFrom`; `_State`:
///      owner, last sequence, last interval end, 32-bit tag of the last accepted digest) so a
///      reading costs two cold reads and one write. Re-pushing the last accepted reading is a
///      no-op (`Duplicate`); an older accepted one is skipped as `StaleSequence` — in both cases
///      nothing is applied twice, and the `ReadingAccepted` log of the older one (meter id and
///      sequence are topics, every measured value is in the data) proves it is on chain, which
///      the SDK checks. A tag collision can only turn a refusal into a no-op, never apply a reading.
///      Mints of a batch are collected and made in one `WATT.mintBatch` call, flushed before any
///      burn so that a burn sees every earlier export of the batch. Hook policy: the hook is
///      called with a gas cap inside try/catch; a reverting hook emits `SelfConsumptionHookFailed`
///      and the reading stays accepted. If less gas is left than the cap needs, the whole batch
///      reverts (`MeterHookGasTooLow`), so a relayer cannot make the hook fail by starving it.
///      `submitReadings` and `repayEnergyDebt` are `nonReentrant` (transient storage): a hook
///      that calls back fails (and is reported as failed) instead of running a nested batch that
///      would not see this batch's not-yet-minted exports.
contract MeterRegistry is AccessControl, EIP712, ReentrancyGuardTransient, IMeterRegistry {
    /// @notice Registers, suspends, reactivates meters and rotates their keys.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice Sets the interval length, tolerances, renewable colours and the hook.
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");
    /// @notice Moves colour origin (the EnergyMarket, the BatteryStorage).
    bytes32 public constant ORIGIN_ROLE = keccak256("ORIGIN_ROLE");
    /// @notice Clears energy debt that was paid for (the EnergyMarket: at the grid's retail price).
    bytes32 public constant DEBT_SETTLER_ROLE = keccak256("DEBT_SETTLER_ROLE");

    /// @notice EIP-712 type hash of `MeterReading` (must equal the SDK's definition).
    bytes32 public constant READING_TYPEHASH = keccak256(
        "MeterReading(bytes32 meterId,uint64 sequence,uint64 intervalStart,uint64 intervalEnd,uint64 generationWh,uint64 consumptionWh,uint64 exportWh,uint64 importWh,uint32 frequencyMHz)"
    );

    /// @notice WATT base units per Wh (1 WATT = 1 kWh, 18 decimals).
    uint256 public constant WATT_PER_WH = 1e15;
    /// @notice Plausible grid frequency range in mHz (inclusive).
    uint32 public constant MIN_FREQUENCY_MHZ = 45_000;
    uint32 public constant MAX_FREQUENCY_MHZ = 65_000;

    /// @notice The WATT token (this contract holds its MINTER_ROLE and BURNER_ROLE).
    IWattToken public immutable watt;

    struct _Hot {
        address signer;
        uint32 ratedPowerW;
        Kind kind;
        bool registered;
        bool active;
        bool certified;
        uint32 validFrom;
    }

    struct _State {
        address owner;
        uint32 lastSequence;
        uint32 lastIntervalEnd;
        uint32 lastTag;
    }

    /// @dev Per-batch context: WATT mints collected (`to[i]` gets `amount[i]`, `count` pending) and
    ///      the parameters every reading needs, read from storage once per batch.
    struct _Batch {
        address[] to;
        uint256[] amount;
        uint256 count;
        uint256 len;
        uint256 toleranceWh;
        uint256 batteryBps;
        uint256 latestEnd;
        ISelfConsumptionHook hook;
    }

    mapping(bytes32 => _Hot) private _hot;
    mapping(bytes32 => _State) private _state;
    mapping(bytes32 => bytes32) private _colour;
    mapping(bytes32 => string) private _location;
    mapping(address => uint256) private _metersOwned;
    mapping(address => uint256) private _debtWh;
    mapping(address owner => mapping(bytes32 colour => uint256 wh)) private _origin;

    /// @notice Colours whose self-consumption counts as renewable (solar, wind, hydro …).
    mapping(bytes32 => bool) public renewableColour;

    /// @notice Required reading interval length in seconds (900 by default).
    uint32 public intervalLength = 900;
    /// @notice Allowed |generation + import − consumption − export| for non-battery meters (Wh).
    uint64 public balanceToleranceWh = 0;
    /// @notice Allowed imbalance for battery meters, in basis points of generation + import.
    uint16 public batteryToleranceBps = 500;
    /// @notice Seconds an interval's end may lie after the block time (gateway clock drift and
    ///         block-time lag tolerated); a reading for an interval that ends later is refused as
    ///         `FutureInterval`. 120 s by default, at most 900.
    uint32 public maxClockDrift = 120;
    /// @notice Most seconds `maxClockDrift` can be set to.
    uint32 public constant MAX_CLOCK_DRIFT = 900;
    /// @notice The C-REV issuer hook (address(0): none).
    ISelfConsumptionHook public selfConsumptionHook;
    /// @notice Gas given to each hook call.
    uint256 public hookGasLimit = 250_000;

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants REGISTRAR_ROLE and PARAMETER_ROLE).
    /// @param watt_ The WATT token; grant this contract its MINTER_ROLE and BURNER_ROLE.
    constructor(address admin, IWattToken watt_) EIP712("gridcoop", "1") {
        if (admin == address(0) || address(watt_) == address(0)) revert MeterRegistryInvalidSetup();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        watt = watt_;
        bytes32[5] memory renewables = [bytes32("solar"), "wind", "hydro", "biomass", "geothermal"];
        for (uint256 i; i < renewables.length; ++i) {
            renewableColour[renewables[i]] = true;
            emit RenewableColourSet(renewables[i], true);
        }
    }

    // ------------------------------------------------------------------ registration

    /// @inheritdoc IMeterRegistry
    function registerMeter(
        bytes32 meterId,
        address signer,
        address owner,
        Kind kind,
        bytes32 colour,
        bool certified,
        uint32 ratedPowerW,
        string calldata location
    ) external onlyRole(REGISTRAR_ROLE) {
        if (meterId == bytes32(0) || _hot[meterId].registered) revert MeterAlreadyRegistered(meterId);
        if (signer == address(0)) revert MeterInvalidAccount(signer);
        if (owner == address(0)) revert MeterInvalidAccount(owner);
        if (ratedPowerW == 0) revert MeterInvalidRatedPower(ratedPowerW);
        _hot[meterId] = _Hot({
            signer: signer,
            ratedPowerW: ratedPowerW,
            kind: kind,
            registered: true,
            active: true,
            certified: certified,
            validFrom: uint32(block.timestamp) // fits until 2106
        });
        _state[meterId].owner = owner;
        _colour[meterId] = colour;
        _location[meterId] = location;
        unchecked {
            ++_metersOwned[owner]; // bounded by the number of meters
        }
        emit MeterRegistered(meterId, owner, signer, kind, colour, certified, ratedPowerW, location);
    }

    /// @inheritdoc IMeterRegistry
    function suspendMeter(bytes32 meterId) external onlyRole(REGISTRAR_ROLE) {
        _Hot storage h = _registered(meterId);
        if (!h.active) revert MeterNotActive(meterId);
        h.active = false;
        emit MeterSuspended(meterId, msg.sender);
    }

    /// @inheritdoc IMeterRegistry
    function reactivateMeter(bytes32 meterId) external onlyRole(REGISTRAR_ROLE) {
        _Hot storage h = _registered(meterId);
        if (h.active) revert MeterNotSuspended(meterId);
        h.active = true;
        // Nothing measured while suspended is vouched for: readings start again from now.
        h.validFrom = uint32(block.timestamp); // fits until 2106
        emit MeterReactivated(meterId, msg.sender);
    }

    /// @inheritdoc IMeterRegistry
    function rotateKey(bytes32 meterId, address newSigner) external onlyRole(REGISTRAR_ROLE) {
        _Hot storage h = _registered(meterId);
        if (newSigner == address(0)) revert MeterInvalidAccount(newSigner);
        address old = h.signer;
        h.signer = newSigner;
        // A new device key vouches only for what it measures from now on, not for the past.
        h.validFrom = uint32(block.timestamp); // fits until 2106
        emit KeyRotated(meterId, old, newSigner);
    }

    // ------------------------------------------------------------------ parameters

    /// @notice Sets the required interval length in seconds (60 … 86400). Only `PARAMETER_ROLE`.
    /// @dev Allowed with a self-consumption hook installed: the hook receives the interval's start
    ///      time and length, not an id that depends on the length, and one meter's intervals never
    ///      overlap (a reading may not start before the last accepted one ends), so C-REV's lots and
    ///      factors stay right across the change.
    function setIntervalLength(uint32 seconds_) external onlyRole(PARAMETER_ROLE) {
        if (seconds_ < 60 || seconds_ > 86_400) revert MeterInvalidParameter("intervalLength", seconds_);
        intervalLength = seconds_;
        emit IntervalLengthSet(seconds_);
    }

    /// @notice Sets the energy-balance tolerances. Only `PARAMETER_ROLE`.
    /// @param toleranceWh Absolute tolerance for non-battery meters.
    /// @param batteryBps Tolerance for battery meters in bps of generation + import (≤ 5000).
    function setTolerances(uint64 toleranceWh, uint16 batteryBps) external onlyRole(PARAMETER_ROLE) {
        if (batteryBps > 5000) revert MeterInvalidParameter("batteryToleranceBps", batteryBps);
        balanceToleranceWh = toleranceWh;
        batteryToleranceBps = batteryBps;
        emit TolerancesSet(toleranceWh, batteryBps);
    }

    /// @notice Sets how many seconds an interval's end may lie after the block time (0 … 900).
    ///         Only `PARAMETER_ROLE`.
    function setMaxClockDrift(uint32 seconds_) external onlyRole(PARAMETER_ROLE) {
        if (seconds_ > MAX_CLOCK_DRIFT) revert MeterInvalidParameter("maxClockDrift", seconds_);
        maxClockDrift = seconds_;
        emit MaxClockDriftSet(seconds_);
    }

    /// @notice Marks `colour` as renewable or not. Only `PARAMETER_ROLE`.
    function setRenewableColour(bytes32 colour, bool renewable) external onlyRole(PARAMETER_ROLE) {
        renewableColour[colour] = renewable;
        emit RenewableColourSet(colour, renewable);
    }

    /// @notice Sets the C-REV issuer hook (address(0) disables it). Only `PARAMETER_ROLE`.
    /// @dev The hook must be a contract: a call to an address without code would revert the whole
    ///      batch (Solidity checks the code size before the call, outside try/catch).
    function setSelfConsumptionHook(address hook) external onlyRole(PARAMETER_ROLE) {
        if (hook != address(0) && hook.code.length == 0) revert MeterInvalidParameter("hook", uint160(hook));
        selfConsumptionHook = ISelfConsumptionHook(hook);
        emit SelfConsumptionHookSet(hook, hookGasLimit);
    }

    /// @notice Sets the gas cap of each hook call (20,000 … 2,000,000). Only `PARAMETER_ROLE`.
    function setHookGasLimit(uint256 gasLimit) external onlyRole(PARAMETER_ROLE) {
        if (gasLimit < 20_000 || gasLimit > 2_000_000) revert MeterInvalidParameter("hookGasLimit", gasLimit);
        hookGasLimit = gasLimit;
        emit SelfConsumptionHookSet(address(selfConsumptionHook), gasLimit);
    }

    // ------------------------------------------------------------------ readings

    /// @inheritdoc IMeterRegistry
    function submitReadings(Reading[] calldata readings, bytes[] calldata signatures)
        external
        nonReentrant
        returns (uint256 accepted, uint256 duplicates)
    {
        uint256 n = readings.length;
        if (n != signatures.length) revert MeterBatchLengthMismatch(n, signatures.length);
        bytes32 domain = _domainSeparatorV4();
        _Batch memory b = _batch(n);
        for (uint256 i; i < n; ++i) {
            Reading calldata r = readings[i];
            bytes32 digest = _digest(domain, r);
            (Reason reason, uint256 hot, uint256 state) = _check(r, signatures[i], digest, b);
            if (reason == Reason.None) {
                _apply(r, hot, state, digest, b);
                unchecked {
                    ++accepted; // ≤ n
                }
            } else if (reason == Reason.Duplicate) {
                unchecked {
                    ++duplicates; // ≤ n
                }
            } else {
                uint256 seq = _word(r, _SEQ); // a raw word: one above 64 bits is logged as 2^64 - 1
                emit ReadingRejected(r.meterId, seq > type(uint64).max ? type(uint64).max : uint64(seq), uint8(reason));
            }
        }
        _flushMints(b);
    }

    function _batch(uint256 n) private view returns (_Batch memory) {
        return _Batch(
            new address[](n),
            new uint256[](n),
            0,
            intervalLength,
            balanceToleranceWh,
            batteryToleranceBps,
            block.timestamp + maxClockDrift,
            selfConsumptionHook
        );
    }

    /// @inheritdoc IMeterRegistry
    function whyRefused(Reading calldata reading, bytes calldata signature) external view returns (uint8) {
        bytes32 digest = _digest(_domainSeparatorV4(), reading);
        (Reason reason,,) = _check(reading, signature, digest, _batch(0));
        return uint8(reason);
    }

    /// @inheritdoc IMeterRegistry
    function readingDigest(Reading calldata reading) external view returns (bytes32) {
        return _digest(_domainSeparatorV4(), reading);
    }

    /// @notice The EIP-712 domain separator of this registry on this chain.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice Burns `amountWh` of the caller's WATT to pay down the caller's energy debt.
    function repayEnergyDebt(uint256 amountWh) external nonReentrant {
        uint256 debt = _debtWh[msg.sender];
        if (amountWh == 0 || amountWh > debt) revert MeterRepayExceedsDebt(amountWh, debt);
        unchecked {
            debt -= amountWh; // amountWh ≤ debt
        }
        _debtWh[msg.sender] = debt;
        watt.burn(msg.sender, amountWh * WATT_PER_WH);
        emit EnergyDebtRepaid(msg.sender, amountWh, debt);
    }

    /// @inheritdoc IOriginLedger
    function moveOrigin(address[] calldata from, address[] calldata to, bytes32[] calldata colour, uint256[] calldata wh)
        external
        onlyRole(ORIGIN_ROLE)
    {
        uint256 n = from.length;
        if (to.length != n || colour.length != n || wh.length != n) revert OriginLengthMismatch();
        for (uint256 i; i < n; ++i) {
            (address f, address t, bytes32 c, uint256 w) = (from[i], to[i], colour[i], wh[i]);
            if (f != address(0)) {
                uint256 held = _origin[f][c];
                if (w > held) revert OriginExceeded(f, c, w, held);
                unchecked {
                    _origin[f][c] = held - w;
                }
            }
            if (t != address(0)) _origin[t][c] += w;
            emit OriginMoved(f, t, c, w);
        }
    }

    /// @inheritdoc IOriginLedger
    function originOf(address owner, bytes32 colour) external view returns (uint256) {
        return _origin[owner][colour];
    }

    /// @inheritdoc IEnergyDebtLedger
    function settleEnergyDebt(address owner, uint256 amountWh)
        external
        nonReentrant
        onlyRole(DEBT_SETTLER_ROLE)
        returns (uint256 remainingWh)
    {
        uint256 debt = _debtWh[owner];
        if (amountWh == 0 || amountWh > debt) revert MeterRepayExceedsDebt(amountWh, debt);
        unchecked {
            remainingWh = debt - amountWh; // amountWh ≤ debt
        }
        _debtWh[owner] = remainingWh;
        emit EnergyDebtSettled(owner, msg.sender, amountWh, remainingWh);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IMeterRegistry
    function getMeter(bytes32 meterId) external view returns (MeterInfo memory info) {
        _Hot storage h = _registered(meterId);
        _State storage s = _state[meterId];
        info = MeterInfo({
            signer: h.signer,
            owner: s.owner,
            kind: h.kind,
            active: h.active,
            certified: h.certified,
            ratedPowerW: h.ratedPowerW,
            colour: _colour[meterId],
            location: _location[meterId],
            lastSequence: s.lastSequence,
            lastIntervalEnd: s.lastIntervalEnd,
            validFrom: h.validFrom
        });
    }

    /// @notice True when `meterId` is registered (active or suspended).
    function isRegistered(bytes32 meterId) external view returns (bool) {
        return _hot[meterId].registered;
    }

    /// @inheritdoc IParticipantRegistry
    function isParticipant(address account) external view returns (bool) {
        return _metersOwned[account] != 0;
    }

    /// @notice Number of meters registered to `owner`.
    function metersOwned(address owner) external view returns (uint256) {
        return _metersOwned[owner];
    }

    /// @inheritdoc IMeterRegistry
    function energyDebtWh(address owner) external view override returns (uint256) {
        return _debtWh[owner];
    }

    // ------------------------------------------------------------------ internals

    function _registered(bytes32 meterId) private view returns (_Hot storage h) {
        h = _hot[meterId];
        if (!h.registered) revert MeterNotRegistered(meterId);
    }

    function _tagOf(bytes32 digest) private pure returns (uint256) {
        return (uint256(digest) >> 224) | 1; // non-zero 32-bit tag
    }

    // Byte offsets of the fields of a `Reading` in calldata (nine static words). The reading
    // path reads raw words and checks them as full 256-bit values, so a field with bits its type
    // cannot hold is refused with a reason (BadInterval, OverCapacity, …) instead of reverting
    // the whole batch; such a reading could not carry a valid signature from honest signing code.
    uint256 private constant _SEQ = 0x20;
    uint256 private constant _START = 0x40;
    uint256 private constant _END = 0x60;
    uint256 private constant _GEN = 0x80;
    uint256 private constant _CONS = 0xa0;
    uint256 private constant _EXP = 0xc0;
    uint256 private constant _IMP = 0xe0;
    uint256 private constant _FREQ = 0x100;

    /// @dev The raw calldata word at byte offset `field` of reading `r`.
    function _word(Reading calldata r, uint256 field) private pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := calldataload(add(r, field))
        }
    }

    /// @dev EIP-712 digest of `r`, hashed in scratch memory (nothing is allocated, so a batch of
    ///      100 readings does not grow memory). Equal to
    ///      `_hashTypedDataV4(keccak256(abi.encode(READING_TYPEHASH, r)))` for every well-formed
    ///      reading; a field with dirty high bits changes the hash and so fails the signature check
    ///      (and reading that field reverts in any case).
    function _digest(bytes32 domain, Reading calldata r) private pure returns (bytes32 digest) {
        bytes32 typeHash = READING_TYPEHASH;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typeHash)
            calldatacopy(add(p, 0x20), r, 0x120) // the nine static fields of Reading
            let structHash := keccak256(p, 0x140)
            mstore(p, hex"1901")
            mstore(add(p, 0x02), domain)
            mstore(add(p, 0x22), structHash)
            digest := keccak256(p, 0x42)
        }
    }

    /// @dev Recovers the signer of a 65-byte r‖s‖v calldata signature; address(0) if malformed,
    ///      high-s (malleable twin) or with a v other than 27/28.
    function _signerOf(bytes32 digest, bytes calldata signature) private view returns (address signer) {
        if (signature.length != 65) return address(0);
        bytes32 sr;
        bytes32 ss;
        uint256 sv;
        assembly ("memory-safe") {
            sr := calldataload(signature.offset)
            ss := calldataload(add(signature.offset, 32))
            sv := byte(0, calldataload(add(signature.offset, 64)))
        }
        // Same rules as OpenZeppelin's ECDSA.tryRecover: s in the lower half order, v 27 or 28.
        if (uint256(ss) > 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) return address(0);
        if (sv != 27 && sv != 28) return address(0);
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, digest)
            mstore(add(p, 0x20), sv)
            mstore(add(p, 0x40), sr)
            mstore(add(p, 0x60), ss)
            mstore(0x00, 0)
            // ecrecover (precompile 0x01) leaves 0x00 untouched when the signature is invalid
            if iszero(staticcall(gas(), 0x01, p, 0x80, 0x00, 0x20)) { revert(0, 0) }
            signer := mload(0x00)
        }
    }

    // Packed slot layouts, read and written whole on the reading path (one SLOAD each):
    //   _Hot:   signer [0,160) · ratedPowerW [160,192) · kind [192,200) · registered [200,208)
    //           · active [208,216) · certified [216,224) · validFrom [224,256)
    //   _State: owner [0,160) · lastSequence [160,192) · lastIntervalEnd [192,224) · lastTag [224,256)

    function _check(Reading calldata r, bytes calldata signature, bytes32 digest, _Batch memory b)
        private
        view
        returns (Reason, uint256 hot, uint256 state)
    {
        bytes32 id = r.meterId;
        _Hot storage hs = _hot[id];
        _State storage ss = _state[id];
        assembly ("memory-safe") {
            hot := sload(hs.slot)
        }
        if ((hot >> 200) & 0xff == 0) return (Reason.UnknownMeter, hot, state);
        assembly ("memory-safe") {
            state := sload(ss.slot)
        }
        {
            uint256 seq = _word(r, _SEQ);
            uint256 lastSeq = (state >> 160) & 0xffffffff;
            if (seq == lastSeq && state >> 224 == _tagOf(digest)) return (Reason.Duplicate, hot, state);
            if (_signerOf(digest, signature) != address(uint160(hot))) return (Reason.BadSignature, hot, state);
            if ((hot >> 208) & 0xff == 0) return (Reason.MeterSuspended, hot, state);
            if (seq <= lastSeq) return (Reason.StaleSequence, hot, state);
            if (seq > type(uint32).max) return (Reason.SequenceTooLarge, hot, state);
        }
        Reason why = _interval(r, hot, state, b);
        if (why == Reason.None) why = _plausibility(r, hot, b);
        return (why, hot, state);
    }

    function _interval(Reading calldata r, uint256 hot, uint256 state, _Batch memory b) private pure returns (Reason) {
        uint256 start = _word(r, _START);
        if (start < (state >> 192) & 0xffffffff) return Reason.StaleInterval;
        uint256 end = _word(r, _END);
        uint256 len = b.len;
        // end ≤ 2^32 - 1 and start < end first, so `end - start` cannot wrap for any raw start.
        if (end > type(uint32).max || start >= end || end - start != len || start % len != 0) {
            return Reason.BadInterval;
        }
        // Not yet over (beyond the tolerated clock drift): energy that has not flowed yet.
        if (end > b.latestEnd) return Reason.FutureInterval;
        // Begun before the meter (or its current key, or its reactivation) existed on chain: energy
        // nobody can vouch for.
        if (start < hot >> 224) return Reason.BeforeRegistration;
        return Reason.None;
    }

    function _plausibility(Reading calldata r, uint256 hot, _Batch memory b) private pure returns (Reason) {
        uint256 maxWh = (((hot >> 160) & 0xffffffff) * b.len) / 3600;
        uint256 gen = _word(r, _GEN);
        uint256 cons = _word(r, _CONS);
        uint256 exp = _word(r, _EXP);
        uint256 imp = _word(r, _IMP);
        if (gen > maxWh || cons > maxWh || exp > maxWh || imp > maxWh) return Reason.OverCapacity;
        if (exp > gen) return Reason.ExportExceedsGeneration;
        // A consumer meter has nothing that generates (so, export ≤ generation, nothing to export).
        if (gen != 0 && Kind((hot >> 192) & 0xff) == Kind.Consumer) return Reason.KindMismatch;
        uint256 inflow = gen + imp;
        uint256 outflow = cons + exp;
        uint256 diff = inflow > outflow ? inflow - outflow : outflow - inflow;
        uint256 tolerance = Kind((hot >> 192) & 0xff) == Kind.Battery
            ? (inflow * b.batteryBps) / 10_000
            : b.toleranceWh;
        if (diff > tolerance) return Reason.EnergyImbalance;
        uint256 f = _word(r, _FREQ);
        if (f < MIN_FREQUENCY_MHZ || f > MAX_FREQUENCY_MHZ) return Reason.BadFrequency;
        return Reason.None;
    }

    function _apply(Reading calldata r, uint256 hot, uint256 state, bytes32 digest, _Batch memory b) private {
        address owner = address(uint160(state));
        bool battery = Kind((hot >> 192) & 0xff) == Kind.Battery;
        {
            // lastSequence, lastIntervalEnd and lastTag replace the old ones; the owner stays (one SSTORE).
            uint256 newState = (state & type(uint160).max) | (_word(r, _SEQ) << 160) | (_word(r, _END) << 192)
                | (_tagOf(digest) << 224);
            _State storage ss = _state[r.meterId];
            assembly ("memory-safe") {
                sstore(ss.slot, newState)
            }
        }

        uint256 selfConsumed = _emitAccepted(r, owner, battery);
        // A battery meter's reading is the battery's history, not a source or sink of WATT.
        if (battery) return;
        uint256 exp = _word(r, _EXP);
        if (exp != 0) {
            // the exported energy's colour, as metered: what the owner may sell or store as it
            bytes32 colour = _colour[r.meterId];
            if (colour != 0) {
                unchecked {
                    _origin[owner][colour] += exp; // exp < 2^64 per reading
                }
            }
            uint256 k = b.count;
            b.to[k] = owner;
            b.amount[k] = exp * WATT_PER_WH; // exp ≤ rated power × interval < 2^64
            b.count = k + 1;
        }
        uint256 imp = _word(r, _IMP);
        if (imp != 0) {
            _flushMints(b);
            _burnImport(r.meterId, owner, uint64(imp));
        }

        if (selfConsumed != 0 && (hot >> 216) & 0xff != 0) {
            ISelfConsumptionHook hook = b.hook;
            if (address(hook) != address(0) && renewableColour[_colour[r.meterId]]) {
                _callHook(hook, r, owner, b.len, selfConsumed);
            }
        }
    }

    /// @dev Mints what `b` collected (one `mintBatch` call) and empties it.
    function _flushMints(_Batch memory b) private {
        uint256 k = b.count;
        if (k == 0) return;
        address[] memory to = b.to;
        uint256[] memory amount = b.amount;
        uint256 cap = to.length;
        assembly ("memory-safe") {
            mstore(to, k) // pass only the k collected entries
            mstore(amount, k)
        }
        watt.mintBatch(to, amount);
        assembly ("memory-safe") {
            mstore(to, cap)
            mstore(amount, cap)
        }
        b.count = 0;
    }

    /// @dev Emits `ReadingAccepted` from scratch memory (the same log as `emit ReadingAccepted(…)`)
    ///      and returns the self-consumed Wh by the DGC-C rule: when generation exceeds demand,
    ///      generation − export; otherwise all generation. A battery self-consumes nothing (its
    ///      discharge is stored energy, not generation).
    function _emitAccepted(Reading calldata r, address owner, bool battery) private returns (uint256 selfConsumed) {
        uint256 gen = _word(r, _GEN);
        if (!battery) selfConsumed = gen > _word(r, _CONS) ? gen - _word(r, _EXP) : gen; // export ≤ generation (checked)
        bytes32 topic = ReadingAccepted.selector;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, calldataload(add(r, _START)))
            calldatacopy(add(p, 0x20), add(r, _GEN), 0x80) // generation, consumption, export, import
            mstore(add(p, 0xa0), selfConsumed)
            mstore(add(p, 0xc0), calldataload(add(r, _FREQ))) // 45,000 … 65,000 (checked)
            // `owner` may carry dirty high bits on the stack (it was cut from a packed slot): clean it.
            log4(p, 0xe0, topic, calldataload(r), calldataload(add(r, _SEQ)), and(owner, 0xffffffffffffffffffffffffffffffffffffffff))
        }
    }

    function _burnImport(bytes32 id, address owner, uint64 importWh) private {
        // Only whole Wh are burnt: the owner's balance rounded down to a whole Wh, capped at the import.
        uint256 balance = watt.balanceOf(owner);
        uint256 wholeWh = balance - (balance % WATT_PER_WH);
        uint256 importAmount = uint256(importWh) * WATT_PER_WH;
        uint256 burnAmount = importAmount <= wholeWh ? importAmount : wholeWh;
        uint256 burnWh = burnAmount / WATT_PER_WH; // exact: burnAmount is a whole number of Wh
        if (burnWh != 0) watt.burn(owner, burnAmount);
        if (burnWh < importWh) {
            uint64 shortfall = importWh - uint64(burnWh); // burnWh < importWh
            uint256 debt = _debtWh[owner] + shortfall;
            _debtWh[owner] = debt;
            emit EnergyDebtRecorded(owner, id, shortfall, debt);
        }
    }

    function _callHook(ISelfConsumptionHook hook, Reading calldata r, address owner, uint256 len, uint256 wh) private {
        bytes32 id = r.meterId;
        uint256 cap = hookGasLimit;
        // EIP-150 passes at most 63/64 of the remaining gas; demand enough that the cap is real.
        uint256 needed = (cap * 64) / 63 + 10_000;
        if (gasleft() < needed) revert MeterHookGasTooLow(gasleft(), needed);
        // Accepted readings have a 32-bit sequence and interval end, len ≤ 86,400 and wh ≤ generation < 2^64.
        try hook.onSelfConsumption{gas: cap}(id, owner, uint64(_word(r, _START)), uint32(len), uint64(wh)) {}
        catch (bytes memory reason) {
            emit SelfConsumptionHookFailed(id, uint64(_word(r, _SEQ)), reason);
        }
    }
}
