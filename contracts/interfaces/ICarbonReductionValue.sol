// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ISelfConsumptionHook} from "./IMeterHooks.sol";

/// @title ICarbonReductionValue
/// @notice C-REV: 1 C-REV = 1 t-CO2e avoided, 18 decimals. Issued only by the meter registry's
///         self-consumption hook for certified renewable meters, as one *lot* per (meter, interval).
///         Intervals are named by their start time (Unix seconds) and length, never by an id that
///         depends on the length, so lots and the factor schedule are right for every interval
///         length the meter registry allows (60 … 86,400 s) and across changes of it.
///         Every holder's balance is kept per lot, and every move (transfer, retirement) names the
///         lots it touched, so a retirement certificate traces back exactly to its meters/intervals.
interface ICarbonReductionValue is IERC20, ISelfConsumptionHook {
    /// @notice One issuance: the self-consumed renewable energy of one reading of one meter.
    struct Lot {
        bytes32 meterId; // certified meter that measured the energy
        uint64 intervalStart; // start of the reading's interval (Unix seconds)
        uint32 intervalSeconds; // length of that interval (packed with the start and owner in one slot)
        address owner; // meter owner who received the lot
        uint64 selfConsumedWh; // energy behind the lot (packed with the next two: 3 storage slots a lot)
        uint32 factorGPerKwh; // emission factor applied (g-CO2/kWh)
        uint128 amount; // C-REV base units issued (18 decimals); <= 2^64 Wh * 2000 * 1e9 < 2^128
    }

    /// @notice One entry of the emission-factor schedule: `factorGPerKwh` applies to readings of
    ///         intervals that start at or after `effectiveFrom` (Unix seconds), until the next entry.
    struct FactorEntry {
        uint64 effectiveFrom;
        uint256 factorGPerKwh;
    }

    /// @notice Emitted when a lot is issued to a meter owner, for the reading of interval
    ///         [intervalStart, intervalStart + intervalSeconds) (Unix seconds).
    event LotIssued(
        uint256 indexed lotId,
        bytes32 indexed meterId,
        uint64 indexed intervalStart,
        uint32 intervalSeconds,
        address owner,
        uint256 amount
    );
    /// @notice Emitted for each lot a transfer moved (one ERC-20 `Transfer` may emit several).
    event LotTransferred(uint256 indexed lotId, address indexed from, address indexed to, uint256 amount);
    /// @notice Emitted for each lot a retirement burnt.
    event LotRetired(uint256 indexed certificateId, uint256 indexed lotId, address indexed holder, uint256 amount);
    /// @notice Emitted once per retirement, after its `LotRetired` events.
    event Retired(
        uint256 indexed certificateId,
        address indexed holder,
        address indexed beneficiary,
        uint256 amount,
        string beneficiaryName,
        string message,
        uint64 periodStart,
        uint64 periodEnd,
        address retiredBy
    );
    /// @notice Emitted when an emission factor is scheduled for readings of intervals that start at
    ///         or after `effectiveFrom` (Unix seconds; 0 for the constructor's factor).
    event EmissionFactorScheduled(uint64 indexed effectiveFrom, uint256 factorGPerKwh);
    /// @notice Emitted when the minimum retirement amount changes.
    event MinimumRetirementSet(uint256 previous, uint256 minimum);

    /// @notice Thrown when the constructor gets the zero address as admin or issuer.
    error CrevInvalidAddress();
    /// @notice Thrown when a lot for this (meter, interval start) already exists: a reading earns once.
    error CrevLotAlreadyIssued(bytes32 meterId, uint64 intervalStart, uint256 lotId);
    /// @notice Thrown when the factor is above the sanity cap (`MAX_FACTOR_G_PER_KWH`).
    error CrevFactorTooHigh(uint256 factorGPerKwh, uint256 maximum);
    /// @notice Thrown when a factor change would take effect less than `FACTOR_LEAD_SECONDS` after the
    ///         block time (so it could reach an interval that has begun or been issued), or before an
    ///         already scheduled change (the schedule only grows forward).
    error CrevFactorNotForward(uint64 effectiveFrom, uint64 earliestAllowed);
    /// @notice Thrown when a retirement is below the DAO's minimum.
    error CrevBelowMinimumRetirement(uint256 amount, uint256 minimum);
    /// @notice Thrown when a retirement names neither a beneficiary address nor a name.
    error CrevNoBeneficiary();
    /// @notice Thrown when a consumption period ends before it starts.
    error CrevInvalidPeriod(uint64 periodStart, uint64 periodEnd);
    /// @notice Thrown when an explicit lot transfer asks for more of a lot than the sender holds.
    error CrevInsufficientLotBalance(uint256 lotId, address holder, uint256 balance, uint256 needed);
    /// @notice Thrown when `lotIds` and `amounts` differ in length.
    error CrevLengthMismatch(uint256 lots, uint256 amounts);
    /// @notice Thrown when a lot id does not exist.
    error CrevUnknownLot(uint256 lotId);
    /// @notice Thrown when a reading's self-consumed energy does not fit the 64 bits readings use.
    error CrevEnergyTooLarge(uint256 selfConsumedWh);
    /// @notice Thrown when a zero amount is moved (it would only emit noise).
    error CrevZeroAmount();

