// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IBatteryStorage} from "../interfaces/IBatteryStorage.sol";
import {IWattToken} from "../interfaces/IWattToken.sol";
import {IParticipantRegistry} from "../interfaces/IMeterHooks.sol";
import {IOriginLedger} from "../interfaces/IOriginLedger.sol";

/// @title BatteryStorage
/// @notice Community batteries with a TSL fee per started 15-minute slot and the exact 80/10/10 split.
/// @dev Fee accounting is lazy per position (no loops over users): each battery keeps a history of fee-rate
///      checkpoints with the running sum of rates, so the fee of `wh` kept from slot a to slot b is
///      `wh * (cum(b+1) - cum(a)) / 1000`. Fees accrue in "scaled" units (TSL base units × 1000, because
///      rates are per kWh and energy is in Wh); what is owed is the scaled amount rounded down, and the
///      sub-unit remainder is carried forward, so nobody pays for a fraction twice or loses one.
///      The efficiency loss is burnt: this contract needs WATT's BURNER_ROLE.
///      Split of a fee F: marketing = F/10 and platform = F/10 (rounded down), owners = F − both (the
///      owners take the remainder); owner i gets ownersPart × share_i / Σshares (rounded down) and
///      owners[0] takes the remainder. Every part is credited to the payee's balance, which the payee
///      withdraws with `claim` or anyone pushes to the payee with `claimFor` (so contract payees such as
///      ContributionShares, which cannot call `claim`, are paid too).
contract BatteryStorage is IBatteryStorage, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Role that registers batteries and changes their owners, capacity, efficiency and status.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice Role that sets fee rates, the welcome grant amount and the payees.
    bytes32 public constant FEE_MANAGER_ROLE = keccak256("FEE_MANAGER_ROLE");

    /// @notice Length of a slot in seconds (15 minutes).
    uint256 public constant SLOT_SECONDS = 900;
    /// @notice WATT base units per Wh (1 WATT = 1 kWh = 10^18 base units).
    uint256 public constant WATT_PER_WH = 1e15;
    /// @notice Basis-point denominator.
    uint256 public constant BPS = 10_000;
    /// @notice Marketing part of each fee, in bps.
    uint256 public constant MARKETING_BPS = 1_000;
    /// @notice Platform part of each fee, in bps.
    uint256 public constant PLATFORM_BPS = 1_000;
    /// @notice Most owners a battery can have (bounds the loop when a fee is split).
    uint256 public constant MAX_OWNERS = 16;
    /// @dev Fee rates are per kWh and energy is in Wh.
    uint256 private constant SCALE = 1_000;

    /// @notice The WATT token (energy).
    IERC20 public immutable watt;
    /// @notice The TSL token (fees).
    IERC20 public immutable tsl;

    /// @notice Receives the platform part (10%) of every fee.
    address public platformTreasury;
    /// @notice Controls the marketing pool (10% of every fee; funds welcome grants).
    address public marketing;
    /// @notice Who counts as a co-op participant (for welcome grants); zero disables grants.
    IParticipantRegistry public participants;
    /// @notice The ledger of metered colour origin (zero: deposit colours are not backed).
    IOriginLedger public originLedger;
    /// @notice The one-time welcome grant in TSL base units.
    uint256 public welcomeGrant;
    /// @notice TSL held for welcome grants and marketing (claimable by `marketing`).
    uint256 public marketingPool;
    /// @notice Number of registered batteries (ids are 1..batteryCount).
    uint256 public batteryCount;

    /// @notice Total TSL ever paid in as fees.
    uint256 public totalFeesPaid;
    /// @notice Total TSL ever claimed by payees.
    uint256 public totalClaimed;
    /// @notice Total TSL ever given out as welcome grants.
    uint256 public totalGranted;
    /// @notice Total TSL ever added to the marketing pool by `fundMarketingPool`.
    uint256 public totalPoolFunding;
    /// @notice Total unused prepaid TSL of all users.
    uint256 public totalCredit;
    /// @notice Total TSL claimable by owners and the platform (the marketing pool is apart).
    uint256 public totalClaimable;

    /// @notice Whether an account has claimed its welcome grant.
    mapping(address => bool) public grantClaimed;
    /// @notice Unused prepaid TSL per user.
    mapping(address => uint256) public credit;

    struct Checkpoint {
        uint64 fromSlot; // first slot charged at `rate`
        uint256 rate; // TSL base units per kWh per slot
        uint256 cumBefore; // sum of rates of all slots in [registeredSlot, fromSlot)
    }

    struct Position {
        uint256 wh; // energy kept
        uint64 chargedThrough; // last slot already charged for `wh`
        uint192 colourWh; // Wh of `wh` deposited as `colour` (its origin is held by this contract; ≤ wh)
        uint256 owedScaled; // unpaid fees × SCALE
        bytes32 colour; // the colour of the coloured part (with an origin ledger)
    }

    mapping(uint256 => Battery) private _batteries;
    mapping(uint256 => Checkpoint[]) private _rates;
    mapping(uint256 => address[]) private _owners;
    mapping(uint256 => uint256[]) private _shares;
    mapping(uint256 => uint256) private _totalShares;
    mapping(uint256 => mapping(address => Position)) private _positions;
    mapping(address => uint256) private _claimable;

    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param watt_ The WATT token.
    /// @param tsl_ The TSL token.
    /// @param platformTreasury_ Receives the platform part of every fee.
    /// @param marketing_ Controls the marketing pool.
    /// @param participants_ Participant registry for welcome grants (may be zero: grants off until set).
    /// @param welcomeGrant_ Welcome grant amount in TSL base units.
    constructor(
        address admin,
        IERC20 watt_,
        IERC20 tsl_,
        address platformTreasury_,
        address marketing_,
        IParticipantRegistry participants_,
        uint256 welcomeGrant_
    ) {
        if (
            admin == address(0) || address(watt_) == address(0) || address(tsl_) == address(0)
                || platformTreasury_ == address(0) || marketing_ == address(0)
        ) revert StorageInvalidAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        watt = watt_;
        tsl = tsl_;
        platformTreasury = platformTreasury_;
        marketing = marketing_;
        participants = participants_;
        welcomeGrant = welcomeGrant_;
        emit PayeesChanged(platformTreasury_, marketing_);
        emit ParticipantRegistryChanged(address(participants_));
        emit WelcomeGrantChanged(welcomeGrant_);
    }

    // ================================================================== registrar

    /// @inheritdoc IBatteryStorage
    function registerBattery(
        bytes32 meterId,
        uint256 capacityWh,
        uint16 efficiencyBps,
        uint256 feeRate_,
        address[] calldata owners,
        uint256[] calldata shares
    ) external onlyRole(REGISTRAR_ROLE) returns (uint256 batteryId) {
        if (capacityWh == 0) revert StorageInvalidCapacity(capacityWh, 0);
        _checkEfficiency(efficiencyBps);
        batteryId = ++batteryCount;
        uint64 slot = _slot();
        _batteries[batteryId] = Battery({
            meterId: meterId,
            capacityWh: capacityWh,
            storedWh: 0,
            efficiencyBps: efficiencyBps,
            active: true,
            registeredSlot: slot
        });
        _rates[batteryId].push(Checkpoint({fromSlot: slot, rate: feeRate_, cumBefore: 0}));
        _setOwners(batteryId, owners, shares);
        emit BatteryRegistered(batteryId, meterId, capacityWh, efficiencyBps, feeRate_, owners, shares);
        emit FeeRateChanged(batteryId, feeRate_, slot);
    }

    /// @inheritdoc IBatteryStorage
    function setOwners(uint256 batteryId, address[] calldata owners, uint256[] calldata shares)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        _battery(batteryId);
        _setOwners(batteryId, owners, shares);
        emit OwnersChanged(batteryId, owners, shares);
    }

    /// @inheritdoc IBatteryStorage
    function setCapacity(uint256 batteryId, uint256 capacityWh) external onlyRole(REGISTRAR_ROLE) {
        Battery storage b = _battery(batteryId);
        if (capacityWh == 0 || capacityWh < b.storedWh) revert StorageInvalidCapacity(capacityWh, b.storedWh);
        b.capacityWh = capacityWh;
        emit CapacityChanged(batteryId, capacityWh);
    }

    /// @inheritdoc IBatteryStorage
    function setEfficiency(uint256 batteryId, uint16 efficiencyBps) external onlyRole(REGISTRAR_ROLE) {
        Battery storage b = _battery(batteryId);
        _checkEfficiency(efficiencyBps);
        b.efficiencyBps = efficiencyBps;
        emit EfficiencyChanged(batteryId, efficiencyBps);
    }

    /// @inheritdoc IBatteryStorage
    function setActive(uint256 batteryId, bool active) external onlyRole(REGISTRAR_ROLE) {
        _battery(batteryId).active = active;
        emit BatteryActiveChanged(batteryId, active);
    }

    // ================================================================== fee manager

    /// @inheritdoc IBatteryStorage
    function setFeeRate(uint256 batteryId, uint256 newRate)
        external
        onlyRole(FEE_MANAGER_ROLE)
        returns (uint64 effectiveSlot)
    {
        _battery(batteryId);
        effectiveSlot = _slot() + 1;
        Checkpoint[] storage cps = _rates[batteryId];
        Checkpoint storage last = cps[cps.length - 1];
        // slither-disable-next-line incorrect-equality -- exact slot match is the intent: a second change in the same slot replaces the pending one
        if (last.fromSlot == effectiveSlot) {
            // A second change within the same slot replaces the pending one; nothing was charged at it.
            last.rate = newRate;
        } else {
            // last.fromSlot <= current slot < effectiveSlot here.
            uint256 cum = last.cumBefore + uint256(effectiveSlot - last.fromSlot) * last.rate;
            cps.push(Checkpoint({fromSlot: effectiveSlot, rate: newRate, cumBefore: cum}));
        }
        emit FeeRateChanged(batteryId, newRate, effectiveSlot);
    }

    /// @inheritdoc IBatteryStorage
    function setWelcomeGrant(uint256 amount) external onlyRole(FEE_MANAGER_ROLE) {
        welcomeGrant = amount;
        emit WelcomeGrantChanged(amount);
    }

    /// @inheritdoc IBatteryStorage
    function setPayees(address platformTreasury_, address marketing_) external onlyRole(FEE_MANAGER_ROLE) {
        if (platformTreasury_ == address(0) || marketing_ == address(0)) revert StorageInvalidAddress();
        platformTreasury = platformTreasury_;
        marketing = marketing_;
        emit PayeesChanged(platformTreasury_, marketing_);
    }

    /// @inheritdoc IBatteryStorage
    function setParticipantRegistry(address registry) external onlyRole(DEFAULT_ADMIN_ROLE) {
        participants = IParticipantRegistry(registry);
        emit ParticipantRegistryChanged(registry);
    }

    /// @inheritdoc IBatteryStorage
    function setOriginLedger(address ledger) external onlyRole(DEFAULT_ADMIN_ROLE) {
        originLedger = IOriginLedger(ledger);
        emit OriginLedgerChanged(ledger);
    }

    // ================================================================== users

    /// @inheritdoc IBatteryStorage
    function deposit(uint256 batteryId, uint256 wh, bytes32 colour) external nonReentrant {
        if (wh == 0) revert StorageZeroAmount();
        Battery storage b = _battery(batteryId);
        if (!b.active) revert StorageBatteryInactive(batteryId);
        uint256 free = b.capacityWh - b.storedWh;
        if (wh > free) revert StorageCapacityExceeded(batteryId, wh, free);
        uint64 slot = _slot();
        Position storage p = _positions[batteryId][msg.sender];
        _accrue(batteryId, p, slot);
        // The new energy is in the battery during the current (started) slot: charge it now.
        p.owedScaled += wh * _rateAt(batteryId, slot);
        p.wh += wh;
        p.chargedThrough = slot;
        b.storedWh += wh;
        IOriginLedger ledger = originLedger;
        if (colour != 0 && address(ledger) != address(0)) {
            if (p.colourWh != 0 && p.colour != colour) revert StorageColourMismatch(batteryId, p.colour, colour);
            p.colour = colour;
            p.colourWh += uint192(wh); // ≤ p.wh ≤ capacity
            // the depositor's metered origin of `colour` moves here (OriginExceeded when it holds less)
            _moveOrigin(ledger, msg.sender, address(this), colour, wh, 0);
        }
        emit Charged(batteryId, msg.sender, wh, slot, colour);
        watt.safeTransferFrom(msg.sender, address(this), wh * WATT_PER_WH);
    }

    /// @inheritdoc IBatteryStorage
    function withdraw(uint256 batteryId, uint256 wh) external nonReentrant returns (uint256 whOut) {
        if (wh == 0) revert StorageZeroAmount();
        Battery storage b = _battery(batteryId);
        Position storage p = _positions[batteryId][msg.sender];
        if (wh > p.wh) revert StorageInsufficientStored(batteryId, msg.sender, p.wh, wh);
        uint64 slot = _slot();
        _accrue(batteryId, p, slot);
        uint256 due = p.owedScaled / SCALE;
        if (due > 0) {
            if (credit[msg.sender] + _pullable(msg.sender) < due) revert StorageFeesOwed(batteryId, msg.sender, due);
            _pay(batteryId, p, due);
        }
        p.wh -= wh;
        b.storedWh -= wh;
        whOut = (wh * b.efficiencyBps) / BPS;
        uint256 lossWh = wh - whOut;
        uint256 coloured = p.colourWh < wh ? p.colourWh : wh; // the coloured part leaves first
        if (coloured != 0 && address(originLedger) != address(0)) {
            IOriginLedger ledger = originLedger;
            p.colourWh -= uint192(coloured);
            uint256 colourOut = (coloured * b.efficiencyBps) / BPS;
            // what comes out passes the colour on; the loss takes its share of the origin with it
            _moveOrigin(ledger, address(this), msg.sender, p.colour, colourOut, coloured - colourOut);
        }
        emit Discharged(batteryId, msg.sender, whOut, lossWh, slot);
        if (lossWh > 0) IWattToken(address(watt)).burn(address(this), lossWh * WATT_PER_WH);
        // slither-disable-next-line divide-before-multiply -- intended: energy leaves in whole Wh; the rounded-off part is in lossWh and burnt above
        if (whOut > 0) watt.safeTransfer(msg.sender, whOut * WATT_PER_WH);
    }

    /// @dev Moves `wh` of `colour` origin from `from` to `to`, and `lostWh` from `from` to nobody.
    function _moveOrigin(
        IOriginLedger ledger,
        address from,
        address to,
        bytes32 colour,
        uint256 wh,
        uint256 lostWh
    ) internal {
        uint256 n = lostWh == 0 ? 1 : 2;
        address[] memory f = new address[](n);
        address[] memory t = new address[](n);
        bytes32[] memory c = new bytes32[](n);
        uint256[] memory w = new uint256[](n);
        (f[0], t[0], c[0], w[0]) = (from, to, colour, wh);
        if (n == 2) (f[1], c[1], w[1]) = (from, colour, lostWh);
        ledger.moveOrigin(f, t, c, w);
    }

    /// @inheritdoc IBatteryStorage
    function payFees(uint256 batteryId) external nonReentrant returns (uint256 paid) {
        _battery(batteryId);
        Position storage p = _positions[batteryId][msg.sender];
        _accrue(batteryId, p, _slot());
        paid = p.owedScaled / SCALE;
        if (paid > 0) _pay(batteryId, p, paid);
    }

    /// @inheritdoc IBatteryStorage
    function prepay(uint256 amount) external nonReentrant {
        if (amount == 0) revert StorageZeroAmount();
        credit[msg.sender] += amount;
        totalCredit += amount;
        emit Prepaid(msg.sender, amount);
        tsl.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IBatteryStorage
    function withdrawPrepaid(uint256 amount) external nonReentrant {
        if (amount == 0) revert StorageZeroAmount();
        uint256 c = credit[msg.sender];
        if (amount > c) revert StorageInsufficientCredit(msg.sender, c, amount);
        credit[msg.sender] = c - amount;
        totalCredit -= amount;
        emit PrepaidWithdrawn(msg.sender, amount);
        tsl.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IBatteryStorage
    function fundMarketingPool(uint256 amount) external nonReentrant {
        if (amount == 0) revert StorageZeroAmount();
        marketingPool += amount;
        totalPoolFunding += amount;
        emit MarketingPoolFunded(msg.sender, amount);
        tsl.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IBatteryStorage
    function claimWelcomeGrant() external nonReentrant returns (uint256 amount) {
        IParticipantRegistry reg = participants;
        if (address(reg) == address(0) || !reg.isParticipant(msg.sender)) revert StorageNotParticipant(msg.sender);
        if (grantClaimed[msg.sender]) revert StorageGrantAlreadyClaimed(msg.sender);
        amount = welcomeGrant;
        if (amount == 0) revert StorageGrantsDisabled();
        uint256 pool = marketingPool;
        if (pool < amount) revert StorageMarketingPoolEmpty(pool, amount);
        grantClaimed[msg.sender] = true;
        marketingPool = pool - amount;
        totalGranted += amount;
        emit WelcomeGrant(msg.sender, amount);
        tsl.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IBatteryStorage
    function claim() external nonReentrant returns (uint256 amount) {
        amount = _payOut(msg.sender, msg.sender == marketing);
    }

    /// @inheritdoc IBatteryStorage
    function claimFor(address payee) external nonReentrant returns (uint256 amount) {
        amount = _payOut(payee, false);
    }

    // ================================================================== views

    /// @inheritdoc IBatteryStorage
    function owed(uint256 batteryId, address user) external view returns (uint256) {
        Position storage p = _positions[batteryId][user];
        uint256 scaled = p.owedScaled;
        uint64 slot = _slot();
        if (p.wh > 0 && slot > p.chargedThrough) {
            scaled += p.wh * (_cum(batteryId, slot + 1) - _cum(batteryId, p.chargedThrough + 1));
        }
        return scaled / SCALE;
    }

    /// @inheritdoc IBatteryStorage
    function stored(uint256 batteryId, address user) external view returns (uint256) {
        return _positions[batteryId][user].wh;
    }

    /// @inheritdoc IBatteryStorage
    function batteries(uint256 batteryId) external view returns (Battery memory) {
        return _battery(batteryId);
    }

    /// @inheritdoc IBatteryStorage
    function ownersOf(uint256 batteryId) external view returns (address[] memory, uint256[] memory) {
        _battery(batteryId);
        return (_owners[batteryId], _shares[batteryId]);
    }

    /// @inheritdoc IBatteryStorage
    function claimable(address payee) external view returns (uint256) {
        return _claimable[payee] + (payee == marketing ? marketingPool : 0);
    }

    /// @inheritdoc IBatteryStorage
    function credited(address payee) external view returns (uint256) {
        return _claimable[payee];
    }

    /// @inheritdoc IBatteryStorage
    function feeRateAt(uint256 batteryId, uint64 slot) external view returns (uint256) {
        _battery(batteryId);
        return _rateAt(batteryId, slot);
    }

    /// @inheritdoc IBatteryStorage
    function feeRate(uint256 batteryId) external view returns (uint256) {
        _battery(batteryId);
        return _rateAt(batteryId, _slot());
    }

    /// @inheritdoc IBatteryStorage
    function currentSlot() external view returns (uint64) {
        return _slot();
    }

    // ================================================================== internals

    function _slot() private view returns (uint64) {
        return uint64(block.timestamp / SLOT_SECONDS);
    }

    function _battery(uint256 batteryId) private view returns (Battery storage b) {
        if (batteryId == 0 || batteryId > batteryCount) revert StorageUnknownBattery(batteryId);
        return _batteries[batteryId];
    }

    function _checkEfficiency(uint16 efficiencyBps) private pure {
        if (efficiencyBps == 0 || efficiencyBps > BPS) revert StorageInvalidEfficiency(efficiencyBps);
    }

    function _setOwners(uint256 batteryId, address[] calldata owners, uint256[] calldata shares) private {
        uint256 n = owners.length;
        if (n == 0 || n > MAX_OWNERS) revert StorageInvalidOwners(n);
        if (shares.length != n) revert StorageInvalidOwners(shares.length);
        uint256 total = 0;
        for (uint256 i; i < n; ++i) {
            if (owners[i] == address(0) || shares[i] == 0) revert StorageInvalidOwners(i);
            for (uint256 j; j < i; ++j) {
                if (owners[j] == owners[i]) revert StorageInvalidOwners(i);
            }
            total += shares[i];
        }
        _owners[batteryId] = owners;
        _shares[batteryId] = shares;
        _totalShares[batteryId] = total;
    }

    /// @dev Index of the checkpoint in force at `slot` (the last with fromSlot <= slot; 0 if none).
    function _checkpointAt(uint256 batteryId, uint64 slot) private view returns (Checkpoint storage) {
        Checkpoint[] storage cps = _rates[batteryId];
        uint256 lo = 0;
        uint256 hi = cps.length; // first index with fromSlot > slot lies in [lo, hi]
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            if (cps[mid].fromSlot <= slot) lo = mid + 1;
            else hi = mid;
        }
        return cps[lo == 0 ? 0 : lo - 1];
    }

    function _rateAt(uint256 batteryId, uint64 slot) private view returns (uint256) {
        return _checkpointAt(batteryId, slot).rate;
    }

    /// @dev Sum of the rates of all slots in [registeredSlot, slot).
    function _cum(uint256 batteryId, uint64 slot) private view returns (uint256) {
        Checkpoint storage cp = _checkpointAt(batteryId, slot);
        if (slot <= cp.fromSlot) return cp.cumBefore;
        return cp.cumBefore + uint256(slot - cp.fromSlot) * cp.rate;
    }

    /// @dev Charges `p.wh` for every slot after `p.chargedThrough` up to and including `slot`.
    function _accrue(uint256 batteryId, Position storage p, uint64 slot) private {
        if (slot <= p.chargedThrough) return;
        if (p.wh > 0) {
            p.owedScaled += p.wh * (_cum(batteryId, slot + 1) - _cum(batteryId, p.chargedThrough + 1));
        }
        p.chargedThrough = slot;
    }

    /// @dev Pays `payee` (never the caller, unless the caller is the payee) everything credited to it and,
    ///      with `withPool`, the marketing pool; `claim` passes `withPool` only for the marketing payee itself.
    ///      Checks-effects-interactions: the books are cleared before the one transfer (callers are nonReentrant).
    function _payOut(address payee, bool withPool) private returns (uint256 amount) {
        amount = _claimable[payee];
        if (amount > 0) {
            _claimable[payee] = 0;
            totalClaimable -= amount;
        }
        if (withPool) {
            uint256 pool = marketingPool;
            if (pool > 0) {
                amount += pool;
                marketingPool = 0;
            }
        }
        if (amount == 0) revert StorageNothingToClaim(payee);
        totalClaimed += amount;
        emit Claimed(payee, amount);
        tsl.safeTransfer(payee, amount);
    }

    /// @dev TSL the contract can pull from `user` now (min of allowance and balance).
    function _pullable(address user) private view returns (uint256) {
        uint256 a = tsl.allowance(user, address(this));
        uint256 bal = tsl.balanceOf(user);
        return a < bal ? a : bal;
    }

    /// @dev Pays `amount` of fees for `p` (prepaid credit first, then allowance) and splits it.
    function _pay(uint256 batteryId, Position storage p, uint256 amount) private {
        p.owedScaled -= amount * SCALE;
        uint256 fromCredit = credit[msg.sender];
        if (fromCredit > amount) fromCredit = amount;
        if (fromCredit > 0) {
            credit[msg.sender] -= fromCredit;
            totalCredit -= fromCredit;
        }
        _split(batteryId, amount);
        uint256 pulled = amount - fromCredit;
        if (pulled > 0) tsl.safeTransferFrom(msg.sender, address(this), pulled);
    }

    function _split(uint256 batteryId, uint256 amount) private {
        totalFeesPaid += amount;
        uint256 marketingPart = (amount * MARKETING_BPS) / BPS;
        uint256 platformPart = (amount * PLATFORM_BPS) / BPS;
        // Cannot underflow: marketingPart + platformPart <= amount * 2000 / 10000.
        uint256 ownersPart = amount - marketingPart - platformPart;
        marketingPool += marketingPart;
        _claimable[platformTreasury] += platformPart;
        totalClaimable += platformPart + ownersPart;

        address[] storage owners = _owners[batteryId];
        uint256[] storage shares = _shares[batteryId];
        uint256 total = _totalShares[batteryId];
        uint256 n = owners.length;
        uint256 given = 0;
        uint256[] memory parts = new uint256[](n);
        for (uint256 i = 1; i < n; ++i) {
            parts[i] = (ownersPart * shares[i]) / total;
            given += parts[i];
        }
        // owners[0] takes its share plus every rounding remainder; given <= ownersPart by construction.
        parts[0] = ownersPart - given;
        for (uint256 i; i < n; ++i) {
            if (parts[i] > 0) {
                _claimable[owners[i]] += parts[i];
                emit OwnerCredited(batteryId, owners[i], parts[i]);
            }
        }
        emit FeePaid(batteryId, msg.sender, amount, ownersPart, marketingPart, platformPart);
    }
}
