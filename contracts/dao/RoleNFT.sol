// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IRoleNFT} from "../interfaces/IRoleNFT.sol";

/// @title RoleNFT
/// @notice Non-transferable ERC-721 offices of the gridcoop DAO (leader, treasurer, member,
///         auditor …). Types, grants, revocations and terms are changed only by
///         ROLE_MANAGER_ROLE: the deployer while it mints the founders, then — after the
///         hand-over — only the Treasury, that is, only a passed proposal.
/// @dev Every active token is kept in a list so the total voting weight can be computed live
///      (expiry needs no transaction). Loops are bounded by MAX_ROLES.
contract RoleNFT is ERC721, AccessControl, IRoleNFT {
    /// @notice Role allowed to define role types and grant, revoke and re-term role tokens.
    bytes32 public constant ROLE_MANAGER_ROLE = keccak256("ROLE_MANAGER_ROLE");
    /// @notice Upper bound on live role tokens (keeps tallies bounded in gas).
    uint256 public constant MAX_ROLES = 200;
    /// @notice Upper bound on role tokens per holder.
    uint256 public constant MAX_ROLES_PER_HOLDER = 8;

    struct Office {
        uint256 typeId;
        uint64 expiresAt;
    }

    mapping(uint256 typeId => RoleType) private _types;
    mapping(uint256 tokenId => Office) private _offices;
    mapping(address holder => uint256[]) private _held;
    uint256[] private _live;
    mapping(uint256 tokenId => uint256) private _liveIndex; // index + 1
    uint256 private _nextId = 1;

    /// @param admin Receives DEFAULT_ADMIN_ROLE and ROLE_MANAGER_ROLE (to mint the founders).
    constructor(address admin) ERC721("gridcoop DAO role", "GCROLE") {
        if (admin == address(0)) revert RoleNFTInvalidAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ROLE_MANAGER_ROLE, admin);
    }

    // ---------------------------------------------------------------- management

    /// @inheritdoc IRoleNFT
    function defineRoleType(uint256 typeId, string calldata name, bool canPropose_, uint96 voteWeight, bool budgetAuthority)
        external
        onlyRole(ROLE_MANAGER_ROLE)
    {
        _types[typeId] = RoleType(name, canPropose_, voteWeight, budgetAuthority, true);
        emit RoleTypeDefined(typeId, name, canPropose_, voteWeight, budgetAuthority);
    }

    /// @inheritdoc IRoleNFT
    function grant(address to, uint256 typeId, uint64 expiresAt) external onlyRole(ROLE_MANAGER_ROLE) returns (uint256 tokenId) {
        if (to == address(0)) revert RoleNFTInvalidHolder();
        if (!_types[typeId].exists) revert RoleNFTUnknownRoleType(typeId);
        if (expiresAt != 0 && expiresAt <= block.timestamp) revert RoleNFTExpiryInPast(expiresAt, block.timestamp);
        if (_live.length >= MAX_ROLES) revert RoleNFTTooManyRoles(MAX_ROLES);
        if (_held[to].length >= MAX_ROLES_PER_HOLDER) revert RoleNFTTooManyRoles(MAX_ROLES_PER_HOLDER);
        tokenId = _nextId++;
        _offices[tokenId] = Office(typeId, expiresAt);
        _live.push(tokenId);
        _liveIndex[tokenId] = _live.length;
        _held[to].push(tokenId);
        _safeMintNoCheck(to, tokenId);
        emit OfficeGranted(tokenId, to, typeId, expiresAt);
    }

    /// @inheritdoc IRoleNFT
    function revoke(uint256 tokenId) external onlyRole(ROLE_MANAGER_ROLE) {
        address holder = _requireOwned(tokenId);
        uint256 typeId = _offices[tokenId].typeId;
        // remove from the live list (swap and pop)
        uint256 i = _liveIndex[tokenId] - 1;
        uint256 last = _live[_live.length - 1];
        _live[i] = last;
        _liveIndex[last] = i + 1;
        _live.pop();
        delete _liveIndex[tokenId];
        // remove from the holder's list
        uint256[] storage held = _held[holder];
        for (uint256 j = 0; j < held.length; ++j) {
            if (held[j] == tokenId) {
                held[j] = held[held.length - 1];
                held.pop();
                break;
            }
        }
        delete _offices[tokenId];
        _burn(tokenId);
        emit OfficeRevoked(tokenId, holder, typeId);
    }

    /// @inheritdoc IRoleNFT
    function setExpiry(uint256 tokenId, uint64 expiresAt) external onlyRole(ROLE_MANAGER_ROLE) {
        _requireOwned(tokenId);
        if (expiresAt != 0 && expiresAt <= block.timestamp) revert RoleNFTExpiryInPast(expiresAt, block.timestamp);
        _offices[tokenId].expiresAt = expiresAt;
        emit OfficeTermChanged(tokenId, expiresAt);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IRoleNFT
    function roleType(uint256 typeId) external view returns (RoleType memory) {
        return _types[typeId];
    }

    /// @inheritdoc IRoleNFT
    function roleOf(uint256 tokenId) external view returns (uint256 typeId, uint64 expiresAt) {
        _requireOwned(tokenId);
        Office memory o = _offices[tokenId];
        return (o.typeId, o.expiresAt);
    }

    /// @inheritdoc IRoleNFT
    function isActive(uint256 tokenId) public view returns (bool) {
        if (_ownerOf(tokenId) == address(0)) return false;
        uint64 exp = _offices[tokenId].expiresAt;
        return exp == 0 || block.timestamp < exp;
    }

    /// @inheritdoc IRoleNFT
    function votingWeight(address account) external view returns (uint256 weight) {
        uint256[] storage held = _held[account];
        for (uint256 j = 0; j < held.length; ++j) {
            if (isActive(held[j])) weight += _types[_offices[held[j]].typeId].voteWeight;
        }
    }

    /// @inheritdoc IRoleNFT
    function totalVotingWeight() external view returns (uint256 weight) {
        for (uint256 j = 0; j < _live.length; ++j) {
            if (isActive(_live[j])) weight += _types[_offices[_live[j]].typeId].voteWeight;
        }
    }

    /// @inheritdoc IRoleNFT
    function votingRoleCount() external view returns (uint256 n) {
        for (uint256 j = 0; j < _live.length; ++j) {
            if (isActive(_live[j]) && _types[_offices[_live[j]].typeId].voteWeight > 0) ++n;
        }
    }

    /// @inheritdoc IRoleNFT
    function canPropose(address account) external view returns (bool) {
        uint256[] storage held = _held[account];
        for (uint256 j = 0; j < held.length; ++j) {
            if (isActive(held[j]) && _types[_offices[held[j]].typeId].canPropose) return true;
        }
        return false;
    }

    /// @inheritdoc IRoleNFT
    function hasBudgetAuthority(address account, uint256 tokenId) external view returns (bool) {
        return isActive(tokenId) && _ownerOf(tokenId) == account && _types[_offices[tokenId].typeId].budgetAuthority;
    }

    /// @inheritdoc IRoleNFT
    function rolesOf(address account) external view returns (uint256[] memory) {
        return _held[account];
    }

    /// @notice Number of live (granted, not revoked) role tokens, expired ones included.
    function liveRoleCount() external view returns (uint256) {
        return _live.length;
    }

    // ---------------------------------------------------------------- non-transferability

    /// @dev Mint and burn pass; every transfer between two accounts is refused.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address) {
        address from = _ownerOf(tokenId);
        if (from != address(0) && to != address(0)) revert RoleNFTNonTransferable(tokenId);
        return super._update(to, tokenId, auth);
    }

    /// @notice Refused: role tokens cannot be approved for transfer.
    function approve(address, uint256 tokenId) public pure override {
        revert RoleNFTNonTransferable(tokenId);
    }

    /// @notice Refused: role tokens cannot be approved for transfer.
    function setApprovalForAll(address, bool) public pure override {
        revert RoleNFTNonTransferable(0);
    }

    function _safeMintNoCheck(address to, uint256 tokenId) private {
        _mint(to, tokenId); // no receiver callback: a role is an office, not an asset
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }
}
