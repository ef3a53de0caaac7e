"""Bounded load test: N gateways push signed readings to the keeper's relay and M clients submit
signed orders over HTTP, concurrently, for K intervals; then each interval is settled.

Everything is real (anvil, uvicorn on loopback, the relay sending ``submitReadings``); the checks
are strict: every reading is on chain exactly once (ReadingAccepted events), every order the keeper
answered 201 is in its book, every interval settled once (IntervalSettled). Figures: readings/s
relayed, orders/s accepted, settle seconds per interval.

``run(ctx)`` is the ``make bench`` entry; :func:`load` is what tests/faults/test_load.py calls
with a small profile.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from gridcoop_sdk import wh_to_watt
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.meters import deploy_meters, register_meter
from gridcoop_sdk.orders import Order, deploy_market, sign_order
from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id
from gridcoop_sdk.tx import send
from keeper.api import create_app, serve_in_thread
from keeper.relay import readings_router
from keeper.service import Keeper
from meter_bridge.pushers import HttpPusher

MAX = 2**256 - 1


def _now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def load(w3: Web3, accounts: list[LocalAccount], *, gateways: int, meters_per_gateway: int, clients: int,
         orders_per_client: int, intervals: int, workdir: Path) -> dict[str, float]:
    admin, keeper_acct, relayer = accounts[0], accounts[1], accounts[2]
    people = accounts[3:3 + clients]
    assert len(people) == clients, f"need {clients + 3} funded accounts"
    watt = deploy(w3, admin, "WattToken", admin.address, record=False)
    token = deploy(w3, admin, "MarketTestToken", "Yen", "JPYC", record=False)
    market = deploy_market(w3, admin, watt, keeper=keeper_acct.address, payment_tokens=(token,),
                           directory=workdir)
    registry = deploy_meters(w3, admin, watt, directory=workdir)
    send(w3, admin, watt.functions.grantRole(watt.functions.MINTER_ROLE().call(), admin.address))
    for i, p in enumerate(people):
        if i % 2 == 0:
            send(w3, admin, watt.functions.mint(p.address, wh_to_watt(10**7)))
            send(w3, p, watt.functions.approve(market.address, MAX))
        else:
            send(w3, admin, token.functions.mint(p.address, 10**30))
            send(w3, p, token.functions.approve(market.address, MAX))
    chain_id = w3.eth.chain_id
    signers: list[list[tuple[bytes, ReadingSigner]]] = []
    for g in range(gateways):
        row = []
        for m in range(meters_per_gateway):
            dev = Account.from_key(Web3.keccak(text=f"load-device/{g}/{m}"))
            mid = meter_id(f"load-{g}-{m}")
            register_meter(w3, admin, registry, meter_id=mid, signer=dev.address, owner=admin.address,
                           kind="prosumer", colour="solar", certified=False, rated_power_w=20_000)
            row.append((mid, ReadingSigner(dev.key, chain_id, registry.address)))
        signers.append(row)
    # The registry accepts only intervals that are over and began after registration: move the
    # chain's clock past the first whole interval after the meters were registered.
    w3.provider.make_request("evm_setNextBlockTimestamp", [(_now(w3) // 900 + 2) * 900 + 1])
    w3.provider.make_request("evm_mine", [])

    k = Keeper(w3, keeper_acct, market, f"sqlite:///{workdir}/keeper.db", receipt_timeout=60)
    handle = serve_in_thread(create_app(k, routers=[readings_router(w3, relayer, registry)]))
    block0 = w3.eth.block_number
    answered: set[str] = set()
    lock = threading.Lock()
    t_readings = t_orders = 0.0
    n_readings = n_orders = 0
    settle_times = []
    iids = []
    try:
        for kx in range(intervals):
            iid = _now(w3) // 900 + 2
            iids.append(iid)
            start = (_now(w3) // 900 - 1) * 900  # the interval that just ended on the chain's clock

            def gateway(g: int, kx=kx, start=start) -> float:
                batch = [s.sign(Reading(meter_id=mid, sequence=kx + 1, interval_start=start, interval_end=start + 900,
                                        generation_wh=400 + g, consumption_wh=250, export_wh=150 + g, import_wh=0,
                                        frequency_mhz=50_000)) for mid, s in signers[g]]
                pusher = HttpPusher(handle.url, timeout=120)
                t = time.monotonic()
                res = pusher.push(batch)
                if len(res.accepted) != len(batch):
                    raise AssertionError(f"gateway {g}: {res}")
                return time.monotonic() - t

            def client(c: int, iid=iid) -> float:
                who = people[c]
                side = "sell" if c % 2 == 0 else "buy"
                t = time.monotonic()
                with httpx.Client(base_url=handle.url, timeout=60) as http:
                    for j in range(orders_per_client):
                        price = 20 + (c * 7 + j * 3) % 15
                        o = Order(maker=who.address, side=side, interval_id=iid, amount_wh=100 + 37 * j + c,
                                  limit_price=price, payment_token=token.address, expiry=iid * 900 + 86400)
                        signed = sign_order(o, who.key, chain_id, market.address)
                        r = http.post("/v1/orders", json=signed.to_dict())
                        if r.status_code != 201:
                            raise AssertionError(f"client {c}: {r.status_code} {r.text}")
                        with lock:
                            answered.add(r.json()["hash"])
                return time.monotonic() - t

            t0 = time.monotonic()
            with ThreadPoolExecutor(max_workers=gateways + clients) as pool:
                g_futs = [pool.submit(gateway, g) for g in range(gateways)]
                c_futs = [pool.submit(client, c) for c in range(clients)]
                g_wall = max(f.result() for f in g_futs)
                c_wall = max(f.result() for f in c_futs)
            t_readings += g_wall
            t_orders += c_wall
            n_readings += gateways * meters_per_gateway
            n_orders += clients * orders_per_client
            logging.getLogger("bench.load").info("interval %s: concurrent phase %.2fs", iid, time.monotonic() - t0)
            w3.provider.make_request("evm_setNextBlockTimestamp", [iid * 900 + 1])
            w3.provider.make_request("evm_mine", [])
            t = time.monotonic()
            res = k.settle_interval(iid)
            settle_times.append(time.monotonic() - t)
            if res.state != "settled":
                raise AssertionError(f"interval {iid}: {res}")
        # exactly once, nothing lost
        keys = [(e.args.meterId, e.args.sequence) for e in registry.events.ReadingAccepted().get_logs(from_block=block0)]
        if len(keys) != n_readings or len(set(keys)) != n_readings:
            raise AssertionError(f"{len(keys)} ReadingAccepted events ({len(set(keys))} distinct), expected {n_readings}")
        with httpx.Client(base_url=handle.url, timeout=60) as http:
            book = {o["hash"] for i in iids for o in http.get("/v1/orders", params={"interval": i}).json()["orders"]}
        if answered - book or len(answered) != n_orders:
            raise AssertionError(f"orders lost: {len(answered - book)}; answered {len(answered)} of {n_orders}")
        for i in iids:
            evs = market.events.IntervalSettled().get_logs(from_block=block0, argument_filters={"intervalId": i})
            if len(evs) != 1:
                raise AssertionError(f"interval {i}: {len(evs)} IntervalSettled events")
    finally:
        handle.stop()
        k.db.dispose()
    return {
        "load_readings": float(n_readings),
        "load_orders": float(n_orders),
        "load_readings_per_s": round(n_readings / t_readings, 1),
        "load_orders_per_s": round(n_orders / t_orders, 1),
        "load_settle_s_mean": round(sum(settle_times) / len(settle_times), 3),
        "load_settle_s_max": round(max(settle_times), 3),
    }


def run(ctx) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        return load(ctx.w3, ctx.accounts, gateways=8, meters_per_gateway=10, clients=12, orders_per_client=5,
                    intervals=4, workdir=Path(d))
