// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IEnergyMarket
/// @notice Batch settlement of EIP-712 signed energy orders, one batch per 15-minute interval.
/// @dev Makers sign `Order`s off chain; the keeper (an account holding `KEEPER_ROLE`) clears each
///      interval off chain and submits one batch of orders plus seller→buyer trades. The contract,
///      not the keeper, guarantees that nobody trades outside what they signed: signature (ECDSA
///      for EOAs, ERC-1271 for contract wallets), interval, expiry, limit price, counterparty and
///      colour preferences, remaining amount and fill-or-kill are all checked here.
///
///      Money is rounded once per order, never per trade (price is payment-token base units per
///      kWh). An order's value is `V = Σ wh * price` over its trades in the batch (all copies of
///      the same order id together); a seller receives `floor(V / 1000)`, a buyer pays
///      `ceil(V / 1000)`. Since every trade's price is at or above the seller's limit, a sell order
///      that sold `w` Wh receives at least `floor(w * limitPrice / 1000)` however the keeper splits
///      it; a buy order that bought `w` Wh pays at most `ceil(w * limitPrice / 1000)`. (Rounded per
///      trade, a keeper could split a sale into trades that each pay 0 with a token of few decimals
///      — issue 16.) Buyers therefore pay at least what sellers receive; the difference, under one
///      base unit per order, is the rounding dust: it stays in the market, is added to
///      `roundingDust[token]` (`RoundingDustKept`) and only PARAMETER_ROLE (the DAO) can send it out
///      with `sweepRoundingDust`.
///
///      The grid (issue 18): the utility is a participant of every interval when the DAO has set
///      `setGrid`. It stands behind the book with a bid at its feed-in price and an offer at its
///      retail price, without limit: a trade whose sell or buy index is `GRID` (0xffff, never an
///      order index) trades with it. The grid buys at most at `feedInPrice` (the seller's WATT is
///      burnt: the energy left the co-op; the grid's account pays), sells at least at
///      `retailPrice` (WATT is minted to the buyer: the energy came from outside; the grid's account
///      is paid). Its money is rounded like one order's. Energy drawn beyond the WATT an owner held
///      (the MeterRegistry's energy debt) is paid with `payEnergyDebt` at the retail price.
///
///      Network fee (optional, per payment token): the buyer of a trade between two households pays
///      `perKwh` (`intraFeederPerKwh` when both makers are in the same feeder, `feederOf`) on top of
///      the price, to `networkFeePayee`; `price + fee` must be within the buyer's limit. Trades with
///      the grid pay none (its tariffs include the network). Each buy order's fee is rounded down
///      once (`floor(Σ wh × fee / 1000)`), its payment (price and fee) up.
interface IEnergyMarket {
    /// @notice A maker's signed order (EIP-712 primary type `Order`, domain "gridcoop"/"1").
    /// @param maker Account that signs and whose tokens move.
    /// @param side 0 = sell WATT, 1 = buy WATT.
    /// @param intervalId 15-minute delivery interval (unix start / 900).
    /// @param amountWh Most energy to trade, in Wh.
    /// @param limitPrice Payment-token base units per kWh: a seller's minimum, a buyer's maximum.
    /// @param paymentToken Allow-listed ERC-20 the buyer pays in.
    /// @param partiallyFillable false = fill-or-kill (the whole amount in one settlement or nothing).
    /// @param expiry Unix time after which the order may not be settled.
    /// @param salt Any number that makes otherwise equal orders distinct.
    /// @param counterparty Only trade with this account (0 = anyone).
    /// @param colour Sell: the source colour offered; buy: the colour required (0 = any).
    struct Order {
        address maker;
        uint8 side;
        uint64 intervalId;
        uint256 amountWh;
        uint256 limitPrice;
        address paymentToken;
        bool partiallyFillable;
        uint64 expiry;
        uint256 salt;
        address counterparty;
        bytes32 colour;
    }

