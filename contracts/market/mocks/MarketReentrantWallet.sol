// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @title MarketReentrantWallet
/// @notice TEST ONLY: a hostile ERC-1271 wallet whose signature check tries to call back into
///         the market (any call it makes is attempted; the market reaches it through a static
///         call, so a state-changing re-entry cannot succeed). When the call-back fails the wallet
///         answers "valid" anyway, to prove the market does not trust such a wallet's answer blindly.
contract MarketReentrantWallet is IERC1271 {
    address public immutable market;
    bytes public callback;

    constructor(address market_) {
        market = market_;
    }

    function setCallback(bytes calldata data) external {
        callback = data;
    }

    function execute(address target, bytes calldata data) external returns (bytes memory ret) {
        bool ok;
        (ok, ret) = target.call(data);
        require(ok, "call failed");
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32, bytes calldata) external view returns (bytes4) {
        // a view function cannot change state; try the call-back with a low-level staticcall
        (bool ok,) = market.staticcall(callback);
        if (ok) return IERC1271.isValidSignature.selector; // re-entry "worked": claim validity
        return 0xffffffff;
    }
}
