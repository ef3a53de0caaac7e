// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ISelfConsumptionHook
/// @notice Receives, from the meter registry, the self-consumed renewable energy of each accepted
///         reading of a certified meter (DGC-C rule: generation − export). The C-REV issuer
///         implements it; the registry calls it only when a hook is configured.
interface ISelfConsumptionHook {
    /// @param meterId The certified meter whose reading was accepted.
    /// @param owner The meter's owner (receives any certificates).
    /// @param intervalId Interval of the reading (interval start / 900).
    /// @param selfConsumedWh Self-consumed renewable energy in Wh (> 0).
    function onSelfConsumption(bytes32 meterId, address owner, uint64 intervalId, uint256 selfConsumedWh)
        external;
}

/// @title IParticipantRegistry
/// @notice Who is a participant of the co-op (an owner of at least one registered meter). Used by
///         other contracts, for example to allow a one-time welcome grant.
interface IParticipantRegistry {
    /// @notice True when `account` owns at least one registered meter.
    function isParticipant(address account) external view returns (bool);
}
