"""Bad input to every keeper HTTP entry point (orders, intervals, readings relay): each refusal is a
4xx JSON naming the field, never a stack trace, and the service still answers /v1/health."""

from __future__ import annotations

import json

import httpx
import pytest
from faults.harness import advance_chain, deploy_stack

from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id
from keeper.api import create_app, serve_in_thread
from keeper.relay import readings_router
from keeper.service import Keeper

NAMES = ["hostile-1", "hostile-2"]


@pytest.fixture(scope="module")
def stack(w3, anvil, wallets, tmp_path_factory):
    st = deploy_stack(w3, anvil.url, wallets, households=NAMES, directory=tmp_path_factory.mktemp("deployments"))
    # readings use sequences up to 200 after the first interval past registration: let them be over
    advance_chain(w3, st.reading_base + 900 * 250)
    return st


@pytest.fixture(scope="module")
def server(stack, tmp_path_factory):
    db = tmp_path_factory.mktemp("keeper") / "k.db"
    k = Keeper(stack.w3, stack.keeper, stack.market, f"sqlite:///{db}")
    handle = serve_in_thread(create_app(k, routers=[readings_router(stack.w3, stack.relayer, stack.registry)]))
    yield handle.url
    handle.stop()
    k.db.dispose()


def _assert_refusal(r: httpx.Response, status: int | tuple, field: str | None, url: str):
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert set(body) == {"error", "field"}, body
    assert "Traceback" not in r.text and 'File "' not in r.text
    assert body["error"], body
    if field is not None:
        assert body["field"] == field, (body, field)
    assert httpx.get(url + "/v1/health", timeout=10).json()["ok"] is True


def _good_order(stack):
    iid = stack.w3.eth.get_block("latest")["timestamp"] // 900 + 4
    d = stack.order(stack.sellers[0], "sell", 500, 25, iid).to_dict()
    del d["hash"]  # optional on the wire; when given it must match (case below)
    return d


def _with(d: dict, path: str, value) -> dict:
    d = json.loads(json.dumps(d))
    *head, last = path.split(".")
    cur = d
    for p in head:
        cur = cur[p]
    if value is _DEL:
        del cur[last]
    else:
        cur[last] = value
    return d


_DEL = object()

ORDER_CASES = [
    ("order.amount_wh", "100", "order.amount_wh"),
    ("order.amount_wh", -5, "order.amount_wh"),
    ("order.amount_wh", 0, "order.amount_wh"),
    ("order.amount_wh", 2**300, "order.amount_wh"),
    ("order.amount_wh", 1.5, "order.amount_wh"),
    ("order.amount_wh", None, "order.amount_wh"),
    ("order.amount_wh", True, "order.amount_wh"),
    ("order.limit_price", -1, "order.limit_price"),
    ("order.limit_price", 10**80, "order.limit_price"),
    ("order.limit_price", [], "order.limit_price"),
    ("order.interval_id", 2**64, "order.interval_id"),
    ("order.interval_id", "next", "order.interval_id"),
    ("order.expiry", -1, "order.expiry"),
    ("order.salt", "salty", "order.salt"),
    ("order.salt", -1, "order.salt"),
    ("order.side", "hold", "order.side"),
    ("order.side", 1, "order.side"),
    ("order.maker", "0x1234", "order.maker"),
    ("order.maker", 12, "order.maker"),
    ("order.payment_token", "not-an-address", "order.payment_token"),
    ("order.counterparty", {"a": 1}, "order.counterparty"),
    ("order.colour", "x" * 40, "order.colour"),
    ("order.colour", 7, "order.colour"),
    ("order.partially_fillable", "yes", "order.partially_fillable"),
    ("order.partially_fillable", 2, "order.partially_fillable"),
    ("order.amount_wh", _DEL, "order.amount_wh"),
    ("order.sneaky", 1, "order.sneaky"),
    ("sneaky", 1, "sneaky"),
    ("order", [], "order"),
    ("order", "x", "order"),
    ("signature", "0xzz", "signature"),
    ("signature", 12345, "signature"),
    ("signature", "0x" + "11" * 30, "signature"),
    ("signature", _DEL, "signature"),
    ("chain_id", "31337", "chain_id"),
    ("chain_id", 1, "chain_id"),
    ("chain_id", 2**256, "chain_id"),
    ("chain_id", -1, "chain_id"),
    ("market", "0x" + "ab" * 20, "market"),
    ("market", "nowhere", "market"),
    ("market", None, "market"),
    ("hash", "0x" + "00" * 32, "hash"),
]


