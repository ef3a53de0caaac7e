// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase, Vm} from "./utils/Vm.sol";
import {MarketBatch} from "./utils/MarketBatch.sol";
import {EnergyMarket} from "../../contracts/market/EnergyMarket.sol";
import {IEnergyMarket} from "../../contracts/interfaces/IEnergyMarket.sol";
import {IMeterRegistry} from "../../contracts/interfaces/IMeterRegistry.sol";
import {IWattToken} from "../../contracts/interfaces/IWattToken.sol";
import {WattToken} from "../../contracts/tokens/WattToken.sol";
import {MeterRegistry} from "../../contracts/meters/MeterRegistry.sol";
import {MarketTestToken} from "../../contracts/market/mocks/MarketTestToken.sol";
import {HostileToken} from "../../contracts/test/HostileToken.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @dev A payment token with chosen decimals (0: a yen-like token, 6: a USDC-like one); free mint.
contract DecToken is ERC20 {
    uint8 internal immutable _dec;

    constructor(string memory name_, uint8 dec_) ERC20(name_, name_) {
        _dec = dec_;
    }

    function decimals() public view override returns (uint8) {
        return _dec;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @dev Shared fixture: WATT (the market holds MINTER_ROLE and BURNER_ROLE), a MeterRegistry as the
///      energy-debt ledger (the market holds DEBT_SETTLER_ROLE), a 0-decimal `yen` and a 6-decimal
///      `usdc`, four households and the grid account (all with keys, funded and approving the
///      market), the grid in yen at feed-in 10 / retail 30 per kWh, a fee payee set, no fee yet.
abstract contract GridFixture is TestBase {
    uint256 internal constant GRID = 0xffff;
    uint256 internal constant WPW = 1e15;
    uint256 internal constant GRID_KEY = 0x6A1D;

    EnergyMarket internal market;
    WattToken internal watt;
    MeterRegistry internal reg;
    DecToken internal yen;
    DecToken internal usdc;
    address internal gridAcct;
    address internal payee = address(0xFEE0);
    uint256[4] internal keys = [uint256(0xA11CE), 0xB0B, 0xCA401, 0xD0D0];
    address[4] internal a;
    mapping(address => uint256) internal keyOf;
    uint64 internal iid;

    function setUp() public virtual {
        vm.warp(1_800_000_000);
        iid = uint64(block.timestamp / 900) - 1000;
        watt = new WattToken(address(this));
        market = new EnergyMarket(address(this), IERC20(address(watt)), address(this), 0, 64);
        watt.grantRole(watt.MINTER_ROLE(), address(market));
        watt.grantRole(watt.BURNER_ROLE(), address(market));
        watt.grantRole(watt.MINTER_ROLE(), address(this));
        reg = new MeterRegistry(address(this), IWattToken(address(watt)));
        reg.grantRole(reg.DEBT_SETTLER_ROLE(), address(market));
        yen = new DecToken("YEN", 0);
        usdc = new DecToken("USDC", 6);
        market.setPaymentToken(address(yen), true);
        market.setPaymentToken(address(usdc), true);
        gridAcct = vm.addr(GRID_KEY);
        keyOf[gridAcct] = GRID_KEY;
        for (uint256 i; i < 4; ++i) {
            a[i] = vm.addr(keys[i]);
            keyOf[a[i]] = keys[i];
            _fund(a[i]);
        }
        _fund(gridAcct);
        market.setNetworkFeePayee(payee);
        market.setGrid(IEnergyMarket.GridTerms(gridAcct, address(yen), 10, 30, address(reg)));
    }

    function _fund(address who) internal {
        watt.mint(who, 1e6 * 1e18);
        yen.mint(who, 1e12);
        usdc.mint(who, 1e15);
        vm.startPrank(who);
        watt.approve(address(market), type(uint256).max);
        yen.approve(address(market), type(uint256).max);
        usdc.approve(address(market), type(uint256).max);
        vm.stopPrank();
    }

    function _o(address maker, uint8 side, uint256 wh, uint256 limit, address token)
        internal
        view
        returns (IEnergyMarket.Order memory)
    {
        return IEnergyMarket.Order({
            maker: maker,
            side: side,
            intervalId: iid,
            amountWh: wh,
            limitPrice: limit,
            paymentToken: token,
            partiallyFillable: true,
            expiry: uint64(block.timestamp + 1 days),
            salt: uint256(keccak256(abi.encode(maker, side, wh, limit, iid))),
            counterparty: address(0),
            colour: bytes32(0)
        });
    }

    function _t(uint256 si, uint256 bi, uint256 wh, uint256 price) internal pure returns (uint256) {
        return (si << 240) | (bi << 224) | (wh << 128) | price;
    }

    function _sigs(IEnergyMarket.Order[] memory os) internal view returns (bytes[] memory sigs) {
        sigs = new bytes[](os.length);
        for (uint256 i; i < os.length; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(keyOf[os[i].maker], market.orderHash(os[i]));
            sigs[i] = abi.encodePacked(r, s, v);
        }
    }

    function _settle(IEnergyMarket.Order[] memory os, uint256[] memory trades) internal {
        bytes[] memory sigs = _sigs(os);
        market.settle(iid, os, sigs, trades);
    }

    function _settleReverts(IEnergyMarket.Order[] memory os, uint256[] memory trades, bytes memory err) internal {
        bytes[] memory sigs = _sigs(os);
        if (err.length == 0) vm.expectRevert();
        else vm.expectRevert(err);
        market.settle(iid, os, sigs, trades);
        assertTrue(!market.settledIntervals(iid), "refused batch leaves the interval open");
    }

    function _limitErr(uint256 t, uint256 idx, uint256 price, uint256 limit) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IEnergyMarket.MarketLimitViolated.selector, t, idx, price, limit);
    }

    function _err(bytes4 sel, uint256 t) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(sel, t);
    }

    function _unauth(address who, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSignature("AccessControlUnauthorizedAccount(address,bytes32)", who, role);
    }

    /// @dev Give `owner` `wh` of energy debt in the registry (mapping `_debtWh` at slot 8, see
    ///      `forge inspect MeterRegistry storageLayout`).
    function _setDebt(address owner, uint256 wh) internal {
        vm.store(address(reg), keccak256(abi.encode(owner, uint256(8))), bytes32(wh));
        assertEq(reg.energyDebtWh(owner), wh, "debt slot");
    }

    function _ceil(uint256 v) internal pure returns (uint256) {
        return (v + 999) / 1000;
    }
}

