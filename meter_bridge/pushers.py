"""Pushers send a batch of signed readings and report what the chain did with each.

- :class:`DirectPusher` sends ``submitReadings`` from the gateway's own gas account.
- :class:`HttpPusher` POSTs the batch to the keeper relay (``{keeper_url}/v1/readings``).

Both return a :class:`~gridcoop_sdk.meters.SubmitResult` and raise :class:`PushError` when the
batch could not be delivered (node or keeper down): the readings then stay in the outbox.
"""

from __future__ import annotations

import logging
from typing import Protocol

import httpx
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from gridcoop_sdk.exceptions import GridcoopError
from gridcoop_sdk.meters import SubmitResult, submit_readings
from gridcoop_sdk.readings import SignedReading

log = logging.getLogger("meter_bridge.push")


class PushError(GridcoopError, ConnectionError):
    """A batch could not be delivered; it stays in the outbox and is retried."""


class Pusher(Protocol):
    def push(self, batch: list[SignedReading]) -> SubmitResult: ...


class DirectPusher:
    def __init__(self, w3: Web3, account: LocalAccount, registry: Contract, *, timeout: float = 60.0):
        self.w3, self.account, self.registry, self.timeout = w3, account, registry, timeout

    def push(self, batch: list[SignedReading]) -> SubmitResult:
        try:
            return submit_readings(self.w3, self.account, self.registry, batch, timeout=self.timeout)
        except (OSError, TimeoutError) as exc:  # web3's HTTP errors (requests') are OSErrors
            raise PushError(f"node unreachable: {str(exc).splitlines()[0][:200]}") from exc
        except GridcoopError as exc:
            raise PushError(str(exc)) from exc
        except Exception as exc:  # web3 wraps timeouts and RPC errors in its own types
            raise PushError(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from exc


class HttpPusher:
    """POST ``{"readings": [<SignedReading.to_dict()>, …]}`` to ``{keeper_url}/v1/readings``.

    Expected answer (HTTP 200)::

        {"accepted": [{"meter_id": "0x…", "sequence": 7}, …],
         "duplicates": [{"meter_id": "0x…", "sequence": 6}, …],
         "rejected": [{"meter_id": "0x…", "sequence": 8, "reason": "OverCapacity"}, …]}

    Any other status, or a body that is not this shape, is a :class:`PushError`.
    """

    def __init__(self, keeper_url: str, *, timeout: float = 30.0, client: httpx.Client | None = None):
        self.url = keeper_url.rstrip("/") + "/v1/readings"
        self.timeout = timeout
        self.client = client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def push(self, batch: list[SignedReading]) -> SubmitResult:
        try:
            resp = self.client.post(self.url, json={"readings": [s.to_dict() for s in batch]}, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise PushError(f"keeper at {self.url} unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise PushError(f"keeper at {self.url} answered HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            body = resp.json()
            return SubmitResult(
                accepted=[(str(x["meter_id"]).lower(), int(x["sequence"])) for x in body["accepted"]],
                duplicates=[(str(x["meter_id"]).lower(), int(x["sequence"])) for x in body["duplicates"]],
                rejected=[(str(x["meter_id"]).lower(), int(x["sequence"]), str(x["reason"])) for x in body["rejected"]],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PushError(f"keeper at {self.url} answered an unexpected body: {resp.text[:300]}") from exc

    def last_sequence(self, mid: bytes) -> int:
        """The registry's last accepted sequence of meter ``mid``, asked through the keeper relay
        (``GET /v1/readings/last/0x…``); the gateway's reorg check when it has no node of its own."""
        url = f"{self.url}/last/0x{mid.hex()}"
        try:
            resp = self.client.get(url, timeout=self.timeout)
            resp.raise_for_status()
            return int(resp.json()["last_sequence"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise PushError(f"cannot ask {url}: {exc}") from exc
