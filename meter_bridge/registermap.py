"""Register maps as data: load ``registermaps/*.yaml``, decode register blocks, encode for the simulator.

A map names the points the bridge needs — ``import_wh`` and ``export_wh`` (cumulative lifetime
energy, integer Wh), ``frequency`` (mHz) and ``power_w`` — with their register address (plain
maps such as the Eastron SDM630) or offset inside a SunSpec model (found by the ``SunS`` marker).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridcoop_sdk.config import read_yaml, validate

SUNSPEC_BASES = (40000, 50000, 0)
SUNSPEC_MARKER = (0x5375, 0x6E53)  # "SunS"
REQUIRED_POINTS = ("import_wh", "export_wh", "frequency")

_SIZES = {"float32": 2, "uint16": 1, "int16": 1, "acc32": 2, "uint32": 2}


class PointSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: int | None = Field(default=None, ge=0, le=65535)
    offset: int | None = Field(default=None, ge=0, le=65535)
    type: Literal["float32", "uint16", "int16", "acc32", "uint32"]
    scale: float = 1.0
    sf_offset: int | None = Field(default=None, ge=0)


class MapSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    table: Literal["input", "holding"]
    sunspec_model: int | None = None
    model_length: int | None = None
    points: dict[str, PointSpec]

    @model_validator(mode="after")
    def _check(self) -> MapSpec:
        missing = [p for p in REQUIRED_POINTS if p not in self.points]
        if missing:
            raise ValueError(f"map lacks required point(s): {', '.join(missing)}")
        for name, p in self.points.items():
            if self.sunspec_model is None and p.address is None:
                raise ValueError(f"point {name} needs an address (not a SunSpec map)")
            if self.sunspec_model is not None and p.offset is None:
                raise ValueError(f"point {name} needs an offset inside SunSpec model {self.sunspec_model}")
        return self


@dataclass(frozen=True)
class RegisterMap:
    spec: MapSpec
    source: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_sunspec(self) -> bool:
        return self.spec.sunspec_model is not None

    def _addr(self, p: PointSpec) -> int:
        return p.offset if self.is_sunspec else p.address  # type: ignore[return-value]

    def span(self) -> tuple[int, int]:
        """(first, count) of the registers to read in one request (relative to model data for SunSpec)."""
        lo, hi = 65536, 0
        for p in self.spec.points.values():
            a = self._addr(p)
            lo, hi = min(lo, a), max(hi, a + _SIZES[p.type])
            if p.sf_offset is not None:
                lo, hi = min(lo, p.sf_offset), max(hi, p.sf_offset + 1)
        return lo, hi - lo

    def decode(self, block: list[int], first: int) -> dict[str, float]:
        """Values of every point from ``block`` (registers starting at ``first``), in map units × scale."""
        out: dict[str, float] = {}
        for name, p in self.spec.points.items():
            i = self._addr(p) - first
            raw = _decode(p.type, block[i:i + _SIZES[p.type]])
            if p.sf_offset is not None:
                sf = struct.unpack(">h", struct.pack(">H", block[p.sf_offset - first]))[0]
                raw = raw * (10.0 ** sf)
            out[name] = raw * p.scale
        return out

    def encode(self, values: dict[str, float], first: int, count: int, *, energy_sf: int = 0) -> list[int]:
        """Registers [first, first+count) holding ``values`` (the simulator uses this)."""
        regs = [0] * count
        for name, p in self.spec.points.items():
            v = values.get(name, 0.0) / p.scale
            if p.sf_offset is not None:
                sf = energy_sf if name.endswith("_wh") else (-2 if name == "frequency" else 0)
                regs[p.sf_offset - first] = struct.unpack(">H", struct.pack(">h", sf))[0]
                v = v / (10.0 ** sf)
            i = self._addr(p) - first
            regs[i:i + _SIZES[p.type]] = _encode(p.type, v)
        return regs


def _decode(typ: str, regs: list[int]) -> float:
    if typ == "float32":
        return struct.unpack(">f", struct.pack(">HH", regs[0], regs[1]))[0]
    if typ == "uint16":
        return regs[0]
    if typ == "int16":
        return struct.unpack(">h", struct.pack(">H", regs[0]))[0]
    return (regs[0] << 16) | regs[1]  # acc32 / uint32


def _encode(typ: str, v: float) -> list[int]:
    if typ == "float32":
        return list(struct.unpack(">HH", struct.pack(">f", v)))
    if typ == "uint16":
        return [int(round(v)) & 0xFFFF]
    if typ == "int16":
        return [struct.unpack(">H", struct.pack(">h", int(round(v))))[0]]
    n = int(round(v)) % 2**32
    return [n >> 16, n & 0xFFFF]


def available_maps() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("meter_bridge.registermaps").iterdir()
                  if p.name.endswith(".yaml"))


def load_map(name_or_path: str) -> RegisterMap:
    """A bundled map by name (``eastron_sdm630``, ``sunspec_203``, ``sunspec_213``) or a YAML file path.

    Raises :class:`~gridcoop_sdk.exceptions.ConfigError` naming the file, key and reason.
    """
    p = Path(name_or_path)
    if not p.suffix:
        bundled = resources.files("meter_bridge.registermaps") / f"{name_or_path}.yaml"
        if not bundled.is_file():
            from gridcoop_sdk.exceptions import ConfigError

            raise ConfigError(f"no register map named {name_or_path!r} (bundled: {', '.join(available_maps())})")
        p = Path(str(bundled))
    spec = validate(read_yaml(p), MapSpec, source=str(p))
    return RegisterMap(spec=spec, source=str(p))
