"""The keeper's meter-reading relay: ``POST /v1/readings`` for gateways that hold no gas.

A gateway (``meter_bridge`` with ``pusher: http``) posts ``{"readings": [<signed reading>, …]}``;
the relay checks the body, submits the batch to the MeterRegistry from its own gas account and
answers which readings the chain accepted, already had (duplicates: a re-push after a crash is
a no-op) or refused (with the reason). The meter's device signature is checked on chain, so the
relay can neither forge nor alter a reading — it only pays the gas. Wire format and the checks
live in :func:`gridcoop_sdk.meters.relay_readings`.

Answers: 200 with the three lists; 400 naming the problem for a malformed body, a batch that is
too large, or readings signed for another chain or registry; 502 when the transaction failed and
503 when the node is down (the gateway keeps the readings in its outbox and retries).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from eth_account.signers.local import LocalAccount
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from web3 import Web3
from web3.contract import Contract

from gridcoop_sdk.exceptions import GridcoopError, NodeUnreachableError, TransactionFailed
from gridcoop_sdk.meters import relay_readings
from gridcoop_sdk.readings import ReadingError, SignedReading

from . import metrics as M

log = logging.getLogger("keeper.relay")

MAX_BATCH = 500


READING_FIELDS = ("meter_id", "sequence", "interval_start", "interval_end", "generation_wh", "consumption_wh",
                  "export_wh", "import_wh", "frequency_mhz", "signature", "chain_id", "registry")
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_FIELD_IN_MESSAGE = re.compile(r"^(\w+) must be")


def check_body(body: Any, chain_id: int, registry: str, max_batch: int = MAX_BATCH) -> tuple[str, str] | None:
    """``(field, message)`` for the first problem of a relay body, or None if it is well formed.

    Every reading is checked before anything is submitted, so one bad reading refuses the whole
    batch (answer 400) and the gateway's good readings stay pending for a clean re-push.
    """
    if not isinstance(body, dict):
        return "body", f'body must be a JSON object {{"readings": [...]}}, got {type(body).__name__}'
    unknown = sorted(set(body) - {"readings"})
    if unknown:
        return unknown[0], f'{unknown[0]}: unknown field (the body is {{"readings": [...]}})'
    items = body.get("readings")
    if not isinstance(items, list):
        return "readings", f"readings: must be a list of signed readings, got {type(items).__name__}"
    if not 0 < len(items) <= max_batch:
        return "readings", f"readings: a batch holds 1..{max_batch} readings, got {len(items)}"
    for i, item in enumerate(items):
        where = f"readings[{i}]"
        if not isinstance(item, dict):
            return where, f"{where}: a signed reading is a JSON object, got {type(item).__name__}"
        extra = sorted(set(item) - set(READING_FIELDS))
        if extra:
            return f"{where}.{extra[0]}", f"{where}.{extra[0]}: unknown field"
        missing = [k for k in READING_FIELDS if k not in item]
        if missing:
            return f"{where}.{missing[0]}", f"{where}.{missing[0]}: missing"
        if not isinstance(item["meter_id"], str) or not _HEX32.match(item["meter_id"]):
            return f"{where}.meter_id", f"{where}.meter_id: must be 0x + 64 hex digits, got {str(item['meter_id'])[:80]!r}"
        sig = item["signature"]
        if not isinstance(sig, str) or not re.fullmatch(r"0x[0-9a-fA-F]{130}", sig):
            return f"{where}.signature", f"{where}.signature: must be 0x + 130 hex digits (65 bytes)"
        cid = item["chain_id"]
        if not isinstance(cid, int) or isinstance(cid, bool) or cid != chain_id:
            return f"{where}.chain_id", f"{where}.chain_id: {cid!r} — this relay serves chain {chain_id}"
        reg = item["registry"]
        if not isinstance(reg, str) or not Web3.is_address(reg) or reg.lower() != registry.lower():
            return f"{where}.registry", f"{where}.registry: {str(reg)[:80]!r} — this relay serves registry {registry}"
        try:
            SignedReading.from_dict(item)
        except ReadingError as exc:
            m = _FIELD_IN_MESSAGE.match(str(exc))
            return (f"{where}.{m.group(1)}" if m else where), f"{where}: {exc}"
    return None


def readings_router(w3: Web3, account: LocalAccount, registry: Contract, *, max_batch: int = MAX_BATCH) -> APIRouter:
    """An APIRouter with ``POST /v1/readings`` relaying to ``registry`` from ``account``.

    Relays are serialised (one nonce sequence for the relay account).
    """
    router = APIRouter()
    lock = threading.Lock()

    @router.post("/v1/readings")
    async def post_readings(request: Request) -> Any:
        try:
            body = await request.json()
        except (ValueError, RecursionError):
            return JSONResponse(status_code=400, content={"error": "body is not valid JSON", "field": "body"})
        problem = check_body(body, w3.eth.chain_id, registry.address, max_batch)
        if problem is not None:
            field_name, message = problem
            M.RELAY_BATCHES.labels("bad_request").inc()
            n = len(body["readings"]) if isinstance(body, dict) and isinstance(body.get("readings"), list) else 1
            M.RELAY_READINGS.labels("refused", "bad_" + field_name.rsplit(".", 1)[-1].split("[")[0]).inc(n)
            return JSONResponse(status_code=400, content={"error": message, "field": field_name})
        try:
            with lock:
                answer = relay_readings(w3, account, registry, body, max_batch=max_batch)
        except ReadingError as exc:
            return JSONResponse(status_code=400, content={"error": str(exc), "field": "readings"})
        except NodeUnreachableError as exc:
            M.RELAY_BATCHES.labels("node_down").inc()
            return JSONResponse(status_code=503, content={"error": str(exc), "field": None})
        except TransactionFailed as exc:
            M.RELAY_BATCHES.labels("tx_failed").inc()
            log.error("relay transaction failed: %s", exc)
            return JSONResponse(status_code=502, content={"error": str(exc), "field": None})
        except GridcoopError as exc:
            return JSONResponse(status_code=400, content={"error": str(exc), "field": "readings"})
        except (ConnectionError, TimeoutError, OSError) as exc:  # web3's HTTP errors are OSErrors
            M.RELAY_BATCHES.labels("node_down").inc()
            log.warning("relay: node unreachable: %s", str(exc).splitlines()[0][:200] if str(exc) else exc)
            return JSONResponse(status_code=503, content={"error": f"node unreachable: {type(exc).__name__}",
                                                          "field": None})
        M.RELAY_BATCHES.labels("ok").inc()
        M.RELAY_READINGS.labels("accepted", "").inc(len(answer["accepted"]))
        M.RELAY_READINGS.labels("duplicate", "").inc(len(answer["duplicates"]))
        for r in answer["rejected"]:
            M.RELAY_READINGS.labels("refused", str(r.get("reason", ""))[:64]).inc()
        log.info("relayed %d readings: %d accepted, %d duplicates, %d refused",
                 len(body.get("readings", [])), len(answer["accepted"]), len(answer["duplicates"]),
                 len(answer["rejected"]))
        return answer

    @router.get("/v1/readings/last/{meter_id}")
    def last_sequence(meter_id: str) -> Any:
        """The registry's last accepted sequence of a meter: lets a gateway without its own node
        notice readings that a reorg removed after the relay reported them accepted."""
        if not _HEX32.match(meter_id):
            return JSONResponse(status_code=422, content={"error": "meter_id: must be 0x + 64 hex digits",
                                                          "field": "meter_id"})
        try:
            info = registry.functions.getMeter(bytes.fromhex(meter_id[2:])).call()
        except (ConnectionError, TimeoutError, OSError) as exc:  # web3's HTTP errors are OSErrors
            return JSONResponse(status_code=503, content={"error": f"node unreachable: {type(exc).__name__}",
                                                          "field": None})
        except Exception:
            return JSONResponse(status_code=404, content={"error": f"meter {meter_id} is not registered",
                                                          "field": "meter_id"})
        return {"meter_id": meter_id.lower(), "last_sequence": int(info[8])}

    return router
