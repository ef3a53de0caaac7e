"""A Modbus meter simulator: a real pymodbus TCP server serving households' meters.

Each household has a grid-connection meter (unit ``grid_unit``, any bundled register map) and,
with PV, a generation meter (``pv_unit``; its *export* counter is the PV production). Power
follows a PV curve (sine between 06:00 and 18:00 UTC), a load curve (morning and evening peaks)
and an optional battery that stores PV surplus and covers deficits. Energy is integrated in
whole Wh per 30 s step of *simulated* time from the injected ``clock``, so the counters are a
pure function of time: a test or demo can run a day in minutes (``AcceleratedClock``) and knows
the exact truth (:meth:`MeterSimulator.counters`).

Registers are refreshed from the clock on every Modbus request (pymodbus ``SimDevice.action``);
Debian's ``mbpoll`` reads them, e.g. ``mbpoll -a 1 -B -t 3:float -r 71 -c 3 -p 5020 -1 127.0.0.1``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from .registermap import SUNSPEC_MARKER, RegisterMap, load_map

log = logging.getLogger("meter_bridge.simulator")

STEP = 30  # seconds of simulated time per integration step


class AcceleratedClock:
    """``clock()`` that runs ``speed`` times faster than real time from ``start``."""

    def __init__(self, start: float, speed: float = 1.0):
        self.start, self.speed = start, speed
        self._real0 = time.monotonic()

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self._real0) * self.speed


class ManualClock:
    """A clock that only moves when told (tests and deterministic demos)."""

    def __init__(self, t: float):
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def set(self, t: float) -> None:
        self.t = float(t)

    def advance(self, dt: float) -> None:
        self.t += dt


@dataclass
class Household:
    name: str
    grid_unit: int
    grid_map: str = "eastron_sdm630"
    pv_unit: int | None = None
    pv_map: str = "sunspec_213"
    pv_peak_w: int = 0
    load_kwh_day: float = 8.0
    battery_wh: int = 0
    battery_power_w: int = 0
    # state (whole Wh)
    import_wh: int = 1_000_000
    export_wh: int = 200_000
    pv_wh: int = 3_000_000
    soc_wh: int = 0
    t: float | None = None
    _fraction: dict = field(default_factory=lambda: {"pv": 0.0, "load": 0.0})

    def pv_power(self, t: float) -> float:
        h = (t % 86400) / 3600
        return self.pv_peak_w * max(0.0, math.sin(math.pi * (h - 6) / 12)) if 6 < h < 18 else 0.0

    def load_power(self, t: float) -> float:
        h = (t % 86400) / 3600
        shape = 0.45 + 1.0 * math.exp(-(((h - 7.5) / 1.2) ** 2)) + 1.4 * math.exp(-(((h - 19.5) / 2.0) ** 2))
        return self.load_kwh_day * 1000 / 24 * shape / 0.91  # mean(shape) ≈ 0.91

    def advance(self, t: float) -> None:
        if self.t is None:
            self.t = t - (t % STEP)
            return
        while self.t + STEP <= t:
            mid = self.t + STEP / 2
            # carry fractions so whole Wh are exact and nothing is lost to rounding
            self._fraction["pv"] += self.pv_power(mid) * STEP / 3600
            self._fraction["load"] += self.load_power(mid) * STEP / 3600
            pv, load = int(self._fraction["pv"]), int(self._fraction["load"])
            self._fraction["pv"] -= pv
            self._fraction["load"] -= load
            step_cap = self.battery_power_w * STEP // 3600
            surplus = pv - load
            if surplus >= 0:
                charge = min(surplus, step_cap, self.battery_wh - self.soc_wh)
                self.soc_wh += charge
                self.export_wh += surplus - charge
            else:
                discharge = min(-surplus, step_cap, self.soc_wh)
                self.soc_wh -= discharge
                self.import_wh += -surplus - discharge
            self.pv_wh += pv
            self.t += STEP

    def values(self, unit: int, t: float) -> dict[str, float]:
        freq = 50_000 + 25 * math.sin(t / 97.0)
        if unit == self.pv_unit:
            p = self.pv_power(t)
            return {"import_wh": 0, "export_wh": self.pv_wh, "frequency": freq, "power_w": p}
        return {"import_wh": self.import_wh, "export_wh": self.export_wh, "frequency": freq,
                "power_w": self.load_power(t) - self.pv_power(t)}


class MeterSimulator:
    """Households' meters on one Modbus TCP server (each meter its own unit id)."""

    def __init__(self, households: list[Household], *, clock: Callable[[], float] = time.time,
                 host: str = "127.0.0.1", port: int = 5020):
        self.households = households
        self.clock = clock
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._units: dict[int, tuple[Household, RegisterMap]] = {}
        for hh in households:
            for unit, mname in ((hh.grid_unit, hh.grid_map), (hh.pv_unit, hh.pv_map)):
                if unit is None:
                    continue
                if unit in self._units:
                    raise ValueError(f"unit id {unit} is used twice (household {hh.name})")
                self._units[unit] = (hh, load_map(mname))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusTcpServer | None = None
        self._ready = threading.Event()

    def counters(self, name: str) -> dict[str, int]:
        """True cumulative Wh of household ``name`` at the current clock time."""
        with self._lock:
            hh = next(h for h in self.households if h.name == name)
            hh.advance(self.clock())
            return {"import_wh": hh.import_wh, "export_wh": hh.export_wh, "generation_wh": hh.pv_wh}

    def _layout(self, regmap: RegisterMap) -> tuple[int, int, int]:
        """(block start, block length, first data register) of a device's register block."""
        if not regmap.is_sunspec:
            first, count = regmap.span()
            return 0, first + count + 8, 0
        mlen = regmap.spec.model_length or 0
        # SunS(2) + common model header(2) + 66 + model header(2) + mlen + end marker(2)
        return 40000, 2 + 2 + 66 + 2 + mlen + 2, 40000 + 2 + 2 + 66 + 2

    def _initial(self, regmap: RegisterMap, length: int) -> list[int]:
        regs = [0] * length
        if regmap.is_sunspec:
            regs[0:2] = SUNSPEC_MARKER
            regs[2:4] = [1, 66]
            name = b"gridcoop-sim".ljust(32, b"\0")
            regs[4:20] = [int.from_bytes(name[i:i + 2], "big") for i in range(0, 32, 2)]
            m = 4 + 66
            regs[m:m + 2] = [regmap.spec.sunspec_model or 0, regmap.spec.model_length or 0]
            regs[-2:] = [0xFFFF, 0]
        return regs

    def _device(self, unit: int) -> SimDevice:
        hh, regmap = self._units[unit]
        start, length, data0 = self._layout(regmap)
        first, count = regmap.span()

        async def action(fc, start_address, address, count_, registers, set_values):  # noqa: ARG001
            with self._lock:
                t = self.clock()
                hh.advance(t)
                vals = hh.values(unit, t)
            regs = regmap.encode(vals, first, count)
            off = data0 + first - start_address
            registers[off:off + count] = regs
            return None

        return SimDevice(id=unit, simdata=[SimData(start, count=length, values=self._initial(regmap, length),
                                                   datatype=DataType.REGISTERS)], action=action)

    # -- server lifecycle (a background thread with its own event loop)
    def start(self) -> MeterSimulator:
        for hh in self.households:
            hh.advance(self.clock())
        devices = [self._device(u) for u in sorted(self._units)]

        def runner() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)

            async def main() -> None:
                self._server = ModbusTcpServer(devices, address=(self.host, self.port))
                await self._server.serve_forever(background=True)
                self._ready.set()
                while self._server is not None:
                    await asyncio.sleep(0.05)

            self._loop.run_until_complete(main())

        self._thread = threading.Thread(target=runner, name="meter-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"simulator did not start on {self.host}:{self.port}")
        log.info("simulator serving %d meter(s) on %s:%s", len(self._units), self.host, self.port)
        return self

    def stop(self) -> None:
        if self._loop and self._server:
            server = self._server
            fut = asyncio.run_coroutine_threadsafe(server.shutdown(), self._loop)
            try:
                fut.result(5)
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass
            self._server = None
        if self._thread:
            self._thread.join(5)

    def __enter__(self) -> MeterSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
