// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IRetirementCertificate} from "../interfaces/IRetirementCertificate.sol";

/// @title RetirementCertificate (C-REV-RC)
/// @notice Non-transferable ERC-721: one token per C-REV retirement, holding the retirement record.
/// @dev Deployed by the C-REV token in its constructor, which becomes the immutable `minter`. There
///      is deliberately no admin: nothing about a certificate may ever change, and no role could
///      mint a certificate that no burn backs. Transfers and approvals always revert.
contract RetirementCertificate is ERC721, IRetirementCertificate {
    /// @inheritdoc IRetirementCertificate
    address public immutable minter;

    /// @inheritdoc IRetirementCertificate
    uint256 public count;

    mapping(uint256 tokenId => Retirement) private _retirements;

    /// @param minter_ The C-REV token (the only account that can mint).
    constructor(address minter_) ERC721("gridcoop C-REV Retirement Certificate", "C-REV-RC") {
        minter = minter_;
    }

    /// @inheritdoc IRetirementCertificate
    function mint(Retirement calldata r) external returns (uint256 tokenId) {
        if (msg.sender != minter) revert CertificateOnlyMinter(msg.sender, minter);
        tokenId = ++count;
        _retirements[tokenId] = r;
        _mint(r.holder, tokenId);
        emit Locked(tokenId);
    }

    /// @inheritdoc IRetirementCertificate
    function locked(uint256 tokenId) external view returns (bool) {
        _requireOwned(tokenId);
        return true;
    }

    /// @inheritdoc IRetirementCertificate
    function retirement(uint256 tokenId) external view returns (Retirement memory) {
        if (_ownerOf(tokenId) == address(0)) revert CertificateUnknown(tokenId);
        return _retirements[tokenId];
    }

    /// @notice Always reverts: certificates cannot be approved for transfer.
    function approve(address, uint256 tokenId) public pure override(ERC721, IERC721) {
        revert CertificateNonTransferable(tokenId);
    }

    /// @notice Always reverts: certificates cannot be approved for transfer.
    function setApprovalForAll(address, bool) public pure override(ERC721, IERC721) {
        revert CertificateNonTransferable(0);
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, IERC165) returns (bool) {
        return interfaceId == 0xb45a3c0e /* ERC-5192 */ || super.supportsInterface(interfaceId);
    }

    /// @dev Minting (from the zero address) is the only state change allowed.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address) {
        if (_ownerOf(tokenId) != address(0)) revert CertificateNonTransferable(tokenId);
        return super._update(to, tokenId, auth);
    }
}
