// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title MarketTestWallet
/// @notice TEST ONLY: a minimal ERC-1271 smart-contract wallet owned by one EOA, to prove that
///         contract wallets can trade on EnergyMarket.
contract MarketTestWallet is IERC1271 {
    address public immutable owner;

    error MarketTestWalletNotOwner();

    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice Run a call from the wallet (owner only), e.g. `approve` the market.
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert MarketTestWalletNotOwner();
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        if (err == ECDSA.RecoverError.NoError && signer == owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }
}
