"""The demo's simulated clock: one day of 15-minute intervals, played faster than real time.

Every time-dependent part of the demo (meter simulators, the bridge, the keeper) takes a
``clock`` callable; they all get :meth:`SimClock.now`, and the chain follows the same clock
through anvil's ``evm_setNextBlockTimestamp``. ``speed`` is simulated seconds per real second
(900 = one interval per second); the clock never runs ahead of the work, so a slow machine just
takes longer.
"""

from __future__ import annotations

import calendar
import threading
import time
from datetime import datetime, timedelta, timezone

from gridcoop_sdk.units import INTERVAL_SECONDS

#: The demo's day: midsummer, so that the PV households have something to sell.
DEFAULT_DAY = "2026-06-21"


def day_start(day: str, tz_offset_h: int) -> int:
    """Unix time of local midnight of ``day`` (YYYY-MM-DD) in a zone ``tz_offset_h`` from UTC."""
    d = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone(timedelta(hours=tz_offset_h)))
    return calendar.timegm(d.utctimetuple())


class SimClock:
    def __init__(self, start: int, *, speed: float = 900.0, tz_offset_h: int = 0):
        if speed <= 0:
            raise ValueError("speed must be > 0 (simulated seconds per real second)")
        self.start = int(start)
        self.speed = float(speed)
        self.tz_offset_h = tz_offset_h
        self._now = float(start)
        self._lock = threading.Lock()
        self._wall_mark = time.monotonic()

    def now(self) -> float:
        with self._lock:
            return self._now

    __call__ = now

    def interval_start(self, k: int) -> int:
        return self.start + k * INTERVAL_SECONDS

    def local_hour(self, ts: float) -> float:
        """Hour of day (the demo's days run in UTC, like the meter simulator's sun)."""
        return (ts % 86400) / 3600.0

    def label(self, ts: float) -> str:
        local = datetime.fromtimestamp(ts, tz=timezone(timedelta(hours=self.tz_offset_h)))
        return local.strftime("%H:%M")

    def advance_to(self, ts: float) -> None:
        """Move the clock to ``ts``, first waiting the real time that ``speed`` asks for."""
        with self._lock:
            delta = ts - self._now
        if delta < 0:
            raise ValueError("the simulated clock cannot go back")
        due = self._wall_mark + delta / self.speed
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        with self._lock:
            self._now = float(ts)
        self._wall_mark = time.monotonic()
