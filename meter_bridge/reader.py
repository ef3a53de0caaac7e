"""Reading one meter over Modbus (TCP, or RTU when a serial port is given) with pymodbus."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from gridcoop_sdk.exceptions import GridcoopError

from .registermap import SUNSPEC_BASES, SUNSPEC_MARKER, RegisterMap

log = logging.getLogger("meter_bridge.reader")


class MeterReadError(GridcoopError, ConnectionError):
    """A meter did not answer or answered with a Modbus exception (the message says which meter)."""


@dataclass(frozen=True)
class Sample:
    """Cumulative lifetime registers of one meter at one moment."""

    t: float
    import_wh: int
    export_wh: int
    frequency_mhz: int
    power_w: float


class ModbusMeterReader:
    """Polls one Modbus device (``unit``) described by a register map.

    TCP by default; pass ``serial_port`` (e.g. ``/dev/ttyUSB0``) for RTU — the same request and
    decoding code runs over either transport.
    """

    def __init__(self, regmap: RegisterMap, *, host: str = "127.0.0.1", port: int = 502, unit: int = 1,
                 serial_port: str | None = None, baudrate: int = 9600, timeout: float = 3.0):
        self.regmap = regmap
        self.unit = unit
        self.where = f"{serial_port or f'{host}:{port}'} unit {unit} ({regmap.name})"
        if serial_port:
            self.client = ModbusSerialClient(serial_port, baudrate=baudrate, timeout=timeout)
        else:
            self.client = ModbusTcpClient(host, port=port, timeout=timeout, retries=1)
        self._model_start: int | None = None

    def close(self) -> None:
        self.client.close()

    def _read(self, address: int, count: int, table: str) -> list[int]:
        if not self.client.connected and not self.client.connect():
            raise MeterReadError(f"cannot connect to meter at {self.where}")
        fn = self.client.read_input_registers if table == "input" else self.client.read_holding_registers
        try:
            rr = fn(address, count=count, device_id=self.unit)
        except ModbusException as exc:
            self.client.close()
            raise MeterReadError(f"meter at {self.where}: {exc}") from exc
        if rr.isError():
            raise MeterReadError(f"meter at {self.where} refused reading {count} registers at {address}: {rr}")
        return list(rr.registers)

    def _sunspec_start(self) -> int:
        if self._model_start is not None:
            return self._model_start
        model = self.regmap.spec.sunspec_model
        for base in SUNSPEC_BASES:
            try:
                if tuple(self._read(base, 2, "holding")) != SUNSPEC_MARKER:
                    continue
            except MeterReadError:
                continue
            addr = base + 2
            for _ in range(64):
                mid, length = self._read(addr, 2, "holding")
                if mid == 0xFFFF:
                    break
                if mid == model:
                    self._model_start = addr + 2
                    log.info("found SunSpec model %s at %s on %s", model, addr, self.where)
                    return self._model_start
                addr += 2 + length
            raise MeterReadError(f"SunSpec device at {self.where} has no model {model}")
        raise MeterReadError(f"no SunSpec marker 'SunS' at {SUNSPEC_BASES} on {self.where}")

    def sample(self, t: float) -> Sample:
        """Read the map's points now (``t`` is the clock time to stamp the sample with)."""
        first, count = self.regmap.span()
        base = self._sunspec_start() if self.regmap.is_sunspec else 0
        block = self._read(base + first, count, self.regmap.spec.table)
        v = self.regmap.decode(block, first)
        return Sample(t=t, import_wh=int(round(v["import_wh"])), export_wh=int(round(v["export_wh"])),
                      frequency_mhz=int(round(v["frequency"])), power_w=float(v.get("power_w", 0.0)))
