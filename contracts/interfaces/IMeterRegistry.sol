// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IParticipantRegistry} from "./IMeterHooks.sol";
import {IEnergyDebtLedger} from "./IEnergyDebtLedger.sol";

/// @title IMeterRegistry
/// @notice Registered smart meters and their signed 15-minute readings. Every WATT (and, through
///         the self-consumption hook, every C-REV) comes from a reading that a registered meter
///         signed with its own device key (EIP-712, domain "gridcoop"/"1").
interface IMeterRegistry is IParticipantRegistry, IEnergyDebtLedger {
    /// @notice What a meter measures, and so what it may report and what its readings do.
    /// @dev `Producer` and `Prosumer`: any balanced reading; export mints WATT, import burns it,
    ///      certified renewable self-consumption goes to the C-REV hook. `Consumer`: no generation
    ///      (and so no export) — such a reading is refused as `KindMismatch`; import burns WATT.
    ///      `Battery`: a community battery's meter. Its readings (charge = consumption/import,
    ///      discharge = generation/export) are checked and logged for the battery's history but
    ///      mint, burn and issue nothing: the WATT in a community battery is what its users
    ///      deposited in `BatteryStorage`, which is the only ledger of it, so the same energy is
    ///      never counted twice. A battery's `ratedPowerW` is its inverter's power in W (not its
    ///      capacity in Wh).
    enum Kind {
        Producer,
        Consumer,
        Prosumer,
        Battery
    }

    /// @notice Why a reading was refused (`ReadingRejected.reason`, `whyRefused`).
    /// @dev `None` means the reading would be accepted; `Duplicate` means it is the meter's last
    ///      accepted reading, re-pushed (a no-op, never reported through `ReadingRejected`). An
    ///      older accepted reading re-pushed is `StaleSequence` (skipped, nothing applied); its
    ///      `ReadingAccepted` log (meter id and sequence are topics, every measured value is in the
    ///      data) is the proof that it was accepted — the SDK checks it. `SequenceTooLarge`:
    ///      sequences are kept in 32 bits (136 years of 1-second readings). `FutureInterval`: the
    ///      interval ends later than the block time plus `maxClockDrift` (it has not happened yet).
    ///      `BeforeRegistration`: the interval starts before the meter's `validFrom` (its registration,
    ///      last reactivation or last key rotation).
    ///      `KindMismatch`: the meter's kind cannot report this (a consumer meter reporting
    ///      generation or export).
    enum Reason {
        None,
        UnknownMeter,
        BadSignature,
        MeterSuspended,
        StaleSequence,
        StaleInterval,
        BadInterval,
        OverCapacity,
        ExportExceedsGeneration,
        EnergyImbalance,
        BadFrequency,
        Duplicate,
        SequenceTooLarge,
        FutureInterval,
        BeforeRegistration,
        KindMismatch
    }

    /// @notice One signed interval reading (EIP-712 primary type `MeterReading`).
    /// @dev Energy in integer Wh over [intervalStart, intervalEnd); frequency in mHz.
    struct Reading {
        bytes32 meterId;
        uint64 sequence;
        uint64 intervalStart;
        uint64 intervalEnd;
        uint64 generationWh;
        uint64 consumptionWh;
        uint64 exportWh;
        uint64 importWh;
        uint32 frequencyMHz;
    }

    /// @notice A meter as returned by `getMeter`.
    struct MeterInfo {
        address signer;
        address owner;
        Kind kind;
        bool active;
        bool certified;
        uint32 ratedPowerW;
        bytes32 colour;
        string location;
        uint64 lastSequence;
        uint64 lastIntervalEnd;
        uint64 validFrom;
    }

    /// @notice Thrown when the constructor gets a zero admin or token.
    error MeterRegistryInvalidSetup();
    /// @notice Thrown when registering a meter id that is zero or already registered.
    error MeterAlreadyRegistered(bytes32 meterId);
    /// @notice Thrown when a meter id is not registered.
    error MeterNotRegistered(bytes32 meterId);
    /// @notice Thrown when a signer or owner is the zero address.
    error MeterInvalidAccount(address account);
    /// @notice Thrown when the rated power is zero.
    error MeterInvalidRatedPower(uint256 ratedPowerW);
    /// @notice Thrown when suspending a meter that is already suspended.
    error MeterNotActive(bytes32 meterId);
    /// @notice Thrown when reactivating a meter that is active.
    error MeterNotSuspended(bytes32 meterId);
    /// @notice Thrown when `readings` and `signatures` differ in length.
    error MeterBatchLengthMismatch(uint256 readings, uint256 signatures);
    /// @notice Thrown when a parameter is out of its allowed range (`name` says which).
    error MeterInvalidParameter(string name, uint256 value);
    /// @notice Thrown when too little gas is left to give the self-consumption hook its limit
    ///         (so a relayer cannot starve the hook on purpose).
    error MeterHookGasTooLow(uint256 gasLeft, uint256 needed);
    /// @notice Thrown when repaying more energy debt than is owed.
    error MeterRepayExceedsDebt(uint256 amountWh, uint256 debtWh);