    /// @notice Emitted per trade: the energy transfer proof (seller, buyer, Wh, price, interval).
    ///         It carries no money: money is rounded per order, not per trade (see the contract
    ///         notice); an order's money is `floor`/`ceil` of `Σ wh * pricePerKwh / 1000` over its
    ///         trades.
    event Trade(
        uint64 indexed intervalId,
        address indexed seller,
        address indexed buyer,
        uint256 wh,
        uint256 pricePerKwh,
        address paymentToken,
        bytes32 tradeId
    );
    /// @notice Emitted once per settled interval; `volume` is the payment-token base units the
    ///         buyers paid (the sellers received that less the batch's `RoundingDustKept`).
    event IntervalSettled(uint64 indexed intervalId, uint256 trades, uint256 energyWh, uint256 volume);
    /// @notice Emitted when a batch leaves rounding dust of `token` in the market: what its buyers
    ///         paid (each `ceil` of its order's value) beyond what its sellers received (each `floor`).
    event RoundingDustKept(address indexed token, uint256 amount);
    /// @notice Emitted when PARAMETER_ROLE sends the accumulated rounding dust of `token` to `to`.
    event RoundingDustSwept(address indexed token, address indexed to, uint256 amount);
    /// @notice Emitted once per batch and token with the network fees its buyers paid to `payee`.
    event NetworkFeesPaid(uint64 indexed intervalId, address indexed token, address indexed payee, uint256 amount);
    /// @notice Emitted when energy debt of `owner` was paid by `payer` at the grid's retail price.
    event EnergyDebtPaid(address indexed owner, address indexed payer, uint256 wh, uint256 pricePerKwh, uint256 amount);
    /// @notice Emitted when the grid participant changes (`token` zero: no grid).
    event GridSet(address account, address token, uint256 feedInPrice, uint256 retailPrice, address debtLedger);
    /// @notice Emitted when the network fee of `token` changes.
    event NetworkFeeSet(address indexed token, uint256 perKwh, uint256 intraFeederPerKwh);
    /// @notice Emitted when the network fee payee changes.
    event NetworkFeePayeeSet(address payee);
    /// @notice Emitted when an account's feeder (location group) changes (zero: none).
    event FeederSet(address indexed account, bytes32 feeder);
    /// @notice Emitted when a maker cancels an order on chain.
    event OrderCancelled(bytes32 indexed orderHash, address indexed maker);
    /// @notice Emitted when the payment-token allow-list changes.
    event PaymentTokenSet(address indexed token, bool allowed);
    /// @notice Emitted when the gate-closure delay changes.
    event GateClosureDelaySet(uint64 delay);
    /// @notice Emitted when the maximum batch size changes.
    event MaxBatchSizeSet(uint256 maxBatchSize);

