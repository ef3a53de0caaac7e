// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ISelfConsumptionHook} from "../../interfaces/IMeterHooks.sol";
import {IMeterRegistry} from "../../interfaces/IMeterRegistry.sol";

/// @title SelfConsumptionProbe
/// @notice Test double for the C-REV issuer: records every self-consumption call, and can be
///         told to revert, to burn all its gas or to call the registry back (to test the
///         registry's hook policy).
contract SelfConsumptionProbe is ISelfConsumptionHook {
    /// @notice 0 = record, 1 = revert, 2 = burn all gas, 3 = call `submitReadings` back.
    uint8 public mode;
    /// @notice Number of calls recorded.
    uint256 public calls;
    /// @notice Sum of self-consumed Wh received.
    uint256 public totalWh;

    /// @notice Emitted for every recorded call.
    event SelfConsumptionSeen(
        bytes32 indexed meterId, address indexed owner, uint64 intervalStart, uint32 intervalSeconds, uint256 selfConsumedWh
    );

    /// @notice Thrown in mode 1.
    error ProbeRefused();

    /// @notice Sets the behaviour (0 record, 1 revert, 2 burn gas, 3 re-enter the registry).
    function setMode(uint8 mode_) external {
        mode = mode_;
    }

    /// @inheritdoc ISelfConsumptionHook
    function onSelfConsumption(
        bytes32 meterId,
        address owner,
        uint64 intervalStart,
        uint32 intervalSeconds,
        uint256 selfConsumedWh
    ) external {
        if (mode == 1) revert ProbeRefused();
        if (mode == 2) {
            while (true) {}
        }
        if (mode == 3) {
            IMeterRegistry(msg.sender).submitReadings(new IMeterRegistry.Reading[](0), new bytes[](0));
        }
        calls += 1;
        totalWh += selfConsumedWh;
        emit SelfConsumptionSeen(meterId, owner, intervalStart, intervalSeconds, selfConsumedWh);
    }
}