/// @dev Unit tests of the grid participant, the network fee and energy debt paid on chain.
contract MarketGridTest is GridFixture {
    // ------------------------------------------------------------ grid trades refused by name

    function test_gridSell_belowRetail_refused() public {
        _settleReverts(MarketBatch.orders(_o(a[1], 1, 100, 40, address(yen))), MarketBatch.trades(_t(GRID, 0, 100, 29)), _limitErr(0, GRID, 29, 30));
    }

    function test_gridSell_aboveBuyerLimit_refused() public {
        _settleReverts(MarketBatch.orders(_o(a[1], 1, 100, 35, address(yen))), MarketBatch.trades(_t(GRID, 0, 100, 36)), _limitErr(0, 0, 36, 35));
        // a buyer whose limit is below retail can never trade with the grid
        _settleReverts(MarketBatch.orders(_o(a[1], 1, 100, 29, address(yen))), MarketBatch.trades(_t(GRID, 0, 100, 29)), _limitErr(0, GRID, 29, 30));
        _settleReverts(MarketBatch.orders(_o(a[1], 1, 100, 29, address(yen))), MarketBatch.trades(_t(GRID, 0, 100, 30)), _limitErr(0, 0, 30, 29));
    }

    function test_gridBuy_aboveFeedIn_refused() public {
        _settleReverts(MarketBatch.orders(_o(a[0], 0, 100, 5, address(yen))), MarketBatch.trades(_t(0, GRID, 100, 11)), _limitErr(0, GRID, 11, 10));
    }

    function test_gridBuy_belowSellerLimit_refused() public {
        _settleReverts(MarketBatch.orders(_o(a[0], 0, 100, 8, address(yen))), MarketBatch.trades(_t(0, GRID, 100, 7)), _limitErr(0, 0, 7, 8));
    }

    function test_grid_bothSides_refused() public {
        _settleReverts(
            MarketBatch.orders(_o(a[1], 1, 100, 40, address(yen))),
            MarketBatch.trades(_t(GRID, 0, 1, 30), _t(GRID, GRID, 100, 30)),
            _err(IEnergyMarket.MarketOrderIndexOutOfRange.selector, 1)
        );
    }

    function test_grid_indexOutOfRange_refused() public {
        _settleReverts(
            MarketBatch.orders(_o(a[1], 1, 100, 40, address(yen))),
            MarketBatch.trades(_t(GRID, 1, 100, 30)),
            _err(IEnergyMarket.MarketOrderIndexOutOfRange.selector, 0)
        );
    }

    function test_grid_wrongSide_refused() public {
        // the grid sells to a sell order / buys from a buy order
        _settleReverts(
            MarketBatch.orders(_o(a[0], 0, 100, 1, address(yen))),
            MarketBatch.trades(_t(GRID, 0, 100, 30)),
            _err(IEnergyMarket.MarketSideMismatch.selector, 0)
        );
        _settleReverts(
            MarketBatch.orders(_o(a[1], 1, 100, 40, address(yen))),
            MarketBatch.trades(_t(0, GRID, 100, 10)),
            _err(IEnergyMarket.MarketSideMismatch.selector, 0)
        );
    }

    function test_grid_noGridSet_refused() public {
        market.setGrid(IEnergyMarket.GridTerms(address(0), address(0), 0, 0, address(0)));
        assertTrue(market.grid().token == address(0), "no grid");
        _settleReverts(
            MarketBatch.orders(_o(a[1], 1, 100, 40, address(yen))), MarketBatch.trades(_t(GRID, 0, 100, 30)), abi.encodeWithSelector(IEnergyMarket.MarketNoGrid.selector)
        );
        _settleReverts(
            MarketBatch.orders(_o(a[0], 0, 100, 1, address(yen))), MarketBatch.trades(_t(0, GRID, 100, 10)), abi.encodeWithSelector(IEnergyMarket.MarketNoGrid.selector)
        );
        vm.expectRevert(IEnergyMarket.MarketNoGrid.selector);
        market.setGridTariff(1, 2);
    }

    function test_grid_tokenMismatch_refused() public {
        _settleReverts(
            MarketBatch.orders(_o(a[1], 1, 100, 40, address(usdc))),
            MarketBatch.trades(_t(GRID, 0, 100, 30)),
            _err(IEnergyMarket.MarketPaymentTokenMismatch.selector, 0)
        );
        _settleReverts(
            MarketBatch.orders(_o(a[0], 0, 100, 1, address(usdc))),
            MarketBatch.trades(_t(0, GRID, 100, 10)),
            _err(IEnergyMarket.MarketPaymentTokenMismatch.selector, 0)
        );
    }

    function test_grid_colour() public {
        IEnergyMarket.Order memory o = _o(a[1], 1, 100, 40, address(yen));
        o.colour = "solar";
        _settleReverts(MarketBatch.orders(o), MarketBatch.trades(_t(GRID, 0, 100, 30)), _err(IEnergyMarket.MarketColourMismatch.selector, 0));
        o.colour = "grid";
        _settle(MarketBatch.orders(o), MarketBatch.trades(_t(GRID, 0, 100, 30)));
        assertEq(watt.balanceOf(a[1]), 1e6 * 1e18 + 100 * WPW, "colour grid trades");
    }

    function test_grid_counterparty() public {
        IEnergyMarket.Order memory o = _o(a[1], 1, 100, 40, address(yen));
        o.counterparty = a[2];
        _settleReverts(MarketBatch.orders(o), MarketBatch.trades(_t(GRID, 0, 100, 30)), abi.encodeWithSelector(IEnergyMarket.MarketCounterpartyMismatch.selector, 0, 0));
        IEnergyMarket.Order memory s = _o(a[0], 0, 100, 1, address(yen));
        s.counterparty = a[2];
        _settleReverts(MarketBatch.orders(s), MarketBatch.trades(_t(0, GRID, 100, 10)), abi.encodeWithSelector(IEnergyMarket.MarketCounterpartyMismatch.selector, 0, 0));
        // counterparty = the grid account is the grid
        o.counterparty = gridAcct;
        s.counterparty = gridAcct;
        _settle(MarketBatch.orders(o, s), MarketBatch.trades(_t(GRID, 0, 100, 30), _t(1, GRID, 100, 10)));
        assertTrue(market.settledIntervals(iid), "settled");
    }

    function test_grid_selfTrade_gridAccountOwnOrder_refused() public {
        _settleReverts(
            MarketBatch.orders(_o(gridAcct, 1, 100, 40, address(yen))),
            MarketBatch.trades(_t(GRID, 0, 100, 30)),
            _err(IEnergyMarket.MarketSelfTrade.selector, 0)
        );
        _settleReverts(
            MarketBatch.orders(_o(gridAcct, 0, 100, 1, address(yen))),
            MarketBatch.trades(_t(0, GRID, 100, 10)),
            _err(IEnergyMarket.MarketSelfTrade.selector, 0)
        );
    }

    function test_grid_zeroWh_refused() public {
        _settleReverts(
            MarketBatch.orders(_o(a[1], 1, 100, 40, address(yen))), MarketBatch.trades(_t(GRID, 0, 0, 30)), _err(IEnergyMarket.MarketZeroTrade.selector, 0)
        );
        _settleReverts(
            MarketBatch.orders(_o(a[0], 0, 100, 1, address(yen))), MarketBatch.trades(_t(0, GRID, 0, 10)), _err(IEnergyMarket.MarketZeroTrade.selector, 0)
        );
    }

    function test_grid_overfill_refused() public {
        _settleReverts(
            MarketBatch.orders(_o(a[1], 1, 100, 40, address(yen))),
            MarketBatch.trades(_t(GRID, 0, 60, 30), _t(GRID, 0, 41, 30)),
            abi.encodeWithSelector(IEnergyMarket.MarketOverfill.selector, 0, 101, 100)
        );
    }

    /// @dev The grid account short of allowance or balance: the whole batch (with an order↔order
    ///      trade before it) reverts and nothing moves.
    function test_grid_accountShort_wholeBatchReverts() public {
        IEnergyMarket.Order[] memory os = new IEnergyMarket.Order[](3);
        os[0] = _o(a[0], 0, 200, 5, address(yen));
        os[1] = _o(a[1], 1, 100, 40, address(yen));
        os[2] = _o(a[2], 0, 100, 5, address(yen));
        uint256[] memory ts = MarketBatch.trades(_t(0, 1, 100, 20), _t(2, GRID, 100, 10));
        uint256 supply = watt.totalSupply();
        vm.prank(gridAcct);
        yen.approve(address(market), 0);
        _settleReverts(os, ts, "");
        vm.prank(gridAcct);
        yen.approve(address(market), type(uint256).max);
        uint256 bal = yen.balanceOf(gridAcct);
        vm.prank(gridAcct);
        yen.transfer(address(0xdead), bal);
        _settleReverts(os, ts, "");
        assertEq(watt.totalSupply(), supply, "nothing burnt");
        assertEq(watt.balanceOf(a[0]), 1e6 * 1e18, "seller keeps WATT");
        assertEq(watt.balanceOf(a[2]), 1e6 * 1e18, "grid seller keeps WATT");
        assertEq(yen.balanceOf(a[1]), 1e12, "buyer keeps money");
        assertEq(yen.balanceOf(address(market)), 0, "market empty");
        assertEq(market.roundingDust(address(yen)), 0, "no dust");
        // and once the grid can pay, the same batch goes through
        vm.prank(address(0xdead));
        yen.transfer(gridAcct, bal);
        _settle(os, ts);
        assertEq(yen.balanceOf(gridAcct), bal - 1, "grid paid ceil(100 x 10 / 1000) = 1");
    }

    /// @dev The market without MINTER_ROLE / BURNER_ROLE: grid trades revert, nothing moves.
    function test_grid_marketWithoutWattRoles_reverts() public {
        watt.revokeRole(watt.MINTER_ROLE(), address(market));
        _settleReverts(
            MarketBatch.orders(_o(a[1], 1, 100, 40, address(yen))),
            MarketBatch.trades(_t(GRID, 0, 100, 30)),
            _unauth(address(market), watt.MINTER_ROLE())
        );
        watt.revokeRole(watt.BURNER_ROLE(), address(market));
        _settleReverts(
            MarketBatch.orders(_o(a[0], 0, 100, 1, address(yen))), MarketBatch.trades(_t(0, GRID, 100, 10)), _unauth(address(market), watt.BURNER_ROLE())
        );
    }

    // ------------------------------------------------------------ supply and money, exactly

    function test_gridSell_mintsExactly_gridPaidFloor() public {
        uint256 supply = watt.totalSupply();
        IEnergyMarket.Order memory b = _o(a[1], 1, 1001, 40, address(yen));
        // 333 @ 31 + 668 @ 30 = 10,323 + 20,040 = 30,363 -> buyer pays 31, grid gets 30, dust 1
        _settle(MarketBatch.orders(b), MarketBatch.trades(_t(GRID, 0, 333, 31), _t(GRID, 0, 668, 30)));
        assertEq(watt.totalSupply(), supply + 1001 * WPW, "minted exactly the Wh sold by the grid");
        assertEq(watt.balanceOf(a[1]), 1e6 * 1e18 + 1001 * WPW, "to the buyer");
        assertEq(watt.balanceOf(address(market)), 0, "market keeps no WATT");
        assertEq(yen.balanceOf(a[1]), 1e12 - 31, "buyer pays the ceiling");
        assertEq(yen.balanceOf(gridAcct), 1e12 + 30, "grid account paid the floor");
        assertEq(yen.balanceOf(address(market)), 1, "dust held");
        assertEq(market.roundingDust(address(yen)), 1, "dust recorded");
    }

    function test_gridBuy_burnsExactly_gridPaysCeil() public {
        uint256 supply = watt.totalSupply();
        IEnergyMarket.Order memory s = _o(a[0], 0, 1001, 3, address(yen));
        // 500 @ 9 + 501 @ 10 = 4,500 + 5,010 = 9,510 -> grid pays 10, seller gets 9, dust 1
        _settle(MarketBatch.orders(s), MarketBatch.trades(_t(0, GRID, 500, 9), _t(0, GRID, 501, 10)));
        assertEq(watt.totalSupply(), supply - 1001 * WPW, "burnt exactly the Wh bought by the grid");
        assertEq(watt.balanceOf(a[0]), 1e6 * 1e18 - 1001 * WPW, "from the seller");
        assertEq(watt.balanceOf(address(market)), 0, "market keeps no WATT");
        assertEq(yen.balanceOf(gridAcct), 1e12 - 10, "grid account pays the ceiling");
        assertEq(yen.balanceOf(a[0]), 1e12 + 9, "seller paid the floor");
        assertEq(market.roundingDust(address(yen)), 1, "dust recorded");
        assertEq(yen.balanceOf(address(market)), 1, "dust held");
    }

    /// @dev One batch, 0-decimal token: split order↔order trades with intra (2) and inter (5)
    ///      feeder fees, the grid selling to two buyers and buying from a seller. Every base unit
    ///      computed by hand: buyers' ceilings (14 + 26) + grid's ceiling (5) = 45 = sellers'
    ///      floors (17 + 4) + grid's floor (18) + fees (1 + 1) + dust (4).
    function test_conservation_zeroDecimals_mixedBatch() public {
        market.setNetworkFee(address(yen), 5, 2);
        _feeders();
        IEnergyMarket.Order[] memory os = new IEnergyMarket.Order[](4);
        os[0] = _o(a[0], 0, 1000, 12, address(yen));
        os[1] = _o(a[1], 1, 700, 40, address(yen));
        os[2] = _o(a[2], 1, 900, 45, address(yen));
        os[3] = _o(a[3], 0, 500, 5, address(yen));
        uint256[] memory ts = new uint256[](7);
        ts[0] = _t(0, 1, 333, 17); // intra: 5,661 + fee 666
        ts[1] = _t(0, 1, 334, 17); // intra: 5,678 + fee 668
        ts[2] = _t(0, 2, 333, 20); // inter: 6,660 + fee 1,665
        ts[3] = _t(GRID, 2, 567, 31); // 17,577
        ts[4] = _t(GRID, 1, 33, 30); // 990
        ts[5] = _t(3, GRID, 499, 9); // 4,491
        ts[6] = _t(3, GRID, 1, 10); // 10
        uint256 supply = watt.totalSupply();
        _settle(os, ts);
        assertEq(watt.totalSupply(), supply + 600 * WPW - 500 * WPW, "minted 600, burnt 500");
        assertEq(watt.balanceOf(address(market)), 0, "no WATT kept");
        assertEq(watt.balanceOf(a[1]), 1e6 * 1e18 + 700 * WPW, "B got 700 Wh");
        assertEq(watt.balanceOf(a[2]), 1e6 * 1e18 + 900 * WPW, "C got 900 Wh");
        assertEq(yen.balanceOf(a[0]), 1e12 + 17, "A: floor(17,999 / 1000)");
        assertEq(yen.balanceOf(a[1]), 1e12 - 14, "B: ceil(13,663 / 1000)");
        assertEq(yen.balanceOf(a[2]), 1e12 - 26, "C: ceil(25,902 / 1000)");
        assertEq(yen.balanceOf(a[3]), 1e12 + 4, "D: floor(4,501 / 1000)");
        assertEq(yen.balanceOf(gridAcct), 1e12 + 18 - 5, "grid: floor(18,567/1000) - ceil(4,501/1000)");
        assertEq(yen.balanceOf(payee), 2, "fees: floor(1,334/1000) + floor(1,665/1000)");
        assertEq(yen.balanceOf(address(market)), 4, "dust held");
        assertEq(market.roundingDust(address(yen)), 4, "dust recorded");
    }

    function _feeders() internal {
        address[] memory acc = new address[](3);
        bytes32[] memory f = new bytes32[](3);
        (acc[0], acc[1], acc[2]) = (a[0], a[1], a[2]);
        (f[0], f[1], f[2]) = (bytes32("f1"), bytes32("f1"), bytes32("f2"));
        market.setFeeders(acc, f);
    }

    struct Mix {
        uint256 w0;
        uint256 w1;
        uint256 w2;
        uint256 w3;
        uint256 w4;
        uint256 w5;
        uint256 w6;
        uint256 feedIn;
        uint256 retail;
        uint256 fee;
        uint256 intra;
        uint256 p01;
        uint256 p2;
        uint256 p3;
        uint256 p4;
        uint256 p5;
        uint256 p6;
    }

    /// @dev The same batch shape in a 6-decimal token with fuzzed sizes, prices, tariff and fees;
    ///      every party's money checked against a per-order floor/ceiling model, to the base unit.
    function testFuzz_conservation_sixDecimals_mixedBatch(uint256 seed) public {
        Mix memory m = _mix(seed);
        market.setGrid(IEnergyMarket.GridTerms(gridAcct, address(usdc), uint128(m.feedIn), uint128(m.retail), address(reg)));
        market.setNetworkFee(address(usdc), uint128(m.fee), uint128(m.intra));
        _feeders();
        IEnergyMarket.Order[] memory os = new IEnergyMarket.Order[](4);
        os[0] = _o(a[0], 0, m.w0 + m.w1 + m.w2, m.p01 < m.p2 ? m.p01 : m.p2, address(usdc));
        os[1] = _o(a[1], 1, m.w0 + m.w1 + m.w4, _max(m.p01 + m.intra, m.p4), address(usdc));
        os[2] = _o(a[2], 1, m.w2 + m.w3, _max(m.p2 + m.fee, m.p3), address(usdc));
        os[3] = _o(a[3], 0, m.w5 + m.w6, m.p5 < m.p6 ? m.p5 : m.p6, address(usdc));
        uint256[] memory ts = new uint256[](7);
        ts[0] = _t(0, 1, m.w0, m.p01);
        ts[1] = _t(0, 1, m.w1, m.p01);
        ts[2] = _t(0, 2, m.w2, m.p2);
        ts[3] = _t(GRID, 2, m.w3, m.p3);
        ts[4] = _t(GRID, 1, m.w4, m.p4);
        ts[5] = _t(3, GRID, m.w5, m.p5);
        ts[6] = _t(3, GRID, m.w6, m.p6);
        uint256 supply = watt.totalSupply();
        _settle(os, ts);
        assertEq(watt.totalSupply() + (m.w5 + m.w6) * WPW, supply + (m.w3 + m.w4) * WPW, "supply");
        assertEq(watt.balanceOf(address(market)), 0, "no WATT kept");
        _checkMix(m);
    }

    function _max(uint256 x, uint256 y) internal pure returns (uint256) {
        return x > y ? x : y;
    }

    function _mix(uint256 seed) internal pure returns (Mix memory m) {
        uint256 r = seed;
        m.w0 = bound(r % 10007, 1, 10_000);
        m.w1 = bound((r >> 16) % 10007, 1, 10_000);
        m.w2 = bound((r >> 32) % 10007, 1, 10_000);
        m.w3 = bound((r >> 48) % 10007, 1, 10_000);
        m.w4 = bound((r >> 64) % 10007, 1, 10_000);
        m.w5 = bound((r >> 80) % 10007, 1, 10_000);
        m.w6 = bound((r >> 96) % 10007, 1, 10_000);
        r = uint256(keccak256(abi.encode(seed)));
        m.feedIn = (r % 1_000_000);
        m.retail = bound((r >> 32) % 2_000_001, _max(m.feedIn, 1), 2_000_000);
        m.fee = (r >> 64) % 100_000;
        m.intra = m.fee == 0 ? 0 : (r >> 96) % (m.fee + 1);
        m.p01 = 1 + (r >> 128) % 1_000_000;
        m.p2 = 1 + (r >> 160) % 1_000_000;
        m.p3 = m.retail + (r >> 192) % 1000;
        m.p4 = m.retail + (r >> 200) % 1000;
        m.p5 = (r >> 208) % (m.feedIn + 1);
        m.p6 = (r >> 232) % (m.feedIn + 1);
    }

    function _checkMix(Mix memory m) internal view {
        uint256 vA = (m.w0 + m.w1) * m.p01 + m.w2 * m.p2;
        uint256 fB = (m.w0 + m.w1) * m.intra;
        uint256 fC = m.w2 * m.fee;
        uint256 vB = (m.w0 + m.w1) * m.p01 + fB + m.w4 * m.p4;
        uint256 vC = m.w2 * m.p2 + fC + m.w3 * m.p3;
        uint256 vD = m.w5 * m.p5 + m.w6 * m.p6;
        uint256 vGs = m.w3 * m.p3 + m.w4 * m.p4;
        uint256 paid = _ceil(vB) + _ceil(vC) + _ceil(vD);
        uint256 got = vA / 1000 + vD / 1000 + vGs / 1000 + fB / 1000 + fC / 1000;
        assertEq(usdc.balanceOf(a[0]), 1e15 + vA / 1000, "A floor");
        assertEq(usdc.balanceOf(a[1]), 1e15 - _ceil(vB), "B ceil");
        assertEq(usdc.balanceOf(a[2]), 1e15 - _ceil(vC), "C ceil");
        assertEq(usdc.balanceOf(a[3]), 1e15 + vD / 1000, "D floor");
        assertEq(usdc.balanceOf(gridAcct) + _ceil(vD), 1e15 + vGs / 1000, "grid: floor of sales - ceil of purchases");
        assertEq(usdc.balanceOf(payee), fB / 1000 + fC / 1000, "fees: per-order floors");
        assertEq(usdc.balanceOf(address(market)), paid - got, "dust held");
        assertEq(market.roundingDust(address(usdc)), paid - got, "dust recorded");
        assertLe(paid - got, 7, "under one unit per rounding");
    }

    // ------------------------------------------------------------ network fee

    function test_fee_priceplusFeeAboveLimit_refused() public {
        market.setNetworkFee(address(yen), 5, 2);
        IEnergyMarket.Order[] memory os = MarketBatch.orders(_o(a[0], 0, 100, 10, address(yen)), _o(a[2], 1, 100, 30, address(yen)));
        _settleReverts(os, MarketBatch.trades(_t(0, 1, 100, 26)), _limitErr(0, 1, 31, 30));
        // at 25 it fits exactly: 25 + 5 = 30
        _settle(os, MarketBatch.trades(_t(0, 1, 100, 25)));
        assertEq(yen.balanceOf(a[2]), 1e12 - 3, "buyer: ceil(100 x 30 / 1000)");
    }

    function test_fee_intraVsInterFeeder() public {
        market.setNetworkFee(address(yen), 50, 20);
        _feeders(); // a0, a1: f1; a2: f2
        IEnergyMarket.Order[] memory os = new IEnergyMarket.Order[](3);
        os[0] = _o(a[0], 0, 2000, 10, address(yen));
        os[1] = _o(a[1], 1, 1000, 100, address(yen));
        os[2] = _o(a[2], 1, 1000, 100, address(yen));
        _settle(os, MarketBatch.trades(_t(0, 1, 1000, 10), _t(0, 2, 1000, 10)));
        assertEq(yen.balanceOf(a[1]), 1e12 - 30, "same feeder: 10 + 20");
        assertEq(yen.balanceOf(a[2]), 1e12 - 60, "other feeder: 10 + 50");
        assertEq(yen.balanceOf(payee), 70, "payee: 20 + 50");
        assertEq(yen.balanceOf(a[0]), 1e12 + 20, "seller: the price only");
        // the intra rate is within the limit where the full rate is not
        iid++;
        os[0] = _o(a[0], 0, 2000, 10, address(yen));
        os[1] = _o(a[1], 1, 1000, 30, address(yen));
        os[2] = _o(a[2], 1, 1000, 30, address(yen));
        _settleReverts(os, MarketBatch.trades(_t(0, 1, 1000, 10), _t(0, 2, 1000, 10)), _limitErr(1, 2, 60, 30));
        _settle(os, MarketBatch.trades(_t(0, 1, 1000, 10)));
    }

    function test_fee_zeroFeederNeverSame() public {
        market.setNetworkFee(address(yen), 50, 20);
        // a0 and a3 have no feeder (zero): not "the same feeder"
        _settle(MarketBatch.orders(_o(a[0], 0, 1000, 10, address(yen)), _o(a[3], 1, 1000, 100, address(yen))), MarketBatch.trades(_t(0, 1, 1000, 10)));
        assertEq(yen.balanceOf(a[3]), 1e12 - 60, "full rate");
        assertEq(yen.balanceOf(payee), 50, "payee: full rate");
        // explicitly set to zero as well
        address[] memory acc = new address[](2);
        bytes32[] memory f = new bytes32[](2);
        (acc[0], acc[1]) = (a[0], a[3]);
        market.setFeeders(acc, f);
        iid++;
        _settle(MarketBatch.orders(_o(a[0], 0, 1000, 10, address(yen)), _o(a[3], 1, 1000, 100, address(yen))), MarketBatch.trades(_t(0, 1, 1000, 10)));
        assertEq(yen.balanceOf(payee), 100, "still the full rate");
    }

    function test_fee_noneOnGridTrades() public {
        market.setNetworkFee(address(yen), 50, 20);
        IEnergyMarket.Order[] memory os = MarketBatch.orders(_o(a[1], 1, 1000, 30, address(yen)), _o(a[0], 0, 1000, 10, address(yen)));
        _settle(os, MarketBatch.trades(_t(GRID, 0, 1000, 30), _t(1, GRID, 1000, 10)));
        assertEq(yen.balanceOf(payee), 0, "the grid's tariffs include the network");
        assertEq(yen.balanceOf(a[1]), 1e12 - 30, "buyer pays retail only");
    }

    /// @dev Fees are rounded down per buy order: 1.5 + 0.9 units of fee pay 1, not 2.
    function test_fee_payeeGetsPerOrderFloors() public {
        market.setNetworkFee(address(yen), 1, 1);
        IEnergyMarket.Order[] memory os = new IEnergyMarket.Order[](3);
        os[0] = _o(a[0], 0, 2400, 10, address(yen));
        os[1] = _o(a[1], 1, 1500, 100, address(yen));
        os[2] = _o(a[2], 1, 900, 100, address(yen));
        uint256[] memory ts = new uint256[](3);
        ts[0] = _t(0, 1, 700, 10);
        ts[1] = _t(0, 1, 800, 10);
        ts[2] = _t(0, 2, 900, 10);
        vm.recordLogs();
        _settle(os, ts);
        assertEq(yen.balanceOf(payee), 1, "floor(1,500 / 1000) + floor(900 / 1000), not floor(2,400 / 1000)");
        assertEq(yen.balanceOf(a[1]), 1e12 - 17, "B: ceil(16,500 / 1000)");
        assertEq(yen.balanceOf(a[2]), 1e12 - 10, "C: ceil(9,900 / 1000)");
        assertEq(yen.balanceOf(a[0]), 1e12 + 24, "A: floor(24,000 / 1000)");
        assertEq(market.roundingDust(address(yen)), 2, "dust: 27 - 24 - 1");
        assertEq(_feeEvents(), 1, "NetworkFeesPaid once per token and batch");
    }

    function _feeEvents() internal returns (uint256 count) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 topic = IEnergyMarket.NetworkFeesPaid.selector;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics.length != 0 && logs[i].topics[0] == topic) ++count;
        }
    }

    /// @dev The fee, like the money, must be rounded once per order ID, not per copy of the order
    ///      in the batch (issue 16's split, applied to the fee): the same buy order twice, 600 and
    ///      400 Wh at a fee of 1 per kWh, owes the payee floor(1,000 / 1000) = 1.
    function test_fee_roundedPerOrderId_notPerCopy() public {
        market.setNetworkFee(address(yen), 1, 1);
        IEnergyMarket.Order[] memory os = new IEnergyMarket.Order[](3);
        os[0] = _o(a[0], 0, 1000, 10, address(yen));
        os[1] = _o(a[1], 1, 1000, 100, address(yen));
        os[2] = os[1];
        _settle(os, MarketBatch.trades(_t(0, 1, 600, 10), _t(0, 2, 400, 10)));
        assertEq(yen.balanceOf(a[1]), 1e12 - 11, "buyer: ceil(11,000 / 1000), once per id");
        assertEq(yen.balanceOf(a[0]), 1e12 + 10, "seller");
        assertEq(yen.balanceOf(payee), 1, "payee: floor(1,000 / 1000) per order id");
        assertEq(market.roundingDust(address(yen)), 0, "no dust");
    }

    /// @dev A buy order repeated in `copies` copies, each filled by its own trade, with a fee:
    ///      the payee gets floor(ΣF / 1000) and the buyer pays ceil((V + F) / 1000) per order id,
    ///      however the keeper splits it (the SDK's split_money model).
    function testFuzz_fee_copiesRoundedPerId(uint256 total, uint8 copies, uint16 price, uint8 rate) public {
        uint256 k = bound(copies, 1, 20);
        uint256 w = bound(total, k, 5000);
        uint256 p = bound(price, 1, 60);
        uint256 r = bound(rate, 1, 40);
        market.setNetworkFee(address(yen), uint128(r), uint128(r));
        IEnergyMarket.Order[] memory os = new IEnergyMarket.Order[](k + 1);
        os[0] = _o(a[0], 0, w, p, address(yen));
        IEnergyMarket.Order memory b = _o(a[1], 1, w, p + r, address(yen));
        uint256[] memory ts = new uint256[](k);
        for (uint256 i; i < k; ++i) {
            os[i + 1] = b;
            ts[i] = _t(0, i + 1, i + 1 < k ? w / k : w - (w / k) * (k - 1), p);
        }
        _settle(os, ts);
        assertEq(yen.balanceOf(payee), (w * r) / 1000, "payee: floor per order id");
        assertEq(yen.balanceOf(a[1]), 1e12 - _ceil(w * (p + r)), "buyer: ceil per order id");
        assertEq(yen.balanceOf(a[0]), 1e12 + (w * p) / 1000, "seller: floor");
        assertEq(
            market.roundingDust(address(yen)),
            _ceil(w * (p + r)) - (w * p) / 1000 - (w * r) / 1000,
            "dust: the rest"
        );
        assertEq(yen.balanceOf(address(market)), market.roundingDust(address(yen)), "dust held");
    }

    /// @dev The grid account may trade with households as a maker in the same batch as its grid
    ///      trades: it pays as a buyer and as the grid, separately, and the batch balances.
    function test_gridAccount_alsoMakerInSameBatch() public {
        IEnergyMarket.Order[] memory os = new IEnergyMarket.Order[](3);
        os[0] = _o(a[0], 0, 1000, 5, address(yen));
        os[1] = _o(gridAcct, 1, 400, 20, address(yen));
        os[2] = _o(a[1], 1, 500, 30, address(yen));
        uint256[] memory ts = new uint256[](3);
        ts[0] = _t(0, 1, 400, 15); // grid account buys 400 Wh from a0 as a maker: pays 6
        ts[1] = _t(0, GRID, 600, 10); // the grid buys the rest: pays 6
        ts[2] = _t(GRID, 2, 500, 30); // the grid sells to a1: receives 15
        uint256 supply = watt.totalSupply();
        _settle(os, ts);
        assertEq(yen.balanceOf(gridAcct), 1e12 - 6 - 6 + 15, "grid account: maker and grid");
        assertEq(watt.balanceOf(gridAcct), 1e6 * 1e18 + 400 * WPW, "grid account got its maker WATT");
        assertEq(watt.totalSupply(), supply + 500 * WPW - 600 * WPW, "supply");
        assertEq(yen.balanceOf(a[0]), 1e12 + 12, "seller: 6 + 6");
        assertEq(yen.balanceOf(address(market)), 0, "no dust");
    }

    function test_setNetworkFee_refusals() public {
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketInvalidFee.selector, 5, 6));
        market.setNetworkFee(address(yen), 5, 6);
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketInvalidFee.selector, 0, 1));
        market.setNetworkFee(address(yen), 0, 1);
        // a fresh market has no payee: no fee can be set, 0/0 can
        EnergyMarket m2 = new EnergyMarket(address(this), IERC20(address(watt)), address(this), 0, 64);
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketInvalidFee.selector, 5, 0));
        m2.setNetworkFee(address(yen), 5, 0);
        m2.setNetworkFee(address(yen), 0, 0);
        vm.expectRevert(IEnergyMarket.MarketZeroAddress.selector);
        market.setNetworkFeePayee(address(0));
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketInvalidRecipient.selector, address(market)));
        market.setNetworkFeePayee(address(market));
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketLengthMismatch.selector, 1, 0));
        market.setFeeders(new address[](1), new bytes32[](0));
    }

    // ------------------------------------------------------------ setters

    function test_setters_onlyParameterRole() public {
        address s = address(0xBAD);
        bytes32 role = market.PARAMETER_ROLE();
        IEnergyMarket.GridTerms memory g = IEnergyMarket.GridTerms(s, address(yen), 0, 1, address(0));
        vm.expectRevert(_unauth(s, role));
        vm.prank(s);
        market.setGrid(g);
        vm.expectRevert(_unauth(s, role));
        vm.prank(s);
        market.setGridTariff(0, 1000);
        vm.expectRevert(_unauth(s, role));
        vm.prank(s);
        market.setNetworkFee(address(yen), 0, 0);
        vm.expectRevert(_unauth(s, role));
        vm.prank(s);
        market.setNetworkFeePayee(s);
        vm.expectRevert(_unauth(s, role));
        vm.prank(s);
        market.setFeeders(new address[](0), new bytes32[](0));
        // the keeper is not PARAMETER_ROLE either
        EnergyMarket m2 = new EnergyMarket(address(0xDA0), IERC20(address(watt)), s, 0, 64);
        vm.expectRevert(_unauth(s, role));
        vm.prank(s);
        m2.setGrid(g);
        assertTrue(market.grid().account == gridAcct, "unchanged");
        assertTrue(market.networkFeePayee() == payee, "unchanged");
    }

    function test_setGrid_refusals() public {
        vm.expectRevert(IEnergyMarket.MarketZeroAddress.selector);
        market.setGrid(IEnergyMarket.GridTerms(address(0), address(yen), 1, 2, address(0)));
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketInvalidRecipient.selector, address(market)));
        market.setGrid(IEnergyMarket.GridTerms(address(market), address(yen), 1, 2, address(0)));
        DecToken other = new DecToken("X", 2);
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketPaymentTokenNotAllowed.selector, address(other)));
        market.setGrid(IEnergyMarket.GridTerms(gridAcct, address(other), 1, 2, address(0)));
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketPaymentTokenNotAllowed.selector, address(watt)));
        market.setGrid(IEnergyMarket.GridTerms(gridAcct, address(watt), 1, 2, address(0)));
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketInvalidTariff.selector, 0, 0));
        market.setGrid(IEnergyMarket.GridTerms(gridAcct, address(yen), 0, 0, address(0)));
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketInvalidTariff.selector, 3, 2));
        market.setGrid(IEnergyMarket.GridTerms(gridAcct, address(yen), 3, 2, address(0)));
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketInvalidTariff.selector, 3, 2));
        market.setGridTariff(3, 2);
        vm.expectRevert(abi.encodeWithSelector(IEnergyMarket.MarketInvalidTariff.selector, 0, 0));
        market.setGridTariff(0, 0);
        IEnergyMarket.GridTerms memory g = market.grid();
        assertEq(g.feedInPrice, 10, "unchanged feed-in");
        assertEq(g.retailPrice, 30, "unchanged retail");
        market.setGridTariff(7, 7);
        g = market.grid();
        assertEq(g.feedInPrice + g.retailPrice, 14, "feed-in = retail allowed");
        assertEq(uint160(g.debtLedger), uint160(address(reg)), "tariff keeps the ledger");
    }

    // ------------------------------------------------------------ energy debt

    function test_payEnergyDebt_payerForOwner() public {
        _setDebt(a[0], 1000);
        vm.prank(a[1]);
        uint256 amount = market.payEnergyDebt(a[0], 400);
        assertEq(amount, 12, "400 Wh x 30 / 1000");
        assertEq(reg.energyDebtWh(a[0]), 600, "debt reduced");
        assertEq(yen.balanceOf(a[1]), 1e12 - 12, "payer paid");
        assertEq(yen.balanceOf(a[0]), 1e12, "owner untouched");
        assertEq(yen.balanceOf(gridAcct), 1e12 + 12, "to the grid account");
        vm.prank(a[0]);
        market.payEnergyDebt(a[0], 600);
        assertEq(reg.energyDebtWh(a[0]), 0, "cleared");
    }

    function test_payEnergyDebt_zeroAndTooMuch_refused() public {
        _setDebt(a[0], 100);
        vm.expectRevert(abi.encodeWithSelector(IMeterRegistry.MeterRepayExceedsDebt.selector, 0, 100));
        vm.prank(a[0]);
        market.payEnergyDebt(a[0], 0);
        vm.expectRevert(abi.encodeWithSelector(IMeterRegistry.MeterRepayExceedsDebt.selector, 101, 100));
        vm.prank(a[0]);
        market.payEnergyDebt(a[0], 101);
        vm.expectRevert(abi.encodeWithSelector(IMeterRegistry.MeterRepayExceedsDebt.selector, 1, 0));
        vm.prank(a[0]);
        market.payEnergyDebt(a[1], 1);
        assertEq(yen.balanceOf(a[0]), 1e12, "nothing paid");
    }

    function test_payEnergyDebt_noLedgerOrNoGrid_refused() public {
        _setDebt(a[0], 100);
        market.setGrid(IEnergyMarket.GridTerms(gridAcct, address(yen), 10, 30, address(0)));
        vm.expectRevert(IEnergyMarket.MarketNoGrid.selector);
        market.payEnergyDebt(a[0], 10);
        market.setGrid(IEnergyMarket.GridTerms(address(0), address(0), 0, 0, address(reg)));
        vm.expectRevert(IEnergyMarket.MarketNoGrid.selector);
        market.payEnergyDebt(a[0], 10);
        assertEq(reg.energyDebtWh(a[0]), 100, "debt unchanged");
    }

    function test_payEnergyDebt_roundsUp_tinyPrice() public {
        market.setGridTariff(0, 1);
        _setDebt(a[0], 5000);
        vm.prank(a[0]);
        assertEq(market.payEnergyDebt(a[0], 1), 1, "1 Wh at 1/kWh costs 1 unit, not 0");
        vm.prank(a[0]);
        assertEq(market.payEnergyDebt(a[0], 999), 1, "999 Wh: ceil(0.999)");
        vm.prank(a[0]);
        assertEq(market.payEnergyDebt(a[0], 1001), 2, "1001 Wh: ceil(1.001)");
        assertEq(yen.balanceOf(gridAcct), 1e12 + 4, "grid paid the ceilings");
        assertEq(reg.energyDebtWh(a[0]), 2999, "debt");
    }

    /// @dev Paying in pieces never costs the grid: Σ ceil(piece) ≥ ceil(Σ).
    function testFuzz_payEnergyDebt_ceil(uint256 wh, uint128 retail, uint256 split) public {
        wh = bound(wh, 1, 1e8);
        retail = uint128(bound(retail, 1, 1e6));
        split = bound(split, 0, wh);
        market.setGridTariff(0, retail);
        _setDebt(a[0], wh);
        uint256 expect = (wh * retail + 999) / 1000;
        uint256 paid;
        vm.startPrank(a[2]);
        if (split != 0 && split != wh) {
            paid = market.payEnergyDebt(a[0], split);
            paid += market.payEnergyDebt(a[0], wh - split);
        } else {
            paid = market.payEnergyDebt(a[0], wh);
            assertEq(paid, expect, "ceil(wh x retail / 1000)");
        }
        vm.stopPrank();
        assertGe(paid, expect, "pieces pay at least the whole");
        assertGe(paid, 1, "never free");
        assertEq(yen.balanceOf(gridAcct), 1e12 + paid, "grid received");
        assertEq(reg.energyDebtWh(a[0]), 0, "cleared");
    }

    function test_payEnergyDebt_marketWithoutSettlerRole() public {
        _setDebt(a[0], 100);
        reg.revokeRole(reg.DEBT_SETTLER_ROLE(), address(market));
        vm.expectRevert(_unauth(address(market), reg.DEBT_SETTLER_ROLE()));
        vm.prank(a[0]);
        market.payEnergyDebt(a[0], 10);
        assertEq(reg.energyDebtWh(a[0]), 100, "debt unchanged");
        assertEq(yen.balanceOf(a[0]), 1e12, "nothing paid");
    }

    function test_settleEnergyDebt_onlyRole() public {
        _setDebt(a[0], 100);
        bytes32 role = reg.DEBT_SETTLER_ROLE();
        vm.expectRevert(_unauth(a[0], role));
        vm.prank(a[0]);
        reg.settleEnergyDebt(a[0], 100);
        vm.expectRevert(_unauth(address(this), role));
        reg.settleEnergyDebt(a[0], 100);
        assertEq(reg.energyDebtWh(a[0]), 100, "debt unchanged");
    }

    function test_payEnergyDebt_payerShort_revertsDebtKept() public {
        _setDebt(a[0], 100);
        vm.prank(a[1]);
        yen.approve(address(market), 2);
        vm.expectRevert();
        vm.prank(a[1]);
        market.payEnergyDebt(a[0], 100);
        assertEq(reg.energyDebtWh(a[0]), 100, "debt kept when the payment fails");
    }

    // ------------------------------------------------------------ hostile grid token

    function _hostileGrid() internal returns (HostileToken h) {
        h = new HostileToken();
        market.setPaymentToken(address(h), true);
        market.setGrid(IEnergyMarket.GridTerms(gridAcct, address(h), 10, 30, address(reg)));
        for (uint256 i; i < 4; ++i) {
            h.mint(a[i], 1e12);
            vm.prank(a[i]);
            h.approve(address(market), type(uint256).max);
        }
        h.mint(gridAcct, 1e12);
        vm.prank(gridAcct);
        h.approve(address(market), type(uint256).max);
    }

    function test_hostileGridToken_reentrySettleOrPayDebt_refused() public {
        HostileToken h = _hostileGrid();
        _setDebt(a[0], 100);
        IEnergyMarket.Order[] memory os = MarketBatch.orders(_o(a[1], 1, 100, 30, address(h)), _o(a[0], 0, 100, 10, address(h)));
        uint256[] memory ts = MarketBatch.trades(_t(GRID, 0, 100, 30), _t(1, GRID, 100, 10));
        bytes[] memory sigs = _sigs(os);
        // re-enter settle (another interval) and payEnergyDebt from inside the token's transfers
        h.setMode(HostileToken.Mode.Reenter, address(market), abi.encodeCall(market.payEnergyDebt, (a[0], 100)));
        vm.expectRevert(abi.encodeWithSignature("ReentrancyGuardReentrantCall()"));
        market.settle(iid, os, sigs, ts);
        h.setMode(
            HostileToken.Mode.Reenter, address(market), abi.encodeCall(market.settle, (iid - 1, os, sigs, ts))
        );
        vm.expectRevert(abi.encodeWithSignature("ReentrancyGuardReentrantCall()"));
        market.settle(iid, os, sigs, ts);
        vm.expectRevert(abi.encodeWithSignature("ReentrancyGuardReentrantCall()"));
        vm.prank(a[2]);
        market.payEnergyDebt(a[0], 10);
        h.setMode(HostileToken.Mode.ReturnFalse, address(0), "");
        vm.expectRevert(abi.encodeWithSignature("SafeERC20FailedOperation(address)", address(h)));
        market.settle(iid, os, sigs, ts);
        vm.expectRevert(abi.encodeWithSignature("SafeERC20FailedOperation(address)", address(h)));
        vm.prank(a[2]);
        market.payEnergyDebt(a[0], 10);
        assertEq(reg.energyDebtWh(a[0]), 100, "debt unchanged");
        assertTrue(!market.settledIntervals(iid), "not settled");
        // normal again: it settles
        h.setMode(HostileToken.Mode.Normal, address(0), "");
        market.settle(iid, os, sigs, ts);
        assertEq(h.balanceOf(gridAcct), 1e12 + 3 - 1, "grid: +3 -1");
    }

    function test_feeOnTransferGridToken_imbalanced() public {
        MarketTestToken t = new MarketTestToken("Fee", "FEE");
        market.setPaymentToken(address(t), true);
        market.setGrid(IEnergyMarket.GridTerms(gridAcct, address(t), 10, 30, address(reg)));
        t.mint(gridAcct, 1e12);
        vm.prank(gridAcct);
        t.approve(address(market), type(uint256).max);
        t.setMode(2);
        IEnergyMarket.Order[] memory os = MarketBatch.orders(_o(a[0], 0, 100_000, 10, address(t)));
        _settleReverts(
            os,
            MarketBatch.trades(_t(0, GRID, 100_000, 10)),
            abi.encodeWithSelector(IEnergyMarket.MarketImbalancedBatch.selector, address(t), 1000, 990)
        );
    }

    // ------------------------------------------------------------ the keeper

    /// @dev The keeper cannot mint WATT through the grid without a signed buy order that pays at
    ///      least retail: not with an altered order, not to itself, not below retail, not as a
    ///      stranger.
    function test_keeper_cannotMintWithoutSignedRetailBuy() public {
        IEnergyMarket.Order memory b = _o(a[1], 1, 100, 30, address(yen));
        IEnergyMarket.Order[] memory os = MarketBatch.orders(b);
        bytes[] memory sigs = _sigs(os);
        // altered after signing: more Wh
        os[0].amountWh = 1e9;
        vm.expectRevert(_err(IEnergyMarket.MarketInvalidSignature.selector, 0));
        market.settle(iid, os, sigs, MarketBatch.trades(_t(GRID, 0, 1e9, 30)));
        // to the keeper's own (unsigned) order: the keeper is a contract without ERC-1271
        IEnergyMarket.Order memory k = _o(address(this), 1, 1e6, 1e6, address(yen));
        vm.expectRevert(_err(IEnergyMarket.MarketInvalidSignature.selector, 0));
        market.settle(iid, MarketBatch.orders(k), sigs, MarketBatch.trades(_t(GRID, 0, 1e6, 30)));
        // below retail
        os[0] = _o(a[1], 1, 100, 30, address(yen));
        vm.expectRevert(_limitErr(0, GRID, 0, 30));
        market.settle(iid, os, sigs, MarketBatch.trades(_t(GRID, 0, 100, 0)));
        // a stranger
        vm.expectRevert(_unauth(a[3], market.KEEPER_ROLE()));
        vm.prank(a[3]);
        market.settle(iid, os, sigs, MarketBatch.trades(_t(GRID, 0, 100, 30)));
        // the honest one: exactly what was signed, paid at retail
        uint256 supply = watt.totalSupply();
        market.settle(iid, os, sigs, MarketBatch.trades(_t(GRID, 0, 100, 30)));
        assertEq(watt.totalSupply(), supply + 100 * WPW, "minted what was bought");
        assertEq(yen.balanceOf(a[1]), 1e12 - 3, "paid retail");
    }

    /// @dev Random grid-sell trades by the keeper: whenever one settles, the WATT minted went to a
    ///      signed buy order that paid ceil(wh × price / 1000) with retail ≤ price ≤ its limit.
    function testFuzz_keeper_gridSellNeverBelowRetail(uint96 wh, uint128 price, uint16 limit) public {
        uint256 w = bound(wh, 0, 2000);
        uint256 lim = bound(limit, 0, 100);
        uint256 p = bound(price, 0, 120);
        IEnergyMarket.Order memory b = _o(a[1], 1, 1000, lim, address(yen));
        IEnergyMarket.Order[] memory os = MarketBatch.orders(b);
        bytes[] memory sigs = _sigs(os);
        uint256 supply = watt.totalSupply();
        try market.settle(iid, os, sigs, MarketBatch.trades(_t(GRID, 0, w, p))) {
            assertTrue(w >= 1 && w <= 1000 && p >= 30 && p <= lim, "only within the signed order and retail");
            assertEq(watt.totalSupply(), supply + w * WPW, "minted exactly");
            assertEq(yen.balanceOf(a[1]), 1e12 - _ceil(w * p), "paid");
            assertGe(1e12 - yen.balanceOf(a[1]), _ceil(w * 30), "at least retail");
        } catch {
            assertEq(watt.totalSupply(), supply, "nothing minted");
        }
    }
}

