// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IWattToken} from "../interfaces/IWattToken.sol";

/// @title WattToken (WATT)
/// @notice ERC-20 + ERC-2612 token for energy: 1 WATT = 1 kWh, 18 decimals (1 Wh = 1e15).
/// @dev Supply changes only through `mint`/`burn`, each gated by a role that the admin (the DAO
///      treasury after hand-over) grants. Mint and burn emit the standard ERC-20 `Transfer`
///      events from/to the zero address, so supply is fully traceable.
contract WattToken is ERC20, ERC20Permit, AccessControl, IWattToken {
    /// @inheritdoc IWattToken
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    /// @inheritdoc IWattToken
    bytes32 public constant BURNER_ROLE = keccak256("BURNER_ROLE");

    /// @param admin Account that receives `DEFAULT_ADMIN_ROLE` (grants minter/burner roles).
    constructor(address admin) ERC20("gridcoop WATT", "WATT") ERC20Permit("gridcoop WATT") {
        if (admin == address(0)) revert WattInvalidAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IWattToken
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        if (amount == 0) revert WattZeroAmount();
        _mint(to, amount);
    }

    /// @inheritdoc IWattToken
    function mintBatch(address[] calldata to, uint256[] calldata amounts) external onlyRole(MINTER_ROLE) {
        uint256 n = to.length;
        if (n != amounts.length) revert WattBatchLengthMismatch(n, amounts.length);
        for (uint256 i; i < n; ++i) {
            uint256 amount = amounts[i];
            if (amount == 0) revert WattZeroAmount();
            _mint(to[i], amount);
        }
    }

    /// @inheritdoc IWattToken
    function burn(address from, uint256 amount) external onlyRole(BURNER_ROLE) {
        if (amount == 0) revert WattZeroAmount();
        _burn(from, amount);
    }
}