    /// @notice Thrown when the constructor gets a zero admin or WATT address, a zero payment
    ///         token is allow-listed or rounding dust is swept to the zero address.
    error MarketZeroAddress();
    /// @notice Thrown when WATT itself is offered as a payment token (a batch would then move WATT
    ///         both ways and fail its balance checks).
    error MarketWattIsNotMoney(address token);
    /// @notice Thrown when rounding dust would be swept to the market itself (the record would be
    ///         cleared while the tokens stay).
    error MarketInvalidRecipient(address to);
    /// @notice Thrown when a batch size limit of zero is set.
    error MarketInvalidBatchSize();
    /// @notice Thrown when a batch has no orders or no trades.
    error MarketEmptyBatch();
    /// @notice Thrown when a batch has more orders or trades than `maxBatchSize`.
    error MarketBatchTooLarge(uint256 size, uint256 max);
    /// @notice Thrown when the number of signatures is not the number of orders.
    error MarketSignatureCount(uint256 signatures, uint256 orders);
    /// @notice Thrown when settling before the interval's gate closure (`closesAt`).
    error MarketIntervalNotClosed(uint64 intervalId, uint256 closesAt);
    /// @notice Thrown when an interval that was already settled is settled again.
    error MarketIntervalAlreadySettled(uint64 intervalId);
    /// @notice Thrown when order `orderIndex` has a signature that its maker did not make
    ///         (wrong key, other chain or market, high-s, bad v, failed ERC-1271 check).
    error MarketInvalidSignature(uint256 orderIndex);
    /// @notice Thrown when order `orderIndex` expired before this settlement.
    error MarketOrderExpired(uint256 orderIndex, uint64 expiry);
    /// @notice Thrown when order `orderIndex` is for another interval than the batch.
    error MarketWrongInterval(uint256 orderIndex, uint64 orderInterval);
    /// @notice Thrown when order `orderIndex` was cancelled by its maker.
    error MarketOrderIsCancelled(uint256 orderIndex);
    /// @notice Thrown when an order pays in a token that is not allow-listed.
    error MarketPaymentTokenNotAllowed(address token);
    /// @notice Thrown when order `orderIndex` has a side other than 0 (sell) or 1 (buy).
    error MarketInvalidSide(uint256 orderIndex);
    /// @notice Order `orderIndex` has a field that is not a clean value of its type (an address,
    ///         uint64 or bool with high bits set): no correct EIP-712 encoder produces it.
    error MarketMalformedOrder(uint256 orderIndex);
    /// @notice Thrown when trade `tradeIndex` references an order index outside the batch.
    error MarketOrderIndexOutOfRange(uint256 tradeIndex);
    /// @notice Thrown when trade `tradeIndex` does not pair a sell order with a buy order.
    error MarketSideMismatch(uint256 tradeIndex);
    /// @notice Thrown when trade `tradeIndex` pairs orders of different payment tokens.
    error MarketPaymentTokenMismatch(uint256 tradeIndex);
    /// @notice Thrown when trade `tradeIndex` moves zero Wh.
    error MarketZeroTrade(uint256 tradeIndex);
    /// @notice Thrown when trade `tradeIndex` has the same maker on both sides.
    error MarketSelfTrade(uint256 tradeIndex);
    /// @notice Thrown when trade `tradeIndex`'s price is outside order `orderIndex`'s limit.
    error MarketLimitViolated(uint256 tradeIndex, uint256 orderIndex, uint256 price, uint256 limit);
    /// @notice Thrown when trade `tradeIndex` breaks order `orderIndex`'s preferred counterparty.
    error MarketCounterpartyMismatch(uint256 tradeIndex, uint256 orderIndex);
    /// @notice Thrown when trade `tradeIndex`'s seller colour is not the colour the buyer requires.
    error MarketColourMismatch(uint256 tradeIndex);
    /// @notice Thrown when order `orderIndex` would be filled beyond its amount.
    error MarketOverfill(uint256 orderIndex, uint256 fillWh, uint256 remainingWh);
    /// @notice Thrown when fill-or-kill order `orderIndex` would be filled partially.
    error MarketFillOrKill(uint256 orderIndex, uint256 fillWh, uint256 amountWh);
    /// @notice Thrown when the market's balance of `token` after the pulls (or the payouts) is not
    ///         what the batch says: a fee-on-transfer or otherwise hostile token, or a bug.
    error MarketImbalancedBatch(address token, uint256 expected, uint256 actual);
    /// @notice Thrown when a batch trades with the grid, or energy debt is paid, while no grid is set.
    error MarketNoGrid();
    /// @notice Thrown when a grid tariff has a zero retail price or a feed-in price above it.
    error MarketInvalidTariff(uint256 feedInPrice, uint256 retailPrice);
    /// @notice Thrown when an intra-feeder fee is above the fee, or a fee is set with no payee.
    error MarketInvalidFee(uint256 perKwh, uint256 intraFeederPerKwh);
    /// @notice Thrown when feeder lists differ in length.
    error MarketLengthMismatch(uint256 accounts, uint256 feeders);
    /// @notice Thrown when someone other than the maker cancels an order.
    error MarketNotMaker(address caller, address maker);
    /// @notice Thrown when cancelling an order that is already cancelled.
    error MarketAlreadyCancelled(bytes32 orderHash);

    /// @notice Settle interval `intervalId` (keeper only), once, after its gate closure.
    /// @param intervalId The interval every order must be for.
    /// @param orders The orders that trade. The same order may appear more than once; its fills
    ///        are summed over every copy and checked against its amount.
    /// @param signatures One per order: 65-byte (r,s,v) or 64-byte EIP-2098 (r,vs) ECDSA for EOAs,
    ///        anything the wallet's `isValidSignature` accepts for ERC-1271 contracts.
    /// @param trades Packed trades: `sellIndex << 240 | buyIndex << 224 | wh << 128 | pricePerKwh`
    ///        (indices 16 bits, wh 96 bits, price 128 bits); `GRID` (0xffff) as either index is
    ///        a trade with the grid participant.
    function settle(
        uint64 intervalId,
        Order[] calldata orders,
        bytes[] calldata signatures,
        uint256[] calldata trades
    ) external;

