"""The grid participant, the network fee and ranked preferences, settled by the keeper on anvil.

The utility stands behind every interval (issue 18, item 4): its offer at the retail price and its
bid at the feed-in price, without limit, bound the price; WATT it sells is minted, WATT it buys is
burnt, and its account is paid and pays exactly what the per-order rounding says. A buyer's limit
covers price and network fee; the fee (lower inside one feeder) goes to its payee to the base unit.
"""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

from gridcoop_sdk import grid as grid_sdk
from gridcoop_sdk.tx import send
from gridcoop_sdk.units import WATT_PER_WH
from keeper.clock import chain_clock
from keeper.service import Keeper

from .conftest import MAX, MONEY
from .test_keeper import advance_to

FEED_IN, RETAIL = 10, 40


@pytest.fixture
def utility(env, wallets):
    u = wallets[8]
    w, m = env.watt, env.market
    for role in ("MINTER_ROLE", "BURNER_ROLE"):
        send(env.w3, env.admin, w.functions.grantRole(getattr(w.functions, role)().call(), m.address))
    send(env.w3, env.admin, env.token.functions.mint(u.address, MONEY))
    send(env.w3, u, env.token.functions.approve(m.address, MAX))
    grid_sdk.set_grid(env.w3, env.admin, m, account=u.address, token=env.token.address,
                      feed_in_price=FEED_IN, retail_price=RETAIL)
    return u


@pytest.fixture
def keeper(env, tmp_path):
    k = Keeper(env.w3, env.keeper, env.market, f"sqlite:///{tmp_path}/keeper.db", clock=chain_clock(env.w3),
               receipt_timeout=30)
    yield k
    k.db.dispose()


def _settle(env, keeper, rows, prefer=None):
    iid = env.current_interval() + 2
    for who, side, wh, price in rows:
        keeper.accept_order(env.sign(env.order(who, side, wh, price, iid=iid), who),
                            prefer=(prefer or {}).get(who.address, ()))
    advance_to(env.w3, iid * 900)
    res = keeper.settle_interval(iid)
    return iid, res


def _trades(env, res):
    rc = env.w3.eth.get_transaction_receipt(res.tx_hash)
    return [e["args"] for e in env.market.events.Trade().process_receipt(rc, errors=DISCARD)]


def _money(env, *accounts):
    return [env.token.functions.balanceOf(a.address).call() for a in accounts]


def test_grid_sells_at_retail_when_neighbours_are_short(env, utility, keeper):
    """900 Wh wanted at up to 50 and only 300 Wh offered at 20: the grid's offer at 40 sets the
    price and covers the rest (WATT minted); the buyer at 30 is out of the money."""
    s0, b0, b1 = env.sellers[0], env.buyers[0], env.buyers[1]
    supply = env.watt.functions.totalSupply().call()
    before = _money(env, s0, b0, utility)
    _, res = _settle(env, keeper, [(s0, "sell", 300, 20), (b0, "buy", 900, 50), (b1, "buy", 500, 30)])
    assert res.state == "settled" and res.price == RETAIL and res.volume_wh == 900
    trades = _trades(env, res)
    assert {(t["seller"], t["buyer"], t["wh"], t["pricePerKwh"]) for t in trades} == {
        (s0.address, b0.address, 300, 40), (utility.address, b0.address, 600, 40)}
    assert env.watt.functions.totalSupply().call() == supply + 600 * WATT_PER_WH  # the grid's energy
    assert env.watt.functions.balanceOf(b0.address).call() == 900 * WATT_PER_WH
    after = _money(env, s0, b0, utility)
    assert [a - b for a, b in zip(after, before, strict=True)] == [12, -36, 24]  # 300×40, 900×40, 600×40 /1000


def test_grid_buys_at_feed_in_when_neighbours_have_too_much(env, utility, keeper):
    """1,000 Wh offered at 10 and 200 Wh wanted: the grid's bid at 10 takes the surplus (WATT
    burnt, the utility pays); the seller asking 25 keeps its WATT."""
    s0, s1, b0 = env.sellers[0], env.sellers[1], env.buyers[0]
    supply = env.watt.functions.totalSupply().call()
    before = _money(env, s0, b0, utility)
    _, res = _settle(env, keeper, [(s0, "sell", 1000, 10), (s1, "sell", 500, 25), (b0, "buy", 200, 30)])
    assert res.state == "settled" and res.price == FEED_IN and res.volume_wh == 1000
    assert {(t["seller"], t["buyer"], t["wh"]) for t in _trades(env, res)} == {
        (s0.address, b0.address, 200), (s0.address, utility.address, 800)}
    assert env.watt.functions.totalSupply().call() == supply - 800 * WATT_PER_WH
    assert env.watt.functions.balanceOf(env.market.address).call() == 0
    after = _money(env, s0, b0, utility)
    assert [a - b for a, b in zip(after, before, strict=True)] == [10, -2, -8]


