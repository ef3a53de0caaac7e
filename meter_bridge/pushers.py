"""Pushers send a batch of signed readings and report what the chain did with each.

- :class:`DirectPusher` sends ``submitReadings`` from the gateway's own gas account.
- :class:`HttpPusher` POSTs the batch to the keeper relay (``{keeper_url}/v1/readings``).
- :class:`MqttPusher` publishes each reading QoS 1 to ``gridcoop/<region>/readings/<meter id>``
  on an MQTT broker (persistent session); relay workers (``gridcoop relay mqtt``) take it from there.

They return a :class:`~gridcoop_sdk.meters.SubmitResult` (the MQTT pusher a :class:`Published`:
readings the broker acknowledged, whose fate on chain the gateway learns by reconciling) and raise
:class:`PushError` when the batch could not be delivered (node, keeper or broker down): the
readings then stay in the outbox.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
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


@dataclass
class Published(SubmitResult):
    """What the MQTT pusher knows: ``sent`` — (meter id hex, sequence) of the readings the broker
    acknowledged (PUBACK). The outbox holds them as ``sent`` until the chain shows them."""

    sent: list[tuple[str, int]] = field(default_factory=list)


#: MQTT v5 PUBACK reason code 0x10.
NO_MATCHING_SUBSCRIBERS = 16


class MqttPusher:
    """Publish each signed reading QoS 1 to ``gridcoop/<region>/readings/0x<meter id>``.

    The client keeps a persistent MQTT v5 session (``client_id``, session expiry ``session_expiry``
    seconds): a QoS 1 message is the broker's once it answered PUBACK. A meter with several pending
    readings (a backlog after an outage) is published as one message holding a JSON array of its
    readings in sequence order, so that the relay worker that takes it submits them in order.
    ``push`` returns :class:`Published` with the PUBACKed readings; those without a PUBACK within
    ``timeout`` stay pending and are published again (a duplicate publish is harmless: the relay
    and the chain apply a reading once).
    """

    def __init__(self, broker_url: str, region: str, *, client_id: str, timeout: float = 30.0,
                 session_expiry: int = 7 * 86400):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        from gridcoop_sdk.mqtt import check_region, parse_broker_url

        self.host, self.port = parse_broker_url(broker_url)
        self.region = check_region(region)
        self.timeout = timeout
        self._connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(0)   # no client-side cap: the broker's PUBACKs pace us
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._puback: dict[int, int] = {}
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(session_expiry)
        self._props = props
        self._started = False
        self._mqtt = mqtt

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ARG002
        if not reason_code.is_failure:
            self._connected.set()
        else:
            log.warning("broker %s:%s refused the connection: %s", self.host, self.port, reason_code)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ARG002
        self._connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ARG002
        self._puback[mid] = reason_code.value  # read in push(); paho calls this before the info is "published"

    def _ensure(self) -> None:
        first = not self._started
        if not self._started:
            try:
                self.client.connect(self.host, self.port, keepalive=30, clean_start=False,
                                    properties=self._props)
            except OSError:
                # loop_start's thread reconnects; the first push waits for it below
                self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                                          properties=self._props)
            self.client.loop_start()
            self._started = True
        # not connected: paho keeps reconnecting in the background; do not hold up the gateway's polls
        wait = self.timeout if first else min(self.timeout, 3.0)
        if not self._connected.wait(wait):
            raise PushError(f"MQTT broker {self.host}:{self.port} unreachable (no CONNACK in {wait:.0f}s)")

    def push(self, batch: list[SignedReading]) -> Published:
        from gridcoop_sdk.mqtt import readings_topic

        self._ensure()
        by_meter: dict[bytes, list[SignedReading]] = {}
        for s in batch:
            by_meter.setdefault(s.reading.meter_id, []).append(s)
        infos = []
        for mid, items in by_meter.items():
            items.sort(key=lambda x: x.reading.sequence)
            payload = items[0].to_json() if len(items) == 1 else json.dumps(
                [x.to_dict() for x in items], separators=(",", ":"))
            info = self.client.publish(readings_topic(self.region, mid), payload, qos=1)
            infos.append((info, items))
        deadline = time.monotonic() + self.timeout
        res = Published()
        no_subscriber = 0
        for info, items in infos:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                ok = info.is_published()
            except (RuntimeError, ValueError):
                ok = False
            rc = self._puback.pop(info.mid, 0) if ok else None
            # PUBACK reason 16 "no matching subscribers": the broker dropped it (no relay worker
            # session subscribed yet, e.g. just after a broker restart): not delivered, publish again.
            if ok and rc is not None and rc < 0x80 and rc != NO_MATCHING_SUBSCRIBERS:
                res.sent.extend(x.key() for x in items)
            elif ok:
                no_subscriber += 1
        if no_subscriber:
            log.warning("the broker had no subscriber for %d message(s) (PUBACK reason %s): no relay worker is "
                        "subscribed to gridcoop/%s/readings/#; kept pending", no_subscriber, rc, self.region)
        if not res.sent:
            raise PushError(f"MQTT broker {self.host}:{self.port} acknowledged none of {len(batch)} readings "
                            f"within {self.timeout:.0f}s")
        return res

    def close(self) -> None:
        if self._started:
            self.client.disconnect()
            self.client.loop_stop()
            self._started = False
