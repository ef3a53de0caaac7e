// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IContributionShares} from "../interfaces/IContributionShares.sol";

/// @title ContributionShares
/// @notice Contribution shares and pro-rata revenue distribution of the gridcoop DAO.
/// @dev Rounding rule (exact, no unit ever lost or created):
///      - Revenue of token T arrives in amounts a_k (accounted by `sync`, which every
///        `recordContribution` and `claim` calls first, so revenue is always split among the
///        shares that existed when it arrived; late joiners get nothing of earlier revenue).
///      - Per arrival: n = a_k * SCALE + carry;  acc += n / totalShares;  carry = n % totalShares.
///      - A member's credit (in SCALE units) grows by shares * (acc - acc at their last update);
///        they can claim floor(credit / SCALE) and keep the fraction for later.
///      So the sum of all credits is exactly (total revenue) * SCALE - carry (nothing created or
///      lost); a member's claimable amount is at most one base unit below their real-valued pro-rata
///      share and never above it (but for the carried < totalShares / SCALE units); the fraction
///      stays credited. Revenue that arrives while there are no shares stays unaccounted and is
///      split among the first shareholders at the next sync. SCALE = 1e36 keeps the carried dust
///      below one unit for any realistic share count (< 1e36) while a * SCALE and every credit
///      (bounded by total revenue * SCALE) stay far below 2^256 for revenue up to ~1e40 units.
contract ContributionShares is AccessControl, ReentrancyGuard, IContributionShares {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to record contributions (the treasury, i.e. by proposal).
    bytes32 public constant RECORDER_ROLE = keccak256("RECORDER_ROLE");
    /// @notice Role allowed to add revenue tokens (the treasury, i.e. by proposal).
    bytes32 public constant REVENUE_ADMIN_ROLE = keccak256("REVENUE_ADMIN_ROLE");
    /// @notice Fixed-point scale of the revenue-per-share accumulator.
    uint256 public constant SCALE = 1e36;
    /// @notice Upper bound on revenue tokens (every share change syncs each of them).
    uint256 public constant MAX_REVENUE_TOKENS = 8;

    struct Account {
        uint256 accSnapshot;
        uint256 credit; // SCALE units
    }

    mapping(address member => uint256) private _shares;
    uint256 private _totalShares;
    address[] private _revenueTokens;
    mapping(address token => bool) public isRevenueToken;
    mapping(address token => uint256) public accPerShare;
    mapping(address token => uint256) public carry;
    /// @notice Token balance already accounted (owed to members or carried as dust).
    mapping(address token => uint256) public accounted;
    /// @notice Total revenue ever accounted per token.
    mapping(address token => uint256) public totalRevenue;
    mapping(address token => mapping(address member => Account)) private _accounts;

    /// @param admin Receives DEFAULT_ADMIN_ROLE, RECORDER_ROLE and REVENUE_ADMIN_ROLE (handed to the treasury).
    /// @param revenueTokens Initial revenue tokens (for example TSL and the local currency).
    constructor(address admin, address[] memory revenueTokens) {
        if (admin == address(0)) revert SharesInvalidArgument();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(RECORDER_ROLE, admin);
        _grantRole(REVENUE_ADMIN_ROLE, admin);
        for (uint256 i = 0; i < revenueTokens.length; ++i) {
            _addRevenueToken(revenueTokens[i]);
        }
    }

    /// @notice Register `token` as a revenue token. Only REVENUE_ADMIN_ROLE.
    function addRevenueToken(address token) external onlyRole(REVENUE_ADMIN_ROLE) {
        _addRevenueToken(token);
    }

    /// @inheritdoc IContributionShares
    function recordContribution(address member, uint256 shares, string calldata reason) external onlyRole(RECORDER_ROLE) {
        if (member == address(0) || shares == 0) revert SharesInvalidArgument();
        for (uint256 i = 0; i < _revenueTokens.length; ++i) {
            address t = _revenueTokens[i];
            _sync(t);
            _settle(t, member);
        }
        _shares[member] += shares;
        _totalShares += shares;
        emit ContributionRecorded(member, shares, _totalShares, reason);
    }

    /// @inheritdoc IContributionShares
    function sync(address token) external returns (uint256 arrived) {
        if (!isRevenueToken[token]) revert SharesUnknownRevenueToken(token);
        return _sync(token);
    }

    /// @inheritdoc IContributionShares
    function claim(address token, address to) external nonReentrant returns (uint256 amount) {
        if (!isRevenueToken[token]) revert SharesUnknownRevenueToken(token);
        if (to == address(0)) revert SharesInvalidArgument();
        _sync(token);
        _settle(token, msg.sender);
        Account storage a = _accounts[token][msg.sender];
        amount = a.credit / SCALE;
        if (amount == 0) return 0;
        a.credit %= SCALE; // the sub-unit remainder stays credited
        accounted[token] -= amount;
        emit RevenueClaimed(msg.sender, token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /// @inheritdoc IContributionShares
    function claimable(address member, address token) external view returns (uint256) {
        uint256 acc = accPerShare[token];
        uint256 total = _totalShares;
        if (total != 0 && isRevenueToken[token]) {
            uint256 arrived = IERC20(token).balanceOf(address(this)) - accounted[token];
            acc += (arrived * SCALE + carry[token]) / total;
        }
        Account storage a = _accounts[token][member];
        return (a.credit + _shares[member] * (acc - a.accSnapshot)) / SCALE;
    }

    /// @inheritdoc IContributionShares
    function sharesOf(address member) external view returns (uint256) {
        return _shares[member];
    }

    /// @notice ERC-20-style alias of `sharesOf`, so wallets can display shares.
    function balanceOf(address member) external view returns (uint256) {
        return _shares[member];
    }

    /// @inheritdoc IContributionShares
    function totalShares() external view returns (uint256) {
        return _totalShares;
    }

    /// @notice The registered revenue tokens.
    function revenueTokens() external view returns (address[] memory) {
        return _revenueTokens;
    }

    function _sync(address token) private returns (uint256 arrived) {
        uint256 total = _totalShares;
        if (total == 0) return 0; // stays unaccounted: goes to the first shareholders
        arrived = IERC20(token).balanceOf(address(this)) - accounted[token];
        // slither-disable-next-line incorrect-equality -- an exact "nothing new arrived" short-cut; a donation only makes arrived > 0, which is revenue by design
        if (arrived == 0) return 0;
        uint256 n = arrived * SCALE + carry[token];
        accPerShare[token] += n / total;
        carry[token] = n % total;
        accounted[token] += arrived;
        totalRevenue[token] += arrived;
        emit RevenueArrived(token, arrived, total);
    }

    function _settle(address token, address member) private {
        Account storage a = _accounts[token][member];
        uint256 acc = accPerShare[token];
        a.credit += _shares[member] * (acc - a.accSnapshot);
        a.accSnapshot = acc;
    }

    function _addRevenueToken(address token) private {
        if (token == address(0) || isRevenueToken[token] || _revenueTokens.length >= MAX_REVENUE_TOKENS) {
            revert SharesRevenueTokenRefused(token);
        }
        isRevenueToken[token] = true;
        _revenueTokens.push(token);
        emit RevenueTokenAdded(token);
    }
}
