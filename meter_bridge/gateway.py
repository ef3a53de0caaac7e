"""The gateway: poll meters → build intervals → sign → outbox → push in batches, with backoff.

Drivers (tests, the demo) step it deterministically with :meth:`Gateway.poll_once` and
:meth:`Gateway.push_once` under an injected clock; :meth:`Gateway.run` is the real-time loop.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gridcoop_sdk.meters import RETRY_LATER, SubmitResult
from gridcoop_sdk.readings import ReadingSigner, SignedReading

from . import metrics as M
from .intervals import IntervalBuilder, SiteSample
from .outbox import Outbox
from .pushers import Pusher, PushError
from .reader import MeterReadError, ModbusMeterReader

log = logging.getLogger("meter_bridge.gateway")


class _Fault:
    """Fault injection for the crash tests: ``METER_BRIDGE_FAULT=after-store:N`` (or
    ``after-push:N``) SIGKILLs this process at the N-th such point. Unset in production."""

    def __init__(self, spec: str):
        self.point, _, n = spec.partition(":")
        self.left = int(n or 1) if spec else 0

    def hit(self, point: str) -> None:
        if self.left and point == self.point:
            self.left -= 1
            if self.left == 0:
                log.warning("fault injection: SIGKILL at %s", point)
                os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Site:
    """One registered meter id: its grid meter, optional generation meter, and device key."""

    name: str
    signer: ReadingSigner
    grid: ModbusMeterReader
    builder: IntervalBuilder
    generation: ModbusMeterReader | None = None

    def sample(self, t: float) -> SiteSample:
        g = self.grid.sample(t)
        gen = self.generation.sample(t).export_wh if self.generation else 0
        return SiteSample(t=t, import_wh=g.import_wh, export_wh=g.export_wh, generation_wh=gen,
                          frequency_mhz=g.frequency_mhz)

    def close(self) -> None:
        self.grid.close()
        if self.generation:
            self.generation.close()


class Gateway:
    def __init__(self, sites: list[Site], outbox: Outbox, pusher: Pusher, *,
                 clock: Callable[[], float] = time.time, batch_size: int = 100,
                 backoff_initial: float = 1.0, backoff_max: float = 60.0,
                 chain_view: Callable[[bytes], int] | None = None, reconcile_every: float = 10.0,
                 defer_s: float = 30.0, resend_after: float = 600.0):
        self.sites = sites
        self.resend_after = resend_after  # MQTT: publish again a reading the chain lacks this long after PUBACK
        self.defer_s = defer_s  # wait before re-pushing readings the chain's clock has not reached
        self.outbox = outbox
        self.pusher = pusher
        self.clock = clock
        self.batch_size = batch_size
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._backoff = 0.0
        self.next_push_at = 0.0
        self._fault = _Fault(os.environ.get("METER_BRIDGE_FAULT", ""))
        # chain_view(meter_id) -> the registry's last accepted sequence; lets the gateway notice
        # readings that a reorg removed after the chain had accepted them (see reconcile()).
        self.chain_view = chain_view
        self.reconcile_every = reconcile_every
        self._next_reconcile = 0.0
        self._unreachable: set[str] = set()
        for site in sites:
            site.builder.restore(outbox.anchor(site.name))
        M.METERS.set(len(sites))
        self._outbox_metrics()

    def _outbox_metrics(self) -> None:
        for status in ("pending", "rejected"):
            M.OUTBOX.labels(status).set(self.outbox.count(status))

    def poll_once(self) -> list[SignedReading]:
        """Sample every meter once; sign and store each interval this closes. Returns the new readings."""
        t = self.clock()
        new: list[SignedReading] = []
        for site in self.sites:
            try:
                sample = site.sample(t)
            except MeterReadError as exc:
                M.METER_READ_ERRORS.labels(site.name).inc()
                self._unreachable.add(site.name)
                M.METERS_UNREACHABLE.set(len(self._unreachable))
                log.warning("%s: %s", site.name, exc)
                self.outbox.note("read-error", f"{site.name}: {exc}")
                continue
            if site.name in self._unreachable:
                self._unreachable.discard(site.name)
                M.METERS_UNREACHABLE.set(len(self._unreachable))
            before = site.builder.state()
            reading, problem = site.builder.feed(sample)
            if problem:
                M.INTERVAL_PROBLEMS.labels(problem.kind).inc()
                log.warning("%s: %s at interval %s: %s", site.name, problem.kind, problem.interval_start,
                            problem.detail)
                self.outbox.note(problem.kind, f"{site.name} interval {problem.interval_start}: {problem.detail}")
            signed = site.signer.sign(reading) if reading else None
            if signed is not None or site.builder.state() != before:
                if self.outbox.add(site.name, signed, site.builder.state()) and signed is not None:
                    new.append(signed)
                    M.READINGS.labels("signed", "").inc()
                    self._fault.hit("after-store")
                    r = signed.reading
                    log.info("%s: interval %s signed (gen %s, cons %s, export %s, import %s Wh)", site.name,
                             r.interval_start, r.generation_wh, r.consumption_wh, r.export_wh, r.import_wh)
        if new:
            self._outbox_metrics()
        return new

    def push_once(self) -> SubmitResult | None:
        """Push one batch of pending readings; None if nothing was pending or the push failed."""
        batch = self.outbox.pending(self.batch_size)
        if not batch:
            return None
        try:
            result = self.pusher.push(batch)
        except PushError as exc:
            self._backoff = min(self.backoff_max, self._backoff * 2 or self.backoff_initial)
            self.next_push_at = self.clock() + self._backoff
            log.warning("push of %d readings failed (%s); retry in %.0fs", len(batch), exc, self._backoff)
            self.outbox.note("push-error", str(exc))
            M.PUSH_FAILURES.inc()
            return None
        self._fault.hit("after-push")
        self._backoff = 0.0
        self.next_push_at = 0.0
        self.outbox.mark(result)
        sent = getattr(result, "sent", None)
        if sent is not None:
            log.info("published %d of %d readings (PUBACK); the relay workers take them on chain", len(sent),
                     len(batch))
            return result
        deferred = [r for r in result.rejected if r[2] in RETRY_LATER]
        M.READINGS.labels("accepted", "").inc(len(result.accepted))
        M.READINGS.labels("duplicate", "").inc(len(result.duplicates))
        for _m, _s, reason in result.rejected:
            M.READINGS.labels("deferred" if reason in RETRY_LATER else "refused", reason).inc()
        self._outbox_metrics()
        log.info("pushed %d readings: %d accepted, %d already on chain, %d refused, %d deferred", len(batch),
                 len(result.accepted), len(result.duplicates), len(result.rejected) - len(deferred), len(deferred))
        for m, s, reason in result.rejected:
            if reason not in RETRY_LATER:
                log.error("chain refused %s sequence %s: %s (kept in the outbox)", m, s, reason)
        if deferred:
            # The chain's clock is behind ours: those intervals are not over on chain yet.
            self.next_push_at = self.clock() + self.defer_s
            log.warning("%d reading(s) are for intervals not over on the chain's clock yet (%s); "
                        "kept pending, pushed again in %.0fs", len(deferred), deferred[0][2], self.defer_s)
        return result

    def reconcile(self) -> int:
        """Re-open readings the outbox holds as accepted but the chain no longer has (a reorg
        dropped the block that accepted them). Needs ``chain_view``; returns how many reopened."""
        if self.chain_view is None:
            return 0
        reopened = 0
        for site in self.sites:
            mid = site.builder.meter_id
            try:
                last = int(self.chain_view(mid))
            except Exception as exc:  # node down: try again next time
                log.warning("reorg check for %s failed: %s", site.name, str(exc).splitlines()[0][:200] if str(exc) else exc)
                return reopened
            confirmed, resent = self.outbox.confirm_sent("0x" + mid.hex(), last, self.clock() - self.resend_after)
            if resent:
                log.warning("%s: %d reading(s) the broker took are still not on chain after %.0fs; publishing "
                            "them again", site.name, resent, self.resend_after)
                reopened += resent
            n = self.outbox.reopen_vanished("0x" + mid.hex(), last)
            if n:
                log.warning("%s: %d accepted reading(s) after sequence %d are no longer on chain (reorg); "
                            "re-submitting", site.name, n, last)
                reopened += n
        if reopened:
            self.next_push_at = 0.0
        return reopened

    def drain(self) -> None:
        """Push until nothing is pending or a push fails."""
        while self.outbox.count("pending") and self.clock() >= self.next_push_at and self.push_once() is not None:
            pass

    def run(self, *, poll_interval: float = 5.0, stop: threading.Event | None = None) -> None:
        """Real-time loop: poll every ``poll_interval`` s, push when due, until ``stop`` is set."""
        stop = stop or threading.Event()
        log.info("gateway running: %d meter(s), polling every %.1fs", len(self.sites), poll_interval)
        while not stop.is_set():
            self.poll_once()
            if self.chain_view is not None and time.monotonic() >= self._next_reconcile:
                self._next_reconcile = time.monotonic() + self.reconcile_every
                self.reconcile()
            if self.clock() >= self.next_push_at:
                self.drain()
            stop.wait(poll_interval)

    def close(self) -> None:
        for site in self.sites:
            site.close()
        closer = getattr(self.pusher, "close", None)
        if closer is not None:
            closer()
        self.outbox.close()
