// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title TeslaToken (TSL)
/// @notice The right to use the community's batteries. Exactly 1,000,000,000 TSL (18 decimals)
///         are minted once, in the constructor, to the treasury. There is no mint function, no
///         owner and no upgrade path: nothing can ever raise the supply.
contract TeslaToken is ERC20, ERC20Permit {
    /// @notice The fixed total supply: 1e9 TSL in base units.
    uint256 public constant TOTAL_SUPPLY = 1_000_000_000 * 1e18;

    /// @notice Thrown when the constructor is given the zero address as treasury.
    error TeslaInvalidTreasury();

    /// @param treasury Receives the whole fixed supply.
    constructor(address treasury) ERC20("gridcoop Tesla", "TSL") ERC20Permit("gridcoop Tesla") {
        if (treasury == address(0)) revert TeslaInvalidTreasury();
        _mint(treasury, TOTAL_SUPPLY);
    }
}
