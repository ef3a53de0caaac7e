"""Issue 16, item 5: money is rounded per order, never per trade.

The attack: with a payment token of few decimals, a keeper splits one 1,000 Wh sale at 30/kWh into
31 trades of at most 33 Wh; rounded per trade (``floor(33 × 30 / 1000) = 0``) the seller delivered
the energy and received nothing. The market now sums ``wh × price`` over each order's trades and
rounds once per order: a seller receives ``floor(V / 1000)``, a buyer pays ``ceil(V / 1000)``; the
difference (rounding dust, under one base unit per order) stays in the market, is recorded per token
and only the DAO (PARAMETER_ROLE) can sweep it out.
"""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

from gridcoop_sdk import TransactionFailed, wh_to_watt
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.orders import pack_trade, payment_for, split_money
from gridcoop_sdk.tx import send

from .conftest import MAX


def settle(env, iid, signed, trades, sender=None):
    fn = env.market.functions.settle(
        iid, [s.order.as_tuple() for s in signed], [s.signature for s in signed], trades)
    return send(env.w3, sender or env.keeper, fn)


def bal(token, who) -> int:
    return token.functions.balanceOf(who.address if hasattr(who, "address") else who).call()


def local_currency(env, decimals: int):
    """A region currency with ``decimals`` (LocalCurrency, as the region config deploys it),
    allow-listed, issued to the buyers, approved by them."""
    cur = deploy(env.w3, env.admin, "LocalCurrency", f"Coin{decimals}", f"C{decimals}", decimals,
                 env.admin.address, record=False)
    assert cur.functions.decimals().call() == decimals
    send(env.w3, env.admin, env.market.functions.setPaymentToken(cur.address, True))
    for b in env.buyers:
        send(env.w3, env.admin, cur.functions.issue(b.address, 10**6 * 10**decimals))
        send(env.w3, b, cur.functions.approve(env.market.address, MAX))
    return cur


def dust_of(env, token) -> int:
    return env.market.functions.roundingDust(token.address).call()


def _split_attack(env, cur, sell_wh: int, price: int):
    """One sell and one buy order of ``sell_wh`` at ``price``, settled as trades of at most 33 Wh."""
    s, b = env.sellers[0], env.buyers[0]
    iid = env.current_interval()
    orders = [env.sign(env.order(s, "sell", sell_wh, price, payment_token=cur.address), s),
              env.sign(env.order(b, "buy", sell_wh, price, payment_token=cur.address), b)]
    pieces = [33] * (sell_wh // 33) + ([sell_wh % 33] if sell_wh % 33 else [])
    trades = [pack_trade(0, 1, wh, price) for wh in pieces]
    before = (bal(cur, s), bal(cur, b), bal(env.watt, s), bal(env.watt, b), bal(cur, env.market.address))
    receipt = settle(env, iid, orders, trades)
    after = (bal(cur, s), bal(cur, b), bal(env.watt, s), bal(env.watt, b), bal(cur, env.market.address))
    return pieces, receipt, [a - c for a, c in zip(after, before, strict=True)]


def test_settle_splitTrades_sellerPaidPerOrder(env):
    """The attack of issue 16 with a 0-decimal currency: 1,000 Wh at 30/kWh as 31 trades of <= 33 Wh.
    Per trade each would pay floor(33 * 30 / 1000) = 0; per order the seller gets floor(30,000 / 1000)."""
    cur = local_currency(env, 0)
    pieces, receipt, (seller, buyer, seller_wh, buyer_wh, market) = _split_attack(env, cur, 1000, 30)
    assert len(pieces) == 31 and max(pieces) == 33 and sum(pieces) == 1000
    assert all(wh * 30 // 1000 == 0 for wh in pieces)  # what each trade paid before the fix
    assert seller_wh == -wh_to_watt(1000) and buyer_wh == wh_to_watt(1000)
    assert seller == 1000 * 30 // 1000 == 30  # floor(total_wh x limit / 1000)
    assert buyer == -30 and market == 0 and dust_of(env, cur) == 0
    settled = env.market.events.IntervalSettled().process_receipt(receipt, errors=DISCARD)[0].args
    assert (settled.trades, settled.energyWh, settled.volume) == (31, 1000, 30)


def test_settle_splitTradesWithRemainder_buyerPaysCeilSellerFloor_dustKept(env):
    """999 Wh at 30/kWh in 31 pieces: V = 29,970, so the seller gets floor = 29, the buyer pays
    ceil = 30 and the 1 unit of dust stays in the market, recorded and announced."""
    cur = local_currency(env, 0)
    _pieces, receipt, (seller, buyer, _sw, _bw, market) = _split_attack(env, cur, 999, 30)
    assert seller == 29 and buyer == -30 and market == 1
    assert dust_of(env, cur) == 1
    ev = env.market.events.RoundingDustKept().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.token, e.args.amount) for e in ev] == [(cur.address, 1)]
    assert env.market.events.IntervalSettled().process_receipt(receipt, errors=DISCARD)[0].args.volume == 30


