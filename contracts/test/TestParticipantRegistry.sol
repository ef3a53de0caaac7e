// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IParticipantRegistry} from "../interfaces/IMeterHooks.sol";

/// @title TestParticipantRegistry
/// @notice TEST ONLY: a participant list anyone can edit, standing in for the MeterRegistry in tests.
contract TestParticipantRegistry is IParticipantRegistry {
    mapping(address => bool) private _participant;

    /// @notice Emitted when `account`'s participant flag changes.
    event ParticipantSet(address indexed account, bool participant);

    /// @notice Marks `account` as a participant or not.
    function setParticipant(address account, bool participant) external {
        _participant[account] = participant;
        emit ParticipantSet(account, participant);
    }

    /// @inheritdoc IParticipantRegistry
    function isParticipant(address account) external view returns (bool) {
        return _participant[account];
    }
}