    /// @notice The grid participant (`token` zero: none).
    struct GridTerms {
        address account;
        address token;
        uint128 feedInPrice;
        uint128 retailPrice;
        address debtLedger;
    }

    /// @notice Set the grid participant (PARAMETER_ROLE): the utility's `account` (pays for what
    ///         the grid buys, receives what it sells for and the energy debt payments), the allowed
    ///         payment `token` its tariff is in (zero: no grid), its standing bid `feedInPrice` and
    ///         offer `retailPrice` (base units per kWh; feed-in ≤ retail, retail > 0) and the energy
    ///         debt ledger (the MeterRegistry; zero: debt cannot be paid here).
    function setGrid(GridTerms calldata terms) external;

    /// @notice Change only the grid's tariff (PARAMETER_ROLE: what a DAO vote usually changes).
    function setGridTariff(uint128 feedInPrice, uint128 retailPrice) external;

    /// @notice The grid participant.
    function grid() external view returns (GridTerms memory);

    /// @notice Set `token`'s network fee per kWh (PARAMETER_ROLE; intra-feeder ≤ fee; 0/0: none).
    function setNetworkFee(address token, uint128 perKwh, uint128 intraFeederPerKwh) external;

    /// @notice The network fee of `token`: `(perKwh, intraFeederPerKwh)`.
    function networkFee(address token) external view returns (uint128 perKwh, uint128 intraFeederPerKwh);

    /// @notice Set who receives the network fees (PARAMETER_ROLE; not zero, not the market).
    function setNetworkFeePayee(address payee) external;

    /// @notice Put `accounts` in `feeders` (PARAMETER_ROLE; zero: none).
    function setFeeders(address[] calldata accounts, bytes32[] calldata feeders) external;

    /// @notice Pay `wh` of `owner`'s energy debt at the grid's retail price (anyone may pay for
    ///         anyone): `ceil(wh × retailPrice / 1000)` of the grid's token goes from the caller to
    ///         the grid's account and the ledger clears `wh`. Returns the amount paid.
    function payEnergyDebt(address owner, uint256 wh) external returns (uint256 amount);

    /// @notice Cancel `order` on chain; only its maker may. A cancelled order never settles.
    function cancelOrder(Order calldata order) external;

    /// @notice Allow or disallow `token` as payment (PARAMETER_ROLE).
    function setPaymentToken(address token, bool allowed) external;

    /// @notice Set how long before an interval's start it closes for orders (PARAMETER_ROLE).
    function setGateClosureDelay(uint64 delay) external;

    /// @notice Set the most orders (and trades) a batch may have (PARAMETER_ROLE).
    function setMaxBatchSize(uint256 maxBatchSize) external;

    /// @notice Send all rounding dust of `token` kept by the market to `to` (PARAMETER_ROLE, the
    ///         DAO); returns the amount (0: nothing to send, nothing happens).
    function sweepRoundingDust(address token, address to) external returns (uint256 amount);

    /// @notice Rounding dust of `token` kept by the market and not yet swept (base units).
    function roundingDust(address token) external view returns (uint256);

    /// @notice The EIP-712 digest of `order` (its id): what the maker signs.
    function orderHash(Order calldata order) external view returns (bytes32);

    /// @notice Whether the order with id `orderHash` was cancelled.
    function cancelled(bytes32 orderHash) external view returns (bool);

    /// @notice Whether interval `intervalId` was settled.
    function settledIntervals(uint64 intervalId) external view returns (bool);

    /// @notice Unix time when interval `intervalId` closes for orders and may be settled.
    function closesAt(uint64 intervalId) external view returns (uint256);

    /// @notice Whether `token` is an allowed payment token.
    function paymentTokenAllowed(address token) external view returns (bool);
}
