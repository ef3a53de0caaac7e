// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IContributionShares
/// @notice Members' contributions (money, hardware, work), recorded by a DAO proposal, become
///         non-transferable shares; ERC-20 revenue paid in is claimable pro rata to the shares
///         that existed when it arrived.
interface IContributionShares {
    /// @notice Emitted when a contribution is recorded.
    event ContributionRecorded(address indexed member, uint256 shares, uint256 totalShares, string reason);
    /// @notice Emitted when revenue is accounted (arrival time = this event's block).
    event RevenueArrived(address indexed token, uint256 amount, uint256 totalShares);
    /// @notice Emitted when a member claims revenue.
    event RevenueClaimed(address indexed member, address indexed token, address to, uint256 amount);
    /// @notice Emitted when a revenue token is added to the list.
    event RevenueTokenAdded(address indexed token);

    /// @notice Thrown when a token is not a registered revenue token.
    error SharesUnknownRevenueToken(address token);
    /// @notice Thrown when more than MAX_REVENUE_TOKENS are registered, or one twice.
    error SharesRevenueTokenRefused(address token);
    /// @notice Thrown for a zero member, zero shares or zero admin.
    error SharesInvalidArgument();

    /// @notice Record a contribution of `member` worth `shares`. Only RECORDER_ROLE (the treasury).
    function recordContribution(address member, uint256 shares, string calldata reason) external;
    /// @notice Account revenue that has been transferred in since the last sync.
    function sync(address token) external returns (uint256 arrived);
    /// @notice Pay the caller's claimable `token` revenue to `to`.
    function claim(address token, address to) external returns (uint256 amount);
    /// @notice What `member` can claim of `token` now (including unsynced arrivals).
    function claimable(address member, address token) external view returns (uint256);
    /// @notice Shares of `member`.
    function sharesOf(address member) external view returns (uint256);
    /// @notice Total shares.
    function totalShares() external view returns (uint256);
}
