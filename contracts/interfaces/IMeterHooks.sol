// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ISelfConsumptionHook
/// @notice Receives, from the meter registry, the self-consumed renewable energy of each accepted
///         reading of a certified meter (DGC-C rule: generation − export). The C-REV issuer
///         implements it; the registry calls it only when a hook is configured.
interface ISelfConsumptionHook {
    /// @dev The interval is given by its start time and length, not by an id, so the call means the
    ///      same for every interval length the registry allows (60 … 86,400 s, changeable by the DAO):
    ///      the registry refuses a reading that starts before the meter's last accepted interval
    ///      ends, so one meter's intervals never overlap and (meterId, intervalStart) names one
    ///      reading whatever the lengths were.
    /// @param meterId The certified meter whose reading was accepted.
    /// @param owner The meter's owner (receives any certificates).
    /// @param intervalStart Start of the reading's interval (Unix seconds, a multiple of `intervalSeconds`).
    /// @param intervalSeconds Length of the reading's interval in seconds (the registry's `intervalLength`).
    /// @param selfConsumedWh Self-consumed renewable energy in Wh (> 0).
    function onSelfConsumption(
        bytes32 meterId,
        address owner,
        uint64 intervalStart,
        uint32 intervalSeconds,
        uint256 selfConsumedWh
    ) external;
}

/// @title IParticipantRegistry
/// @notice Who is a participant of the co-op (an owner of at least one registered meter). Used by
///         other contracts, for example to allow a one-time welcome grant.
interface IParticipantRegistry {
    /// @notice True when `account` owns at least one registered meter.
    function isParticipant(address account) external view returns (bool);
}
