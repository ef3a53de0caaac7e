// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IWattToken
/// @notice WATT: 1 WATT = 1 kWh of energy held in the microgrid or its batteries (18 decimals,
///         so 1 Wh = 10^15 base units). Minted only from accepted meter readings (feed-in) and
///         burnt for consumption, by contracts that the DAO granted the minter/burner roles.
interface IWattToken is IERC20 {
    /// @notice Thrown when minting or burning a zero amount, which would only emit noise.
    error WattZeroAmount();

    /// @notice Thrown when `mintBatch` gets `recipients` accounts but `amounts` amounts.
    error WattBatchLengthMismatch(uint256 recipients, uint256 amounts);

    /// @notice Thrown when the constructor is given the zero address as admin.
    error WattInvalidAdmin();

    /// @notice Role allowed to mint WATT (the meter registry).
    function MINTER_ROLE() external view returns (bytes32);

    /// @notice Role allowed to burn WATT from any holder (the meter registry for consumption,
    ///         community storage for efficiency losses).
    function BURNER_ROLE() external view returns (bytes32);

    /// @notice Mints `amount` base units of WATT to `to`.
    /// @dev Only callable by an account with `MINTER_ROLE`.
    function mint(address to, uint256 amount) external;

    /// @notice Mints `amounts[i]` base units of WATT to `to[i]` for every i (one `Transfer` from
    ///         the zero address each; the meter registry mints a whole batch of readings at once).
    /// @dev Only callable by an account with `MINTER_ROLE`; every amount must be non-zero.
    function mintBatch(address[] calldata to, uint256[] calldata amounts) external;

    /// @notice Burns `amount` base units of WATT from `from` (energy consumed or lost).
    /// @dev Only callable by an account with `BURNER_ROLE`; reverts with
    ///      `ERC20InsufficientBalance` when `from` holds less than `amount`.
    function burn(address from, uint256 amount) external;
}
