// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IBatteryStorage
/// @notice Community batteries: users keep WATT (energy) in a registered battery and pay a TSL fee for
///         every 15-minute slot it stays there. Each fee is split 80% to the battery's owners (by share),
///         10% to the marketing pool (which funds one-time welcome grants) and 10% to the platform.
/// @dev Units: energy in whole Wh (1 Wh = 10^15 WATT base units); fee rates in TSL base units per kWh per
///      slot; slot = block.timestamp / 900. Fee parts are credited to their payees; a payee withdraws
///      its credit with `claim`, and anyone can push a payee's credit to the payee with `claimFor`, so
///      payees that are contracts without a way to call `claim` (ContributionShares) are paid too.
interface IBatteryStorage {
    /// @notice A battery as stored on chain (fee-rate history is read with `feeRateAt`).
    struct Battery {
        bytes32 meterId; // the battery meter (MeterRegistry id) that reports its state of charge
        uint256 capacityWh; // usable capacity; total stored never exceeds it
        uint256 storedWh; // sum of all users' stored energy
        uint16 efficiencyBps; // round-trip efficiency, 1..10000 (10000 = lossless)
        bool active; // inactive batteries refuse deposits; withdrawals always work
        uint64 registeredSlot; // slot of registration
    }

    // ------------------------------------------------------------------ errors
    /// @notice Thrown when a battery id was never registered.
    error StorageUnknownBattery(uint256 batteryId);
    /// @notice Thrown when depositing into a battery the registrar deactivated.
    error StorageBatteryInactive(uint256 batteryId);
    /// @notice Thrown when an amount (Wh or TSL) is zero, which would only emit noise.
    error StorageZeroAmount();
    /// @notice Thrown when a deposit would make the battery hold more than its capacity.
    error StorageCapacityExceeded(uint256 batteryId, uint256 requestedWh, uint256 freeWh);
    /// @notice Thrown when withdrawing more than the caller keeps in the battery (only one's own energy).
    error StorageInsufficientStored(uint256 batteryId, address user, uint256 storedWh, uint256 requestedWh);
    /// @notice Thrown when withdrawing while fees are owed and neither prepaid TSL nor allowance covers them.
    error StorageFeesOwed(uint256 batteryId, address user, uint256 owed);
    /// @notice Thrown when the round-trip efficiency is 0 or above 10000 bps.
    error StorageInvalidEfficiency(uint256 efficiencyBps);
    /// @notice Thrown when the capacity is zero or below what the battery already stores.
    error StorageInvalidCapacity(uint256 capacityWh, uint256 storedWh);
    /// @notice Thrown when the owner list is empty, too long, mismatched with shares, or has a zero
    ///         address, a zero share or a duplicate (`index` is the offending entry).
    error StorageInvalidOwners(uint256 index);
    /// @notice Thrown when a required address (platform, marketing, admin, token) is zero.
    error StorageInvalidAddress();
    /// @notice Thrown when claiming a welcome grant without being a registered participant.
    error StorageNotParticipant(address account);
    /// @notice Thrown when an account claims its welcome grant a second time.
    error StorageGrantAlreadyClaimed(address account);
    /// @notice Thrown when the marketing pool holds less than one welcome grant.
    error StorageMarketingPoolEmpty(uint256 pool, uint256 grant);
    /// @notice Thrown when the welcome grant amount is zero (grants switched off).
    error StorageGrantsDisabled();
    /// @notice Thrown when `claim` or `claimFor` finds nothing due to `payee`.
    error StorageNothingToClaim(address payee);
    /// @notice Thrown when withdrawing more prepaid TSL than the caller has.
    error StorageInsufficientCredit(address account, uint256 credit, uint256 requested);
    /// @notice Thrown when a coloured deposit joins stored energy of another colour (one colour per
    ///         position: withdraw it first).
    error StorageColourMismatch(uint256 batteryId, bytes32 stored, bytes32 deposited);