@pytest.mark.parametrize(("path", "value", "field"), ORDER_CASES,
                         ids=[f"{p}={str(v)[:12] if v is not _DEL else 'missing'}" for p, v, _ in ORDER_CASES])
def test_bad_order_fields_are_refused_naming_the_field(stack, server, path, value, field):
    body = _with(_good_order(stack), path, value)
    r = httpx.post(server + "/v1/orders", json=body, timeout=10)
    _assert_refusal(r, (409, 413, 422), field, server)


RAW_BODIES = [
    (b"not json", 400, "body"),
    (b"", 400, "body"),
    (b"{\"order\": ", 400, "body"),
    (b"[1, 2, 3]", 422, "body"),
    (b"null", 422, "body"),
    (b"12", 422, "body"),
    (b"\"text\"", 422, "body"),
    (b"[" * 5000 + b"]" * 5000, (400, 422), "body"),
    (b"\xff\xfe\x00garbage", 400, "body"),
    (b"{\"a\": NaN}", (400, 422), None),
    (b"{" + b" " * 20_000 + b"}", 413, "body"),
]


@pytest.mark.parametrize(("raw", "status", "field"), RAW_BODIES, ids=[str(i) for i in range(len(RAW_BODIES))])
def test_malformed_order_bodies(server, raw, status, field):
    r = httpx.post(server + "/v1/orders", content=raw, headers={"content-type": "application/json"}, timeout=10)
    _assert_refusal(r, status, field, server)


def test_oversized_body_without_content_length_is_refused(server):
    def chunks():
        for _ in range(40):
            yield b" " * 1024

    r = httpx.post(server + "/v1/orders", content=chunks(), headers={"content-type": "application/json"},
                   timeout=10)
    _assert_refusal(r, 413, "body", server)


@pytest.mark.parametrize(("method", "path", "status", "field"), [
    ("GET", "/v1/intervals/abc", 422, "interval_id"),
    ("GET", "/v1/intervals/-1", 422, "interval_id"),
    ("GET", f"/v1/intervals/{2**64}", 422, "interval_id"),
    ("GET", f"/v1/intervals/{10**40}", 422, "interval_id"),
    ("GET", "/v1/orders?interval=soon", 422, "interval"),
    ("GET", f"/v1/orders?interval={10**30}", 422, "interval"),
    ("GET", "/v1/orders?interval=-3", 422, "interval"),
    ("GET", "/v1/orders?maker=nobody", 422, "maker"),
    ("GET", "/v1/orders?status=weird", 422, "status"),
    ("GET", "/v1/orders/0x1234", 404, "hash"),
    ("GET", "/v1/nowhere", 404, None),
    ("GET", "/v1/readings/last/0x12", 422, "meter_id"),
    ("GET", "/v1/readings/last/" + "zz" * 33, 422, "meter_id"),
    ("GET", "/v1/readings/last/0x" + "00" * 32, 404, "meter_id"),
    ("PUT", "/v1/orders", 405, None),
    ("DELETE", "/v1/orders/0x" + "00" * 32, 422, "signature"),
])
def test_bad_paths_and_queries(server, method, path, status, field):
    r = httpx.request(method, server + path, timeout=10)
    _assert_refusal(r, status, field, server)


def test_cancel_with_bad_signatures(stack, server):
    body = _good_order(stack)
    r = httpx.post(server + "/v1/orders", json=body, timeout=10)
    assert r.status_code == 201, r.text
    h = r.json()["hash"]
    for sig_body, status in ([{"signature": "0xzz"}, 422], [{"signature": "0x" + "00" * 65}, 422],
                             [{"signature": 5}, 422], [{}, 422], [[1], 422], ["x", 422]):
        r = httpx.request("DELETE", server + f"/v1/orders/{h}", json=sig_body, timeout=10)
        _assert_refusal(r, status, "signature", server)


