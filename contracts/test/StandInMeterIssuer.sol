// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ISelfConsumptionHook} from "../interfaces/IMeterHooks.sol";

/// @title StandInMeterIssuer (tests only)
/// @notice Stands in for the MeterRegistry in C-REV tests: it keeps a certified flag per meter and
///         forwards a reading's self-consumed energy to the hook only for certified meters, as the
///         real registry does. Anyone may call it; it has no access control and no signatures.
contract StandInMeterIssuer {
    /// @notice The C-REV token (or any self-consumption hook).
    ISelfConsumptionHook public immutable hook;
    /// @notice Whether a meter is certified (only certified meters earn C-REV).
    mapping(bytes32 meterId => bool) public certified;

    /// @notice Emitted for every reading, whether it reached the hook or not.
    event ReadingForwarded(
        bytes32 indexed meterId, uint64 indexed intervalStart, uint32 intervalSeconds, uint256 selfConsumedWh, bool issued
    );

    /// @param hook_ The hook to call.
    constructor(ISelfConsumptionHook hook_) {
        hook = hook_;
    }

    /// @notice Marks `meterId` as certified or not.
    function setCertified(bytes32 meterId, bool value) external {
        certified[meterId] = value;
    }

    /// @notice Simulates an accepted reading of the interval [intervalStart, intervalStart +
    ///         intervalSeconds) (Unix seconds); calls the hook only for a certified meter with
    ///         self-consumed energy.
    function submit(bytes32 meterId, address owner, uint64 intervalStart, uint32 intervalSeconds, uint256 selfConsumedWh)
        external
    {
        bool issue = certified[meterId] && selfConsumedWh > 0;
        if (issue) hook.onSelfConsumption(meterId, owner, intervalStart, intervalSeconds, selfConsumedWh);
        emit ReadingForwarded(meterId, intervalStart, intervalSeconds, selfConsumedWh, issue);
    }
}