    // ------------------------------------------------------------------ events
    /// @notice A battery was registered.
    event BatteryRegistered(
        uint256 indexed batteryId,
        bytes32 indexed meterId,
        uint256 capacityWh,
        uint16 efficiencyBps,
        uint256 feeRate,
        address[] owners,
        uint256[] shares
    );
    /// @notice The owners (and their shares) of a battery were replaced.
    event OwnersChanged(uint256 indexed batteryId, address[] owners, uint256[] shares);
    /// @notice A battery's capacity was changed.
    event CapacityChanged(uint256 indexed batteryId, uint256 capacityWh);
    /// @notice A battery's round-trip efficiency was changed (applies to later withdrawals).
    event EfficiencyChanged(uint256 indexed batteryId, uint16 efficiencyBps);
    /// @notice A battery was (de)activated.
    event BatteryActiveChanged(uint256 indexed batteryId, bool active);
    /// @notice The fee rate (TSL base units per kWh per slot) changes from `effectiveSlot` on.
    event FeeRateChanged(uint256 indexed batteryId, uint256 rate, uint64 effectiveSlot);
    /// @notice `user` charged `wh` into a battery during `slot`; `colour` is the energy's source
    ///         ("solar", "wind", … as bytes32; zero when unknown).
    event Charged(uint256 indexed batteryId, address indexed user, uint256 wh, uint64 slot, bytes32 colour);
    /// @notice `user` discharged energy: `whOut` returned as WATT, `lossWh` burnt (efficiency loss).
    event Discharged(uint256 indexed batteryId, address indexed user, uint256 whOut, uint256 lossWh, uint64 slot);
    /// @notice `user` paid `amount` TSL of fees; the three parts add up to `amount` exactly.
    event FeePaid(
        uint256 indexed batteryId,
        address indexed user,
        uint256 amount,
        uint256 ownersPart,
        uint256 marketingPart,
        uint256 platformPart
    );
    /// @notice One owner's part of a fee was credited (sum over owners == the fee's `ownersPart`).
    event OwnerCredited(uint256 indexed batteryId, address indexed owner, uint256 amount);
    /// @notice `amount` TSL was paid out to `payee` (owner, platform or marketing), by its own `claim` or by
    ///         anyone's `claimFor`; the TSL always went to `payee`.
    event Claimed(address indexed payee, uint256 amount);
    /// @notice A participant received its one-time welcome grant from the marketing pool.
    event WelcomeGrant(address indexed user, uint256 amount);
    /// @notice The welcome grant amount was changed.
    event WelcomeGrantChanged(uint256 amount);
    /// @notice The marketing pool was topped up by `from`.
    event MarketingPoolFunded(address indexed from, uint256 amount);
    /// @notice The platform and marketing payees were changed.
    event PayeesChanged(address platformTreasury, address marketing);
    /// @notice The origin ledger (colour claims of deposits) was changed (zero: colours not backed).
    event OriginLedgerChanged(address ledger);
    /// @notice The participant registry (who may claim a welcome grant) was changed.
    event ParticipantRegistryChanged(address registry);
    /// @notice `user` prepaid TSL to be used for fees.
    event Prepaid(address indexed user, uint256 amount);
    /// @notice `user` took back unused prepaid TSL.
    event PrepaidWithdrawn(address indexed user, uint256 amount);

    // ------------------------------------------------------------------ registrar
    /// @notice Registers a battery. Only `REGISTRAR_ROLE`.
    /// @param meterId The battery meter's id in the meter registry.
    /// @param capacityWh Usable capacity in Wh (> 0).
    /// @param efficiencyBps Round-trip efficiency in basis points (1..10000).
    /// @param feeRate TSL base units per kWh per 15-minute slot (effective from the current slot).
    /// @param owners Owners (1..16, distinct, non-zero); `owners[0]` receives rounding remainders.
    /// @param shares Positive share weights, one per owner.
    /// @return batteryId The new battery's id (1, 2, …).
    function registerBattery(
        bytes32 meterId,
        uint256 capacityWh,
        uint16 efficiencyBps,
        uint256 feeRate,
        address[] calldata owners,
        uint256[] calldata shares
    ) external returns (uint256 batteryId);

    /// @notice Replaces a battery's owners and shares (applies to fees paid from now on). Only `REGISTRAR_ROLE`.
    function setOwners(uint256 batteryId, address[] calldata owners, uint256[] calldata shares) external;

    /// @notice Changes a battery's capacity (not below what it stores). Only `REGISTRAR_ROLE`.
    function setCapacity(uint256 batteryId, uint256 capacityWh) external;

    /// @notice Changes a battery's round-trip efficiency (applies to later withdrawals). Only `REGISTRAR_ROLE`.
    function setEfficiency(uint256 batteryId, uint16 efficiencyBps) external;

    /// @notice (De)activates a battery; inactive batteries refuse deposits. Only `REGISTRAR_ROLE`.
    function setActive(uint256 batteryId, bool active) external;

    // ------------------------------------------------------------------ fee manager
    /// @notice Sets the fee rate from the next slot on (never retroactive). Only `FEE_MANAGER_ROLE`.
    /// @return effectiveSlot The first slot charged at `newRate`.
    function setFeeRate(uint256 batteryId, uint256 newRate) external returns (uint64 effectiveSlot);

