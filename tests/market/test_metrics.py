"""Prometheus metrics over real HTTP: the keeper's /metrics (orders, settlement gas and lag, settlement
transactions, the settler lock, the reading relay) and the meter bridge's endpoint (outbox depth,
readings by result and reason, meters unreachable) move with real events; JSON logs."""

from __future__ import annotations

import io
import json
import logging

import httpx
from eth_account import Account
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from gridcoop_sdk.chain import free_port
from gridcoop_sdk.logs import JsonFormatter
from gridcoop_sdk.meters import deploy_meters
from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id
from keeper.api import create_app, serve_in_thread
from keeper.clock import chain_clock
from keeper.relay import readings_router
from keeper.service import Keeper, OrderRejected
from meter_bridge.gateway import Gateway, Site
from meter_bridge.intervals import IntervalBuilder
from meter_bridge.outbox import Outbox
from meter_bridge.pushers import DirectPusher
from meter_bridge.reader import ModbusMeterReader
from meter_bridge.registermap import load_map

from .test_keeper import _book, advance_to


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` from a real GET of ``url``."""
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: dict, name: str, **labels) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def _unregistered_reading(w3, registry, base: int):
    key = Account.create()
    r = Reading(meter_id=meter_id(f"nobody-{key.address}"), sequence=1, interval_start=base, interval_end=base + 900,
                generation_wh=400, consumption_wh=250, export_wh=150, import_wh=0, frequency_mhz=50_000)
    return ReadingSigner(key.key, w3.eth.chain_id, registry.address).sign(r)


def test_keeper_metrics_move_with_orders_settlement_and_relayed_readings(env, tmp_path):
    registry = deploy_meters(env.w3, env.admin, env.watt)
    k = Keeper(env.w3, env.keeper, env.market, f"sqlite:///{tmp_path}/k.db", clock=chain_clock(env.w3),
               receipt_timeout=30)
    handle = serve_in_thread(create_app(k, routers=[readings_router(env.w3, env.admin, registry)]))
    url = handle.url + "/metrics"
    try:
        m0 = scrape(url)
        assert value(m0, "gridcoop_keeper_is_settler") == 1  # SQLite: the one keeper of its file
        iid = env.current_interval() + 2
        book = _book(env, iid)
        for signed in book:
            k.accept_order(signed)
        try:
            k.accept_order(book[0])
        except OrderRejected:
            pass
        advance_to(env.w3, iid * 900 + 7)
        res = k.run_once()[0]
        assert res.state == "settled" and res.gas_used > 0
        # a reading the chain refuses (meter not registered): counted under the registry's reason
        base = (env.now() // 900 - 3) * 900
        r = httpx.post(handle.url + "/v1/readings", json={"readings": [_unregistered_reading(env.w3, registry, base)
                                                                       .to_dict()]}, timeout=30)
        assert r.status_code == 200 and r.json()["rejected"][0]["reason"] == "UnknownMeter"
        bad = _unregistered_reading(env.w3, registry, base).to_dict() | {"chain_id": 5}
        assert httpx.post(handle.url + "/v1/readings", json={"readings": [bad]}, timeout=30).status_code == 400
        m1 = scrape(url)
    finally:
        handle.stop()
        k.db.dispose()

    def delta(name, **labels):
        return value(m1, name, **labels) - value(m0, name, **labels)

    assert delta("gridcoop_keeper_orders_total", result="accepted", field="") == 6
    assert delta("gridcoop_keeper_orders_total", result="refused", field="order") == 1  # the duplicate
    assert delta("gridcoop_keeper_intervals_total", state="settled") == 1
    assert value(m1, "gridcoop_keeper_last_settlement_gas") == res.gas_used
    assert value(m1, "gridcoop_keeper_last_settled_interval") == iid
    assert 7 <= value(m1, "gridcoop_keeper_last_settlement_lag_seconds") < 120
    assert delta("gridcoop_keeper_settlement_gas_count") == 1
    assert delta("gridcoop_keeper_settlement_gas_sum") == res.gas_used
    assert delta("gridcoop_keeper_settlement_lag_seconds_count") == 1
    assert delta("gridcoop_keeper_settlement_txs_total", event="signed") == 1
    assert delta("gridcoop_keeper_settlement_txs_total", event="mined") == 1
    assert value(m1, "gridcoop_keeper_oldest_unsettled_seconds") == 0
    assert delta("gridcoop_relay_readings_total", result="refused", reason="UnknownMeter") == 1
    assert delta("gridcoop_relay_readings_total", result="refused", reason="bad_chain_id") == 1
    assert delta("gridcoop_relay_batches_total", outcome="ok") == 1
    assert delta("gridcoop_relay_batches_total", outcome="bad_request") == 1


def test_bridge_metrics_outbox_refusals_and_unreachable_meters(env, tmp_path):
    registry = deploy_meters(env.w3, env.admin, env.watt)
    port = free_port()
    start_http_server(port, addr="127.0.0.1")  # what `gridcoop bridge run --metrics-port` starts
    url = f"http://127.0.0.1:{port}/metrics"
    dead = free_port()  # nothing listens there: the meter is unreachable
    site = Site(name="attic", signer=ReadingSigner(Account.create().key, env.chain_id, registry.address),
                grid=ModbusMeterReader(load_map("eastron_sdm630"), port=dead, unit=1, timeout=0.2),
                builder=IntervalBuilder("attic", meter_id("attic")))
    outbox = Outbox(tmp_path / "o.sqlite", clock=lambda: float(env.now()))
    gw = Gateway([site], outbox, DirectPusher(env.w3, env.admin, registry), clock=lambda: float(env.now()))
    try:
        m0 = scrape(url)
        gw.poll_once()
        m1 = scrape(url)
        assert value(m1, "gridcoop_bridge_meters_unreachable") == 1
        assert value(m1, "gridcoop_bridge_meter_read_errors_total", meter="attic") - \
            value(m0, "gridcoop_bridge_meter_read_errors_total", meter="attic") == 1
        # a signed reading in the outbox (depth 1) that the chain refuses: UnknownMeter
        signed = _unregistered_reading(env.w3, registry, (env.now() // 900 - 3) * 900)
        assert outbox.add("stray", signed, None)
        gw._outbox_metrics()
        assert value(scrape(url), "gridcoop_bridge_outbox_readings", status="pending") == 1
        assert gw.push_once() is not None
        m2 = scrape(url)
    finally:
        gw.close()
    assert value(m2, "gridcoop_bridge_readings_total", result="refused", reason="UnknownMeter") - \
        value(m0, "gridcoop_bridge_readings_total", result="refused", reason="UnknownMeter") == 1
    assert value(m2, "gridcoop_bridge_outbox_readings", status="pending") == 0
    assert value(m2, "gridcoop_bridge_outbox_readings", status="rejected") == 1


def test_json_log_lines_carry_the_fields():
    buf = io.StringIO()
    h = logging.StreamHandler(buf)
    h.setFormatter(JsonFormatter())
    log = logging.getLogger("gridcoop.test.json")
    log.addHandler(h)
    log.setLevel(logging.INFO)
    try:
        log.info("interval %s settled", 1934, extra={"interval_id": 1934, "gas_used": 91_000})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(h)
    first, second = (json.loads(line) for line in buf.getvalue().splitlines() if line.startswith("{"))
    assert first["message"] == "interval 1934 settled" and first["interval_id"] == 1934
    assert first["level"] == "INFO" and first["logger"] == "gridcoop.test.json" and first["time"].endswith("Z")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]
