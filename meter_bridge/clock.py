"""Clocks of the gateway and the simulator: the system clock, an accelerated one, or a file that
holds the current Unix time (so a test or a demo drives several processes with one clock)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from gridcoop_sdk.exceptions import GridcoopError


class FileClock:
    """Clock read from a file holding a Unix time (lets a test or demo drive several processes)."""

    def __init__(self, path: str):
        self.path = Path(path)

    def __call__(self) -> float:
        for _ in range(50):
            try:
                return float(self.path.read_text().strip())
            except (OSError, ValueError):
                time.sleep(0.01)  # the writer is replacing the file
        raise GridcoopError(f"clock file {self.path} is unreadable")


def make_clock(clock_file: str | None = None, start: float | None = None, speed: float = 1.0) -> Callable[[], float]:
    """The clock a gateway or simulator runs on: a clock file, an accelerated clock, or the system's."""
    from .simulator import AcceleratedClock

    if clock_file:
        return FileClock(clock_file)
    if start is not None or speed != 1.0:
        return AcceleratedClock(start if start is not None else time.time(), speed)
    return time.time
