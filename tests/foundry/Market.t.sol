// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase, Vm} from "./utils/Vm.sol";
import {EnergyMarket} from "../../contracts/market/EnergyMarket.sol";
import {IEnergyMarket} from "../../contracts/interfaces/IEnergyMarket.sol";
import {WattToken} from "../../contracts/tokens/WattToken.sol";
import {MarketTestToken} from "../../contracts/market/mocks/MarketTestToken.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @dev Drives EnergyMarket with random batches (valid and invalid) and keeps ghost accounting.
///      Money is rounded per order (issue 16): each settled order is checked against its limit
///      bound — a seller receives at least floor(soldWh × limit / 1000), a buyer pays at most
///      ceil(boughtWh × limit / 1000) — and the dust (buyers' payments less sellers' receipts) is
///      summed, to be compared with what the market holds and records.
contract MarketHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    EnergyMarket public market;
    WattToken public watt;
    MarketTestToken public money;
    uint256[4] internal keys = [uint256(0xA11CE), 0xB0B, 0xCA401, 0xD0D0];
    address[4] public actors;
    uint64 public nextInterval;

    bytes32[] public orderHashes;
    mapping(bytes32 => uint256) public amountOf;
    /// @dev Wh each settled order really moved (from the maker's WATT balance change).
    mapping(bytes32 => uint256) public movedOf;
    uint64[] public settled;

    uint256 public ghostSoldWh;
    uint256 public ghostBoughtWh;
    uint256 public ghostPaid;
    uint256 public ghostReceived;
    uint256 public ghostDust;
    bool public ghostLimitBroken;
    bool public ghostResettled;
    /// @dev A seller got less than floor(soldWh × its limit / 1000) for an order.
    bool public ghostSellerShort;
    /// @dev A buyer paid more than ceil(boughtWh × its limit / 1000) for an order.
    bool public ghostBuyerOver;
    /// @dev An honest split batch (`settleSplit`) was refused.
    bool public ghostSplitRefused;
    uint256 public goodBatches;
    uint256 public splitBatches;
    /// @dev Money moved by the last `settleSplit` (for the unit tests).
    uint256 public lastSellerGot;
    uint256 public lastBuyerPaid;

    constructor(EnergyMarket market_, WattToken watt_, MarketTestToken money_) {
        market = market_;
        watt = watt_;
        money = money_;
        for (uint256 i; i < 4; ++i) {
            actors[i] = vm.addr(keys[i]);
        }
        nextInterval = uint64(block.timestamp / 900) - 1000;
    }

    function _order(uint256 who, uint8 side, uint64 iid, uint256 wh, uint256 price, uint256 salt)
        internal
        view
        returns (IEnergyMarket.Order memory o, bytes memory sig)
    {
        o = IEnergyMarket.Order({
            maker: actors[who],
            side: side,
            intervalId: iid,
            amountWh: wh,
            limitPrice: price,
            paymentToken: address(money),
            partiallyFillable: true,
            expiry: uint64(block.timestamp + 1 days),
            salt: salt,
            counterparty: address(0),
            colour: bytes32(0)
        });
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[who], market.orderHash(o));
        sig = abi.encodePacked(r, s, v);
    }

    struct Plan {
        uint64 iid;
        uint256 seed;
        uint256 sellWh;
        uint256 buyWh;
        uint256 sp;
        uint256 bp;
        uint256 s;
        uint256 b1;
        uint256 b2;
        uint256 first;
        uint256 rest;
        uint256 price;
        uint8 c;
    }

    /// @dev One batch: a seller and two buyers; `cheat % 8` in 0..2 makes it invalid on purpose.
    function settleBatch(uint256 seed, uint96 sellWh, uint96 buyWh, uint16 sellPrice, uint16 spread, uint8 cheat)
        external
    {
        Plan memory p;
        p.iid = nextInterval++;
        p.seed = seed;
        p.sellWh = 1 + (uint256(sellWh) % 5000);
        p.buyWh = 1 + (uint256(buyWh) % 5000);
        p.sp = 1 + (uint256(sellPrice) % 1000);
        p.bp = p.sp + (uint256(spread) % 500);
        p.s = seed % 4;
        p.b1 = (p.s + 1) % 4;
        p.b2 = (p.s + 2) % 4;
        p.first = p.sellWh < p.buyWh ? p.sellWh : p.buyWh;
        p.rest = p.sellWh - p.first;
        if (p.rest > p.buyWh) p.rest = p.buyWh;
        p.price = p.sp + (p.bp - p.sp) / 2;
        p.c = cheat % 8; // 0..2 cheat, otherwise honest
        if (p.c == 0) p.first += 1; // over-fill one side
        if (p.c == 1) p.price = p.bp + 1; // above the buyer's limit
        if (p.c == 2) p.price = p.sp - 1; // below the seller's limit
        (IEnergyMarket.Order[] memory orders, bytes[] memory sigs) = _orders(p);
        uint256[] memory trades = new uint256[](p.rest > 0 ? 2 : 1);
        trades[0] = (uint256(1) << 224) | (p.first << 128) | p.price;
        if (p.rest > 0) trades[1] = (uint256(2) << 224) | (p.rest << 128) | p.price;
        _exec(p, orders, sigs, trades);
    }

    function _orders(Plan memory p) internal view returns (IEnergyMarket.Order[] memory orders, bytes[] memory sigs) {
        orders = new IEnergyMarket.Order[](3);
        sigs = new bytes[](3);
        (orders[0], sigs[0]) = _order(p.s, 0, p.iid, p.sellWh, p.sp, p.seed);
        (orders[1], sigs[1]) = _order(p.b1, 1, p.iid, p.buyWh, p.bp, p.seed + 1);
        (orders[2], sigs[2]) = _order(p.b2, 1, p.iid, p.buyWh, p.bp, p.seed + 2);
    }

    function _exec(Plan memory p, IEnergyMarket.Order[] memory orders, bytes[] memory sigs, uint256[] memory trades)
        internal
    {
        uint256[4] memory wattBefore;
        uint256[4] memory moneyBefore;
        for (uint256 i; i < 4; ++i) {
            wattBefore[i] = watt.balanceOf(actors[i]);
            moneyBefore[i] = money.balanceOf(actors[i]);
        }
        try market.settle(p.iid, orders, sigs, trades) {
            if (p.c == 1 || p.c == 2) ghostLimitBroken = true;
            ++goodBatches;
            settled.push(p.iid);
            uint256[3] memory moved = [
                (wattBefore[p.s] - watt.balanceOf(actors[p.s])) / 1e15,
                (watt.balanceOf(actors[p.b1]) - wattBefore[p.b1]) / 1e15,
                (watt.balanceOf(actors[p.b2]) - wattBefore[p.b2]) / 1e15
            ];
            for (uint256 k; k < 3; ++k) {
                bytes32 h = market.orderHash(orders[k]);
                orderHashes.push(h);
                amountOf[h] = orders[k].amountWh;
                movedOf[h] += moved[k];
            }
            ghostSoldWh += moved[0];
            ghostBoughtWh += moved[1] + moved[2];
            uint256 got = money.balanceOf(actors[p.s]) - moneyBefore[p.s];
            uint256 paid1 = moneyBefore[p.b1] - money.balanceOf(actors[p.b1]);
            uint256 paid2 = moneyBefore[p.b2] - money.balanceOf(actors[p.b2]);
            _checkBounds(got, moved[0], p.sp, paid1, moved[1], p.bp);
            if (paid2 > _ceilDiv(moved[2] * p.bp)) ghostBuyerOver = true;
            ghostReceived += got;
            ghostPaid += paid1 + paid2;
            ghostDust += paid1 + paid2 - got;
        } catch {}
    }

    function _ceilDiv(uint256 v) internal pure returns (uint256) {
        return (v + 999) / 1000;
    }

    function _checkBounds(uint256 got, uint256 soldWh, uint256 sellLimit, uint256 paid, uint256 boughtWh, uint256 buyLimit)
        internal
    {
        if (got < soldWh * sellLimit / 1000) ghostSellerShort = true;
        if (paid > _ceilDiv(boughtWh * buyLimit)) ghostBuyerOver = true;
    }

    /// @dev The attack of issue 16 and its variant through copies: one sale of `totalWh` Wh split
    ///      into up to 31 trades of (almost) equal size at one small price, so that per trade the
    ///      money would round to 0. With `copies` odd the sell order appears once per trade (the
    ///      same id repeated in the batch) instead of once. An honest batch: it must settle, the
    ///      seller get exactly floor(V / 1000) and the buyer pay exactly ceil(V / 1000).
    struct Split {
        uint64 iid;
        uint256 s;
        uint256 b;
        uint256 total;
        uint256 k;
        uint256 price;
        uint256 sellLimit;
        uint256 buyLimit;
        bool dup;
        uint256 sellerBefore;
        uint256 buyerBefore;
    }

    function settleSplit(uint256 seed, uint16 totalWh, uint8 pieces, uint8 price, uint8 spread, uint8 copies)
        public
    {
        Split memory p;
        p.iid = nextInterval++;
        p.s = seed % 4;
        p.b = (p.s + 1) % 4;
        p.total = uint256(totalWh) % 2001;
        if (p.total == 0) p.total = 1;
        p.k = 1 + (uint256(pieces) % 31);
        if (p.k > p.total) p.k = p.total;
        p.price = 1 + (uint256(price) % 60);
        p.sellLimit = p.price - (p.price > 1 ? uint256(spread) % p.price : 0);
        p.buyLimit = p.price + (uint256(spread) % 7);
        p.dup = copies % 2 == 1;
        (IEnergyMarket.Order[] memory orders, bytes[] memory sigs) = _splitOrders(p, seed);
        uint256[] memory trades = new uint256[](p.k);
        uint256 q = p.total / p.k;
        uint256 r = p.total % p.k;
        for (uint256 t; t < p.k; ++t) {
            uint256 wh = t < r ? q + 1 : q; // every piece q or q + 1 Wh
            trades[t] = ((p.dup ? 1 + t : 1) << 240) | (wh << 128) | p.price;
        }
        p.sellerBefore = money.balanceOf(actors[p.s]);
        p.buyerBefore = money.balanceOf(actors[p.b]);
        try market.settle(p.iid, orders, sigs, trades) {
            _recordSplit(p, market.orderHash(orders[1]), market.orderHash(orders[0]));
        } catch {
            ghostSplitRefused = true;
        }
    }

    /// @dev Order 0 buys, order 1 sells; with `dup` the sell order is repeated once per trade.
    function _splitOrders(Split memory p, uint256 seed)
        internal
        view
        returns (IEnergyMarket.Order[] memory orders, bytes[] memory sigs)
    {
        uint256 n = p.dup ? p.k + 1 : 2;
        orders = new IEnergyMarket.Order[](n);
        sigs = new bytes[](n);
        (orders[0], sigs[0]) = _order(p.b, 1, p.iid, p.total, p.buyLimit, seed);
        uint256 sellSalt;
        unchecked {
            sellSalt = seed + 1;
        }
        (orders[1], sigs[1]) = _order(p.s, 0, p.iid, p.total, p.sellLimit, sellSalt);
        for (uint256 c = 2; c < n; ++c) {
            (orders[c], sigs[c]) = (orders[1], sigs[1]);
        }
    }

    function _recordSplit(Split memory p, bytes32 hs, bytes32 hb) internal {
        ++splitBatches;
        settled.push(p.iid);
        uint256 got = money.balanceOf(actors[p.s]) - p.sellerBefore;
        uint256 paid = p.buyerBefore - money.balanceOf(actors[p.b]);
        lastSellerGot = got;
        lastBuyerPaid = paid;
        if (got != p.total * p.price / 1000) ghostSellerShort = true;
        if (paid != _ceilDiv(p.total * p.price)) ghostBuyerOver = true;
        _checkBounds(got, p.total, p.sellLimit, paid, p.total, p.buyLimit);
        orderHashes.push(hs);
        orderHashes.push(hb);
        amountOf[hs] = p.total;
        amountOf[hb] = p.total;
        movedOf[hs] += p.total;
        movedOf[hb] += p.total;
        ghostSoldWh += p.total;
        ghostBoughtWh += p.total;
        ghostReceived += got;
        ghostPaid += paid;
        ghostDust += paid - got;
    }

    /// @dev Try to settle an already settled interval again; must always fail.
    function resettle(uint256 pick) external {
        if (settled.length == 0) return;
        uint64 iid = settled[pick % settled.length];
        IEnergyMarket.Order[] memory orders = new IEnergyMarket.Order[](2);
        bytes[] memory sigs = new bytes[](2);
        (orders[0], sigs[0]) = _order(0, 0, iid, 10, 1, pick);
        (orders[1], sigs[1]) = _order(1, 1, iid, 10, 1, pick + 1);
        uint256[] memory trades = new uint256[](1);
        trades[0] = (uint256(1) << 224) | (uint256(10) << 128) | 1;
        try market.settle(iid, orders, sigs, trades) {
            ghostResettled = true;
        } catch {}
    }

    function orderCount() external view returns (uint256) {
        return orderHashes.length;
    }
}

