// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IRoleNFT
/// @notice Non-transferable role NFTs of the gridcoop DAO. A role *type* (leader, treasurer,
///         member, auditor …) defines rights: may propose, vote weight, budget authority. A role
///         *token* is one office held by one account, optionally until an expiry (a term).
interface IRoleNFT {
    /// @notice Rights carried by every token of a role type.
    struct RoleType {
        string name;
        bool canPropose;
        uint96 voteWeight;
        bool budgetAuthority;
        bool exists;
    }

    /// @notice Emitted when a role type is created or its rights change.
    event RoleTypeDefined(uint256 indexed typeId, string name, bool canPropose, uint96 voteWeight, bool budgetAuthority);
    /// @notice Emitted when a role token is granted.
    event OfficeGranted(uint256 indexed tokenId, address indexed holder, uint256 indexed typeId, uint64 expiresAt);
    /// @notice Emitted when a role token is revoked (burnt).
    event OfficeRevoked(uint256 indexed tokenId, address indexed holder, uint256 indexed typeId);
    /// @notice Emitted when a role token's term is changed.
    event OfficeTermChanged(uint256 indexed tokenId, uint64 expiresAt);

    /// @notice Thrown on any attempt to transfer or approve a role token: roles are not transferable.
    error RoleNFTNonTransferable(uint256 tokenId);
    /// @notice Thrown when a role type id is unknown.
    error RoleNFTUnknownRoleType(uint256 typeId);
    /// @notice Thrown when a role is granted with an expiry in the past (0 means no expiry).
    error RoleNFTExpiryInPast(uint64 expiresAt, uint256 nowTs);
    /// @notice Thrown when a role is granted to the zero address.
    error RoleNFTInvalidHolder();
    /// @notice Thrown when one account would hold more than MAX_ROLES_PER_HOLDER tokens, or the
    ///         DAO more than MAX_ROLES, keeping every tally loop bounded.
    error RoleNFTTooManyRoles(uint256 limit);
    /// @notice Thrown when the constructor is given the zero address as admin.
    error RoleNFTInvalidAdmin();

    /// @notice Create or change role type `typeId`. Only ROLE_MANAGER_ROLE (the treasury).
    function defineRoleType(uint256 typeId, string calldata name, bool canPropose, uint96 voteWeight, bool budgetAuthority) external;
    /// @notice Grant a new role token of `typeId` to `to`, valid until `expiresAt` (0 = no expiry).
    function grant(address to, uint256 typeId, uint64 expiresAt) external returns (uint256 tokenId);
    /// @notice Revoke (burn) role token `tokenId`.
    function revoke(uint256 tokenId) external;
    /// @notice Change the term of role token `tokenId` (0 = no expiry).
    function setExpiry(uint256 tokenId, uint64 expiresAt) external;

    /// @notice Rights of role type `typeId`.
    function roleType(uint256 typeId) external view returns (RoleType memory);
    /// @notice Role type and expiry of a token (reverts for a nonexistent token).
    function roleOf(uint256 tokenId) external view returns (uint256 typeId, uint64 expiresAt);
    /// @notice True if `tokenId` exists and has not expired.
    function isActive(uint256 tokenId) external view returns (bool);
    /// @notice Sum of the vote weights of `account`'s active roles, now.
    function votingWeight(address account) external view returns (uint256);
    /// @notice Sum of the vote weights of all active roles, now.
    function totalVotingWeight() external view returns (uint256);
    /// @notice Number of active roles with a non-zero vote weight (the N of M-of-N).
    function votingRoleCount() external view returns (uint256);
    /// @notice True if `account` holds an active role whose type may propose.
    function canPropose(address account) external view returns (bool);
    /// @notice True if `tokenId` is active, held by `account` and its type has budget authority.
    function hasBudgetAuthority(address account, uint256 tokenId) external view returns (bool);
    /// @notice Token ids held by `account` (active or expired).
    function rolesOf(address account) external view returns (uint256[] memory);
}