    /// @notice A meter was registered.
    event MeterRegistered(
        bytes32 indexed meterId,
        address indexed owner,
        address signer,
        Kind kind,
        bytes32 colour,
        bool certified,
        uint32 ratedPowerW,
        string location
    );
    /// @notice A meter was suspended (its readings are refused until reactivated).
    event MeterSuspended(bytes32 indexed meterId, address indexed by);
    /// @notice A suspended meter was reactivated.
    event MeterReactivated(bytes32 indexed meterId, address indexed by);
    /// @notice A meter's device key was replaced.
    event KeyRotated(bytes32 indexed meterId, address oldSigner, address newSigner);
    /// @notice A reading was accepted: the energy transfer proof (meter, owner, interval, every
    ///         quantity, grid frequency); the meter's colour and location are fixed at registration
    ///         (`MeterRegistered`), and the interval ends `intervalLength` after its start.
    event ReadingAccepted(
        bytes32 indexed meterId,
        uint64 indexed sequence,
        address indexed owner,
        uint64 intervalStart,
        uint64 generationWh,
        uint64 consumptionWh,
        uint64 exportWh,
        uint64 importWh,
        uint64 selfConsumedWh,
        uint32 frequencyMHz
    );
    /// @notice A reading in a batch was refused and skipped (`reason` is a `Reason`).
    event ReadingRejected(bytes32 indexed meterId, uint64 indexed sequence, uint8 reason);
    /// @notice The owner held less WATT than the imported energy: the shortfall was drawn from
    ///         the public grid and is owed (`totalDebtWh` is the owner's debt afterwards).
    event EnergyDebtRecorded(address indexed owner, bytes32 indexed meterId, uint64 shortfallWh, uint256 totalDebtWh);
    /// @notice The owner burnt WATT to pay down energy debt.
    event EnergyDebtRepaid(address indexed owner, uint256 amountWh, uint256 totalDebtWh);
    /// @notice `settler` (DEBT_SETTLER_ROLE: the EnergyMarket, paid at the grid's retail price)
    ///         cleared `amountWh` of the owner's energy debt.
    event EnergyDebtSettled(address indexed owner, address indexed settler, uint256 amountWh, uint256 totalDebtWh);
    /// @notice The self-consumption hook reverted; the reading stays accepted.
    event SelfConsumptionHookFailed(bytes32 indexed meterId, uint64 indexed sequence, bytes reason);
    /// @notice The self-consumption hook was set (address(0) disables it).
    event SelfConsumptionHookSet(address hook, uint256 gasLimit);
    /// @notice The interval length was changed.
    event IntervalLengthSet(uint32 seconds_);
    /// @notice The accepted clock drift of gateways was changed.
    event MaxClockDriftSet(uint32 seconds_);
    /// @notice Energy balance tolerances were changed.
    event TolerancesSet(uint64 balanceToleranceWh, uint16 batteryToleranceBps);
    /// @notice A colour was marked renewable or not.
    event RenewableColourSet(bytes32 indexed colour, bool renewable);

    /// @notice Registers a meter. Only `REGISTRAR_ROLE`.
    function registerMeter(
        bytes32 meterId,
        address signer,
        address owner,
        Kind kind,
        bytes32 colour,
        bool certified,
        uint32 ratedPowerW,
        string calldata location
    ) external;

    /// @notice Suspends a meter. Only `REGISTRAR_ROLE`.
    function suspendMeter(bytes32 meterId) external;

    /// @notice Reactivates a suspended meter; its readings must start at or after now. Only `REGISTRAR_ROLE`.
    function reactivateMeter(bytes32 meterId) external;

    /// @notice Replaces a meter's device key; the new key's readings must start at or after now.
    ///         Only `REGISTRAR_ROLE`.
    function rotateKey(bytes32 meterId, address newSigner) external;

    /// @notice Applies every valid reading of the batch; anyone may call it.
    /// @return accepted Readings applied now.
    /// @return duplicates Readings that were already on chain (no-ops).
    function submitReadings(Reading[] calldata readings, bytes[] calldata signatures)
        external
        returns (uint256 accepted, uint256 duplicates);

    /// @notice Why `reading` would be refused now (`Reason.None` if it would be accepted).
    function whyRefused(Reading calldata reading, bytes calldata signature) external view returns (uint8);

    /// @notice EIP-712 digest that the meter signs for `reading`.
    function readingDigest(Reading calldata reading) external view returns (bytes32);

    /// @notice A registered meter (reverts `MeterNotRegistered` otherwise).
    function getMeter(bytes32 meterId) external view returns (MeterInfo memory);

    /// @notice Energy (Wh) an owner drew from the public grid without holding WATT for it.
    function energyDebtWh(address owner) external view override returns (uint256);
}
