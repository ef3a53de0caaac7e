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
import threading
from typing import Any

from eth_account.signers.local import LocalAccount
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from web3 import Web3
from web3.contract import Contract

from gridcoop_sdk.exceptions import GridcoopError, NodeUnreachableError, TransactionFailed
from gridcoop_sdk.meters import relay_readings
from gridcoop_sdk.readings import ReadingError

log = logging.getLogger("keeper.relay")

MAX_BATCH = 500


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
        except ValueError:
            return JSONResponse(status_code=400, content={"error": "body is not valid JSON", "field": "body"})
        try:
            with lock:
                answer = relay_readings(w3, account, registry, body, max_batch=max_batch)
        except ReadingError as exc:
            return JSONResponse(status_code=400, content={"error": str(exc), "field": "readings"})
        except NodeUnreachableError as exc:
            return JSONResponse(status_code=503, content={"error": str(exc), "field": None})
        except TransactionFailed as exc:
            log.error("relay transaction failed: %s", exc)
            return JSONResponse(status_code=502, content={"error": str(exc), "field": None})
        except GridcoopError as exc:
            return JSONResponse(status_code=400, content={"error": str(exc), "field": "readings"})
        except (ConnectionError, TimeoutError) as exc:
            return JSONResponse(status_code=503, content={"error": f"node unreachable: {exc}", "field": None})
        log.info("relayed %d readings: %d accepted, %d duplicates, %d refused",
                 len(body.get("readings", [])), len(answer["accepted"]), len(answer["duplicates"]),
                 len(answer["rejected"]))
        return answer

    return router
