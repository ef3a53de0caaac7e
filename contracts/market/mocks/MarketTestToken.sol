// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MarketTestToken
/// @notice TEST ONLY: a payment token that can misbehave, to prove EnergyMarket survives hostile
///         tokens. Modes: 0 honest, 1 `transferFrom` returns false, 2 takes a 1% fee on every
///         transfer, 3 re-enters `reentryTarget` with `reentryData` during `transferFrom`.
contract MarketTestToken is ERC20 {
    uint8 public mode;
    address public reentryTarget;
    bytes public reentryData;

    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) {}

    /// @notice Mint `amount` to `to` (anyone may; test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Select the misbehaviour (see contract notice).
    function setMode(uint8 mode_) external {
        mode = mode_;
    }

    /// @notice Set the call made during `transferFrom` in mode 3.
    function setReentry(address target, bytes calldata data) external {
        reentryTarget = target;
        reentryData = data;
    }

    /// @inheritdoc ERC20
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        if (mode == 1) return false;
        if (mode == 3) {
            (bool ok, bytes memory ret) = reentryTarget.call(reentryData);
            if (!ok) {
                assembly {
                    revert(add(ret, 32), mload(ret))
                }
            }
        }
        return super.transferFrom(from, to, value);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (mode == 2 && from != address(0) && to != address(0)) {
            uint256 fee = value / 100;
            super._update(from, address(0xFEE), fee);
            super._update(from, to, value - fee);
        } else {
            super._update(from, to, value);
        }
    }
}
