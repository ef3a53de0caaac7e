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
///      Money for a trade: `money = wh * price / 1000` rounded DOWN to the payment token's base
///      unit (price is payment-token base units per kWh). The buyer pays exactly what the seller
///      receives, so money balances. Rounding down never makes a buyer pay above its limit; for
///      the seller, the order's signed limit is defined with the same rule (a sell order accepts
///      `floor(wh * limitPrice / 1000)` for `wh`), and since `price >= limitPrice` the seller always
///      receives at least that. No party pays a fee and no dust stays in the contract.
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
    event Trade(
        uint64 indexed intervalId,
        address indexed seller,
        address indexed buyer,
        uint256 wh,
        uint256 pricePerKwh,
        address paymentToken,
        bytes32 tradeId
    );
    /// @notice Emitted once per settled interval; `volume` is the sum of payment-token base units moved.
    event IntervalSettled(uint64 indexed intervalId, uint256 trades, uint256 energyWh, uint256 volume);
    /// @notice Emitted when a maker cancels an order on chain.
    event OrderCancelled(bytes32 indexed orderHash, address indexed maker);
    /// @notice Emitted when the payment-token allow-list changes.
    event PaymentTokenSet(address indexed token, bool allowed);
    /// @notice Emitted when the gate-closure delay changes.
    event GateClosureDelaySet(uint64 delay);
    /// @notice Emitted when the maximum batch size changes.
    event MaxBatchSizeSet(uint256 maxBatchSize);

    /// @notice Thrown when the constructor gets a zero admin or WATT address.
    error MarketZeroAddress();
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
    ///        (indices 16 bits, wh 96 bits, price 128 bits).
    function settle(
        uint64 intervalId,
        Order[] calldata orders,
        bytes[] calldata signatures,
        uint256[] calldata trades
    ) external;

    /// @notice Cancel `order` on chain; only its maker may. A cancelled order never settles.
    function cancelOrder(Order calldata order) external;

    /// @notice Allow or disallow `token` as payment (PARAMETER_ROLE).
    function setPaymentToken(address token, bool allowed) external;

    /// @notice Set how long before an interval's start it closes for orders (PARAMETER_ROLE).
    function setGateClosureDelay(uint64 delay) external;

    /// @notice Set the most orders (and trades) a batch may have (PARAMETER_ROLE).
    function setMaxBatchSize(uint256 maxBatchSize) external;

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