    /// @notice Sets the welcome grant amount in TSL base units (0 switches grants off). Only `FEE_MANAGER_ROLE`.
    function setWelcomeGrant(uint256 amount) external;

    /// @notice Sets the platform treasury and marketing payees. Only `FEE_MANAGER_ROLE`.
    function setPayees(address platformTreasury, address marketing) external;

    /// @notice Sets the participant registry (zero disables welcome grants). Only `DEFAULT_ADMIN_ROLE`.
    function setParticipantRegistry(address registry) external;

    /// @notice Sets the ledger of metered colour origin (the MeterRegistry; zero: a deposit's colour
    ///         is not backed). With one, a deposit of colour X consumes the depositor's X origin and
    ///         a withdrawal passes on what comes out (the efficiency loss takes its share of the
    ///         colour). Only `DEFAULT_ADMIN_ROLE`.
    function setOriginLedger(address ledger) external;

    // ------------------------------------------------------------------ users
    /// @notice Charges `wh` Wh of the caller's WATT into a battery (needs WATT allowance of wh * 10^15).
    ///         The current slot is charged for the new energy at once (fees are per started slot).
    function deposit(uint256 batteryId, uint256 wh, bytes32 colour) external;

    /// @notice Discharges `wh` Wh of the caller's own stored energy. Fees owed are paid first from
    ///         prepaid TSL, then from TSL allowance; if they cannot be, reverts with `StorageFeesOwed`.
    ///         The caller receives `wh * efficiency` (rounded down) as WATT; the loss is burnt.
    /// @return whOut Energy returned in Wh.
    function withdraw(uint256 batteryId, uint256 wh) external returns (uint256 whOut);

    /// @notice Pays all fees the caller owes for a battery (prepaid TSL first, then allowance).
    /// @return paid TSL base units paid (0 if nothing was owed).
    function payFees(uint256 batteryId) external returns (uint256 paid);

    /// @notice Moves `amount` TSL from the caller into its prepaid fee balance.
    function prepay(uint256 amount) external;

    /// @notice Takes back `amount` of the caller's unused prepaid TSL.
    function withdrawPrepaid(uint256 amount) external;

    /// @notice Adds `amount` TSL from the caller to the marketing pool (funds welcome grants).
    function fundMarketingPool(uint256 amount) external;

    /// @notice Claims the caller's one-time welcome grant (must be a registered participant).
    function claimWelcomeGrant() external returns (uint256 amount);

    /// @notice Withdraws everything due to the caller (owner shares, platform part, and — for the
    ///         marketing payee — the marketing pool).
    /// @return amount TSL base units paid to the caller (reverts with `StorageNothingToClaim` if 0).
    function claim() external returns (uint256 amount);

    /// @notice Pays `payee` the fee parts credited to it (owner shares, platform part), to `payee` itself and
    ///         never to the caller. Anyone may call it: this is how a payee that cannot call `claim` (a
    ///         contract such as ContributionShares, or the old payee after `setPayees`) receives its TSL.
    ///         The marketing pool is not paid out (it funds welcome grants; only the marketing payee's
    ///         own `claim` takes it), so a stranger cannot empty it.
    /// @param payee The account whose credit is paid out to it.
    /// @return amount TSL base units paid to `payee` (reverts with `StorageNothingToClaim(payee)` if 0).
    function claimFor(address payee) external returns (uint256 amount);

    // ------------------------------------------------------------------ views
    /// @notice TSL base units `user` owes for `batteryId` now (including the current slot).
    function owed(uint256 batteryId, address user) external view returns (uint256);

    /// @notice Wh that `user` keeps in `batteryId`.
    function stored(uint256 batteryId, address user) external view returns (uint256);

    /// @notice A battery's data.
    function batteries(uint256 batteryId) external view returns (Battery memory);

    /// @notice A battery's owners and shares.
    function ownersOf(uint256 batteryId) external view returns (address[] memory owners, uint256[] memory shares);

    /// @notice TSL base units `payee` can claim now with `claim` (its credit, plus the marketing pool for
    ///         the marketing payee).
    function claimable(address payee) external view returns (uint256);

    /// @notice TSL base units of fee parts credited to `payee` (what `claimFor(payee)` pays; no marketing pool).
    function credited(address payee) external view returns (uint256);

    /// @notice The fee rate charged for `slot`.
    function feeRateAt(uint256 batteryId, uint64 slot) external view returns (uint256);

    /// @notice The fee rate charged for the current slot.
    function feeRate(uint256 batteryId) external view returns (uint256);

    /// @notice The current slot (block.timestamp / 900).
    function currentSlot() external view returns (uint64);
}