# ---------------------------------------------------------------------------- readings relay
def _reading(stack, name="hostile-1", seq=1, **kw):
    s = stack.reading_base + 900 * seq
    fields = dict(meter_id=meter_id(name), sequence=seq, interval_start=s, interval_end=s + 900, generation_wh=400,
                  consumption_wh=250, export_wh=150, import_wh=0, frequency_mhz=50_000)
    fields.update(kw)
    return ReadingSigner(stack.devices[name].key, stack.chain_id, stack.registry.address).sign(Reading(**fields))


def test_relay_accepts_a_good_batch(stack, server):
    body = {"readings": [_reading(stack, seq=1).to_dict(), _reading(stack, "hostile-2", seq=1).to_dict()]}
    r = httpx.post(server + "/v1/readings", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert len(r.json()["accepted"]) == 2


def _bad_reading(stack, key, value):
    d = _reading(stack, seq=7).to_dict()
    if value is _DEL:
        del d[key]
    else:
        d[key] = value
    return {"readings": [_reading(stack, "hostile-2", seq=9).to_dict(), d]}


READING_CASES = [
    ("generation_wh", "400", "readings[1].generation_wh"),
    ("generation_wh", -400, "readings[1].generation_wh"),
    ("generation_wh", 2**70, "readings[1].generation_wh"),
    ("generation_wh", 4.5, "readings[1].generation_wh"),
    ("sequence", None, "readings[1].sequence"),
    ("frequency_mhz", 2**40, "readings[1].frequency_mhz"),
    ("export_wh", _DEL, "readings[1].export_wh"),
    ("meter_id", "0xnothex", "readings[1].meter_id"),
    ("meter_id", 42, "readings[1].meter_id"),
    ("signature", "0x1234", "readings[1].signature"),
    ("signature", 7, "readings[1].signature"),
    ("chain_id", 5, "readings[1].chain_id"),
    ("chain_id", "31337", "readings[1].chain_id"),
    ("registry", "0x" + "cd" * 20, "readings[1].registry"),
    ("registry", "nowhere", "readings[1].registry"),
    ("surprise", 1, "readings[1].surprise"),
]


@pytest.mark.parametrize(("key", "value", "field"), READING_CASES,
                         ids=[f"{k}={str(v)[:10] if v is not _DEL else 'missing'}" for k, v, _ in READING_CASES])
def test_bad_readings_are_refused_naming_the_field(stack, server, key, value, field):
    before = stack.registry.functions.getMeter(meter_id("hostile-2")).call()
    r = httpx.post(server + "/v1/readings", json=_bad_reading(stack, key, value), timeout=30)
    _assert_refusal(r, 400, field, server)
    # nothing of the batch was submitted (the good reading in it stays for a clean re-push)
    assert stack.registry.functions.getMeter(meter_id("hostile-2")).call() == before


@pytest.mark.parametrize(("raw", "status", "field"), [
    (b"not json", 400, "body"),
    (b"[]", 400, "body"),
    (b"{}", 400, "readings"),
    (b"{\"readings\": \"all\"}", 400, "readings"),
    (b"{\"readings\": []}", 400, "readings"),
    (b"{\"readings\": [1, 2]}", 400, "readings[0]"),
    (b"{\"readings\": [], \"extra\": 1}", 400, "extra"),
])
def test_malformed_relay_bodies(server, raw, status, field):
    r = httpx.post(server + "/v1/readings", content=raw, headers={"content-type": "application/json"}, timeout=10)
    _assert_refusal(r, status, field, server)


def test_relay_batch_limits(stack, server):
    one = _reading(stack, seq=20).to_dict()
    # 501 readings: over the relay's batch limit (and within its body limit) -> 400 naming readings
    r = httpx.post(server + "/v1/readings", json={"readings": [one] * 501}, timeout=30)
    _assert_refusal(r, (400, 413), "readings" if r.status_code == 400 else "body", server)
    # a full batch of 100 distinct readings of one gateway must fit the body limit
    batch = [_reading(stack, "hostile-2", seq=100 + i).to_dict() for i in range(100)]
    r = httpx.post(server + "/v1/readings", json={"readings": batch}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["accepted"]) == 100
    # a 5 MB body is refused before it is parsed
    r = httpx.post(server + "/v1/readings", content=b"{\"readings\": [" + b" " * 5_000_000 + b"]}",
                   headers={"content-type": "application/json"}, timeout=30)
    _assert_refusal(r, 413, "body", server)
