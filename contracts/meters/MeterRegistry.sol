// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IWattToken} from "../interfaces/IWattToken.sol";
import {ISelfConsumptionHook, IParticipantRegistry} from "../interfaces/IMeterHooks.sol";
import {IMeterRegistry} from "../interfaces/IMeterRegistry.sol";

/// @title MeterRegistry
/// @notice Registered smart meters and their EIP-712 signed 15-minute readings. An accepted
///         reading mints WATT for exported Wh to the meter's owner, burns WATT for imported Wh
///         (what the owner holds; the rest is recorded as energy debt drawn from the public grid)
///         and passes the self-consumed renewable energy (DGC-C rule) of certified meters to the
///         C-REV issuer hook.
/// @dev Storage per meter is two hot slots (`_Hot`: signer, rated power, kind, flags; `_State`:
///      owner, last sequence, last interval end) so a reading costs two cold reads and one
///      write. Accepted readings are remembered as 32-bit digest tags, eight per slot, keyed by
///      sequence: a tag is consulted only for a sequence at or below the last accepted one, which
///      is refused anyway, so a tag collision can only turn a refusal into a no-op (never apply
///      a reading). Hook policy: the hook is called with a gas cap inside try/catch; a reverting
///      hook emits `SelfConsumptionHookFailed` and the reading stays accepted. If less gas is
///      left than the cap needs, the whole batch reverts (`MeterHookGasTooLow`), so a relayer
///      cannot make the hook fail by starving it.
contract MeterRegistry is AccessControl, EIP712, IMeterRegistry {
    /// @notice Registers, suspends, reactivates meters and rotates their keys.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice Sets the interval length, tolerances, renewable colours and the hook.
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");

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
    }

    struct _State {
        address owner;
        uint64 lastSequence;
        uint32 lastIntervalEnd;
    }

    mapping(bytes32 => _Hot) private _hot;
    mapping(bytes32 => _State) private _state;
    mapping(bytes32 => bytes32) private _colour;
    mapping(bytes32 => string) private _location;
    mapping(bytes32 => mapping(uint256 => uint256)) private _tags;
    mapping(address => uint256) private _metersOwned;
    mapping(address => uint256) private _debtWh;

    /// @notice Colours whose self-consumption counts as renewable (solar, wind, hydro …).
    mapping(bytes32 => bool) public renewableColour;

    /// @notice Required reading interval length in seconds (900 by default).
    uint32 public intervalLength = 900;
    /// @notice Allowed |generation + import − consumption − export| for non-battery meters (Wh).
    uint64 public balanceToleranceWh = 0;
    /// @notice Allowed imbalance for battery meters, in basis points of generation + import.
    uint16 public batteryToleranceBps = 500;
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
            certified: certified
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
        emit MeterReactivated(meterId, msg.sender);
    }

    /// @inheritdoc IMeterRegistry
    function rotateKey(bytes32 meterId, address newSigner) external onlyRole(REGISTRAR_ROLE) {
        _Hot storage h = _registered(meterId);
        if (newSigner == address(0)) revert MeterInvalidAccount(newSigner);
        address old = h.signer;
        h.signer = newSigner;
        emit KeyRotated(meterId, old, newSigner);
    }

    // ------------------------------------------------------------------ parameters

    /// @notice Sets the required interval length in seconds (60 … 86400). Only `PARAMETER_ROLE`.
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
        returns (uint256 accepted, uint256 duplicates)
    {
        uint256 n = readings.length;
        if (n != signatures.length) revert MeterBatchLengthMismatch(n, signatures.length);
        for (uint256 i; i < n; ++i) {
            Reading calldata r = readings[i];
            bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(READING_TYPEHASH, r)));
            (Reason reason, _Hot memory h, _State memory s) = _check(r, signatures[i], digest);
            if (reason == Reason.None) {
                _apply(r, h, s, digest);
                unchecked {
                    ++accepted; // ≤ n
                }
            } else if (reason == Reason.Duplicate) {
                unchecked {
                    ++duplicates; // ≤ n
                }
            } else {
                emit ReadingRejected(r.meterId, r.sequence, uint8(reason));
            }
        }
    }

    /// @inheritdoc IMeterRegistry
    function whyRefused(Reading calldata reading, bytes calldata signature) external view returns (uint8) {
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(READING_TYPEHASH, reading)));
        (Reason reason,,) = _check(reading, signature, digest);
        return uint8(reason);
    }

    /// @inheritdoc IMeterRegistry
    function readingDigest(Reading calldata reading) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(READING_TYPEHASH, reading)));
    }

    /// @notice The EIP-712 domain separator of this registry on this chain.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice Burns `amountWh` of the caller's WATT to pay down the caller's energy debt.
    function repayEnergyDebt(uint256 amountWh) external {
        uint256 debt = _debtWh[msg.sender];
        if (amountWh == 0 || amountWh > debt) revert MeterRepayExceedsDebt(amountWh, debt);
        unchecked {
            debt -= amountWh; // amountWh ≤ debt
        }
        _debtWh[msg.sender] = debt;
        watt.burn(msg.sender, amountWh * WATT_PER_WH);
        emit EnergyDebtRepaid(msg.sender, amountWh, debt);
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
            lastIntervalEnd: s.lastIntervalEnd
        });
    }

    /// @notice True when `meterId` is registered (active or suspended).
    function isRegistered(bytes32 meterId) external view returns (bool) {
        return _hot[meterId].registered;
    }

    /// @inheritdoc IMeterRegistry
    function isAccepted(bytes32 meterId, uint64 sequence, bytes32 digest) external view returns (bool) {
        if (sequence == 0 || sequence > _state[meterId].lastSequence) return false;
        return _tagAt(meterId, sequence) == _tagOf(digest);
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
    function energyDebtWh(address owner) external view returns (uint256) {
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

    function _tagAt(bytes32 meterId, uint64 sequence) private view returns (uint256) {
        return (_tags[meterId][sequence >> 3] >> ((sequence & 7) * 32)) & 0xffffffff;
    }

    /// @dev Recovers the signer of a 65-byte r‖s‖v calldata signature; address(0) if malformed,
    ///      high-s (malleable twin) or with a v other than 27/28.
    function _signerOf(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 sr;
        bytes32 ss;
        uint8 sv;
        assembly ("memory-safe") {
            sr := calldataload(signature.offset)
            ss := calldataload(add(signature.offset, 32))
            sv := byte(0, calldataload(add(signature.offset, 64)))
        }
        // slither-disable-next-line unused-return -- only the error argument is dropped; err decides below
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, sv, sr, ss);
        return err == ECDSA.RecoverError.NoError ? signer : address(0);
    }

    function _check(Reading calldata r, bytes calldata signature, bytes32 digest)
        private
        view
        returns (Reason, _Hot memory h, _State memory s)
    {
        h = _hot[r.meterId];
        if (!h.registered) return (Reason.UnknownMeter, h, s);
        s = _state[r.meterId];
        if (r.sequence != 0 && r.sequence <= s.lastSequence && _tagAt(r.meterId, r.sequence) == _tagOf(digest)) {
            return (Reason.Duplicate, h, s);
        }
        if (_signerOf(digest, signature) != h.signer) return (Reason.BadSignature, h, s);
        if (!h.active) return (Reason.MeterSuspended, h, s);
        if (r.sequence <= s.lastSequence) return (Reason.StaleSequence, h, s);
        if (r.intervalStart < s.lastIntervalEnd) return (Reason.StaleInterval, h, s);
        uint256 len = intervalLength;
        if (
            r.intervalEnd != r.intervalStart + len || r.intervalStart % len != 0 || r.intervalEnd > type(uint32).max
        ) return (Reason.BadInterval, h, s);
        uint256 maxWh = (uint256(h.ratedPowerW) * len) / 3600;
        if (r.generationWh > maxWh || r.consumptionWh > maxWh || r.exportWh > maxWh || r.importWh > maxWh) {
            return (Reason.OverCapacity, h, s);
        }
        if (r.exportWh > r.generationWh) return (Reason.ExportExceedsGeneration, h, s);
        uint256 inflow = uint256(r.generationWh) + r.importWh;
        uint256 outflow = uint256(r.consumptionWh) + r.exportWh;
        uint256 diff = inflow > outflow ? inflow - outflow : outflow - inflow;
        uint256 tolerance = h.kind == Kind.Battery ? (inflow * batteryToleranceBps) / 10_000 : balanceToleranceWh;
        if (diff > tolerance) return (Reason.EnergyImbalance, h, s);
        if (r.frequencyMHz < MIN_FREQUENCY_MHZ || r.frequencyMHz > MAX_FREQUENCY_MHZ) {
            return (Reason.BadFrequency, h, s);
        }
        return (Reason.None, h, s);
    }

    function _apply(Reading calldata r, _Hot memory h, _State memory s, bytes32 digest) private {
        bytes32 id = r.meterId;
        uint64 seq = r.sequence;
        _state[id] = _State({owner: s.owner, lastSequence: seq, lastIntervalEnd: uint32(r.intervalEnd)});
        uint256 shift = (seq & 7) * 32;
        _tags[id][seq >> 3] = (_tags[id][seq >> 3] & ~(uint256(0xffffffff) << shift)) | (_tagOf(digest) << shift);

        // DGC-C: generation > demand → generation − export; otherwise all generation is self-consumed.
        uint64 selfConsumed = r.generationWh > r.consumptionWh ? r.generationWh - r.exportWh : r.generationWh;
        emit ReadingAccepted(
            id, seq, s.owner, r.intervalStart, r.generationWh, r.consumptionWh, r.exportWh, r.importWh, selfConsumed, digest
        );

        if (r.exportWh != 0) watt.mint(s.owner, uint256(r.exportWh) * WATT_PER_WH);
        if (r.importWh != 0) _burnImport(id, s.owner, r.importWh);

        if (selfConsumed != 0 && h.certified) {
            ISelfConsumptionHook hook = selfConsumptionHook;
            if (address(hook) != address(0) && renewableColour[_colour[id]]) {
                _callHook(hook, id, s.owner, seq, uint64(r.intervalStart / intervalLength), selfConsumed);
            }
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

    function _callHook(ISelfConsumptionHook hook, bytes32 id, address owner, uint64 seq, uint64 iid, uint64 wh)
        private
    {
        uint256 cap = hookGasLimit;
        // EIP-150 passes at most 63/64 of the remaining gas; demand enough that the cap is real.
        uint256 needed = (cap * 64) / 63 + 10_000;
        if (gasleft() < needed) revert MeterHookGasTooLow(gasleft(), needed);
        try hook.onSelfConsumption{gas: cap}(id, owner, iid, wh) {}
        catch (bytes memory reason) {
            emit SelfConsumptionHookFailed(id, seq, reason);
        }
    }
}
