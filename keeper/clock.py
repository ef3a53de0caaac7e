"""Clocks. Every time-dependent keeper class takes ``clock: Callable[[], float]`` (unix seconds),
so a demo can run a day of 15-minute intervals in minutes and tests can step time by hand."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]


def real_clock() -> float:
    """Wall-clock unix time."""
    return time.time()


class AcceleratedClock:
    """Unix time that runs ``speed`` times faster than real time, starting at ``start``.

    >>> clock = AcceleratedClock(speed=96)   # one day in 15 minutes
    """

    def __init__(self, speed: float, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = float(speed)
        self.start = time.time() if start is None else float(start)
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self._t0) * self.speed


class ManualClock:
    """A clock that moves only when told (tests)."""

    def __init__(self, start: float) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._t

    def set(self, t: float) -> None:
        with self._lock:
            self._t = float(t)

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._t += seconds
            return self._t


def chain_clock(w3) -> Clock:
    """Time as the chain sees it (latest block timestamp): what gate closure is checked against."""
    return lambda: float(w3.eth.get_block("latest")["timestamp"])
