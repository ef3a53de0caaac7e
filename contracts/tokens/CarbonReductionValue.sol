// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ISelfConsumptionHook} from "../interfaces/IMeterHooks.sol";
import {ICarbonReductionValue} from "../interfaces/ICarbonReductionValue.sol";
import {IRetirementCertificate} from "../interfaces/IRetirementCertificate.sol";
import {RetirementCertificate} from "./RetirementCertificate.sol";

/// @title CarbonReductionValue (C-REV)
/// @notice 1 C-REV = 1 t-CO2e avoided (18 decimals). Issued per (meter, interval) lot from the
///         self-consumed renewable energy of certified meters, transferable like any ERC-20, and
///         finally retired into a non-transferable certificate.
/// @dev Exact trail by per-lot balances: every holder's balance is split into lots
///      (`lotBalanceOf(lot, holder)`, invariant: Σ lots == `balanceOf`). ERC-20 transfers spend the
///      sender's lots oldest-received first (FIFO) and emit one `LotTransferred` per lot moved;
///      `transferLots` names the lots explicitly; a retirement burns lots FIFO and records them
///      under the certificate. Gas of a move grows with the number of lots it touches.
contract CarbonReductionValue is ERC20, AccessControl, ICarbonReductionValue {
    /// @inheritdoc ICarbonReductionValue
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");
    /// @inheritdoc ICarbonReductionValue
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");
    /// @notice Sanity cap of the emission factor (g-CO2/kWh); coal plants emit about 1,000.
    uint256 public constant MAX_FACTOR_G_PER_KWH = 2000;
    /// @notice C-REV base units per (Wh × g-CO2/kWh): 1e18 / (1000 Wh/kWh × 1e6 g/t) = 1e9, exact.
    uint256 public constant UNITS_PER_WH_G_PER_KWH = 1e9;
    /// @inheritdoc ICarbonReductionValue
    /// @dev The registry accepts a reading whose interval ends up to `MAX_CLOCK_DRIFT` (900 s) after
    ///      the block time, so with its shortest length (60 s) an issued interval can start up to
    ///      840 s ahead. A change at least 900 s ahead therefore never reaches an issued lot: every
    ///      lot's factor stays `emissionFactorAt(lot.intervalStart)` (forge invariant).
    uint64 public constant FACTOR_LEAD_SECONDS = 900;

    /// @inheritdoc ICarbonReductionValue
    string public region;
    /// @inheritdoc ICarbonReductionValue
    address public immutable certificate;
    /// @inheritdoc ICarbonReductionValue
    uint256 public minimumRetirement;
    /// @inheritdoc ICarbonReductionValue
    uint256 public totalIssued;
    /// @inheritdoc ICarbonReductionValue
    uint256 public totalRetired;
    /// @inheritdoc ICarbonReductionValue
    uint256 public lotCount;

    FactorEntry[] private _schedule;
    mapping(uint256 lotId => Lot) private _lots;
    mapping(bytes32 meterId => mapping(uint64 intervalStart => uint256 lotId)) private _lotOf;
    mapping(uint256 lotId => mapping(address holder => uint256)) private _lotBalance;
    // Per-holder FIFO queue of lot ids; entries before `_head` are spent. `_queued` avoids duplicates.
    mapping(address holder => uint256[]) private _queue;
    mapping(address holder => uint256) private _head;
    mapping(address holder => mapping(uint256 lotId => bool)) private _queued;
    mapping(uint256 certificateId => uint256[]) private _certLotIds;
    mapping(uint256 certificateId => uint256[]) private _certLotAmounts;

    /// @param admin Receives `DEFAULT_ADMIN_ROLE` and `PARAMETER_ROLE` (hand both to the DAO).
    /// @param issuer Receives `ISSUER_ROLE` (the meter registry); zero to grant it later, when the
    ///        registry is deployed after this token.
    /// @param factorGPerKwh Initial emission factor of the region's grid (g-CO2/kWh).
    /// @param minimumRetirement_ Smallest retirement in base units.
    /// @param region_ Region name (for example "kyoto").
    constructor(
        address admin,
        address issuer,
        uint256 factorGPerKwh,
        uint256 minimumRetirement_,
        string memory region_
    ) ERC20("gridcoop Carbon Reduction Value", "C-REV") {
        if (admin == address(0)) revert CrevInvalidAddress();
        if (factorGPerKwh > MAX_FACTOR_G_PER_KWH) revert CrevFactorTooHigh(factorGPerKwh, MAX_FACTOR_G_PER_KWH);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMETER_ROLE, admin);
        if (issuer != address(0)) _grantRole(ISSUER_ROLE, issuer);
        region = region_;
        certificate = address(new RetirementCertificate(address(this)));
        _schedule.push(FactorEntry(0, factorGPerKwh));
        emit EmissionFactorScheduled(0, factorGPerKwh);
        minimumRetirement = minimumRetirement_;
        emit MinimumRetirementSet(0, minimumRetirement_);
    }

    // ------------------------------------------------------------------ issuance

    /// @inheritdoc ISelfConsumptionHook
    /// @dev Only `ISSUER_ROLE`. Creates lot (meter, interval start) worth `amountFor(wh, intervalStart)`
    ///      for the meter owner. Zero energy or a zero factor issues nothing. A second call for the
    ///      same (meter, interval start) reverts, so a reading can never earn twice; the key does not
    ///      depend on the interval length, so a change of length cannot make two readings collide.
    function onSelfConsumption(
        bytes32 meterId,
        address owner,
        uint64 intervalStart,
        uint32 intervalSeconds,
        uint256 selfConsumedWh
    ) external onlyRole(ISSUER_ROLE) {
        // The interval is the issuer's word, as the energy is: the registry checked the reading's
        // start (aligned to its length, after the meter's last interval) and length (60 … 86,400 s).
        uint256 existing = _lotOf[meterId][intervalStart];
        if (existing != 0) revert CrevLotAlreadyIssued(meterId, intervalStart, existing);
        if (selfConsumedWh > type(uint64).max) revert CrevEnergyTooLarge(selfConsumedWh);
        uint256 factor = emissionFactorAt(intervalStart);
        uint256 amount = selfConsumedWh * factor * UNITS_PER_WH_G_PER_KWH;
        // slither-disable-next-line incorrect-equality -- amount is computed from arguments (energy x factor), not a balance: zero means nothing to issue
        if (amount == 0) return;
        uint256 lotId = ++lotCount;
        // Casts are safe: wh < 2^64 checked above, factor <= MAX_FACTOR_G_PER_KWH (< 2^32), and so
        // amount < 2^64 * 2^11 * 2^30 < 2^128.
        _lots[lotId] = Lot(
            meterId, intervalStart, intervalSeconds, owner, uint64(selfConsumedWh), uint32(factor), uint128(amount)
        );
        _lotOf[meterId][intervalStart] = lotId;
        totalIssued += amount;
        _mint(owner, amount);
        _credit(owner, lotId, amount);
        emit LotIssued(lotId, meterId, intervalStart, intervalSeconds, owner, amount);
    }

    /// @inheritdoc ICarbonReductionValue
    function emissionFactorAt(uint64 intervalStart) public view returns (uint256) {
        // Binary search for the last entry with effectiveFrom <= intervalStart (entry 0 is 0).
        uint256 lo = 0;
        uint256 hi = _schedule.length - 1;
        while (lo < hi) {
            uint256 mid = (lo + hi + 1) / 2;
            if (_schedule[mid].effectiveFrom <= intervalStart) lo = mid;
            else hi = mid - 1;
        }
        return _schedule[lo].factorGPerKwh;
    }

    /// @inheritdoc ICarbonReductionValue
    function factorSchedule() external view returns (FactorEntry[] memory) {
        return _schedule;
    }

    /// @inheritdoc ICarbonReductionValue
    function amountFor(uint256 selfConsumedWh, uint64 intervalStart) external view returns (uint256) {
        return selfConsumedWh * emissionFactorAt(intervalStart) * UNITS_PER_WH_G_PER_KWH;
    }

    // ------------------------------------------------------------------ parameters

    /// @inheritdoc ICarbonReductionValue
    function setEmissionFactor(uint256 factorGPerKwh) external onlyRole(PARAMETER_ROLE) {
        // Intervals are aligned to their length, so with 15-minute intervals this is the quarter hour
        // after next (rounding to it would change nothing for them).
        _scheduleFactor(factorGPerKwh, uint64(block.timestamp) + FACTOR_LEAD_SECONDS);
    }

    /// @inheritdoc ICarbonReductionValue
    function scheduleEmissionFactor(uint256 factorGPerKwh, uint64 effectiveFrom) external onlyRole(PARAMETER_ROLE) {
        _scheduleFactor(factorGPerKwh, effectiveFrom);
    }

    function _scheduleFactor(uint256 factorGPerKwh, uint64 effectiveFrom) private {
        if (factorGPerKwh > MAX_FACTOR_G_PER_KWH) revert CrevFactorTooHigh(factorGPerKwh, MAX_FACTOR_G_PER_KWH);
        uint64 earliest = uint64(block.timestamp) + FACTOR_LEAD_SECONDS;
        FactorEntry storage last = _schedule[_schedule.length - 1];
        if (last.effectiveFrom > earliest) earliest = last.effectiveFrom;
        if (effectiveFrom < earliest) revert CrevFactorNotForward(effectiveFrom, earliest);
        // slither-disable-next-line incorrect-equality -- exact time match is the intent: rescheduling the same pending start replaces its factor
        if (effectiveFrom == last.effectiveFrom) last.factorGPerKwh = factorGPerKwh;
        else _schedule.push(FactorEntry(effectiveFrom, factorGPerKwh));
        emit EmissionFactorScheduled(effectiveFrom, factorGPerKwh);
    }

    /// @inheritdoc ICarbonReductionValue
    function setMinimumRetirement(uint256 minimum) external onlyRole(PARAMETER_ROLE) {
        emit MinimumRetirementSet(minimumRetirement, minimum);
        minimumRetirement = minimum;
    }

    // ------------------------------------------------------------------ lots

    /// @inheritdoc ICarbonReductionValue
    function lot(uint256 lotId) external view returns (Lot memory) {
        if (lotId == 0 || lotId > lotCount) revert CrevUnknownLot(lotId);
        return _lots[lotId];
    }

    /// @inheritdoc ICarbonReductionValue
    function lotOf(bytes32 meterId, uint64 intervalStart) external view returns (uint256) {
        return _lotOf[meterId][intervalStart];
    }

    /// @inheritdoc ICarbonReductionValue
    function lotBalanceOf(uint256 lotId, address holder) external view returns (uint256) {
        return _lotBalance[lotId][holder];
    }

    /// @inheritdoc ICarbonReductionValue
    function lotsOf(address holder) external view returns (uint256[] memory lotIds, uint256[] memory amounts) {
        uint256[] storage q = _queue[holder];
        uint256 n = 0;
        for (uint256 i = _head[holder]; i < q.length; ++i) {
            if (_lotBalance[q[i]][holder] != 0) ++n;
        }
        lotIds = new uint256[](n);
        amounts = new uint256[](n);
        n = 0;
        for (uint256 i = _head[holder]; i < q.length; ++i) {
            uint256 b = _lotBalance[q[i]][holder];
            if (b != 0) {
                lotIds[n] = q[i];
                amounts[n] = b;
                ++n;
            }
        }
    }

    /// @inheritdoc ICarbonReductionValue
    function certificateLots(uint256 certificateId)
        external
        view
        returns (uint256[] memory lotIds, uint256[] memory amounts)
    {
        return (_certLotIds[certificateId], _certLotAmounts[certificateId]);
    }

    /// @inheritdoc ICarbonReductionValue
    function transferLots(address to, uint256[] calldata lotIds, uint256[] calldata amounts) external {
        if (lotIds.length != amounts.length) revert CrevLengthMismatch(lotIds.length, amounts.length);
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        uint256 total = 0;
        for (uint256 i; i < lotIds.length; ++i) {
            uint256 id = lotIds[i];
            uint256 amount = amounts[i];
            if (amount == 0) revert CrevZeroAmount();
            uint256 bal = _lotBalance[id][msg.sender];
            if (bal < amount) revert CrevInsufficientLotBalance(id, msg.sender, bal, amount);
            unchecked {
                _lotBalance[id][msg.sender] = bal - amount; // bal >= amount checked above
            }
            _credit(to, id, amount);
            emit LotTransferred(id, msg.sender, to, amount);
            total += amount;
        }
        // Plain ERC-20 bookkeeping (balances, Transfer event) without the FIFO lot walk in _update.
        ERC20._update(msg.sender, to, total);
    }

    // ------------------------------------------------------------------ retirement

    /// @inheritdoc ICarbonReductionValue
    function retire(
        uint256 amount,
        address beneficiary,
        string calldata beneficiaryName,
        string calldata message,
        uint64 periodStart,
        uint64 periodEnd
    ) external returns (uint256) {
        return _retire(msg.sender, amount, beneficiary, beneficiaryName, message, periodStart, periodEnd);
    }

    /// @inheritdoc ICarbonReductionValue
    function retireFrom(
        address holder,
        uint256 amount,
        address beneficiary,
        string calldata beneficiaryName,
        string calldata message,
        uint64 periodStart,
        uint64 periodEnd
    ) external returns (uint256) {
        _spendAllowance(holder, msg.sender, amount);
        return _retire(holder, amount, beneficiary, beneficiaryName, message, periodStart, periodEnd);
    }

    function _retire(
        address holder,
        uint256 amount,
        address beneficiary,
        string calldata beneficiaryName,
        string calldata message,
        uint64 periodStart,
        uint64 periodEnd
    ) private returns (uint256 certificateId) {
        if (amount == 0 || amount < minimumRetirement) {
            revert CrevBelowMinimumRetirement(amount, minimumRetirement);
        }
        if (beneficiary == address(0) && bytes(beneficiaryName).length == 0) revert CrevNoBeneficiary();
        if (periodEnd < periodStart) revert CrevInvalidPeriod(periodStart, periodEnd);
        _burn(holder, amount); // reverts with ERC20InsufficientBalance before anything else changes
        totalRetired += amount;
        // slither-disable-next-line reentrancy-no-eth -- certificate is the immutable RetirementCertificate deployed by this constructor; its mint uses _mint (no receiver callback) and cannot re-enter
        certificateId = IRetirementCertificate(certificate).mint(
            IRetirementCertificate.Retirement({
                holder: holder,
                beneficiary: beneficiary,
                retiredBy: msg.sender,
                amount: amount,
                periodStart: periodStart,
                periodEnd: periodEnd,
                retiredAt: uint64(block.timestamp),
                beneficiaryName: beneficiaryName,
                message: message
            })
        );
        _spendLots(holder, address(0), amount, certificateId);
        emit Retired(
            certificateId, holder, beneficiary, amount, beneficiaryName, message, periodStart, periodEnd, msg.sender
        );
    }

    // ------------------------------------------------------------------ lot bookkeeping

    /// @dev ERC-20 transfers (including `transferFrom`, e.g. by the energy market) move lots FIFO.
    ///      Mint and burn do their own lot bookkeeping (hook / retirement).
    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value); // checks the balance first
        if (from != address(0) && to != address(0)) _spendLots(from, to, value, 0);
    }

    function _credit(address holder, uint256 lotId, uint256 amount) private {
        _lotBalance[lotId][holder] += amount;
        if (!_queued[holder][lotId]) {
            _queued[holder][lotId] = true;
            _queue[holder].push(lotId);
        }
    }

    /// @dev Takes `amount` from `from`'s lots, oldest first, and gives each part to `to` (a transfer)
    ///      or records it under `certificateId` (a retirement, `to == 0`). The caller has checked
    ///      that `from` holds `amount` in total, so the walk ends before the queue does.
    function _spendLots(address from, address to, uint256 amount, uint256 certificateId) private {
        uint256[] storage q = _queue[from];
        uint256 i = _head[from];
        while (amount != 0) {
            uint256 id = q[i];
            uint256 bal = _lotBalance[id][from];
            uint256 take = bal < amount ? bal : amount;
            // slither-disable-next-line incorrect-equality -- take == bal exactly when the lot is used up (take = min(bal, amount)); not a balance an outsider can skew
            if (take == bal) {
                // Lot exhausted for `from`: pop it (every entry before it is exhausted too).
                delete _lotBalance[id][from];
                delete _queued[from][id];
                delete q[i];
                ++i;
            } else {
                unchecked {
                    _lotBalance[id][from] = bal - take; // take < bal here
                }
            }
            if (take != 0) {
                unchecked {
                    amount -= take; // take <= amount by construction
                }
                if (to == address(0)) {
                    _certLotIds[certificateId].push(id);
                    _certLotAmounts[certificateId].push(take);
                    emit LotRetired(certificateId, id, from, take);
                } else {
                    _credit(to, id, take);
                    emit LotTransferred(id, from, to, take);
                }
            }
        }
        _head[from] = i;
    }
}
