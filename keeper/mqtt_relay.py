"""MQTT relay worker: take signed readings from the broker, put them on chain, then acknowledge.

N workers subscribe to ``$share/relay/gridcoop/<region>/readings/#`` (MQTT v5 shared subscription:
the broker hands each message to one of them) with a persistent session and *manual* QoS 1
acknowledgement. Per message a worker:

1. parses the payload (one signed reading in the relay wire format of
   :mod:`gridcoop_sdk.readings`, or a JSON array of one meter's readings in sequence order) and
   checks that it names the topic's meter and is signed for this chain and registry;
2. recovers the signer (coincurve, as the registry does) and compares it with the meter's
   registered device key (cached; asked again once on a mismatch, for rotated keys);
3. batches readings up to ``batch_size`` or ``window_s`` seconds and submits them with the SDK's
   :func:`~gridcoop_sdk.meters.submit_readings` (one ``submitReadings`` transaction);
4. acknowledges (PUBACK) a message only when each of its readings is on chain (accepted, or
   already there) or refused for a reason that is recorded (``refusals`` JSON-lines file, fsync'd
   before the PUBACK, and the log). A refusal the reading can outgrow (``FutureInterval``) is kept
   and submitted again later, not acknowledged.

A worker that dies holds its unacknowledged messages in its broker session; restarted with the same
``client_id`` it gets them again and the chain answers "already there" for those it had submitted.
The node being down keeps the batch (not acknowledged) and retries with backoff; the broker going
away makes paho reconnect (the session and the unacknowledged messages survive). Nothing accepted is
lost, nothing is applied twice: the registry accepts a (meter, sequence) once.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from gridcoop_sdk.exceptions import TransactionFailed
from gridcoop_sdk.meters import RETRY_LATER, SubmitResult, submit_readings
from gridcoop_sdk.mqtt import check_region, parse_broker_url, shared_subscription, topic_meter
from gridcoop_sdk.readings import ReadingError, SignedReading

log = logging.getLogger("keeper.mqtt_relay")

#: keeper.relay's HTTP batch limit; one submitReadings of 500 readings uses ~13 M gas.
DEFAULT_BATCH = 500
#: Readings one message may hold (a gateway's backlog of one meter, at most its batch_size ≤ 500);
#: a message is never split, so a batch can exceed ``batch_size`` by one message.
MAX_MESSAGE_READINGS = 500
#: Not a registry reason: the reading's transaction failed on its own (kept, tried again later).
SUBMIT_FAILED = "SubmitFailed"


@dataclass
class _Msg:
    mid: int
    topic: str
    payload: bytes
    readings: list[SignedReading] = field(default_factory=list)
    open: int = 0          # readings of this message not yet on chain / refused
    received: float = field(default_factory=time.monotonic)  # when the broker delivered it


@dataclass
class RelayStats:
    """Counters a worker logs every ``stats_every`` seconds and on exit."""

    messages: int = 0
    accepted: int = 0
    already_on_chain: int = 0
    refused: Counter = field(default_factory=Counter)   # reason -> readings (and bad messages)
    duplicate_publish: int = 0
    deferred: int = 0
    batches: int = 0
    gas: int = 0
    node_errors: int = 0
    broker_disconnects: int = 0
    db_errors: int = 0        # the keeper's store unreachable while recording (messages kept)
    last_lag_s: float = 0.0   # delivery → acknowledgement of the last acknowledged message
    max_lag_s: float = 0.0
    check_s: float = 0.0      # parsing and signature checks
    submit_s: float = 0.0     # submitReadings: build, sign, send, wait for the receipt, sort it

    def line(self) -> str:
        ref = ", ".join(f"{k} {v}" for k, v in sorted(self.refused.items())) or "none"
        return (f"{self.messages} messages: {self.accepted} accepted, {self.already_on_chain} already on chain, "
                f"refused {sum(self.refused.values())} ({ref}), {self.duplicate_publish} duplicate publishes, "
                f"{self.batches} batches, {self.gas} gas, {self.node_errors} node errors, "
                f"{self.broker_disconnects} broker disconnects")

    def to_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "accepted": self.accepted, "already_on_chain": self.already_on_chain,
                "refused": dict(self.refused), "duplicate_publish": self.duplicate_publish,
                "deferred": self.deferred, "batches": self.batches, "gas": self.gas,
                "node_errors": self.node_errors, "broker_disconnects": self.broker_disconnects,
                "db_errors": self.db_errors,
                "check_s": round(self.check_s, 3), "submit_s": round(self.submit_s, 3)}


class DatabaseUnavailable(Exception):
    """The keeper's store stayed away until the worker was asked to stop."""


