"""Energy market: settlement gas per trade (batch 1/10/100), clearing speed, keeper cycle time.

- ``market_gas_per_trade_b{1,10,100}``: a random book is cleared by the keeper's engine
  (uniform price), its trades settled on anvil; figure = receipt gas / trades. Makers are fresh
  accounts with WATT / payment-token balances and unlimited approvals (what the keeper's intake
  requires), orders signed with 64-byte EIP-2098 signatures.
- ``clear_ms_{10k,100k,1m}``: wall time of the vectorised clearing kernel on random orders.
- ``clear_full_ms_{100k,1m}``: wall time of ``clear`` (what settlement runs) from order objects to
  trades, self-trades and preferences included.
- ``keeper_cycle_s_1000``: 1,000 orders submitted to the keeper's database, then the time from
  interval close to settled receipt (clear, eth_call check, sign, send, receipt, record).
"""

from __future__ import annotations

import random
import time

import numpy as np
from eth_account import Account

from gridcoop_sdk import wh_to_watt
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.orders import Order, deploy_market, pack_trade, sign_order
from gridcoop_sdk.tx import send
from keeper.clearing import BookOrder, clear, clear_arrays

MAX = 2**256 - 1


def _setup(w3, admin, keeper, n_makers):
    watt = deploy(w3, admin, "WattToken", admin.address, record=False)
    token = deploy(w3, admin, "MarketTestToken", "Yen", "JPYC", record=False)
    import tempfile
    from pathlib import Path

    market = deploy_market(w3, admin, watt, keeper=keeper.address, payment_tokens=(token,),
                           max_batch_size=4096, record_as="bench.EnergyMarket",
                           directory=Path(tempfile.mkdtemp(prefix="bench-market-")))  # keep deployments/ clean
    send(w3, admin, watt.functions.grantRole(watt.functions.MINTER_ROLE().call(), admin.address))
    makers = [Account.create() for _ in range(n_makers)]
    for m in makers:
        w3.provider.make_request("anvil_setBalance", [m.address, hex(10**18)])
        send(w3, admin, watt.functions.mint(m.address, wh_to_watt(10**6)))
        send(w3, admin, token.functions.mint(m.address, 10**30))  # everyone holds both tokens already
        send(w3, m, watt.functions.approve(market.address, MAX))
        send(w3, m, token.functions.approve(market.address, MAX))
    return watt, token, market, makers


