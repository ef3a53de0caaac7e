"""The keeper end to end: real anvil, real HTTP (uvicorn in a thread), SQLite and PostgreSQL (each
test that takes ``keeper`` or ``db_url`` runs against both); crash and reorg."""

from __future__ import annotations

import httpx
import pytest

from gridcoop_sdk.orders import SignedOrder, money_for, sign_order
from gridcoop_sdk.tx import send
from gridcoop_sdk.units import WATT_PER_WH
from keeper.api import create_app, serve_in_thread
from keeper.client import KeeperClient, KeeperClientError
from keeper.clock import chain_clock
from keeper.service import Keeper, OrderRejected
from keeper.txmanager import TxManager


class Killed(BaseException):
    """Stands for the process being killed at a given point."""


def advance_to(w3, ts: int) -> None:
    now = w3.eth.get_block("latest")["timestamp"]
    if ts > now:
        w3.provider.make_request("evm_setNextBlockTimestamp", [ts])
    w3.provider.make_request("evm_mine", [])


@pytest.fixture
def keeper(env, db_url):
    k = Keeper(env.w3, env.keeper, env.market, db_url, clock=chain_clock(env.w3), receipt_timeout=30)
    yield k
    k.db.dispose()


@pytest.fixture
def api(keeper):
    handle = serve_in_thread(create_app(keeper))
    with KeeperClient(handle.url) as client:
        yield client
    handle.stop()


def _book(env, iid):
    s0, s1, s2 = env.sellers
    b0, b1, b2 = env.buyers
    rows = [(s0, "sell", 1000, 20), (s1, "sell", 800, 24), (s2, "sell", 500, 45),
            (b0, "buy", 900, 40), (b1, "buy", 700, 30), (b2, "buy", 400, 22)]
    return [env.sign(env.order(w, side, wh, p, iid=iid), w) for w, side, wh, p in rows]


def _balances(env):
    people = env.sellers + env.buyers
    return {p.address: (env.watt.functions.balanceOf(p.address).call(),
                        env.token.functions.balanceOf(p.address).call()) for p in people}


def test_orders_over_http_settle_and_balances_match_the_clearing(env, keeper, api):
    iid = env.current_interval() + 2
    for signed in _book(env, iid):
        assert api.submit_order(signed)["status"] == "open"
    assert len(api.orders(interval=iid)) == 6
    assert api.health()["ok"] is True
    before = _balances(env)
    advance_to(env.w3, iid * 900)
    res = keeper.settle_interval(iid)
    assert res.state == "settled" and res.trades > 0
    info = api.interval(iid)
    assert info["state"] == "settled" and info["tx_hash"] == res.tx_hash and info["price"] == res.price
    # supply at p: 1800 (s0+s1, limits 20, 24); demand at p in [24, 30]: 1600 -> 1600 Wh. Above 24 s1
    # would be strictly in the money yet short 200 Wh: the equilibrium price is 24 (issue 18; the old
    # rule took 27, the midpoint of the volume range), s1 at the money and rationed to 600 Wh.
    assert res.price == 24 and res.volume_wh == 1600
    after = _balances(env)
    delta = {a: [0, 0] for a in after}
    for t in info["trades"]:
        delta[t["seller"]][0] -= t["wh"] * WATT_PER_WH
        delta[t["buyer"]][0] += t["wh"] * WATT_PER_WH
        delta[t["seller"]][1] += int(t["seller_received"])
        delta[t["buyer"]][1] -= int(t["buyer_paid"])
        assert int(t["money"]) == money_for(t["wh"], t["price"])  # the trade's value rounded down, display
    for a in after:
        assert after[a][0] - before[a][0] == delta[a][0]
        assert after[a][1] - before[a][1] == delta[a][1]
    # the chain rounds per order: s0 sold 1000 Wh in two trades (900 + 100 at 24: 21.6 + 2.4), one
    # floor of 24,000 / 1000 = 24, not 21 + 2
    assert after[env.sellers[0].address][1] - before[env.sellers[0].address][1] == 24
    assert sum(money_for(t["wh"], t["price"]) for t in info["trades"]
               if t["seller"] == env.sellers[0].address) == 23
    paid = sum(int(t["buyer_paid"]) for t in info["trades"])
    received = sum(int(t["seller_received"]) for t in info["trades"])
    dust = env.market.functions.roundingDust(env.token.address).call()
    assert int(info["money"]) == res.money == paid and paid == received + dust
    assert int(info["rounding_dust"]) == res.rounding_dust == dust
    statuses = {o["maker"]: o["status"] for o in api.orders(interval=iid)}
    assert statuses[env.buyers[2].address] == "unfilled"
    assert statuses[env.sellers[0].address] == "filled"
    # settling again returns the stored result, sends nothing
    assert keeper.settle_interval(iid).tx_hash == res.tx_hash


