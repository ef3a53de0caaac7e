// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// @title IRetirementCertificate
/// @notice Non-transferable (soulbound, ERC-5192 `locked`) ERC-721 recording one C-REV retirement:
///         who retired how much, for whom, why and for which consumption period. Minted only by the
///         C-REV token that deployed it; it can never be transferred, approved or burnt.
interface IRetirementCertificate is IERC721 {
    /// @notice The record a certificate carries (the message is public forever).
    struct Retirement {
        address holder; // whose C-REV was burnt (and who holds the certificate)
        address beneficiary; // on whose behalf (may be zero when a name is given)
        address retiredBy; // who sent the retirement (holder, or an approved operator)
        uint256 amount; // C-REV base units retired (1e18 = 1 t-CO2e)
        uint64 periodStart; // consumption period offset (Unix time)
        uint64 periodEnd;
        uint64 retiredAt; // block timestamp of the retirement
        string beneficiaryName;
        string message;
    }

    /// @notice ERC-5192: emitted when a token is locked (at mint; it is never unlocked).
    event Locked(uint256 tokenId);

    /// @notice Thrown on any transfer or approval: certificates are non-transferable.
    error CertificateNonTransferable(uint256 tokenId);
    /// @notice Thrown when someone other than the C-REV token tries to mint.
    error CertificateOnlyMinter(address caller, address minter);
    /// @notice Thrown when asking about a certificate that does not exist.
    error CertificateUnknown(uint256 tokenId);

    /// @notice The C-REV token allowed to mint certificates.
    function minter() external view returns (address);
    /// @notice Number of certificates minted (ids are 1..count).
    function count() external view returns (uint256);
    /// @notice ERC-5192: always true for an existing certificate.
    function locked(uint256 tokenId) external view returns (bool);
    /// @notice The retirement record of certificate `tokenId`.
    function retirement(uint256 tokenId) external view returns (Retirement memory);
    /// @notice Mints the next certificate to `r.holder`. Only the C-REV token.
    function mint(Retirement calldata r) external returns (uint256 tokenId);
}
