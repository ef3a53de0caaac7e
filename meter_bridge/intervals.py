"""Cumulative lifetime registers → 15-minute interval readings (DGC-C quantities).

A site is one registered meter id: a grid-connection meter (import/export counters) and, for
producers, a generation meter (its export counter is the generation). The builder keeps an
*anchor* — the sample taken at the start of the current interval (the first poll within ``skew``
seconds after the boundary). The next anchor closes the interval:

- generation = Δgeneration, import = Δimport, export = Δexport (integer Wh),
- consumption (demand) = generation + import − export (DGC-C: when generation > demand the
  self-consumed renewable energy is generation − export, otherwise all generation),
- sequence = interval id (start / 900), so re-signing after a crash gives the same reading.

Missed polls (no sample near a boundary), a counter that went backwards (meter reset or a
counter wrap) and impossible balances are reported as :class:`Problem` and produce no reading:
energy is never invented to fill a gap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gridcoop_sdk.readings import Reading


@dataclass(frozen=True)
class SiteSample:
    t: float
    import_wh: int
    export_wh: int
    generation_wh: int  # cumulative generation (0 when the site has no generation meter)
    frequency_mhz: int


@dataclass(frozen=True)
class Problem:
    meter: str
    interval_start: int
    kind: str  # "missed-polls" | "counter-backwards" | "imbalance"
    detail: str


class IntervalBuilder:
    def __init__(self, name: str, meter_id: bytes, *, interval: int = 900, skew: float = 60.0):
        self.name = name
        self.meter_id = meter_id
        self.interval = interval
        self.skew = skew
        self.anchor: SiteSample | None = None
        self.anchor_start: int | None = None

    # -- persistence (the outbox stores the anchor with each reading, in one transaction)
    def state(self) -> dict | None:
        if self.anchor is None:
            return None
        return {"start": self.anchor_start, "sample": asdict(self.anchor)}

    def restore(self, state: dict | None) -> None:
        if state:
            self.anchor_start = int(state["start"])
            self.anchor = SiteSample(**state["sample"])

    def feed(self, s: SiteSample) -> tuple[Reading | None, Problem | None]:
        """Take one sample; returns the reading it closes (if any) or the problem it revealed."""
        b = int(s.t // self.interval) * self.interval
        at_boundary = s.t - b <= self.skew
        if self.anchor is not None and self.anchor_start is not None:
            due = self.anchor_start + self.interval
            if b > due or (b == due and not at_boundary):
                # The boundary that would close the interval passed without a sample.
                missed_from = self.anchor_start
                self.anchor = self.anchor_start = None
                problem = Problem(self.name, missed_from, "missed-polls",
                                  f"no sample within {self.skew:.0f}s after {due}; intervals from "
                                  f"{missed_from} to {b} get no reading")
                if at_boundary:
                    self.anchor, self.anchor_start = s, b
                return None, problem
        if not at_boundary:
            return None, None
        if self.anchor is None:
            self.anchor, self.anchor_start = s, b
            return None, None
        if b == self.anchor_start:
            return None, None  # already anchored at this boundary
        a, start = self.anchor, self.anchor_start
        self.anchor, self.anchor_start = s, b
        assert start is not None
        di, de, dg = s.import_wh - a.import_wh, s.export_wh - a.export_wh, s.generation_wh - a.generation_wh
        if min(di, de, dg) < 0:
            return None, Problem(self.name, start, "counter-backwards",
                                 f"Δimport={di} Δexport={de} Δgeneration={dg} Wh: meter reset or counter wrap")
        consumption = dg + di - de
        if consumption < 0 or de > dg:
            return None, Problem(self.name, start, "imbalance",
                                 f"export {de} Wh exceeds generation {dg} Wh (+ import {di} Wh)")
        reading = Reading(meter_id=self.meter_id, sequence=start // self.interval, interval_start=start,
                          interval_end=start + self.interval, generation_wh=dg, consumption_wh=consumption,
                          export_wh=de, import_wh=di, frequency_mhz=s.frequency_mhz)
        return reading, None
