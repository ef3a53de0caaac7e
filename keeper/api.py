"""HTTP API of the keeper (FastAPI). Every refusal is a 4xx JSON ``{"error", "field"}``; no stack
traces leave the server.

- ``POST /v1/orders``            submit a signed order (``SignedOrder.to_dict()`` JSON)
- ``GET  /v1/orders?interval=&maker=``  list orders
- ``GET  /v1/orders/{hash}``     one order
- ``DELETE /v1/orders/{hash}``   cancel off chain; body ``{"signature": "0x…"}`` = the maker's
  EIP-191 signature of the 32 hash bytes (the on-chain ``cancelOrder`` is the trustless way)
- ``GET  /v1/intervals/{id}``    clearing price, volume, money (what the buyers paid), rounding
  dust, trades (each with ``seller_received``/``buyer_paid``: its share of what its orders moved
  on chain, which is rounded per order, not per trade), transaction
- ``GET  /v1/health``
- ``GET  /metrics``              Prometheus metrics (keeper/metrics.py; alert rules in docs/operations.md)

Other components add routes through ``create_app(keeper, routers=[...])`` (e.g. a meter-reading
relay ``POST /v1/readings``). :func:`serve_in_thread` runs uvicorn in-process (tests, demo).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence

import uvicorn
from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException
from web3 import Web3

from gridcoop_sdk.orders import OrderError, SignedOrder

from . import db as D
from .metrics import metrics_response
from .service import Keeper, OrderRejected
from .settlement import rows_money

log = logging.getLogger("gridcoop.keeper.api")

MAX_BODY_BYTES = 16 * 1024
BODY_LIMITS = {"/v1/readings": 1024 * 1024}
"""Per-path body limits above the default (a relay batch of 500 signed readings is ~330 KB)."""
TOP_LEVEL_FIELDS = frozenset({"order", "signature", "chain_id", "market", "hash", "prefer"})
MAX_PREFERRED = 16  # ranked preferred partners an order may name (unsigned: matched first, not required)
ORDER_STATUSES = (D.ORDER_OPEN, D.ORDER_CANCELLED, D.ORDER_DROPPED, D.ORDER_FILLED, D.ORDER_PARTIAL,
                  D.ORDER_UNFILLED)
MAX_INTERVAL = 2**63 - 1  # interval ids are uint64 on chain; SQLite integers are signed 64-bit


def _err(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, "field": field})


def _order_json(o: D.OrderRow) -> dict:
    return {"hash": o.hash, "interval_id": o.interval_id, "maker": o.maker, "side": o.side,
            "amount_wh": o.amount_wh, "limit_price": int(o.limit_price), "payment_token": o.payment_token,
            "partially_fillable": o.partially_fillable, "expiry": o.expiry, "counterparty": o.counterparty,
            "colour": o.colour, "prefer": json.loads(o.prefer) if o.prefer else [], "status": o.status,
            "filled_wh": o.filled_wh, "reason": o.reason}


def orders_router(keeper: Keeper) -> APIRouter:
    r = APIRouter(prefix="/v1")

    @r.post("/orders", status_code=201)
    async def submit(request: Request):
        try:
            body = await request.json()
        except Exception:
            return _err(400, "body is not valid JSON", "body")
        if not isinstance(body, dict):
            return _err(422, "body must be a JSON object (SignedOrder.to_dict())", "body")
        unknown = sorted(set(body) - TOP_LEVEL_FIELDS)
        if unknown:
            return _err(422, f"{unknown[0]}: unknown field (expected {', '.join(sorted(TOP_LEVEL_FIELDS))})",
                        unknown[0])
        prefer = body.pop("prefer", None) or []
        if (not isinstance(prefer, list) or len(prefer) > MAX_PREFERRED
                or not all(isinstance(a, str) and Web3.is_address(a) for a in prefer)):
            return _err(422, f"prefer: a list of at most {MAX_PREFERRED} addresses (preferred partners, best "
                        "first)", "prefer")
        try:
            signed = SignedOrder.from_dict(body)
        except OrderError as exc:
            return _err(422, str(exc), exc.field if exc.field.startswith("order") or exc.field in
                        TOP_LEVEL_FIELDS | {"json"} else f"order.{exc.field}")
        except (TypeError, ValueError) as exc:
            return _err(422, f"malformed order: {exc}", "order")
        try:
            row = keeper.accept_order(signed, prefer=[Web3.to_checksum_address(a) for a in prefer])
        except OrderRejected as exc:
            return _err(exc.status, str(exc), exc.field)
        return {"hash": row.hash, "status": row.status, "interval_id": row.interval_id}

    @r.get("/orders")
    def list_orders(interval: int | None = Query(None, ge=0, le=MAX_INTERVAL), maker: str | None = None,
                    status: str | None = None):
        if maker:
            if not Web3.is_address(maker):
                return _err(422, f"maker: not an address: {maker[:60]!r}", "maker")
            maker = Web3.to_checksum_address(maker)
        if status and status not in ORDER_STATUSES:
            return _err(422, f"status: one of {', '.join(ORDER_STATUSES)}", "status")
        with keeper.db.session() as s:
            q = select(D.OrderRow).order_by(D.OrderRow.seq)
            if interval is not None:
                q = q.where(D.OrderRow.interval_id == interval)
            if maker:
                q = q.where(D.OrderRow.maker == maker)
            if status:
                q = q.where(D.OrderRow.status == status)
            return {"orders": [_order_json(o) for o in s.scalars(q.limit(10_000))]}

    @r.get("/orders/{order_hash}")
    def get_order(order_hash: str):
        if len(order_hash) != 66:
            return _err(404, f"no order {order_hash[:80]} (an order hash is 0x + 64 hex digits)", "hash")
        with keeper.db.session() as s:
            o = s.scalar(select(D.OrderRow).where(D.OrderRow.hash == order_hash.lower()))
            if o is None:
                return _err(404, f"no order {order_hash}", "hash")
            return _order_json(o)

    @r.delete("/orders/{order_hash}")
    async def cancel(order_hash: str, request: Request):
        try:
            body = await request.json()
            sig = bytes.fromhex(str(body["signature"]).removeprefix("0x"))
        except Exception:
            return _err(422, 'body must be {"signature": "0x…"} (maker\'s EIP-191 signature of the hash)',
                        "signature")
        try:
            row = keeper.cancel_order(order_hash.lower(), sig)
        except OrderRejected as exc:
            return _err(exc.status, str(exc), exc.field)
        return {"hash": row.hash, "status": row.status}

    @r.get("/intervals/{interval_id}")
    def interval(interval_id: int = Path(ge=0, le=MAX_INTERVAL)):
        res = keeper.result(interval_id)
        with keeper.db.session() as s:
            rows = list(s.scalars(select(D.TradeRow).where(D.TradeRow.interval_id == interval_id)
                                  .order_by(D.TradeRow.id)))
            split = rows_money(rows)
            # money: the trade's value rounded down (display); seller_received / buyer_paid: the
            # trade's share of what its orders moved on chain (they add up exactly per order)
            trades = [{"seller": t.seller, "buyer": t.buyer, "wh": t.wh, "price": int(t.price), "money": t.money,
                       "seller_received": str(got), "buyer_paid": str(paid),
                       "payment_token": t.payment_token, "sell_hash": t.sell_hash, "buy_hash": t.buy_hash}
                      for t, got, paid in zip(rows, split.trade_received, split.trade_paid, strict=True)]
            n_orders = len(list(s.scalars(select(D.OrderRow.seq).where(D.OrderRow.interval_id == interval_id))))
        return {"interval_id": interval_id, "state": res.state, "price": res.price, "volume_wh": res.volume_wh,
                "money": str(res.money), "rounding_dust": str(res.rounding_dust), "trades": trades, "orders": n_orders, "tx_hash": res.tx_hash,
                "gas_used": res.gas_used, "closes_at": keeper.closes_at(interval_id), "error": res.error}

    @r.get("/health")
    def health():
        try:
            return keeper.health()
        except Exception as exc:
            return _err(503, f"unhealthy: {exc}", None)

    return r


def create_app(keeper: Keeper, *, routers: Sequence[APIRouter] = (), max_body_bytes: int = MAX_BODY_BYTES,
               body_limits: dict[str, int] | None = None) -> FastAPI:
    """The keeper's FastAPI app. ``routers``: extra APIRouters (e.g. a reading relay).

    Bodies are limited to ``max_body_bytes`` except on the paths in ``body_limits``
    (default :data:`BODY_LIMITS`: 1 MiB for the reading relay)."""
    app = FastAPI(title="gridcoop keeper", version="1")
    limits = BODY_LIMITS if body_limits is None else body_limits

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        limit = limits.get(request.url.path, max_body_bytes)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _err(413, f"body larger than {limit} bytes", "body")
        if length is None and request.method in ("POST", "PUT", "DELETE", "PATCH"):
            body = await request.body()
            if len(body) > limit:
                return _err(413, f"body larger than {limit} bytes", "body")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def validation(_request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return _err(422, f"{field or 'request'}: {first.get('msg', 'invalid')}", field or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        return _err(exc.status_code, str(exc.detail), None)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        log.exception("unexpected error: %s", exc)
        return _err(500, f"internal error ({type(exc).__name__})", None)

    @app.get("/metrics", include_in_schema=False)
    def metrics():
        body, content_type = metrics_response()
        return Response(content=body, media_type=content_type)

    app.include_router(orders_router(keeper))
    for r in routers:
        app.include_router(r)
    app.state.keeper = keeper
    return app


class ServerHandle:
    """A uvicorn server running in a daemon thread; ``stop()`` shuts it down."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int):
        self.server, self.thread, self.host, self.port = server, thread, host, port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int | None = None,
                    log_level: str = "warning") -> ServerHandle:
    """Start uvicorn for ``app`` in a thread and wait until it accepts connections."""
    from gridcoop_sdk.chain import free_port

    port = port or free_port(host)
    from gridcoop_sdk.logs import json_logs_enabled

    # with JSON logs, uvicorn's own loggers go through the root logger's JSON handler
    extra = {"log_config": None} if json_logs_enabled() else {}
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off", **extra)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, name=f"keeper-api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"keeper API did not start on {host}:{port}")
        time.sleep(0.02)
    return ServerHandle(server, thread, host, port)
