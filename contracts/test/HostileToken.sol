// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title HostileToken
/// @notice TEST ONLY: an ERC-20 (with a WATT-like `burn`) that misbehaves on demand: in mode
///         `ReturnFalse` transfers return false without moving anything; in mode `Reenter` every
///         transfer first calls `target` with `payload` (re-entry attempt) and bubbles up its revert.
contract HostileToken is ERC20 {
    enum Mode {
        Normal,
        ReturnFalse,
        Reenter
    }

    Mode public mode;
    address public target;
    bytes public payload;

    constructor() ERC20("Hostile", "HOST") {}

    /// @notice Mints freely (test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Burns freely (stands in for WATT's role-gated burn).
    function burn(address from, uint256 amount) external {
        _burn(from, amount);
    }

    /// @notice Sets the misbehaviour.
    function setMode(Mode mode_, address target_, bytes calldata payload_) external {
        mode = mode_;
        target = target_;
        payload = payload_;
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        if (mode == Mode.ReturnFalse) return false;
        if (mode == Mode.Reenter) _reenter();
        return super.transfer(to, value);
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        if (mode == Mode.ReturnFalse) return false;
        if (mode == Mode.Reenter) _reenter();
        return super.transferFrom(from, to, value);
    }

    function _reenter() private {
        (bool ok, bytes memory ret) = target.call(payload);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }
}
