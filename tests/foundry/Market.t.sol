// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase, Vm} from "./utils/Vm.sol";
import {EnergyMarket} from "../../contracts/market/EnergyMarket.sol";
import {IEnergyMarket} from "../../contracts/interfaces/IEnergyMarket.sol";
import {WattToken} from "../../contracts/tokens/WattToken.sol";
import {MarketTestToken} from "../../contracts/market/mocks/MarketTestToken.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @dev Drives EnergyMarket with random batches (valid and invalid) and keeps ghost accounting.
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
    bool public ghostLimitBroken;
    bool public ghostResettled;
    uint256 public goodBatches;

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
            ghostReceived += money.balanceOf(actors[p.s]) - moneyBefore[p.s];
            ghostPaid += moneyBefore[p.b1] - money.balanceOf(actors[p.b1]);
            ghostPaid += moneyBefore[p.b2] - money.balanceOf(actors[p.b2]);
        } catch {}
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
        bytes4[] memory sel = new bytes4[](2);
        sel[0] = MarketHandler.settleBatch.selector;
        sel[1] = MarketHandler.resettle.selector;
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

    function invariant_moneyPaidEqualsReceived() public view {
        assertEq(handler.ghostPaid(), handler.ghostReceived(), "money paid vs received");
        assertEq(money.balanceOf(address(market)), 0, "market holds no money");
        uint256 sum;
        for (uint256 i; i < 4; ++i) {
            sum += money.balanceOf(handler.actors(i));
        }
        assertEq(sum, moneySupply, "money conserved");
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

    function test_goodBatchSettles() public {
        handler.settleBatch(1, 1000, 600, 20, 10, 7);
        assertEq(handler.goodBatches(), 1, "one good batch");
        assertEq(handler.ghostSoldWh(), 1001, "sold (1 + 1000 % 5000)");
        assertEq(handler.ghostBoughtWh(), 1001, "bought");
    }
}