def test_settle_duplicatedOrderCopies_stillRoundedPerOrderId(env):
    """The same attack through copies instead of trades: the seller's order appears 31 times in the
    batch, each copy with one trade of <= 33 Wh. Rounding is per order id (running sum over copies),
    so the copies together pay what one copy would."""
    cur = local_currency(env, 0)
    s, b = env.sellers[0], env.buyers[0]
    iid = env.current_interval()
    so = env.sign(env.order(s, "sell", 1000, 30, payment_token=cur.address), s)
    bo = env.sign(env.order(b, "buy", 1000, 30, payment_token=cur.address), b)
    pieces = [33] * 30 + [10]
    orders = [bo] + [so] * len(pieces)
    trades = [pack_trade(1 + k, 0, wh, 30) for k, wh in enumerate(pieces)]
    before = (bal(cur, s), bal(cur, b))
    settle(env, iid, orders, trades)
    assert (bal(cur, s) - before[0], before[1] - bal(cur, b)) == (30, 30)
    # and buyer copies: one sale to 31 copies of the same buy order pays ceil once, not 31 times
    iid -= 1
    so = env.sign(env.order(s, "sell", 999, 30, iid=iid, payment_token=cur.address), s)
    bo = env.sign(env.order(b, "buy", 999, 30, iid=iid, payment_token=cur.address), b)
    pieces = [33] * 30 + [9]
    orders = [so] + [bo] * len(pieces)
    trades = [pack_trade(0, 1 + k, wh, 30) for k, wh in enumerate(pieces)]
    before = (bal(cur, s), bal(cur, b))
    settle(env, iid, orders, trades)
    assert (bal(cur, s) - before[0], before[1] - bal(cur, b)) == (29, 30)  # not 31 x ceil(0.99) = 31
    assert dust_of(env, cur) == 1


def _many_trades_batch(env, cur, price_base: int):
    """Three sellers, three buyers, trades split in odd pieces at several prices within limits."""
    s0, s1, s2 = env.sellers
    b0, b1, b2 = env.buyers
    lim = price_base
    rows = [(s0, "sell", 1000, lim), (s1, "sell", 777, lim + 3), (s2, "sell", 501, lim + 7),
            (b0, "buy", 900, lim + 11), (b1, "buy", 878, lim + 13), (b2, "buy", 500, lim + 17)]
    orders = [env.sign(env.order(w, side, wh, p, payment_token=cur.address), w) for w, side, wh, p in rows]
    plan = [(0, 3, 333, lim + 7), (0, 3, 1, lim + 7), (0, 4, 333, lim + 8), (0, 5, 333, lim + 9),
            (1, 3, 566, lim + 10), (1, 4, 211, lim + 7), (2, 4, 334, lim + 11), (2, 5, 167, lim + 17)]
    return rows, orders, plan


