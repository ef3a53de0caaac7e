// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IEnergyMarket} from "../interfaces/IEnergyMarket.sol";
import {IEnergyDebtLedger} from "../interfaces/IEnergyDebtLedger.sol";
import {IWattToken} from "../interfaces/IWattToken.sol";

/// @title EnergyMarket
/// @notice Trustless batch settlement of signed WATT orders, one batch per 15-minute interval.
/// @dev Flow of a batch: verify every order, apply every trade to in-memory fills and values
///      (`wh × price`, not yet divided), check each order's fills against its amount and round its
///      money once (sums per order id in transient storage: a seller gets `floor(V / 1000)`, a buyer
///      pays `ceil(V / 1000)`), pull WATT from sellers and money from buyers into the market (one
///      transfer per order), check the market received exactly that, pay out WATT to buyers and
///      money to sellers (one transfer per order), and check the market's balances are back where
///      they started plus the rounding dust, which is recorded per token for the DAO to sweep.
///      The grid (trade index `GRID`) is one more order per side in those sums: WATT it sells is
///      minted into the market at the pulls, WATT it buys is burnt from the market at the payouts,
///      its account pays and is paid like a maker. Network fees are paid to their payee once per
///      token and batch. The market holds WATT's MINTER_ROLE and BURNER_ROLE (for the grid only)
///      and the MeterRegistry's DEBT_SETTLER_ROLE.
contract EnergyMarket is IEnergyMarket, AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Role that may settle batches (the keeper; granted by the DAO).
    bytes32 public constant KEEPER_ROLE = keccak256("KEEPER_ROLE");
    /// @notice Role that may change the payment-token allow-list, gate closure and batch size.
    bytes32 public constant PARAMETER_ROLE = keccak256("PARAMETER_ROLE");

    /// @notice EIP-712 type hash of `Order`.
    bytes32 public constant ORDER_TYPEHASH = keccak256(
        "Order(address maker,uint8 side,uint64 intervalId,uint256 amountWh,uint256 limitPrice,"
        "address paymentToken,bool partiallyFillable,uint64 expiry,uint256 salt,address counterparty,"
        "bytes32 colour)"
    );

    /// @notice Length of an interval in seconds.
    uint256 public constant INTERVAL_SECONDS = 900;
    /// @notice WATT base units per Wh (1 WATT = 1 kWh, 18 decimals).
    uint256 public constant WATT_PER_WH = 1e15;

    /// @notice The trade index that stands for the grid participant (never an order index: a batch
    ///         holds at most 65,535 orders, indices 0..65,534).
    uint256 public constant GRID = 0xffff;
    /// @notice The colour of the energy the grid sells (a buy order requiring another colour never
    ///         trades with the grid).
    bytes32 public constant GRID_COLOUR = "grid";

    uint8 internal constant SELL = 0;
    uint8 internal constant BUY = 1;

    /// @notice The energy token.
    IERC20 public immutable watt;
    /// @notice Seconds before an interval's start at which it closes for orders.
    uint64 public gateClosureDelay;
    /// @notice Most orders (and most trades) in one batch.
    uint256 public maxBatchSize;

    /// @dev Cancelled order ids.
    mapping(bytes32 orderHash => bool) internal _cancelled;
    /// @dev Per interval, a 256-bit Bloom filter (three bits per id) of the ids cancelled for it:
    ///      `settle` reads it once per batch and looks an order up in `_cancelled` only when all
    ///      three of its bits are set, so a batch without cancellations pays no per-order read.
    ///      Anyone can fill an interval's filter by cancelling made-up orders of their own (about
    ///      86 cancels); that only brings the per-order look-up (2,100 gas) back, never lets a
    ///      cancelled order through.
    mapping(uint64 intervalId => uint256) internal _cancelFilter;
    /// @inheritdoc IEnergyMarket
    mapping(uint64 intervalId => bool) public settledIntervals;
    /// @inheritdoc IEnergyMarket
    mapping(address token => bool) public paymentTokenAllowed;
    /// @inheritdoc IEnergyMarket
    mapping(address token => uint256) public roundingDust;
    /// @notice Each account's feeder (location group; zero: none): trades inside one feeder pay the
    ///         intra-feeder network fee.
    mapping(address account => bytes32) public feederOf;
    /// @notice Receives the network fees.
    address public networkFeePayee;

    struct NetworkFee {
        uint128 perKwh;
        uint128 intraFeederPerKwh;
    }

    /// @dev Network fee per payment token.
    mapping(address token => NetworkFee) internal _networkFee;
    /// @dev The grid participant (`token` zero: none).
    GridTerms internal _grid;

    /// @param admin Receives DEFAULT_ADMIN_ROLE and PARAMETER_ROLE (the DAO after hand-over).
    /// @param watt_ The WATT token.
    /// @param keeper Receives KEEPER_ROLE (zero: nobody yet).
    /// @param gateClosureDelay_ Seconds before an interval's start at which it closes.
    /// @param maxBatchSize_ Most orders and trades per batch.
    constructor(address admin, IERC20 watt_, address keeper, uint64 gateClosureDelay_, uint256 maxBatchSize_)
        EIP712("gridcoop", "1")
    {
        if (admin == address(0) || address(watt_) == address(0)) revert MarketZeroAddress();
        if (maxBatchSize_ == 0 || maxBatchSize_ > 65535) revert MarketInvalidBatchSize();
        watt = watt_;
        gateClosureDelay = gateClosureDelay_;
        maxBatchSize = maxBatchSize_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMETER_ROLE, admin);
        if (keeper != address(0)) _grantRole(KEEPER_ROLE, keeper);
        emit GateClosureDelaySet(gateClosureDelay_);
        emit MaxBatchSizeSet(maxBatchSize_);
    }

    // ------------------------------------------------------------------ parameters

    /// @inheritdoc IEnergyMarket
    function setPaymentToken(address token, bool allowed) external onlyRole(PARAMETER_ROLE) {
        if (token == address(0)) revert MarketZeroAddress();
        if (token == address(watt)) revert MarketWattIsNotMoney(token);
        paymentTokenAllowed[token] = allowed;
        emit PaymentTokenSet(token, allowed);
    }

    /// @inheritdoc IEnergyMarket
    function setGateClosureDelay(uint64 delay) external onlyRole(PARAMETER_ROLE) {
        gateClosureDelay = delay;
        emit GateClosureDelaySet(delay);
    }

    /// @inheritdoc IEnergyMarket
    function setMaxBatchSize(uint256 maxBatchSize_) external onlyRole(PARAMETER_ROLE) {
        if (maxBatchSize_ == 0 || maxBatchSize_ > 65535) revert MarketInvalidBatchSize();
        maxBatchSize = maxBatchSize_;
        emit MaxBatchSizeSet(maxBatchSize_);
    }

    /// @inheritdoc IEnergyMarket
    function sweepRoundingDust(address token, address to)
        external
        nonReentrant
        onlyRole(PARAMETER_ROLE)
        returns (uint256 amount)
    {
        if (to == address(0)) revert MarketZeroAddress();
        if (to == address(this)) revert MarketInvalidRecipient(to);
        amount = roundingDust[token];
        if (amount == 0) return 0;
        roundingDust[token] = 0;
        emit RoundingDustSwept(token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /// @inheritdoc IEnergyMarket
    function setGrid(GridTerms calldata terms) external onlyRole(PARAMETER_ROLE) {
        if (terms.token != address(0)) {
            if (terms.account == address(0)) revert MarketZeroAddress();
            if (terms.account == address(this)) revert MarketInvalidRecipient(terms.account);
            if (!paymentTokenAllowed[terms.token]) revert MarketPaymentTokenNotAllowed(terms.token);
            if (terms.retailPrice == 0 || terms.feedInPrice > terms.retailPrice) {
                revert MarketInvalidTariff(terms.feedInPrice, terms.retailPrice);
            }
        }
        _grid = terms;
        emit GridSet(terms.account, terms.token, terms.feedInPrice, terms.retailPrice, terms.debtLedger);
    }

    /// @inheritdoc IEnergyMarket
    function setGridTariff(uint128 feedInPrice, uint128 retailPrice) external onlyRole(PARAMETER_ROLE) {
        GridTerms memory g = _grid;
        if (g.token == address(0)) revert MarketNoGrid();
        if (retailPrice == 0 || feedInPrice > retailPrice) revert MarketInvalidTariff(feedInPrice, retailPrice);
        (_grid.feedInPrice, _grid.retailPrice) = (feedInPrice, retailPrice);
        emit GridSet(g.account, g.token, feedInPrice, retailPrice, g.debtLedger);
    }

    /// @inheritdoc IEnergyMarket
    function setNetworkFee(address token, uint128 perKwh, uint128 intraFeederPerKwh)
        external
        onlyRole(PARAMETER_ROLE)
    {
        if (intraFeederPerKwh > perKwh || (perKwh != 0 && networkFeePayee == address(0))) {
            revert MarketInvalidFee(perKwh, intraFeederPerKwh);
        }
        _networkFee[token] = NetworkFee(perKwh, intraFeederPerKwh);
        emit NetworkFeeSet(token, perKwh, intraFeederPerKwh);
    }

    /// @inheritdoc IEnergyMarket
    function setNetworkFeePayee(address payee) external onlyRole(PARAMETER_ROLE) {
        if (payee == address(0)) revert MarketZeroAddress();
        if (payee == address(this)) revert MarketInvalidRecipient(payee);
        networkFeePayee = payee;
        emit NetworkFeePayeeSet(payee);
    }

    /// @inheritdoc IEnergyMarket
    function setFeeders(address[] calldata accounts, bytes32[] calldata feeders) external onlyRole(PARAMETER_ROLE) {
        if (accounts.length != feeders.length) revert MarketLengthMismatch(accounts.length, feeders.length);
        for (uint256 i; i < accounts.length; ++i) {
            feederOf[accounts[i]] = feeders[i];
            emit FeederSet(accounts[i], feeders[i]);
        }
    }

    // ------------------------------------------------------------------ energy debt

    /// @inheritdoc IEnergyMarket
    function payEnergyDebt(address owner, uint256 wh) external nonReentrant returns (uint256 amount) {
        GridTerms memory g = _grid;
        if (g.token == address(0) || g.debtLedger == address(0)) revert MarketNoGrid();
        // Rounded up: paying in many small parts never costs the grid a base unit.
        amount = Math.mulDiv(wh, g.retailPrice, 1000, Math.Rounding.Ceil);
        // The ledger refuses 0 and more than is owed (MeterRepayExceedsDebt) before anything moves.
        // slither-disable-next-line unused-return -- the remaining debt is in the ledger's own event
        IEnergyDebtLedger(g.debtLedger).settleEnergyDebt(owner, wh);
        emit EnergyDebtPaid(owner, msg.sender, wh, g.retailPrice, amount);
        if (amount != 0) IERC20(g.token).safeTransferFrom(msg.sender, g.account, amount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IEnergyMarket
    function grid() external view returns (GridTerms memory) {
        return _grid;
    }

    /// @inheritdoc IEnergyMarket
    function networkFee(address token) external view returns (uint128 perKwh, uint128 intraFeederPerKwh) {
        NetworkFee memory f = _networkFee[token];
        return (f.perKwh, f.intraFeederPerKwh);
    }

    /// @inheritdoc IEnergyMarket
    function orderHash(Order calldata order) public view returns (bytes32) {
        return _hashTypedDataV4(_structHash(order));
    }

    /// @dev keccak256(abi.encode(ORDER_TYPEHASH, order)) without the decoder's copy: `Order` is 11
    ///      static words in calldata. Dirty upper bits would change the hash (so no honest signature
    ///      matches) and make the field's checked read revert, so raw words are safe to hash.
    function _structHash(Order calldata order) internal pure returns (bytes32 h) {
        bytes32 th = ORDER_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, th)
            calldatacopy(add(ptr, 0x20), order, 0x160)
            h := keccak256(ptr, 0x180)
        }
    }

    /// @inheritdoc IEnergyMarket
    function cancelled(bytes32 orderHash_) external view returns (bool) {
        return _cancelled[orderHash_];
    }

    /// @inheritdoc IEnergyMarket
    function closesAt(uint64 intervalId) public view returns (uint256) {
        uint256 start = uint256(intervalId) * INTERVAL_SECONDS;
        return start > gateClosureDelay ? start - gateClosureDelay : 0;
    }

    /// @notice The EIP-712 domain separator (name "gridcoop", version "1", this chain, this contract).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ cancel

    /// @inheritdoc IEnergyMarket
    function cancelOrder(Order calldata order) external nonReentrant {
        if (msg.sender != order.maker) revert MarketNotMaker(msg.sender, order.maker);
        bytes32 h = orderHash(order);
        if (_cancelled[h]) revert MarketAlreadyCancelled(h);
        _cancelled[h] = true;
        _cancelFilter[order.intervalId] |= _filterBits(h);
        emit OrderCancelled(h, order.maker);
    }

    // ------------------------------------------------------------------ settle

    /// @inheritdoc IEnergyMarket
    function settle(
        uint64 intervalId,
        Order[] calldata orders,
        bytes[] calldata signatures,
        uint256[] calldata trades
    ) external nonReentrant onlyRole(KEEPER_ROLE) {
        _checkBatch(intervalId, orders.length, signatures.length, trades.length);
        settledIntervals[intervalId] = true;
        bytes32[] memory hashes = _verifyOrders(intervalId, orders, signatures);
        Totals memory tot = _applyTrades(intervalId, orders, hashes, trades);
        _checkFills(intervalId, orders, hashes, tot);
        uint256 volume = _moveTokens(intervalId, orders, tot);
        emit IntervalSettled(intervalId, trades.length, tot.energy, volume);
    }

    function _checkBatch(uint64 intervalId, uint256 n, uint256 nSigs, uint256 nTrades) internal view {
        if (n == 0 || nTrades == 0) revert MarketEmptyBatch();
        uint256 maxSize = maxBatchSize;
        if (n > maxSize) revert MarketBatchTooLarge(n, maxSize);
        if (nTrades > maxSize) revert MarketBatchTooLarge(nTrades, maxSize);
        if (nSigs != n) revert MarketSignatureCount(nSigs, n);
        if (settledIntervals[intervalId]) revert MarketIntervalAlreadySettled(intervalId);
        uint256 closes = closesAt(intervalId);
        if (block.timestamp < closes) revert MarketIntervalNotClosed(intervalId, closes);
    }

    // Byte offsets of the fields of an `Order` in calldata (eleven static 32-byte words, in
    // declaration order). `_verifyOrders` checks that every word of every order of the batch holds
    // a clean value of its type — what the ABI decoder checks on each access — so the rest of
    // `settle` reads the words directly, once validated.
    uint256 private constant _MAKER = 0x00;
    uint256 private constant _SIDE = 0x20;
    uint256 private constant _INTERVAL = 0x40;
    uint256 private constant _AMOUNT = 0x60;
    uint256 private constant _LIMIT = 0x80;
    uint256 private constant _TOKEN = 0xa0;
    uint256 private constant _PARTIAL = 0xc0;
    uint256 private constant _EXPIRY = 0xe0;
    uint256 private constant _COUNTERPARTY = 0x120;
    uint256 private constant _COLOUR = 0x140;

    /// @dev The raw calldata word at byte offset `field` of order `o`.
    function _word(Order calldata o, uint256 field) private pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := calldataload(add(o, field))
        }
    }

    function _verifyOrders(uint64 intervalId, Order[] calldata orders, bytes[] calldata signatures)
        internal
        view
        returns (bytes32[] memory hashes)
    {
        uint256 n = orders.length;
        hashes = new bytes32[](n);
        uint256 lastToken = 0;
        for (uint256 i; i < n; ++i) {
            Order calldata o = orders[i];
            uint256 maker = _word(o, _MAKER);
            uint256 token = _word(o, _TOKEN);
            uint256 expiry = _word(o, _EXPIRY);
            if (
                (maker | token | _word(o, _COUNTERPARTY)) >> 160 != 0 || expiry >> 64 != 0
                    || _word(o, _PARTIAL) > 1
            ) revert MarketMalformedOrder(i);
            uint256 iid = _word(o, _INTERVAL);
            if (iid != intervalId) revert MarketWrongInterval(i, uint64(iid));
            if (_word(o, _SIDE) > BUY) revert MarketInvalidSide(i);
            if (block.timestamp > expiry) revert MarketOrderExpired(i, uint64(expiry));
            // The first order is always checked: address(0) is never allowed (setPaymentToken refuses it).
            if (i == 0 || token != lastToken) {
                if (!paymentTokenAllowed[address(uint160(token))]) {
                    revert MarketPaymentTokenNotAllowed(address(uint160(token)));
                }
                lastToken = token;
            }
            bytes32 h = orderHash(o);
            if (!_validSignature(address(uint160(maker)), h, signatures[i])) revert MarketInvalidSignature(i);
            hashes[i] = h;
        }
    }

    /// @dev ECDSA first (64-byte EIP-2098 or 65-byte; high-s and bad v fail): when it recovers the
    ///      maker we are done without touching the maker's account. Otherwise, a maker with code is
    ///      asked through ERC-1271.
    function _validSignature(address maker, bytes32 digest, bytes calldata sig) internal view returns (bool) {
        if (sig.length == 64 || sig.length == 65) {
            address signer;
            ECDSA.RecoverError err;
            if (sig.length == 64) {
                // slither-disable-next-line unused-return -- only the error argument is dropped; err and signer are checked below
                (signer, err,) = ECDSA.tryRecover(digest, bytes32(sig[0:32]), bytes32(sig[32:64]));
            } else {
                // slither-disable-next-line unused-return -- only the error argument is dropped; err and signer are checked below
                (signer, err,) =
                    ECDSA.tryRecover(digest, uint8(sig[64]), bytes32(sig[0:32]), bytes32(sig[32:64]));
            }
            if (err == ECDSA.RecoverError.NoError && signer == maker) return true;
        }
        if (maker.code.length == 0) return false;
        return SignatureChecker.isValidERC1271SignatureNow(maker, digest, sig);
    }

    /// @dev Per order index: Wh filled and value `Σ wh × price` (payment-token base units × 1000;
    ///      `_checkFills` turns the value into the order's money; a buy order's value includes its
    ///      network fee). Index n (= orders.length) is the grid selling, n + 1 the grid buying.
    ///      `fee`: per buy order, `Σ wh × fee rate` (empty while no trade pays a fee).
    ///      `energy` = Σ wh of all trades. `grid`: the grid's terms, read at its first trade.
    struct Totals {
        uint256[] fillWh;
        uint256[] value;
        uint256[] fee;
        uint256 energy;
        GridTerms grid;
        bool gridRead;
    }

    /// @dev The network fee of the token last looked up (one read per token change in a batch).
    struct FeeCache {
        uint256 token;
        uint256 perKwh;
        uint256 intra;
        bool read;
    }

    function _applyTrades(
        uint64 intervalId,
        Order[] calldata orders,
        bytes32[] memory hashes,
        uint256[] calldata trades
    ) internal returns (Totals memory tot) {
        uint256 n = orders.length;
        tot.fillWh = new uint256[](n + 2);
        tot.value = new uint256[](n + 2);
        FeeCache memory fc = FeeCache({token: 0, perKwh: 0, intra: 0, read: false});
        for (uint256 t; t < trades.length; ++t) {
            uint256 packed = trades[t];
            if (packed >> 240 == GRID || (packed >> 224) & 0xffff == GRID) {
                _gridTrade(intervalId, orders, hashes, tot, t, packed);
                continue;
            }
            _orderTrade(intervalId, orders, hashes, tot, fc, t, packed);
        }
    }

    /// @dev A trade between two orders: checked, its network fee within the buyer's limit, booked, logged.
    function _orderTrade(
        uint64 intervalId,
        Order[] calldata orders,
        bytes32[] memory hashes,
        Totals memory tot,
        FeeCache memory fc,
        uint256 t,
        uint256 packed
    ) internal {
        (uint256 si, uint256 bi) = _checkAndBook(orders, tot, fc, t, packed);
        bytes32 id = _tradeId(hashes[si], hashes[bi], t);
        Order calldata s = orders[si];
        _emitTrade(intervalId, _word(s, _MAKER), _word(orders[bi], _MAKER), _word(s, _TOKEN), packed, id);
    }

    function _checkAndBook(
        Order[] calldata orders,
        Totals memory tot,
        FeeCache memory fc,
        uint256 t,
        uint256 packed
    ) internal view returns (uint256 si, uint256 bi) {
        uint256 wh;
        uint256 price;
        (si, bi, wh, price) = _checkTrade(orders, t, packed);
        uint256 rate = _feeRate(fc, orders[si], orders[bi]);
        if (rate != 0) {
            uint256 limit = _word(orders[bi], _LIMIT);
            // price < 2^128 and rate < 2^128: no overflow
            if (price + rate > limit) revert MarketLimitViolated(t, bi, price + rate, limit);
        }
        _book(tot, si, bi, wh, price, rate);
    }

    /// @dev The network fee per kWh of a trade between `s` and `b` (same payment token).
    function _feeRate(FeeCache memory fc, Order calldata s, Order calldata b) internal view returns (uint256 rate) {
        uint256 token = _word(s, _TOKEN);
        if (!fc.read || token != fc.token) {
            NetworkFee memory f = _networkFee[address(uint160(token))];
            (fc.token, fc.perKwh, fc.intra, fc.read) = (token, f.perKwh, f.intraFeederPerKwh, true);
        }
        rate = fc.perKwh;
        if (rate == fc.intra) return rate; // also: no fee at all
        bytes32 feeder = feederOf[address(uint160(_word(s, _MAKER)))];
        if (feeder != 0 && feeder == feederOf[address(uint160(_word(b, _MAKER)))]) rate = fc.intra;
    }

    /// @dev A trade with the grid: `GRID` as the sell index (the grid sells at `retailPrice` or
    ///      more: WATT minted to the buyer) or as the buy index (the grid buys at `feedInPrice` or
    ///      less: the seller's WATT burnt). No network fee: the grid's tariffs include the network.
    function _gridTrade(
        uint64 intervalId,
        Order[] calldata orders,
        bytes32[] memory hashes,
        Totals memory tot,
        uint256 t,
        uint256 packed
    ) internal {
        if (!tot.gridRead) {
            tot.grid = _grid;
            tot.gridRead = true;
        }
        bool gridSells = packed >> 240 == GRID;
        uint256 k = _checkGridTrade(orders, tot.grid, t, packed, gridSells);
        uint256 wh = (packed >> 128) & type(uint96).max;
        uint256 price = packed & type(uint128).max;
        if (gridSells) _book(tot, orders.length, k, wh, price, 0);
        else _book(tot, k, orders.length + 1, wh, price, 0);
        _emitGridTrade(intervalId, orders[k], tot.grid, gridSells, packed, hashes[k], t);
    }

    /// @dev The checks of a trade with the grid; returns the index of the order it trades with.
    function _checkGridTrade(
        Order[] calldata orders,
        GridTerms memory g,
        uint256 t,
        uint256 packed,
        bool gridSells
    ) internal pure returns (uint256 k) {
        if (g.token == address(0)) revert MarketNoGrid();
        k = gridSells ? (packed >> 224) & 0xffff : packed >> 240;
        if (k >= orders.length) revert MarketOrderIndexOutOfRange(t); // GRID on both sides lands here too
        Order calldata o = orders[k];
        if (_word(o, _SIDE) != (gridSells ? BUY : SELL)) revert MarketSideMismatch(t);
        if (_word(o, _TOKEN) != uint256(uint160(g.token))) revert MarketPaymentTokenMismatch(t);
        if ((packed >> 128) & type(uint96).max == 0) revert MarketZeroTrade(t);
        uint256 account = uint256(uint160(g.account));
        if (_word(o, _MAKER) == account) revert MarketSelfTrade(t);
        uint256 cp = _word(o, _COUNTERPARTY);
        if (cp != 0 && cp != account) revert MarketCounterpartyMismatch(t, k);
        uint256 price = packed & type(uint128).max;
        uint256 limit = _word(o, _LIMIT);
        if (gridSells) {
            if (price < g.retailPrice) revert MarketLimitViolated(t, GRID, price, g.retailPrice);
            if (price > limit) revert MarketLimitViolated(t, k, price, limit);
            uint256 colour = _word(o, _COLOUR);
            if (colour != 0 && colour != uint256(GRID_COLOUR)) revert MarketColourMismatch(t);
        } else {
            if (price > g.feedInPrice) revert MarketLimitViolated(t, GRID, price, g.feedInPrice);
            if (price < limit) revert MarketLimitViolated(t, k, price, limit);
        }
    }

    /// @dev `Trade` for a trade with the grid: the grid's account as seller or buyer, its side's
    ///      hash zero in the trade id.
    function _emitGridTrade(
        uint64 intervalId,
        Order calldata o,
        GridTerms memory g,
        bool gridSells,
        uint256 packed,
        bytes32 h,
        uint256 t
    ) internal {
        uint256 maker = _word(o, _MAKER);
        uint256 account = uint256(uint160(g.account));
        _emitTrade(
            intervalId,
            gridSells ? account : maker,
            gridSells ? maker : account,
            uint256(uint160(g.token)),
            packed,
            gridSells ? _tradeId(0, h, t) : _tradeId(h, 0, t)
        );
    }

    /// @dev Money is not divided per trade: a trade adds its exact value `wh × price` to both
    ///      orders (the buyer's plus `wh × rate`, its network fee), and `_checkFills` rounds each
    ///      order's sum once. (Rounding per trade let a keeper split a sale into trades that each
    ///      round to zero — issue 16.)
    function _book(Totals memory tot, uint256 si, uint256 bi, uint256 wh, uint256 price, uint256 rate)
        internal
        pure
    {
        unchecked {
            // wh < 2^96 and price, rate < 2^128, so each product fits in 224 bits; each sum has at
            // most maxBatchSize (< 2^16) terms below 2^225: no overflow.
            uint256 v = wh * price;
            tot.fillWh[si] += wh;
            tot.fillWh[bi] += wh;
            tot.value[si] += v;
            tot.energy += wh;
            if (rate == 0) {
                tot.value[bi] += v;
            } else {
                uint256 f = wh * rate;
                tot.value[bi] += v + f;
                if (tot.fee.length == 0) tot.fee = new uint256[](tot.value.length);
                tot.fee[bi] += f;
            }
        }
    }

    /// @dev `keccak256(abi.encode(sellHash, buyHash, t))` (the grid's side hashes as zero), hashed
    ///      in scratch memory past the free-memory pointer (nothing allocated).
    function _tradeId(bytes32 sellHash, bytes32 buyHash, uint256 t) internal pure returns (bytes32 id) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, sellHash)
            mstore(add(p, 0x20), buyHash)
            mstore(add(p, 0x40), t)
            id := keccak256(p, 0x60)
        }
    }

    /// @dev Emits `Trade` (Wh and price from the packed trade), logged from scratch memory past the
    ///      free-memory pointer (nothing allocated, so memory does not grow with the batch). Same
    ///      log as `emit Trade(...)`.
    function _emitTrade(uint64 intervalId, uint256 seller, uint256 buyer, uint256 token, uint256 packed, bytes32 tradeId)
        internal
    {
        bytes32 topic = Trade.selector;
        uint256 wh = (packed >> 128) & type(uint96).max;
        uint256 price = packed & type(uint128).max;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, wh)
            mstore(add(p, 0x20), price)
            mstore(add(p, 0x40), token)
            mstore(add(p, 0x60), tradeId)
            log4(p, 0x80, topic, and(intervalId, 0xffffffffffffffff), seller, buyer) // clean the uint64
        }
    }

    function _checkTrade(Order[] calldata orders, uint256 t, uint256 packed)
        internal
        pure
        returns (uint256 si, uint256 bi, uint256 wh, uint256 price)
    {
        si = packed >> 240;
        bi = (packed >> 224) & 0xffff;
        wh = (packed >> 128) & type(uint96).max;
        price = packed & type(uint128).max;
        if (si >= orders.length || bi >= orders.length) revert MarketOrderIndexOutOfRange(t);
        Order calldata s = orders[si];
        Order calldata b = orders[bi];
        if (_word(s, _SIDE) != SELL || _word(b, _SIDE) != BUY) revert MarketSideMismatch(t);
        if (_word(s, _TOKEN) != _word(b, _TOKEN)) revert MarketPaymentTokenMismatch(t);
        if (wh == 0) revert MarketZeroTrade(t);
        uint256 seller = _word(s, _MAKER);
        uint256 buyer = _word(b, _MAKER);
        if (seller == buyer) revert MarketSelfTrade(t);
        uint256 limit = _word(s, _LIMIT);
        if (price < limit) revert MarketLimitViolated(t, si, price, limit);
        limit = _word(b, _LIMIT);
        if (price > limit) revert MarketLimitViolated(t, bi, price, limit);
        uint256 cp = _word(s, _COUNTERPARTY);
        if (cp != 0 && cp != buyer) revert MarketCounterpartyMismatch(t, si);
        cp = _word(b, _COUNTERPARTY);
        if (cp != 0 && cp != seller) revert MarketCounterpartyMismatch(t, bi);
        uint256 colour = _word(b, _COLOUR);
        if (colour != 0 && colour != _word(s, _COLOUR)) revert MarketColourMismatch(t);
    }

    /// @dev Every order's fill against what it signed, and its money. An order names its interval
    ///      and an interval settles once, so one batch is the whole life of an order: "what remains"
    ///      is its amount less what earlier copies of the same id in this batch took. Those running
    ///      sums are kept in transient storage keyed by the order id (EIP-1153), so no permanent slot
    ///      per order is written. (Left-over transient sums could only matter to a later settle of
    ///      the same interval in the same transaction, which `settledIntervals` refuses.)
    ///
    ///      Money is rounded per order id: `value[i]` (Σ wh × price of copy i's trades) becomes what
    ///      copy i moves, `floor(W / 1000) - floor(P / 1000)` for a seller and
    ///      `ceil(W / 1000) - ceil(P / 1000)` for a buyer, where P is the running value of the
    ///      earlier copies of the same id (transient slot `~id`) and W = P + value[i]. Over all copies
    ///      this adds up to exactly `floor(V / 1000)` / `ceil(V / 1000)` of the order's whole value V,
    ///      so splitting an order into trades or copies never changes what it receives or pays.
    function _checkFills(
        uint64 intervalId,
        Order[] calldata orders,
        bytes32[] memory hashes,
        Totals memory tot
    ) internal {
        uint256[] memory fillWh = tot.fillWh;
        uint256[] memory value = tot.value;
        uint256 filter = _cancelFilter[intervalId];
        for (uint256 i; i < orders.length; ++i) {
            uint256 f = fillWh[i];
            if (f == 0) continue;
            Order calldata o = orders[i];
            bytes32 h = hashes[i];
            uint256 bits = _filterBits(h);
            if (filter & bits == bits && _cancelled[h]) revert MarketOrderIsCancelled(i);
            uint256 already;
            assembly ("memory-safe") {
                already := tload(h)
            }
            // A duplicate of an order in the same batch sees the first copy's fill here.
            uint256 amount = _word(o, _AMOUNT);
            uint256 remaining = amount > already ? amount - already : 0;
            if (f > remaining) revert MarketOverfill(i, f, remaining);
            if (_word(o, _PARTIAL) == 0 && f != amount) revert MarketFillOrKill(i, f, amount);
            assembly ("memory-safe") {
                tstore(h, add(already, f)) // <= amountWh (checked above)
            }
            // The value of earlier copies: only an order id seen with a fill before has one. Its
            // slot is the complement of the id (no other id of this batch is, short of inverting
            // keccak256).
            uint256 prev;
            if (already != 0) {
                assembly ("memory-safe") {
                    prev := tload(not(h))
                }
            }
            bool sell = _word(o, _SIDE) == SELL;
            assembly ("memory-safe") {
                // value[i] (i < orders.length == value.length). prev + value[i] <= Σ of at most 2^16
                // trade values below 2^224: no overflow; a running floor or ceiling never
                // decreases, so the differences are not negative.
                let slot := add(add(value, 0x20), shl(5, i))
                let total := add(prev, mload(slot))
                tstore(not(h), total)
                switch sell
                case 1 { mstore(slot, sub(div(total, 1000), div(prev, 1000))) }
                default { mstore(slot, sub(div(add(total, 999), 1000), div(add(prev, 999), 1000))) }
            }
            if (!sell && tot.fee.length != 0) _roundFee(tot.fee, i, h, already != 0);
        }
        // The grid is one order per side: selling it receives the floor, buying it pays the ceiling.
        uint256 n = orders.length;
        value[n] = value[n] / 1000;
        value[n + 1] = (value[n + 1] + 999) / 1000; // < 2^241: no overflow
    }

    /// @dev A buy order's network fee rounded down once per order id, like its money: `fee[i]`
    ///      (Σ wh × rate of copy i's trades) becomes `floor(F / 1000) - floor(P / 1000)`, P the fee
    ///      of the earlier copies of the same id (transient slot `id + 1`, no other id of this batch
    ///      short of inverting keccak256), F = P + fee[i]. (Rounded per copy, repeating a buy order
    ///      in the batch turned the payee's fee into rounding dust.)
    function _roundFee(uint256[] memory fee, uint256 i, bytes32 h, bool seen) internal {
        assembly ("memory-safe") {
            let slot := add(add(fee, 0x20), shl(5, i)) // i < orders.length < fee.length
            let key := add(h, 1) // wraps only for the all-ones id
            let prev := 0
            if seen { prev := tload(key) }
            let total := add(prev, mload(slot)) // < 2^241: no overflow
            tstore(key, total)
            mstore(slot, sub(div(total, 1000), div(prev, 1000)))
        }
    }

    /// @dev The three Bloom-filter bits of order id `h` (its three least significant bytes, i.e.
    ///      bytes 31, 30 and 29 of the id, pick them).
    function _filterBits(bytes32 h) internal pure returns (uint256) {
        uint256 x = uint256(h);
        return (1 << (x & 0xff)) | (1 << ((x >> 8) & 0xff)) | (1 << ((x >> 16) & 0xff));
    }

    /// @dev The tokens a batch moves (WATT first, then each payment token in order of first use),
    ///      the market's balance of each before the batch, and what the batch has moved into the
    ///      market so far (pulled in less paid out) per token.
    struct Flows {
        address[] tokens;
        uint256[] before;
        uint256[] net;
        uint256 count;
    }

    /// @dev Pulls, checks, pays out; `tot.value[i]` is now what order i pays (buy) or receives
    ///      (sell), the grid's at n and n + 1. What the buyers paid beyond what the sellers and the
    ///      fee payee received (the rounding dust) stays here, is added to `roundingDust` and the
    ///      balances are checked against it. Returns the batch's volume: the money buyers paid.
    function _moveTokens(uint64 intervalId, Order[] calldata orders, Totals memory tot)
        internal
        returns (uint256 volume)
    {
        (Flows memory fl, uint256 pulled) = _pullIn(orders, tot);
        volume = pulled;
        for (uint256 k; k < fl.count; ++k) {
            uint256 bal = IERC20(fl.tokens[k]).balanceOf(address(this));
            uint256 expected = fl.before[k] + fl.net[k];
            if (bal != expected) revert MarketImbalancedBatch(fl.tokens[k], expected, bal);
        }
        _payOut(orders, tot, fl);
        if (tot.fee.length != 0) _payFees(intervalId, orders, tot.fee, fl);
        // For a payment token, net[k] is now its dust; WATT (k = 0) keeps none: every Wh sold is
        // bought (the grid's purchases burnt). The balance must be exactly the dust above where it started.
        for (uint256 k; k < fl.count; ++k) {
            address token = fl.tokens[k];
            uint256 bal = IERC20(token).balanceOf(address(this));
            uint256 dust = k == 0 ? 0 : fl.net[k];
            uint256 expected = fl.before[k] + dust;
            if (bal != expected) revert MarketImbalancedBatch(token, expected, bal);
            if (dust != 0) {
                roundingDust[token] += dust;
                emit RoundingDustKept(token, dust);
            }
        }
    }

    /// @dev The slot of payment `token` in `fl` (added, with its balance before, when new).
    function _slot(Flows memory fl, address token) internal view returns (uint256 k) {
        uint256 nt = fl.count;
        k = _tokenSlot(fl.tokens, nt, token);
        if (k == nt) {
            fl.tokens[nt] = token;
            fl.before[nt] = IERC20(token).balanceOf(address(this));
            fl.count = nt + 1;
        }
    }

    /// @dev One pull per order with a fill: WATT from sellers, money from buyers; the grid's WATT
    ///      minted into the market, its payment pulled from its account.
    function _pullIn(Order[] calldata orders, Totals memory tot) internal returns (Flows memory fl, uint256 volume) {
        uint256 n = orders.length;
        uint256[] memory fillWh = tot.fillWh;
        uint256[] memory money = tot.value;
        IERC20 w = watt;
        fl.tokens = new address[](n + 1);
        fl.net = new uint256[](n + 1);
        fl.before = new uint256[](n + 1);
        fl.tokens[0] = address(w);
        fl.before[0] = w.balanceOf(address(this));
        fl.count = 1;
        uint256[] memory net = fl.net;
        for (uint256 i; i < n; ++i) {
            uint256 f = fillWh[i];
            if (f == 0) continue;
            Order calldata o = orders[i];
            address maker = address(uint160(_word(o, _MAKER)));
            if (_word(o, _SIDE) == SELL) {
                // slither-disable-next-line arbitrary-send-erc20 -- maker signed this order (EIP-712/ERC-1271, _verifyOrders)
                w.safeTransferFrom(maker, address(this), f * WATT_PER_WH);
                net[0] += f * WATT_PER_WH;
            } else {
                address token = address(uint160(_word(o, _TOKEN)));
                uint256 k = _slot(fl, token);
                uint256 m = money[i];
                // No zero-amount transfer (some tokens refuse them): a fill worth nothing moves no money.
                // slither-disable-next-line arbitrary-send-erc20 -- maker signed this order (EIP-712/ERC-1271, _verifyOrders)
                if (m != 0) IERC20(token).safeTransferFrom(maker, address(this), m);
                net[k] += m;
                volume += m;
            }
        }
        if (fillWh[n] != 0) {
            // the grid sold: the energy came from outside the co-op
            IWattToken(address(w)).mint(address(this), fillWh[n] * WATT_PER_WH);
            net[0] += fillWh[n] * WATT_PER_WH;
        }
        if (fillWh[n + 1] != 0) {
            // the grid bought: its account pays like a buyer (the DAO set it and its tariff)
            uint256 k = _slot(fl, tot.grid.token);
            uint256 m = money[n + 1];
            // slither-disable-next-line arbitrary-send-erc20 -- the grid account set by PARAMETER_ROLE, at its own tariff
            if (m != 0) IERC20(tot.grid.token).safeTransferFrom(tot.grid.account, address(this), m);
            net[k] += m;
            volume += m;
        }
    }

    /// @dev One payout per order with a fill: WATT to buyers, money to sellers; the grid's
    ///      purchase burnt, its sale paid to its account.
    function _payOut(Order[] calldata orders, Totals memory tot, Flows memory fl) internal {
        uint256 n = orders.length;
        uint256[] memory fillWh = tot.fillWh;
        uint256[] memory money = tot.value;
        IERC20 w = watt;
        uint256[] memory net = fl.net;
        for (uint256 i; i < n; ++i) {
            uint256 f = fillWh[i];
            if (f == 0) continue;
            Order calldata o = orders[i];
            address maker = address(uint160(_word(o, _MAKER)));
            if (_word(o, _SIDE) == SELL) {
                address token = address(uint160(_word(o, _TOKEN)));
                uint256 m = money[i];
                if (m != 0) IERC20(token).safeTransfer(maker, m);
                // A sell order with a fill traded with a buy order (or the grid) in the same token,
                // so the token has a slot; per token, the sellers' floors never exceed the buyers'
                // ceilings of the same total value, so this does not underflow.
                net[fl.count == 2 ? 1 : _tokenSlot(fl.tokens, fl.count, token)] -= m;
            } else {
                w.safeTransfer(maker, f * WATT_PER_WH);
            }
        }
        if (fillWh[n] != 0) {
            uint256 m = money[n];
            if (m != 0) IERC20(tot.grid.token).safeTransfer(tot.grid.account, m);
            net[_tokenSlot(fl.tokens, fl.count, tot.grid.token)] -= m;
        }
        if (fillWh[n + 1] != 0) IWattToken(address(w)).burn(address(this), fillWh[n + 1] * WATT_PER_WH);
    }

    /// @dev The network fees: per buy order id `floor(fee / 1000)` (rounded in `_checkFills`),
    ///      summed per token and paid to the payee once per token.
    function _payFees(uint64 intervalId, Order[] calldata orders, uint256[] memory fee, Flows memory fl) internal {
        uint256[] memory owed = new uint256[](fl.count);
        for (uint256 i; i < orders.length; ++i) {
            uint256 m = fee[i]; // rounded per order id in _checkFills
            if (m != 0) owed[_tokenSlot(fl.tokens, fl.count, address(uint160(_word(orders[i], _TOKEN))))] += m;
        }
        address payee = networkFeePayee;
        for (uint256 k = 1; k < fl.count; ++k) {
            uint256 m = owed[k];
            if (m == 0) continue;
            fl.net[k] -= m; // fees are part of the buyers' ceilings, beyond what the sellers received
            emit NetworkFeesPaid(intervalId, fl.tokens[k], payee, m);
            IERC20(fl.tokens[k]).safeTransfer(payee, m);
        }
    }

    function _tokenSlot(address[] memory tokens, uint256 nt, address token) internal pure returns (uint256) {
        for (uint256 k = 1; k < nt; ++k) {
            if (tokens[k] == token) return k;
        }
        return nt;
    }
}