def test_bad_orders_are_refused_with_4xx_naming_the_field(env, keeper, api):
    iid = env.current_interval() + 2
    s = env.sellers[0]
    good = env.sign(env.order(s, "sell", 100, 20, iid=iid), s)
    cases = []
    wrong_chain = sign_order(good.order, s.key, env.chain_id + 1, env.market.address)
    cases.append((wrong_chain.to_dict(), 422, "chain_id"))
    wrong_market = sign_order(good.order, s.key, env.chain_id, env.token.address)
    cases.append((wrong_market.to_dict(), 422, "market"))
    forged = good.to_dict() | {"signature": "0x" + env.buyers[0].unsafe_sign_hash(good.hash).signature.hex()}
    cases.append((forged, 422, "signature"))
    closed = env.sign(env.order(s, "sell", 100, 20, iid=env.current_interval() - 1), s)
    cases.append((closed.to_dict(), 422, "order.interval_id"))
    too_much = env.sign(env.order(s, "sell", 10**6, 20, iid=iid), s)  # holds 100 kWh only
    cases.append((too_much.to_dict(), 422, "order.amount_wh"))
    no_allowance = env.sign(env.order(env.admin, "buy", 100, 20, iid=iid), env.admin)
    cases.append((no_allowance.to_dict(), 422, "order.amount_wh"))
    bad_field = good.to_dict()
    bad_field["order"] = dict(bad_field["order"], side="hold")
    cases.append((bad_field, 422, "order.side"))
    missing = good.to_dict()
    del missing["order"]["amount_wh"]
    cases.append((missing, 422, "order.amount_wh"))
    for body, status, field in cases:
        with pytest.raises(KeeperClientError) as err:
            api._do("POST", "/v1/orders", json=body)
        assert (err.value.status, err.value.field) == (status, field), body
    api.submit_order(good)
    with pytest.raises(KeeperClientError) as err:
        api.submit_order(good)
    assert err.value.status == 409
    r = httpx.post(api.base_url + "/v1/orders", content=b"{" + b" " * 20000 + b"}",
                   headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["field"] == "body"
    r = httpx.post(api.base_url + "/v1/orders", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "Traceback" not in r.text
    r = httpx.get(api.base_url + "/v1/orders", params={"interval": "soon"})
    assert r.status_code == 422 and r.json()["field"] == "interval"
    # cancel off chain: only with the maker's signature
    with pytest.raises(KeeperClientError) as err:
        api.cancel("0x" + good.hash.hex(), env.buyers[0].key)
    assert err.value.status == 403
    assert api.cancel("0x" + good.hash.hex(), s.key)["status"] == "cancelled"


def test_order_whose_maker_revoked_allowance_is_dropped_and_the_rest_settles(env, keeper):
    iid = env.current_interval() + 2
    for signed in _book(env, iid):
        keeper.accept_order(signed)
    send(env.w3, env.buyers[0], env.token.functions.approve(env.market.address, 0))
    advance_to(env.w3, iid * 900)
    res = keeper.settle_interval(iid)
    assert res.state == "settled"
    assert len(res.dropped) == 1 and "allows the market 0" in next(iter(res.dropped.values()))
    assert env.token.functions.balanceOf(env.buyers[0].address).call() == 10**24


def _settled_events(env, iid):
    return env.market.events.IntervalSettled().get_logs(from_block=0, argument_filters={"intervalId": iid})


@pytest.mark.parametrize("crash_point", ["after_broadcast", "before_broadcast", "before_signing"])
def test_killed_keeper_restarts_and_settles_exactly_once(env, db_url, monkeypatch, crash_point):
    url = db_url
    iid = env.current_interval() + 2
    k1 = Keeper(env.w3, env.keeper, env.market, url, clock=chain_clock(env.w3), receipt_timeout=30)
    for signed in _book(env, iid):
        k1.accept_order(signed)
    advance_to(env.w3, iid * 900)
    with monkeypatch.context() as m:
        def die(*_a, **_k):
            raise Killed

        target = {"after_broadcast": "wait", "before_broadcast": "broadcast", "before_signing": "sign_and_store"}
        m.setattr(TxManager, target[crash_point], die)
        with pytest.raises(Killed):
            k1.settle_interval(iid)
    k1.db.dispose()
    before = _balances(env)
    k2 = Keeper(env.w3, env.keeper, env.market, url, clock=chain_clock(env.w3), receipt_timeout=30)
    res = k2.settle_interval(iid)
    assert res.state == "settled" and res.volume_wh == 1600
    assert len(_settled_events(env, iid)) == 1
    assert k2.settle_interval(iid).tx_hash == res.tx_hash
    assert len(_settled_events(env, iid)) == 1
    if crash_point != "after_broadcast":  # nothing had moved before the restart
        assert _balances(env) != before
    k2.db.dispose()


def test_reorg_that_drops_the_settlement_is_detected_and_resettled(env, keeper):
    iid = env.current_interval() + 2
    for signed in _book(env, iid):
        keeper.accept_order(signed)
    advance_to(env.w3, iid * 900)
    snap = env.w3.provider.make_request("evm_snapshot", [])["result"]
    first = keeper.settle_interval(iid)
    assert env.market.functions.settledIntervals(iid).call()
    env.w3.provider.make_request("evm_revert", [snap])
    assert not env.market.functions.settledIntervals(iid).call()
    assert keeper.check_reorgs() == [iid]
    again = keeper.result(iid)
    assert again.state == "settled"
    assert env.w3.eth.get_transaction_receipt(again.tx_hash)["status"] == 1
    assert env.market.functions.settledIntervals(iid).call()
    assert again.volume_wh == first.volume_wh


def test_signed_order_json_round_trip(env):
    s = env.sellers[0]
    signed = env.sign(env.order(s, "sell", 1500, 30, colour="solar"), s)
    assert SignedOrder.from_json(signed.to_json()) == signed
    assert signed.recover_signer() == s.address


def test_market_reports_after_settlement(env, keeper, tmp_path):
    """The reports give each participant's money exactly as the chain moved it (per-order rounding),
    as Python ints, and each interval's rounding dust."""
    from keeper.reports.market import intervals_frame, participants_frame, trades_frame, write_csv

    iid = env.current_interval() + 2
    for signed in _book(env, iid):
        keeper.accept_order(signed)
    advance_to(env.w3, iid * 900)
    before = _balances(env)
    res = keeper.settle_interval(iid)
    after = _balances(env)
    iv = intervals_frame(keeper.db)
    row = iv[iv.interval_id == iid].iloc[0]
    assert row.price_base_units == res.price and row.volume_wh == 1600 and row.state == "settled"
    dust = env.market.functions.roundingDust(env.token.address).call()
    assert dust > 0 and row.rounding_dust_base_units == dust == res.rounding_dust and row.money_base_units == res.money
    people = participants_frame(keeper.db)
    assert people.sold_wh.sum() == people.bought_wh.sum() == 1600
    for p in people.itertuples():
        assert type(p.received_base_units) is int and type(p.paid_base_units) is int
        assert p.received_base_units - p.paid_base_units == after[p.address][1] - before[p.address][1]
    assert sum(people.paid_base_units) == sum(people.received_base_units) + dust and sum(people.paid_base_units) == res.money
    assert sum(people.net_wh) == 0 and sum(people.net_money_base_units) == -dust
    trades = trades_frame(keeper.db)
    assert sum(trades.buyer_paid_base_units) - sum(trades.seller_received_base_units) == dust
    assert len(write_csv(keeper.db, tmp_path / "reports")) == 3


def test_intake_and_pre_check_ask_a_buyer_for_the_ceiling_of_its_order_value(env, keeper):
    """The chain pulls ceil(value / 1000) from a buy order: a buyer holding only the floor is refused
    at intake, naming what it needs."""
    iid = env.current_interval() + 2
    buyer = env.admin  # holds no payment token yet
    send(env.w3, env.admin, env.token.functions.mint(buyer.address, 999 * 27 // 1000))  # 26 of 26.973
    send(env.w3, buyer, env.token.functions.approve(env.market.address, 2**256 - 1))
    with pytest.raises(OrderRejected) as err:
        keeper.accept_order(env.sign(env.order(buyer, "buy", 999, 27, iid=iid), buyer))
    assert err.value.field == "order.amount_wh" and "needs 27" in err.value.reason
    send(env.w3, env.admin, env.token.functions.mint(buyer.address, 1))
    assert keeper.accept_order(env.sign(env.order(buyer, "buy", 999, 27, iid=iid), buyer)).status == "open"
    # Before sending, the keeper's pre-check names a buyer short of the ceiling: at the clearing
    # price 24 (the midpoint of [20, 27] rounded up, issue 18) the batch pulls
    # ceil(999 * 24 / 1000) = 24 from it; it keeps only 22.
    keeper.accept_order(env.sign(env.order(env.sellers[0], "sell", 999, 20, iid=iid), env.sellers[0]))
    send(env.w3, buyer, env.token.functions.transfer(env.buyers[0].address, 27 - 22))
    advance_to(env.w3, iid * 900)
    res = keeper.settle_interval(iid)
    assert res.state == "empty" and len(res.dropped) == 1
    assert "holds 22 payment token base units, needs 24" in next(iter(res.dropped.values()))


def test_eighteen_decimal_prices_settle_exactly(env, keeper):
    e18 = 10**18
    iid = env.current_interval() + 2
    s, b = env.sellers[0], env.buyers[0]
    keeper.accept_order(env.sign(env.order(s, "sell", 1500, 25 * e18, iid=iid), s))
    keeper.accept_order(env.sign(env.order(b, "buy", 1000, 30 * e18, iid=iid), b))
    before = env.token.functions.balanceOf(s.address).call()
    advance_to(env.w3, iid * 900)
    res = keeper.settle_interval(iid)
    # the seller offers 1,500 Wh and sells 1,000: any price above its limit leaves it strictly in the
    # money and short, so the equilibrium price is its limit (issue 18; the old rule took 27.5e18)
    assert res.state == "settled" and res.price == 25_000_000_000_000_000_000
    assert env.token.functions.balanceOf(s.address).call() - before == 1000 * res.price // 1000