def test_tariff_change_by_the_parameter_role_applies_to_the_next_interval(env, utility, keeper):
    grid_sdk.set_grid_tariff(env.w3, env.admin, env.market, 12, 35)
    s0, b0 = env.sellers[0], env.buyers[0]
    _, res = _settle(env, keeper, [(b0, "buy", 500, 50)])
    assert res.price == 35 and {t["seller"] for t in _trades(env, res)} == {utility.address}
    with pytest.raises(Exception, match="AccessControlUnauthorizedAccount"):
        grid_sdk.set_grid_tariff(env.w3, s0, env.market, 1, 1000)


def test_a_grid_account_that_cannot_pay_fails_the_interval_naming_it(env, utility, keeper):
    send(env.w3, utility, env.token.functions.approve(env.market.address, 0))
    s0 = env.sellers[0]
    before = env.watt.functions.balanceOf(s0.address).call()
    _, res = _settle(env, keeper, [(s0, "sell", 1000, 5)])
    assert res.state == "failed" and utility.address in res.error and "approve the market" in res.error
    assert env.watt.functions.balanceOf(s0.address).call() == before  # nothing moved


def test_network_fee_paid_by_buyers_inside_their_limit_and_lower_inside_a_feeder(env, keeper, wallets):
    payee = wallets[9]
    m = env.market
    grid_sdk.set_network_fee(env.w3, env.admin, m, env.token.address, grid_sdk.NetworkFee(5, 1), payee=payee.address)
    s0, s1 = env.sellers[:2]
    b0, b1 = env.buyers[:2]
    grid_sdk.set_feeders(env.w3, env.admin, m, {s0.address: "north", b0.address: "north", s1.address: "south"})
    sellers_before, buyers_before = _money(env, s0, s1), _money(env, b0, b1)
    payee_before = _money(env, payee)[0]
    _, res = _settle(env, keeper, [(s0, "sell", 4000, 20), (s1, "sell", 4000, 20),
                                   (b0, "buy", 4000, 40), (b1, "buy", 4000, 40)])
    assert res.state == "settled" and res.volume_wh == 8000
    # the engine reserves the full fee in each buyer's limit: [20, 35] -> midpoint 28
    assert res.price == 28
    feeder = {s0.address: "north", b0.address: "north", s1.address: "south"}
    fee_value: dict[str, int] = {}
    paid_value: dict[str, int] = {}
    for t in _trades(env, res):
        same = feeder.get(t["seller"]) is not None and feeder.get(t["seller"]) == feeder.get(t["buyer"])
        rate = 1 if same else 5
        assert t["pricePerKwh"] + rate <= 40
        fee_value[t["buyer"]] = fee_value.get(t["buyer"], 0) + t["wh"] * rate
        paid_value[t["buyer"]] = paid_value.get(t["buyer"], 0) + t["wh"] * (t["pricePerKwh"] + rate)
    fees = sum(v // 1000 for v in fee_value.values())
    assert _money(env, payee)[0] - payee_before == fees > 0
    buyers_after = _money(env, b0, b1)
    for acct, before, after in zip((b0, b1), buyers_before, buyers_after, strict=True):
        assert before - after == -(-paid_value[acct.address] // 1000)
    assert [a - b for a, b in zip(_money(env, s0, s1), sellers_before, strict=True)] == [112, 112]  # 4000×28/1000
    rc = env.w3.eth.get_transaction_receipt(res.tx_hash)
    (ev,) = m.events.NetworkFeesPaid().process_receipt(rc, errors=DISCARD)
    assert ev["args"]["amount"] == fees and ev["args"]["payee"] == payee.address
    # the keeper's record of the interval: the dust excludes the fees
    dust = m.functions.roundingDust(env.token.address).call()
    assert res.rounding_dust == dust


def test_ranked_preferences_through_the_keeper_are_matched_first(env, keeper):
    """b0 prefers s1 although s0's order came first: s1→b0 and s0→b1; the preference costs no volume."""
    s0, s1 = env.sellers[:2]
    b0, b1 = env.buyers[:2]
    _, res = _settle(env, keeper, [(s0, "sell", 500, 10), (s1, "sell", 500, 10), (b0, "buy", 500, 30),
                                   (b1, "buy", 500, 30)], prefer={b0.address: (s1.address,)})
    assert res.volume_wh == 1000
    pairs = {(t["seller"], t["buyer"]) for t in _trades(env, res)}
    assert pairs == {(s1.address, b0.address), (s0.address, b1.address)}