contract MarketInvariantTest is TestBase {
    EnergyMarket internal market;
    WattToken internal watt;
    MarketTestToken internal money;
    MarketHandler internal handler;
    uint256 internal wattSupply;
    uint256 internal moneySupply;

    function setUp() public {
        vm.warp(1_800_000_000);
        watt = new WattToken(address(this));
        money = new MarketTestToken("Yen", "JPYC");
        market = new EnergyMarket(address(this), IERC20(address(watt)), address(0), 0, 64);
        market.setPaymentToken(address(money), true);
        handler = new MarketHandler(market, watt, money);
        market.grantRole(market.KEEPER_ROLE(), address(handler));
        watt.grantRole(watt.MINTER_ROLE(), address(this));
        for (uint256 i; i < 4; ++i) {
            address a = handler.actors(i);
            watt.mint(a, 1e9 * 1e15);
            money.mint(a, 1e30);
            vm.prank(a);
            watt.approve(address(market), type(uint256).max);
            vm.prank(a);
            money.approve(address(market), type(uint256).max);
        }
        wattSupply = watt.totalSupply();
        moneySupply = money.totalSupply();
        targetContract(address(handler));
        bytes4[] memory sel = new bytes4[](3);
        sel[0] = MarketHandler.settleBatch.selector;
        sel[1] = MarketHandler.resettle.selector;
        sel[2] = MarketHandler.settleSplit.selector;
        targetSelector(address(handler), sel);
    }

    function invariant_energySoldEqualsBought() public view {
        assertEq(handler.ghostSoldWh(), handler.ghostBoughtWh(), "energy sold vs bought");
        assertEq(watt.balanceOf(address(market)), 0, "market holds no WATT");
        uint256 sum;
        for (uint256 i; i < 4; ++i) {
            sum += watt.balanceOf(handler.actors(i));
        }
        assertEq(sum, wattSupply, "WATT conserved");
    }

    /// @dev Per-order rounding: buyers paid exactly what sellers received plus the dust, and the
    ///      market holds exactly the dust it recorded — nothing more, nothing unaccounted.
    function invariant_moneyPaidEqualsReceivedPlusDust() public view {
        assertEq(handler.ghostPaid(), handler.ghostReceived() + handler.ghostDust(), "paid == received + dust");
        assertEq(market.roundingDust(address(money)), handler.ghostDust(), "recorded dust");
        assertEq(money.balanceOf(address(market)), handler.ghostDust(), "market holds only the dust");
        uint256 sum = money.balanceOf(address(market));
        for (uint256 i; i < 4; ++i) {
            sum += money.balanceOf(handler.actors(i));
        }
        assertEq(sum, moneySupply, "money conserved");
    }

    /// @dev However a batch splits an order (trades or copies of it), a seller receives at least
    ///      floor(soldWh × limit / 1000) and a buyer pays at most ceil(boughtWh × limit / 1000).
    function invariant_roundingNeverBreaksALimit() public view {
        assertTrue(!handler.ghostSellerShort(), "seller >= floor(sold x limit / 1000)");
        assertTrue(!handler.ghostBuyerOver(), "buyer <= ceil(bought x limit / 1000)");
        assertTrue(!handler.ghostSplitRefused(), "an honest split batch settles");
    }

    function invariant_noOverfillNoLimitBreak() public view {
        uint256 n = handler.orderCount();
        for (uint256 i; i < n; ++i) {
            bytes32 h = handler.orderHashes(i);
            assertLe(handler.movedOf(h), handler.amountOf(h), "filled <= amount");
        }
        assertTrue(!handler.ghostLimitBroken(), "no trade outside a limit");
    }

    function invariant_settledIntervalNeverSettlesAgain() public view {
        assertTrue(!handler.ghostResettled(), "repeat settle refused");
    }

    /// @dev Issue 16: 1,000 Wh at 30/kWh as 31 trades of 32-33 Wh (each would pay 0 rounded per
    ///      trade): the seller receives floor(30,000 / 1000) = 30, the buyer pays 30.
    function test_settle_splitTrades_sellerPaidPerOrder() public {
        handler.settleSplit(0, 1000, 30, 29, 0, 0);
        assertEq(handler.splitBatches(), 1, "settled");
        assertEq(handler.lastSellerGot(), 30, "seller paid per order");
        assertEq(handler.lastBuyerPaid(), 30, "buyer");
        // the same through 31 copies of the sell order, 999 Wh: 29 to the seller, 30 from the buyer
        handler.settleSplit(0, 999, 30, 29, 0, 1);
        assertEq(handler.lastSellerGot(), 29, "seller paid per order id");
        assertEq(handler.lastBuyerPaid(), 30, "buyer pays the ceiling once");
        assertEq(market.roundingDust(address(money)), 1, "dust recorded");
        assertEq(money.balanceOf(address(market)), 1, "dust held");
    }

    function testFuzz_settle_splitTrades_boundsAndDust(
        uint256 seed,
        uint16 totalWh,
        uint8 pieces,
        uint8 price,
        uint8 spread,
        uint8 copies
    ) public {
        handler.settleSplit(seed, totalWh, pieces, price, spread, copies);
        assertEq(handler.splitBatches(), 1, "an honest split batch settles");
        assertTrue(!handler.ghostSellerShort() && !handler.ghostBuyerOver(), "per-order floor / ceiling");
        assertEq(money.balanceOf(address(market)), handler.ghostDust(), "market holds the dust");
        assertEq(market.roundingDust(address(money)), handler.ghostDust(), "dust recorded");
        assertLe(handler.ghostDust(), 1, "under one unit per order, one buy order");
    }

    function test_sweepRoundingDust_onlyParameterRole() public {
        handler.settleSplit(0, 999, 30, 29, 0, 0);
        assertEq(market.roundingDust(address(money)), 1, "dust");
        address stranger = address(0xBAD);
        bytes32 role = market.PARAMETER_ROLE();
        vm.expectRevert(
            abi.encodeWithSignature("AccessControlUnauthorizedAccount(address,bytes32)", stranger, role)
        );
        vm.prank(stranger);
        market.sweepRoundingDust(address(money), stranger);
        assertEq(market.roundingDust(address(money)), 1, "refused: dust unchanged");
        assertEq(market.sweepRoundingDust(address(money), address(0xDA0)), 1, "swept");
        assertEq(money.balanceOf(address(0xDA0)), 1, "to the DAO's choice");
        assertEq(market.roundingDust(address(money)), 0, "nothing left");
        assertEq(money.balanceOf(address(market)), 0, "market empty");
    }

    function test_goodBatchSettles() public {
        handler.settleBatch(1, 1000, 600, 20, 10, 7);
        assertEq(handler.goodBatches(), 1, "one good batch");
        assertEq(handler.ghostSoldWh(), 1001, "sold (1 + 1000 % 5000)");
        assertEq(handler.ghostBoughtWh(), 1001, "bought");
    }
}