@pytest.mark.parametrize("decimals,price_base", [(0, 19), (6, 22_123_457)])
def test_settle_manySplitTrades_moneyConservedExactly(env, decimals, price_base):
    """Σ paid by buyers == Σ received by sellers + dust, to the base unit; every seller gets at least
    floor(sold × limit / 1000), every buyer pays at most ceil(bought × limit / 1000); the Python split
    (keeper, reports) gives the chain's figures exactly. 0 and 6 decimals (KDY-like prices)."""
    cur = local_currency(env, decimals)
    rows, orders, plan = _many_trades_batch(env, cur, price_base)
    iid = env.current_interval()
    people = [r[0] for r in rows]
    before = {p.address: bal(cur, p) for p in people}
    dust_before, market_before = dust_of(env, cur), bal(cur, env.market.address)
    receipt = settle(env, iid, orders, [pack_trade(*t) for t in plan])
    delta = {p.address: bal(cur, p) - before[p.address] for p in people}
    received = sum(delta[w.address] for w, side, *_ in rows if side == "sell")
    paid = -sum(delta[w.address] for w, side, *_ in rows if side == "buy")
    dust = dust_of(env, cur) - dust_before
    assert paid == received + dust and 0 <= dust < len(rows)
    assert bal(cur, env.market.address) - market_before == dust
    for i, (w, side, _amount, limit) in enumerate(rows):
        filled = sum(wh for si, bi, wh, _ in plan if i in (si, bi))
        if side == "sell":
            assert delta[w.address] >= filled * limit // 1000
        else:
            assert -delta[w.address] <= payment_for(filled, limit)
    split = split_money([(si, bi, wh, p) for si, bi, wh, p in plan])
    assert split.received == {i: delta[rows[i][0].address] for i in range(3)}
    assert split.paid == {i: -delta[rows[i][0].address] for i in range(3, 6)}
    assert split.dust == dust and sum(split.trade_paid) == paid and sum(split.trade_received) == received
    settled = env.market.events.IntervalSettled().process_receipt(receipt, errors=DISCARD)[0].args
    assert settled.volume == paid and settled.energyWh == sum(t[2] for t in plan)


def test_sweepRoundingDust_onlyByParameterRole(env):
    """Dust accumulates over batches and tokens separately; only PARAMETER_ROLE (the DAO) sends it
    out (others are refused with AccessControlUnauthorizedAccount and nothing changes)."""
    cur = local_currency(env, 0)
    _split_attack(env, cur, 999, 30)  # 1 unit
    s, b = env.sellers[1], env.buyers[1]
    iid = env.current_interval() - 1
    orders = [env.sign(env.order(s, "sell", 10, 33, iid=iid, payment_token=cur.address), s),
              env.sign(env.order(b, "buy", 10, 40, iid=iid, payment_token=cur.address), b)]
    settle(env, iid, orders, [pack_trade(0, 1, 10, 35)])  # V = 350: seller 0, buyer 1
    assert dust_of(env, cur) == 2 and bal(cur, env.market.address) == 2
    assert dust_of(env, env.token) == 0
    role = env.market.functions.PARAMETER_ROLE().call()
    to = env.sellers[2].address
    for who in (env.keeper, env.sellers[0], env.buyers[0]):
        with pytest.raises(TransactionFailed) as err:
            send(env.w3, who, env.market.functions.sweepRoundingDust(cur.address, who.address))
        assert err.value.error_name == "AccessControlUnauthorizedAccount"
        assert err.value.error_args["neededRole"] == role
    assert dust_of(env, cur) == 2 and bal(cur, env.market.address) == 2
    with pytest.raises(TransactionFailed) as err:
        send(env.w3, env.admin, env.market.functions.sweepRoundingDust(cur.address, "0x" + "00" * 20))
    assert err.value.error_name == "MarketZeroAddress"
    # to the market itself: the record would be cleared while the tokens stayed, uncollectable
    with pytest.raises(TransactionFailed) as err:
        send(env.w3, env.admin, env.market.functions.sweepRoundingDust(cur.address, env.market.address))
    assert err.value.error_name == "MarketInvalidRecipient"
    assert dust_of(env, cur) == 2
    before = bal(cur, to)
    receipt = send(env.w3, env.admin, env.market.functions.sweepRoundingDust(cur.address, to))
    assert bal(cur, to) - before == 2 and bal(cur, env.market.address) == 0 and dust_of(env, cur) == 0
    ev = env.market.events.RoundingDustSwept().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.token, e.args.to, e.args.amount) for e in ev] == [(cur.address, to, 2)]
    # nothing left: a second sweep moves nothing and announces nothing
    receipt = send(env.w3, env.admin, env.market.functions.sweepRoundingDust(cur.address, to))
    assert env.market.events.RoundingDustSwept().process_receipt(receipt, errors=DISCARD) == ()
    assert bal(cur, to) - before == 2


def test_watt_cannot_be_allow_listed_as_money(env):
    """WATT as a payment token would move WATT both ways in one batch and fail its balance checks."""
    with pytest.raises(TransactionFailed) as err:
        send(env.w3, env.admin, env.market.functions.setPaymentToken(env.watt.address, True))
    assert err.value.error_name == "MarketWattIsNotMoney"
    assert not env.market.functions.paymentTokenAllowed(env.watt.address).call()
