// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title LocalCurrency
/// @notice A region's local currency (for example a city's digital coin) as a plain ERC-20 with
///         permit, issued by accounts holding `ISSUER_ROLE`. Used when a region's config does not
///         point at an existing currency contract; the rest of gridcoop treats it like any other
///         allow-listed payment token, so a region is copied to the next by changing only this.
contract LocalCurrency is ERC20, ERC20Permit, AccessControl {
    /// @notice Role allowed to issue new currency.
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");

    uint8 private immutable _decimals;

    /// @notice Thrown when the constructor is given the zero address as admin.
    error LocalCurrencyInvalidAdmin();

    /// @param name_ Token name, e.g. "Kyoto Coin".
    /// @param symbol_ Token symbol, e.g. "KYO".
    /// @param decimals_ Decimals of the currency (18 for most, 0 or 2 for some city coins).
    /// @param admin Receives DEFAULT_ADMIN_ROLE and ISSUER_ROLE.
    constructor(string memory name_, string memory symbol_, uint8 decimals_, address admin)
        ERC20(name_, symbol_)
        ERC20Permit(name_)
    {
        if (admin == address(0)) revert LocalCurrencyInvalidAdmin();
        _decimals = decimals_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ISSUER_ROLE, admin);
    }

    /// @inheritdoc ERC20
    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// @notice Issues `amount` base units to `to`.
    /// @dev Only callable by `ISSUER_ROLE`.
    function issue(address to, uint256 amount) external onlyRole(ISSUER_ROLE) {
        _mint(to, amount);
    }
}