def book_for(trades_wanted: int, rng: random.Random) -> list[tuple[str, int, int]]:
    """(side, wh, price) rows: n sellers and n+1 buyers whose totals match -> about 2n trades."""
    n_sell = max(1, (trades_wanted + 1) // 2)
    n_buy = max(1, trades_wanted + 1 - n_sell)
    total = 1000 * (n_sell + n_buy)
    cuts_s = sorted(rng.sample(range(1, total), n_sell - 1))
    cuts_b = sorted(set(rng.sample(range(1, total), n_buy - 1)) - set(cuts_s))
    def parts(cuts):
        edges = [0, *cuts, total]
        return [b - a for a, b in zip(edges, edges[1:], strict=False)]
    rows = [("sell", wh, rng.randint(20, 25)) for wh in parts(cuts_s)]
    rows += [("buy", wh, rng.randint(30, 40)) for wh in parts(cuts_b)]
    return rows


def settle_gas(w3, keeper, token, market, makers, rows, iid: int) -> tuple[int, int]:
    chain_id = w3.eth.chain_id
    exp = w3.eth.get_block("latest")["timestamp"] + 86400
    signed, book = [], []
    for i, (side, wh, price) in enumerate(rows):
        maker = makers[i % len(makers)]
        o = Order(maker=maker.address, side=side, interval_id=iid, amount_wh=wh, limit_price=price,
                  payment_token=token.address, expiry=exp, salt=i)
        signed.append(sign_order(o, maker.key, chain_id, market.address, compact=True))
        book.append(BookOrder(id=f"{i:06d}", maker=maker.address, side=side, amount_wh=wh, limit_price=price,
                              seq=i, payment_token=token.address))
    res = clear(book)
    index = {b.id: i for i, b in enumerate(book)}
    used = sorted({index[t.sell_id] for t in res.trades} | {index[t.buy_id] for t in res.trades})
    pos = {old: new for new, old in enumerate(used)}
    packed = [pack_trade(pos[index[t.sell_id]], pos[index[t.buy_id]], t.wh, t.price) for t in res.trades]
    fn = market.functions.settle(iid, [signed[i].order.as_tuple() for i in used],
                                 [signed[i].signature for i in used], packed)
    receipt = send(w3, keeper, fn, gas=29_000_000)
    return receipt["gasUsed"], len(packed)


def gas_figures(ctx) -> dict[str, float]:
    w3, admin, keeper = ctx.w3, ctx.accounts[0], ctx.accounts[1]
    watt, token, market, makers = _setup(w3, admin, keeper, 120)
    rng = random.Random(7)
    out = {}
    iid = w3.eth.get_block("latest")["timestamp"] // 900 - 10
    for size in (1, 10, 100):
        iid -= 1
        gas, trades = settle_gas(w3, keeper, token, market, makers, book_for(size, rng), iid)
        out[f"market_gas_per_trade_b{size}"] = round(gas / trades, 1)
        out[f"market_trades_b{size}"] = trades
    return out


def clear_figures() -> dict[str, float]:
    out = {}
    rng = np.random.default_rng(1)
    for label, n in (("10k", 10_000), ("100k", 100_000), ("1m", 1_000_000)):
        is_buy = rng.random(n) < 0.5
        limit = np.where(is_buy, rng.integers(20, 45, n), rng.integers(15, 40, n))
        amount = rng.integers(100, 5000, n)
        seq = np.arange(n)
        clear_arrays(is_buy[:1000], limit[:1000], amount[:1000], seq[:1000])  # warm-up
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            clear_arrays(is_buy, limit, amount, seq)
            best = min(best, time.perf_counter() - t0)
        out[f"clear_ms_{label}"] = round(best * 1000, 2)
    return out


def full_book(n: int, seed: int = 1) -> list[BookOrder]:
    """``n`` order objects as the keeper stores them: the prices and sizes of :func:`clear_figures`,
    one maker per order except 2% of orders from households on both sides of the book (a battery
    that sells in one order and buys in another: n/200 makers with ~4 orders each)."""
    rng = np.random.default_rng(seed)
    is_buy = (rng.random(n) < 0.5).tolist()
    limit = np.where(is_buy, rng.integers(20, 45, n), rng.integers(15, 40, n)).tolist()
    amount = rng.integers(100, 5000, n).tolist()
    battery = (rng.random(n) < 0.02).tolist()
    pool = rng.integers(0, max(1, n // 200), n).tolist()
    return [BookOrder(id=f"0x{i:064x}", maker=f"0x{(p if bat else n + i):040x}", side="buy" if b else "sell",
                      amount_wh=a, limit_price=lp, seq=i)
            for i, (b, lp, a, bat, p) in enumerate(zip(is_buy, limit, amount, battery, pool, strict=True))]


def clear_full_figures() -> dict[str, float]:
    """``clear_full_ms_{100k,1m}``: the path settlement runs (``clear``, from order objects to trades,
    with the self-trade and preference handling), best of 3."""
    out = {}
    for label, n in (("100k", 100_000), ("1m", 1_000_000)):
        book = full_book(n)
        clear(book[:1000])  # warm-up
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            clear(book)
            best = min(best, time.perf_counter() - t0)
        out[f"clear_full_ms_{label}"] = round(best * 1000, 2)
    return out


def run(ctx) -> dict[str, float]:
    out = clear_figures()
    out.update(clear_full_figures())
    out.update(gas_figures(ctx))
    out.update(keeper_cycle())
    return out


def keeper_cycle(n_orders: int = 1000) -> dict[str, float]:
    """Interval close → settled receipt for ``n_orders`` orders, on an anvil with a 1e9 gas limit
    (a 1,000-order batch needs more than the default 30M block)."""
    import tempfile

    from gridcoop_sdk import Anvil, dev_accounts
    from keeper.clock import chain_clock
    from keeper.service import Keeper

    with Anvil(accounts=2, extra_args=["--gas-limit", "1000000000"]) as node, \
            tempfile.TemporaryDirectory() as tmp:
        from gridcoop_sdk.chain import connect

        w3 = connect(node.url, timeout=300)  # a 1,000-order eth_estimateGas takes seconds
        admin, keeper_acct = dev_accounts(2)
        watt, token, market, makers = _setup(w3, admin, keeper_acct, 100)
        k = Keeper(w3, keeper_acct, market, f"sqlite:///{tmp}/k.db", clock=chain_clock(w3), receipt_timeout=300)
        now = w3.eth.get_block("latest")["timestamp"]
        iid = now // 900 + 2
        rng = random.Random(5)
        chain_id = w3.eth.chain_id
        for i in range(n_orders):
            maker_i = rng.randrange(len(makers))
            side = "sell" if maker_i % 2 == 0 else "buy"  # a maker is on one side only (no self-trade)
            price = rng.randint(15, 40) if side == "sell" else rng.randint(20, 45)
            o = Order(maker=makers[maker_i].address, side=side, interval_id=iid, amount_wh=rng.randint(100, 3000),
                      limit_price=price, payment_token=token.address, expiry=now + 86400, salt=i)
            k.accept_order(sign_order(o, makers[maker_i].key, chain_id, market.address, compact=True))
        w3.provider.make_request("evm_setNextBlockTimestamp", [iid * 900])
        w3.provider.make_request("evm_mine", [])
        t0 = time.perf_counter()
        res = k.settle_interval(iid)
        took = time.perf_counter() - t0
        k.db.dispose()
        if res.state != "settled":
            raise RuntimeError(f"keeper cycle did not settle: {res}")
        return {"keeper_cycle_s_1000": round(took, 3), "keeper_cycle_trades_1000": res.trades,
                "keeper_cycle_gas_per_trade_1000": round(res.gas_used / res.trades, 1)}