/// @dev Random batches mixing order↔order trades (with fees) and grid trades, some invalid on
///      purpose, with a per-order floor/ceiling model of every party's money.
contract GridHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant GRID = 0xffff;

    EnergyMarket public market;
    WattToken public watt;
    DecToken public money;
    address public gridAcct;
    address public payee;
    uint256[4] internal keys = [uint256(0xA11CE), 0xB0B, 0xCA401, 0xD0D0];
    address[4] public actors;
    uint64 public nextInterval;

    uint256 public gridSoldWh;
    uint256 public gridBoughtWh;
    uint256 public ghostDust;
    uint256 public ghostFees;
    uint256 public goodBatches;
    uint256 public gridBatches;
    bool public ghostCheatSettled;
    bool public ghostModelMismatch;
    bool public ghostFreeMint;

    constructor(EnergyMarket m, WattToken w, DecToken money_, address gridAcct_, address payee_) {
        market = m;
        watt = w;
        money = money_;
        gridAcct = gridAcct_;
        payee = payee_;
        for (uint256 i; i < 4; ++i) {
            actors[i] = vm.addr(keys[i]);
        }
        nextInterval = uint64(block.timestamp / 900) - 1000;
    }

    struct P {
        uint64 iid;
        uint256 s;
        uint256 b1;
        uint256 b2;
        uint256 s2;
        uint256 w0;
        uint256 wg;
        uint256 wb;
        uint256 p01;
        uint256 pg;
        uint256 pb;
        uint256 rate;
        bool gs;
        bool gb;
        uint8 c;
        uint256 nt;
    }

    function _order(uint256 who, uint8 side, uint64 iid, uint256 wh, uint256 limit, uint256 salt)
        internal
        view
        returns (IEnergyMarket.Order memory o, bytes memory sig)
    {
        o = IEnergyMarket.Order({
            maker: actors[who],
            side: side,
            intervalId: iid,
            amountWh: wh,
            limitPrice: limit,
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

    function _t(uint256 si, uint256 bi, uint256 wh, uint256 price) internal pure returns (uint256) {
        return (si << 240) | (bi << 224) | (wh << 128) | price;
    }

    /// @dev Orders: 0 s sells w0 to 1 b1 (two trades, fee), 2 b2 buys wg from the grid, 3 s2
    ///      sells wb to the grid. `cheat % 10` in 0..5 breaks one rule.
    function settleMixed(uint256 seed, uint16 w0, uint16 wg, uint16 wb, uint16 price, uint8 cheat) external {
        P memory p;
        p.iid = nextInterval++;
        p.s = seed % 4;
        p.b1 = (p.s + 1) % 4;
        p.b2 = (p.s + 2) % 4;
        p.s2 = (p.s + 3) % 4;
        p.w0 = 2 + (uint256(w0) % 3000);
        p.wg = 1 + (uint256(wg) % 3000);
        p.wb = 1 + (uint256(wb) % 3000);
        p.p01 = 1 + (uint256(price) % 50);
        p.pg = 30 + ((uint256(price) >> 6) % 7);
        p.pb = (uint256(price) >> 9) % 11;
        p.rate = market.feederOf(actors[p.s]) != 0 && market.feederOf(actors[p.s]) == market.feederOf(actors[p.b1]) ? 1 : 3;
        p.gs = (seed >> 8) & 1 == 1;
        p.gb = (seed >> 9) & 1 == 1;
        p.c = cheat % 10;
        (IEnergyMarket.Order[] memory os, bytes[] memory sigs) = _orders(p, seed);
        uint256[] memory ts = _trades(p);
        _exec(p, os, sigs, ts);
    }

    function _orders(P memory p, uint256 seed)
        internal
        view
        returns (IEnergyMarket.Order[] memory os, bytes[] memory sigs)
    {
        os = new IEnergyMarket.Order[](4);
        sigs = new bytes[](4);
        (os[0], sigs[0]) = _order(p.s, 0, p.iid, p.w0, p.p01, seed);
        (os[1], sigs[1]) = _order(p.b1, 1, p.iid, p.w0, p.c == 2 ? p.p01 + p.rate - 1 : p.p01 + p.rate, seed ^ 1);
        (os[2], sigs[2]) = _order(p.b2, 1, p.iid, p.wg, p.pg, seed ^ 2);
        (os[3], sigs[3]) = _order(p.s2, 0, p.iid, p.wb, p.pb, seed ^ 3);
    }

    function _trades(P memory p) internal pure returns (uint256[] memory ts) {
        ts = new uint256[](4);
        uint256 half = p.w0 / 2;
        ts[0] = _t(0, 1, half, p.p01);
        ts[1] = _t(0, 1, p.w0 - half, p.p01);
        uint256 n = 2;
        bool gs = p.gs || p.c == 0 || p.c == 3 || p.c == 4 || p.c == 5;
        bool gb = p.gb || p.c == 1;
        if (gs) {
            uint256 price = p.c == 0 ? 29 : p.pg;
            uint256 bi = p.c == 3 ? 0 : (p.c == 4 ? GRID : 2);
            ts[n++] = _t(GRID, bi, p.c == 5 ? p.wg + 1 : p.wg, price);
        }
        if (gb) ts[n++] = _t(3, GRID, p.wb, p.c == 1 ? 11 : p.pb);
        assembly ("memory-safe") {
            mstore(ts, n)
        }
    }

    struct Bal {
        uint256[4] m;
        uint256 grid;
        uint256 payee;
        uint256 market;
        uint256 supply;
    }

    function _snap() internal view returns (Bal memory b) {
        for (uint256 i; i < 4; ++i) {
            b.m[i] = money.balanceOf(actors[i]);
        }
        b.grid = money.balanceOf(gridAcct);
        b.payee = money.balanceOf(payee);
        b.market = money.balanceOf(address(market));
        b.supply = watt.totalSupply();
    }

    function _exec(P memory p, IEnergyMarket.Order[] memory os, bytes[] memory sigs, uint256[] memory ts) internal {
        Bal memory b0 = _snap();
        try market.settle(p.iid, os, sigs, ts) {
            if (p.c < 6) ghostCheatSettled = true;
            ++goodBatches;
            bool gs = p.gs;
            bool gb = p.gb;
            if (gs || gb) ++gridBatches;
            if (gs) gridSoldWh += p.wg;
            if (gb) gridBoughtWh += p.wb;
            _model(p, b0, _snap(), gs, gb);
        } catch {}
    }

    function _model(P memory p, Bal memory b0, Bal memory b1, bool gs, bool gb) internal {
        uint256 v01 = p.w0 * p.p01;
        uint256 f01 = p.w0 * p.rate;
        uint256 vg = gs ? p.wg * p.pg : 0;
        uint256 vb = gb ? p.wb * p.pb : 0;
        uint256 paid = (v01 + f01 + 999) / 1000 + (vg + 999) / 1000 + (vb + 999) / 1000;
        uint256 got = v01 / 1000 + f01 / 1000 + vg / 1000 + vb / 1000;
        if (b1.m[p.s] != b0.m[p.s] + v01 / 1000) ghostModelMismatch = true;
        if (b0.m[p.b1] - b1.m[p.b1] != (v01 + f01 + 999) / 1000) ghostModelMismatch = true;
        if (b0.m[p.b2] - b1.m[p.b2] != (vg + 999) / 1000) ghostModelMismatch = true;
        if (b1.m[p.s2] != b0.m[p.s2] + vb / 1000) ghostModelMismatch = true;
        if (b1.grid + (vb + 999) / 1000 != b0.grid + vg / 1000) ghostModelMismatch = true;
        if (b1.payee != b0.payee + f01 / 1000) ghostModelMismatch = true;
        if (b1.market != b0.market + paid - got) ghostModelMismatch = true;
        if (b1.supply + (gb ? p.wb : 0) * 1e15 != b0.supply + (gs ? p.wg : 0) * 1e15) ghostModelMismatch = true;
        // WATT minted to b2 only against a payment of at least retail (30)
        if (gs && b0.m[p.b2] - b1.m[p.b2] < (p.wg * 30 + 999) / 1000) ghostFreeMint = true;
        ghostDust += paid - got;
        ghostFees += f01 / 1000;
    }
}

contract MarketGridInvariantTest is TestBase {
    EnergyMarket internal market;
    WattToken internal watt;
    DecToken internal money;
    GridHandler internal handler;
    address internal gridAcct = address(0x6A1D);
    address internal payee = address(0xFEE0);
    uint256 internal supply0;
    uint256 internal moneySupply;

    function setUp() public {
        vm.warp(1_800_000_000);
        watt = new WattToken(address(this));
        money = new DecToken("YEN", 0);
        market = new EnergyMarket(address(this), IERC20(address(watt)), address(0), 0, 64);
        market.setPaymentToken(address(money), true);
        market.setNetworkFeePayee(payee);
        market.setNetworkFee(address(money), 3, 1);
        market.setGrid(IEnergyMarket.GridTerms(gridAcct, address(money), 10, 30, address(0)));
        handler = new GridHandler(market, watt, money, gridAcct, payee);
        market.grantRole(market.KEEPER_ROLE(), address(handler));
        watt.grantRole(watt.MINTER_ROLE(), address(market));
        watt.grantRole(watt.BURNER_ROLE(), address(market));
        watt.grantRole(watt.MINTER_ROLE(), address(this));
        address[] memory acc = new address[](4);
        bytes32[] memory f = new bytes32[](4);
        for (uint256 i; i < 4; ++i) {
            address x = handler.actors(i);
            acc[i] = x;
            f[i] = i < 2 ? bytes32("f1") : (i == 2 ? bytes32("f2") : bytes32(0));
            watt.mint(x, 1e9 * 1e15);
            money.mint(x, 1e15);
            vm.prank(x);
            watt.approve(address(market), type(uint256).max);
            vm.prank(x);
            money.approve(address(market), type(uint256).max);
        }
        market.setFeeders(acc, f);
        money.mint(gridAcct, 1e15);
        vm.prank(gridAcct);
        money.approve(address(market), type(uint256).max);
        supply0 = watt.totalSupply();
        moneySupply = money.totalSupply();
        targetContract(address(handler));
        bytes4[] memory sel = new bytes4[](1);
        sel[0] = GridHandler.settleMixed.selector;
        targetSelector(address(handler), sel);
    }

    function invariant_wattSupplyMovesOnlyByTheGrid() public view {
        assertEq(
            watt.totalSupply() + handler.gridBoughtWh() * 1e15,
            supply0 + handler.gridSoldWh() * 1e15,
            "supply = before + (grid sold - grid bought) x 1e15"
        );
        assertEq(watt.balanceOf(address(market)), 0, "market holds no WATT");
    }

    function invariant_marketMoneyIsTheDust() public view {
        assertEq(money.balanceOf(address(market)), handler.ghostDust(), "market money = before + dust");
        assertEq(market.roundingDust(address(money)), handler.ghostDust(), "dust recorded");
        assertEq(money.balanceOf(payee), handler.ghostFees(), "fees: per-order floors");
        uint256 sum = money.balanceOf(address(market)) + money.balanceOf(gridAcct) + money.balanceOf(payee);
        for (uint256 i; i < 4; ++i) {
            sum += money.balanceOf(handler.actors(i));
        }
        assertEq(sum, moneySupply, "money conserved");
    }

    function invariant_noCheatNoFreeMintModelHolds() public view {
        assertTrue(!handler.ghostCheatSettled(), "a broken batch settled");
        assertTrue(!handler.ghostModelMismatch(), "per-order floor/ceiling model");
        assertTrue(!handler.ghostFreeMint(), "WATT minted without paying retail");
    }

    function test_handler_honestMixedBatchSettles() public {
        // seed 0x300: s = 0, both grid trades; cheat 9: honest
        handler.settleMixed(0x300, 1000, 500, 400, 20, 9);
        assertEq(handler.goodBatches(), 1, "settled");
        assertEq(handler.gridBatches(), 1, "with the grid");
        invariant_wattSupplyMovesOnlyByTheGrid();
        invariant_marketMoneyIsTheDust();
        invariant_noCheatNoFreeMintModelHolds();
        for (uint8 c; c < 6; ++c) {
            handler.settleMixed(0x300 + c, 1000, 500, 400, 20, c);
        }
        assertEq(handler.goodBatches(), 1, "every cheat refused");
    }
}
