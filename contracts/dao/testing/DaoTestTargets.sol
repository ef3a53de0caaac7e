// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title ParamBox
/// @notice Test stand-in for any gridcoop AccessControl contract with a DAO-owned parameter
///         (a fee rate): used by the hand-over and proposal tests and the benchmarks.
contract ParamBox is AccessControl {
    /// @notice Role allowed to change the fee.
    bytes32 public constant FEE_SETTER_ROLE = keccak256("FEE_SETTER_ROLE");
    /// @notice Role allowed to pause (unused, exists to test role discovery).
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice Current fee in basis points.
    uint256 public feeBps;

    /// @notice Emitted when the fee changes.
    event FeeChanged(uint256 oldBps, uint256 newBps);

    /// @param admin Receives DEFAULT_ADMIN_ROLE, FEE_SETTER_ROLE and PAUSER_ROLE.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(FEE_SETTER_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        feeBps = 100;
    }

    /// @notice Set the fee (basis points). Only FEE_SETTER_ROLE.
    function setFee(uint256 newBps) external onlyRole(FEE_SETTER_ROLE) {
        emit FeeChanged(feeBps, newBps);
        feeBps = newBps;
    }
}

interface ITreasuryExecute {
    function execute(uint256 id) external payable;
    function spend(uint256 roleId, address token, address to, uint256 amount, string calldata memo) external;
}

/// @title Reenterer
/// @notice Test helper: when called by a proposal, calls back into the treasury's `execute`.
contract Reenterer {
    /// @notice Emitted when the re-entry attempt was made (and returned).
    event Reentered(bool ok);

    /// @notice Call `treasury.execute(id)` and bubble the revert if it fails.
    function poke(address treasury, uint256 id) external {
        ITreasuryExecute(treasury).execute(id);
        emit Reentered(true);
    }

    /// @notice Accept ETH and re-enter `execute(1)` of the sender.
    receive() external payable {
        ITreasuryExecute(msg.sender).execute(1);
    }
}