class RelayWorker:
    def __init__(self, w3: Web3, account: LocalAccount, registry: Contract, *, region: str, broker_url: str,
                 client_id: str, batch_size: int = DEFAULT_BATCH, window_s: float = 0.5,
                 refusals_path: str | os.PathLike | None = None, session_expiry: int = 7 * 86400,
                 retry_later_s: float = 30.0, backoff_max: float = 30.0, stats_every: float = 10.0,
                 stats_path: str | os.PathLike | None = None, db_url: str | None = None):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.w3, self.account, self.registry = w3, account, registry
        self.region = check_region(region)
        self.host, self.port = parse_broker_url(broker_url)
        self.client_id = client_id
        self.batch_size = int(batch_size)
        self.window_s = float(window_s)
        self.retry_later_s = retry_later_s
        self.backoff_max = backoff_max
        self.stats_every = stats_every
        self.stats_path = Path(stats_path) if stats_path else None
        self.refusals_path = Path(refusals_path) if refusals_path else None
        # the keeper's store (SQLite or PostgreSQL): every reading's outcome, written before its PUBACK
        self.db = None
        if db_url:
            from .db import Database

            self.db = Database(db_url)
        self.chain_id = w3.eth.chain_id
        self.stats = RelayStats()
        self._signers: dict[bytes, str | None] = {}
        self._inbox: queue.Queue[_Msg] = queue.Queue()
        self._deferred: list[tuple[float, SignedReading, _Msg]] = []
        self._connected = threading.Event()
        self._stop = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                                  manual_ack=True)
        self.client.reconnect_delay_set(0.2, 5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.subscribed = threading.Event()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(session_expiry)
        props.ReceiveMaximum = min(65535, max(4 * self.batch_size, 1000))  # unacked messages the broker may send us
        self._connect_props = props

    # ------------------------------------------------------------------ MQTT callbacks (paho's thread)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ARG002
        if reason_code.is_failure:
            log.error("broker %s:%s refused the connection: %s", self.host, self.port, reason_code)
            return
        self._connected.set()
        client.subscribe(shared_subscription(self.region), qos=1)
        log.info("connected to %s:%s as %s (session present: %s); subscribed to %s", self.host, self.port,
                 self.client_id, flags.session_present, shared_subscription(self.region))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # noqa: ARG002
        if all(not rc.is_failure for rc in reason_codes):
            self.subscribed.set()
            log.info("subscription acknowledged (SUBACK): %s", shared_subscription(self.region))
        else:
            log.error("the broker refused the subscription %s: %s", shared_subscription(self.region), reason_codes)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ARG002
        if self._connected.is_set():
            self.stats.broker_disconnects += 1
            log.warning("broker %s:%s went away (%s); reconnecting, unacknowledged messages stay in the session",
                        self.host, self.port, reason_code)
        self._connected.clear()

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ARG002
        self._inbox.put(_Msg(mid=msg.mid, topic=msg.topic, payload=msg.payload))

    # ------------------------------------------------------------------ checks

    def _record_refusal(self, msg: _Msg, reason: str, detail: str, reading: SignedReading | None = None) -> None:
        self.stats.refused[reason] += 1
        key = reading.key() if reading is not None else (None, None)
        log.warning("refused %s sequence %s from %s: %s (%s)", key[0], key[1], msg.topic, reason, detail)
        if self.refusals_path is None:
            return
        rec = {"t": time.time(), "worker": self.client_id, "topic": msg.topic, "meter_id": key[0],
               "sequence": key[1], "reason": reason, "detail": detail[:300]}
        if reading is None:
            rec["payload"] = msg.payload[:300].decode(errors="replace")
        with open(self.refusals_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _signer_of(self, mid: bytes, refresh: bool = False) -> str | None:
        if refresh or mid not in self._signers:
            self._prefetch([mid], refresh=True)
        return self._signers.get(mid)

    def _prefetch(self, mids, *, refresh: bool = False) -> None:
        """The registered device keys of ``mids`` (those not cached, or all with ``refresh``) in one
        JSON-RPC batch of ``getMeter`` calls; an unregistered meter (the call reverts) is not cached.
        Raises when the node is unreachable."""
        todo = list(dict.fromkeys(m for m in mids if refresh or m not in self._signers))
        if not todo:
            return
        fn = self.registry.functions
        reqs = [("eth_call", [{"to": self.registry.address, "data": fn.getMeter(m)._encode_transaction_data()},
                              "latest"]) for m in todo]
        answers = []
        for k in range(0, len(reqs), 500):
            out = self.w3.provider.make_batch_request(reqs[k:k + 500])
            if not isinstance(out, list):
                raise ConnectionError(f"batch getMeter failed: {str(out)[:200]}")
            answers.extend(sorted(out, key=lambda r: r.get("id", 0)))
        for m, ans in zip(todo, answers, strict=True):
            res = ans.get("result")
            if not res or len(res) < 2 + 128:
                self._signers.pop(m, None)  # reverted: not registered (asked again next time)
                continue
            raw = bytes.fromhex(res[2:])
            # MeterInfo has a string: the return data is an offset word, then signer, owner, ...
            self._signers[m] = Web3.to_checksum_address(raw[32 + 12:64])

    def _parse(self, msg: _Msg) -> list[SignedReading] | None:
        """The message's readings after the off-chain checks, or None if the message is refused
        as a whole (recorded)."""
        mid = topic_meter(msg.topic, self.region)
        if mid is None:
            self._record_refusal(msg, "BadTopic", f"not gridcoop/{self.region}/readings/0x<meter id>")
            return None
        try:
            data = json.loads(msg.payload)
        except (ValueError, UnicodeDecodeError) as exc:
            self._record_refusal(msg, "NotAReading", f"payload is not JSON: {exc}")
            return None
        items = data if isinstance(data, list) else [data]
        if not items or len(items) > MAX_MESSAGE_READINGS:
            self._record_refusal(msg, "NotAReading",
                                 f"a message holds 1..{MAX_MESSAGE_READINGS} readings, got {len(items)}")
            return None
        out: list[SignedReading] = []
        for item in items:
            try:
                s = SignedReading.from_dict(item)
            except (ReadingError, TypeError, ValueError) as exc:
                self._record_refusal(msg, "NotAReading", str(exc))
                return None
            if s.chain_id != self.chain_id or s.registry.lower() != self.registry.address.lower():
                self._record_refusal(msg, "WrongDomain", f"signed for chain {s.chain_id} registry {s.registry}, this "
                                     f"relay serves chain {self.chain_id} registry {self.registry.address} "
                                     f"(region {self.region})", s)
                continue
            if s.reading.meter_id != mid:
                self._record_refusal(msg, "TopicMismatch", f"reading of meter 0x{s.reading.meter_id.hex()} on the "
                                     "topic of another meter", s)
                continue
            out.append(s)
        if len(out) > 1 and [s.reading.sequence for s in out] != sorted({s.reading.sequence for s in out}):
            self._record_refusal(msg, "NotAReading", "a backlog array must hold one meter's readings in strictly "
                                 "increasing sequence")
            return None
        return out

    def _signature_ok(self, msg: _Msg, s: SignedReading) -> bool:
        mid = s.reading.meter_id
        signer = self._signers.get(mid) or self._signer_of(mid)
        if signer is None:
            self._record_refusal(msg, "UnknownMeter", "meter not registered", s)
            return False
        got = s.recover_signer()
        if got != signer and got is not None and self._signer_of(mid, refresh=True) == got:
            return True  # the key was rotated since we cached it
        if got != signer:
            self._record_refusal(msg, "BadSignature", f"recovered {got}, the meter's key is {signer}", s)
            return False
        return True

    # ------------------------------------------------------------------ the loop

    def _ack(self, msg: _Msg) -> None:
        self.client.ack(msg.mid, 1)
        lag = time.monotonic() - msg.received
        self.stats.last_lag_s = lag
        self.stats.max_lag_s = max(self.stats.max_lag_s, lag)

    def _take_due(self, batch: list[tuple[SignedReading, _Msg]]) -> int:
        now = time.monotonic()
        due = [d for d in self._deferred if d[0] <= now]
        self._deferred = [d for d in self._deferred if d[0] > now]
        batch.extend((s, m) for _, s, m in due)
        return len(due)

    def _collect(self, stop: threading.Event) -> list[tuple[SignedReading, _Msg]]:
        """Wait for the first message, take more until ``batch_size`` readings or ``window_s``, then
        check them: device keys fetched in one batch of calls, signatures recovered here."""
        batch: list[tuple[SignedReading, _Msg]] = []
        self._take_due(batch)
        parsed: list[tuple[_Msg, list[SignedReading]]] = []
        n = len(batch)
        deadline = None
        while n < self.batch_size and not stop.is_set():
            timeout = 0.2 if deadline is None else deadline - time.monotonic()
            if deadline is not None and timeout <= 0:
                break
            try:
                msg = self._inbox.get(timeout=max(0.001, timeout))
            except queue.Empty:
                if not batch and not parsed:
                    n += self._take_due(batch)  # kept readings whose time has come
                if (batch or parsed) and deadline is None:
                    deadline = time.monotonic()
                continue
            if deadline is None:
                deadline = time.monotonic() + self.window_s
            self.stats.messages += 1
            t_check = time.perf_counter()
            readings = self._parse(msg)
            self.stats.check_s += time.perf_counter() - t_check
            if readings is None:
                self._ack(msg)
                continue
            if not readings:  # every reading of it refused (recorded)
                self._ack(msg)
                continue
            parsed.append((msg, readings))
            n += len(readings)
        if not parsed:
            return batch
        t_check = time.perf_counter()
        try:
            self._prefetch({s.reading.meter_id for _, rs in parsed for s in rs})
        except Exception as exc:  # node down: keep the messages (not acknowledged) for the next round
            self.stats.node_errors += 1
            log.warning("cannot read the meters' keys from the node (%s: %s); %d message(s) kept", type(exc).__name__,
                        str(exc)[:200], len(parsed))
            for msg, _ in parsed:
                self._inbox.put(msg)
                self.stats.messages -= 1
            stop.wait(1.0)
            return batch
        for j, (msg, readings) in enumerate(parsed):
            try:
                good = [s for s in readings if self._signature_ok(msg, s)]
            except Exception as exc:  # node down while asking for a rotated key: keep the rest for later
                self.stats.node_errors += 1
                log.warning("cannot check signatures against the node (%s); %d message(s) kept", str(exc)[:200],
                            len(parsed) - j)
                for m, _ in parsed[j:]:
                    self._inbox.put(m)
                    self.stats.messages -= 1
                break
            if not good:
                self._ack(msg)
                continue
            msg.readings, msg.open = good, len(good)
            batch.extend((s, msg) for s in good)
        self.stats.check_s += time.perf_counter() - t_check
        return batch

    def _submit(self, batch: list[tuple[SignedReading, _Msg]], stop: threading.Event) -> SubmitResult | None:
        """Submit until the chain answers (node down: back off and retry; nothing is acknowledged)."""
        # one entry per reading key: a duplicate publish rides along and is acknowledged with it
        first: dict[tuple[str, int], SignedReading] = {}
        for s, _m in batch:
            first.setdefault(s.key(), s)
        readings = sorted(first.values(), key=lambda s: (s.reading.meter_id, s.reading.sequence))
        return self._submit_readings(readings, stop)

    def _submit_readings(self, readings: list[SignedReading], stop: threading.Event) -> SubmitResult | None:
        backoff = 0.5
        while not stop.is_set():
            try:
                t0 = time.perf_counter()
                res = submit_readings(self.w3, self.account, self.registry, readings, timeout=120)
                self.stats.submit_s += time.perf_counter() - t0
                self.stats.batches += 1
                self.stats.gas += res.gas_used
                return res
            except TransactionFailed as exc:
                # The batch's transaction (or its simulation) failed — not the node being away: a batch
                # over the block gas limit, or one reading that makes it fail. Halve it until the
                # readings that can go on chain do; a single failing reading is kept unacknowledged
                # and tried again later (never refused for what may be a passing problem).
                self.stats.node_errors += 1
                why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                if len(readings) > 1:
                    log.warning("submitting %d readings failed (%s); splitting the batch", len(readings), why)
                    half = len(readings) // 2
                    parts = [self._submit_readings(readings[:half], stop), self._submit_readings(readings[half:], stop)]
                    if any(p is None for p in parts):
                        return None
                    return SubmitResult(accepted=[k for p in parts for k in p.accepted],  # type: ignore[union-attr]
                                        duplicates=[k for p in parts for k in p.duplicates],  # type: ignore[union-attr]
                                        rejected=[k for p in parts for k in p.rejected],  # type: ignore[union-attr]
                                        gas_used=sum(p.gas_used for p in parts))  # type: ignore[union-attr]
                k = readings[0].key()
                log.error("reading %s sequence %s cannot be submitted (%s); kept unacknowledged, tried again in "
                          "%.0fs", k[0], k[1], why, self.retry_later_s * 2)
                return SubmitResult(rejected=[(k[0], k[1], SUBMIT_FAILED)])
            except Exception as exc:  # node down, timeouts: keep the batch, retry
                self.stats.node_errors += 1
                log.warning("submitting %d readings failed (%s: %s); retry in %.1fs, nothing acknowledged",
                            len(readings), type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "",
                            backoff)
                stop.wait(backoff)
                backoff = min(self.backoff_max, backoff * 2)
        return None

    def _record_outcomes(self, batch: list[tuple[SignedReading, _Msg]], res: SubmitResult) -> None:
        """One row per reading and final outcome in the keeper's store (a retry-later refusal is not
        final: nothing is written for it); a row already there stays (re-publishes add none)."""
        from .db import RelayedReadingRow

        accepted, dups = set(res.accepted), set(res.duplicates)
        rejected = {(m, s): r for m, s, r in res.rejected}
        now, rows = time.time(), {}
        for s, _msg in batch:
            k = s.key()
            if k in accepted:
                result, reason = "accepted", None
            elif k in dups:
                result, reason = "already_on_chain", None
            elif k in rejected and not (rejected[k] in RETRY_LATER or rejected[k] == SUBMIT_FAILED):
                result, reason = "refused", rejected[k]
            else:
                continue
            rows[(k[0], k[1], result)] = {"meter_id": k[0], "sequence": k[1], "result": result, "reason": reason,
                                          "interval_start": s.reading.interval_start, "tx_hash": res.tx_hash,
                                          "worker": self.client_id, "recorded_at": now}
        if not rows:
            return
        if self.db.is_postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        with self.db.session() as sess:
            sess.execute(insert(RelayedReadingRow).values(list(rows.values())).on_conflict_do_nothing())

    def _record_until_done(self, batch: list[tuple[SignedReading, _Msg]], res: SubmitResult) -> None:
        """Record the batch's outcomes, waiting out a database that went away (counted, logged): the
        readings are on chain, their messages stay unacknowledged until they are recorded. Raises
        :class:`DatabaseUnavailable` when the worker is asked to stop first (the broker gives the
        messages back on restart; the chain then says they are on chain and they are recorded)."""
        from sqlalchemy.exc import SQLAlchemyError

        backoff = 0.5
        while True:
            try:
                self._record_outcomes(batch, res)
                return
            except SQLAlchemyError as exc:
                self.stats.db_errors += 1
                log.warning("cannot record %d readings in the keeper's store (%s); %d message(s) kept "
                            "unacknowledged, retry in %.1fs", len(batch), str(exc).splitlines()[0][:200],
                            len({id(m) for _, m in batch}), backoff)
                if self._stop.wait(backoff):
                    raise DatabaseUnavailable("stopping while the keeper's store is away") from exc
                backoff = min(self.backoff_max, backoff * 2)

    def _settle(self, batch: list[tuple[SignedReading, _Msg]], res: SubmitResult) -> None:
        if self.db is not None:
            self._record_until_done(batch, res)  # before any acknowledgement: nothing acked goes unrecorded
        accepted, dups = set(res.accepted), set(res.duplicates)
        rejected = {(m, s): r for m, s, r in res.rejected}
        counted: set[tuple[str, int]] = set()
        retry_at = time.monotonic() + self.retry_later_s
        for s, msg in batch:
            k = s.key()
            again = k in counted
            counted.add(k)
            if again:
                self.stats.duplicate_publish += 1
            elif k in accepted:
                self.stats.accepted += 1
            elif k in dups:
                self.stats.already_on_chain += 1
            elif k in rejected and (rejected[k] in RETRY_LATER or rejected[k] == SUBMIT_FAILED):
                self.stats.deferred += 1
                later = retry_at if rejected[k] in RETRY_LATER else retry_at + self.retry_later_s
                self._deferred.append((later, s, msg))
                continue
            elif k in rejected:
                self._record_refusal(msg, rejected[k], "refused by the MeterRegistry", s)
            msg.open -= 1
            if msg.open == 0:
                self._ack(msg)

    def _write_stats(self) -> None:
        if self.stats_path is not None:
            tmp = self.stats_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.stats.to_dict()))
            tmp.replace(self.stats_path)

    def backlog(self) -> int:
        """Messages received from the broker and not yet taken into a batch (the relay queue)."""
        return self._inbox.qsize()

    def run(self, stop: threading.Event | None = None) -> None:
        """Connect, subscribe, relay until ``stop`` is set (SIGTERM/Ctrl-C in the CLI)."""
        stop = stop or threading.Event()
        self._stop = stop
        try:
            self.client.connect(self.host, self.port, keepalive=30, clean_start=False,
                                properties=self._connect_props)
        except OSError as exc:
            log.warning("broker %s:%s unreachable (%s); retrying in the background", self.host, self.port, exc)
            self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                                      properties=self._connect_props)
        self.client.loop_start()
        next_stats = time.monotonic() + self.stats_every
        try:
            while not stop.is_set():
                batch = self._collect(stop)
                if batch:
                    res = self._submit(batch, stop)
                    if res is None:
                        break
                    try:
                        self._settle(batch, res)
                    except DatabaseUnavailable:
                        break  # asked to stop while the store was away: the batch stays unacknowledged
                    except OSError as exc:  # the refusal record could not be written: stop, unacknowledged
                        log.error("cannot record refusals (%s); stopping with the batch unacknowledged "
                                  "(the broker gives it back on restart)", exc)
                        raise
                    log.info("batch of %d readings: %d accepted, %d already on chain, %d refused (gas %d)",
                             len(batch), len(res.accepted), len(res.duplicates), len(res.rejected), res.gas_used)
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + self.stats_every
                    log.info("relay %s: %s", self.client_id, self.stats.line())
                    self._write_stats()
        finally:
            log.info("relay %s stopping: %s", self.client_id, self.stats.line())
            self._write_stats()
            self.client.disconnect()
            self.client.loop_stop()