    /// @notice Role allowed to call the self-consumption hook (the meter registry).
    function ISSUER_ROLE() external view returns (bytes32);
    /// @notice Role allowed to change the emission factor and the minimum retirement (the DAO).
    function PARAMETER_ROLE() external view returns (bytes32);
    /// @notice Region whose emission factor this token uses (for example "kyoto").
    function region() external view returns (string memory);
    /// @notice The non-transferable retirement-certificate NFT this token mints.
    function certificate() external view returns (address);
    /// @notice Smallest amount (base units) one retirement may burn.
    function minimumRetirement() external view returns (uint256);
    /// @notice Total C-REV ever issued (base units).
    function totalIssued() external view returns (uint256);
    /// @notice Total C-REV ever retired (base units); `totalSupply == totalIssued - totalRetired`.
    function totalRetired() external view returns (uint256);

    /// @notice Smallest lead (seconds) between a factor change and the time it takes effect: 900, the
    ///         meter registry's largest clock drift, so no interval that may already have been issued
    ///         (one ending at most that far after the block time, hence starting before it) is reached.
    function FACTOR_LEAD_SECONDS() external view returns (uint64);
    /// @notice Emission factor (g-CO2/kWh) for the reading of an interval that starts at
    ///         `intervalStart` (Unix seconds), whatever its length.
    function emissionFactorAt(uint64 intervalStart) external view returns (uint256);
    /// @notice The whole factor schedule, oldest first.
    function factorSchedule() external view returns (FactorEntry[] memory);
    /// @notice C-REV base units that `selfConsumedWh` of the interval starting at `intervalStart` earns
    ///         (exact: `wh * factor * 1e18 / (1000 * 1e6)` = `wh * factor * 1e9`, no rounding).
    function amountFor(uint256 selfConsumedWh, uint64 intervalStart) external view returns (uint256);

    /// @notice Schedules `factorGPerKwh` for readings of intervals that start at or after
    ///         `FACTOR_LEAD_SECONDS` (15 minutes) from now.
    /// @dev Only `PARAMETER_ROLE`. Readings of intervals that start earlier keep their factor, even
    ///      when they arrive late.
    function setEmissionFactor(uint256 factorGPerKwh) external;
    /// @notice Schedules `factorGPerKwh` for readings of intervals that start at or after
    ///         `effectiveFrom` (Unix seconds).
    /// @dev Only `PARAMETER_ROLE`; `effectiveFrom` must be at least `FACTOR_LEAD_SECONDS` after the
    ///      block time and not before the last scheduled entry (an entry for the same time is replaced).
    function scheduleEmissionFactor(uint256 factorGPerKwh, uint64 effectiveFrom) external;
    /// @notice Sets the minimum amount of one retirement. Only `PARAMETER_ROLE`.
    function setMinimumRetirement(uint256 minimum) external;

    /// @notice Number of lots issued (lot ids are 1..lotCount).
    function lotCount() external view returns (uint256);
    /// @notice The issuance record of lot `lotId`.
    function lot(uint256 lotId) external view returns (Lot memory);
    /// @notice Lot id issued for the reading of `meterId` whose interval starts at `intervalStart`
    ///         (Unix seconds), 0 if none.
    function lotOf(bytes32 meterId, uint64 intervalStart) external view returns (uint256);
    /// @notice How much of lot `lotId` `holder` holds.
    function lotBalanceOf(uint256 lotId, address holder) external view returns (uint256);
    /// @notice The lots `holder` holds (non-zero only), in the order transfers spend them (FIFO).
    function lotsOf(address holder) external view returns (uint256[] memory lotIds, uint256[] memory amounts);
    /// @notice The lots (and amounts of each) that certificate `certificateId` retired.
    function certificateLots(uint256 certificateId)
        external
        view
        returns (uint256[] memory lotIds, uint256[] memory amounts);

    /// @notice Transfers named amounts of named lots to `to` (instead of the FIFO order that the
    ///         ERC-20 `transfer` uses). Emits one `LotTransferred` per lot and one ERC-20 `Transfer`.
    function transferLots(address to, uint256[] calldata lotIds, uint256[] calldata amounts) external;

    /// @notice Retires `amount` of the caller's C-REV (oldest lots first) for a beneficiary and
    ///         mints a non-transferable certificate to the caller. The message is public forever.
    /// @param beneficiary Address on whose behalf the CO2 is offset (may be zero if a name is given).
    /// @param beneficiaryName Name of the beneficiary (may be empty if an address is given).
    /// @param message Reason/message recorded in the certificate (public, permanent).
    /// @param periodStart Start (Unix time) of the consumption period being offset.
    /// @param periodEnd End (Unix time) of the consumption period; must be >= periodStart.
    /// @return certificateId The id of the minted retirement certificate.
    function retire(
        uint256 amount,
        address beneficiary,
        string calldata beneficiaryName,
        string calldata message,
        uint64 periodStart,
        uint64 periodEnd
    ) external returns (uint256 certificateId);

    /// @notice Retires `amount` of `holder`'s C-REV, spending the caller's ERC-20 allowance (a
    ///         broker or app retiring on the holder's behalf). The certificate goes to `holder`.
    function retireFrom(
        address holder,
        uint256 amount,
        address beneficiary,
        string calldata beneficiaryName,
        string calldata message,
        uint64 periodStart,
        uint64 periodEnd
    ) external returns (uint256 certificateId);
}
