// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IOriginLedger
/// @notice Metered origin per owner and colour (issue 19): the Wh of energy of a colour that an
///         owner's meters exported, plus what it bought or withdrew as that colour, less what it
///         sold or stored as that colour. A colour claim (a coloured sale, a coloured battery
///         deposit) consumes it, so a buyer who requires a colour receives energy that was metered
///         as that colour, exactly to the Wh. Kept by the MeterRegistry (which meters credit).
interface IOriginLedger {
    /// @notice Wh of `colour` origin that `owner` holds.
    function originOf(address owner, bytes32 colour) external view returns (uint256);

    /// @notice Move origin, entry by entry (ORIGIN_ROLE): `wh[i]` of `colour[i]` from `from[i]`
    ///         (zero: none is debited — energy from outside) to `to[i]` (zero: none is credited —
    ///         energy gone); `OriginExceeded(owner, colour, wantedWh, heldWh)` when a debit is more
    ///         than held.
    function moveOrigin(address[] calldata from, address[] calldata to, bytes32[] calldata colour, uint256[] calldata wh)
        external;
}
