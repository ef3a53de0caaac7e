"""A region's configuration file: everything that differs from one co-op to the next.

One YAML file describes a region — its name, local currency, grid emission factor, fee rates,
welcome grant, DAO founders and roles, its households (meters) and community batteries. The same
code deploys any region (``gridcoop region deploy --config configs/regions/<name>.yaml``); only this file
changes. Malformed files are refused with a :class:`~gridcoop_sdk.exceptions.ConfigError` naming
the file, the key path and the reason (see :mod:`gridcoop_sdk.config`).

Household fields under ``simulation`` (PV size, daily load, home battery) only drive the demo's
Modbus meter simulators; a real deployment ignores them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from eth_utils import to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .config import load_model
from .paths import project_root

_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

HouseholdKind = Literal["consumer", "pv", "pv_battery"]
RoleName = Literal["leader", "treasurer", "member", "auditor"]


def _yaml_address(v: object) -> object:
    """An unquoted ``0x…`` address in YAML 1.1 is read as an integer: turn it back into the address."""
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**160:
        return f"0x{v:040x}"
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalCurrencyConfig(_Strict):
    """The region's money. Without ``address`` the demo deploys a simple ERC-20 (LocalCurrency)."""

    name: str = Field(min_length=1, max_length=64)
    symbol: str = Field(min_length=1, max_length=11)
    decimals: int = Field(default=18, ge=0, le=18)
    address: str | None = Field(default=None, description="use an existing ERC-20 at this address")
    issue_per_household: float = Field(default=0, ge=0, description="demo: whole units issued to each household")

    @field_validator("address", mode="before")
    @classmethod
    def _unquoted(cls, v: object) -> object:
        return _yaml_address(v)

    @field_validator("address")
    @classmethod
    def _addr(cls, v: str | None) -> str | None:
        if v is not None and not _ADDRESS.match(v):
            raise ValueError("must be a 0x-prefixed 20-byte hex address")
        return v


class NetworkFeeConfig(_Strict):
    """The optional network fee a buyer pays per kWh bought from another household (local currency)."""

    per_kwh: float = Field(gt=0, description="local currency per kWh between feeders (or with no feeder)")
    intra_feeder_per_kwh: float = Field(default=0, ge=0, description="local currency per kWh inside one feeder")
    payee: str = Field(description="who receives the fees (the network operator)")

    @field_validator("payee", mode="before")
    @classmethod
    def _unquoted(cls, v: object) -> object:
        return _yaml_address(v)

    @field_validator("payee")
    @classmethod
    def _addr(cls, v: str) -> str:
        if not _ADDRESS.match(v):
            raise ValueError("must be a 0x-prefixed 20-byte hex address")
        return to_checksum_address(v)

    @model_validator(mode="after")
    def _rates(self) -> NetworkFeeConfig:
        if self.intra_feeder_per_kwh > self.per_kwh:
            raise ValueError("intra_feeder_per_kwh must not exceed per_kwh")
        return self


class GridConfig(_Strict):
    emission_factor_g_per_kwh: int = Field(ge=0, le=2000, description="CO2 of energy drawn from the public grid")
    crev_factor_g_per_kwh: int | None = Field(
        default=None, ge=0, le=2000, description="C-REV issuance factor (default: the grid factor)"
    )
    retail_price: float = Field(gt=0, description="grid import price, local currency per kWh (the grid's offer)")
    feed_in_price: float = Field(gt=0, description="grid export price, local currency per kWh (the grid's bid)")
    account: str | None = Field(
        default=None, description="the utility's account: makes the grid a market participant (pays feed-in, "
        "receives retail and energy debt payments)")
    network_fee: NetworkFeeConfig | None = None

    @field_validator("account", mode="before")
    @classmethod
    def _unquoted(cls, v: object) -> object:
        return _yaml_address(v)

    @field_validator("account")
    @classmethod
    def _addr(cls, v: str | None) -> str | None:
        if v is not None and not _ADDRESS.match(v):
            raise ValueError("must be a 0x-prefixed 20-byte hex address")
        return None if v is None else to_checksum_address(v)

    @model_validator(mode="after")
    def _spread(self) -> GridConfig:
        if self.feed_in_price >= self.retail_price:
            raise ValueError("feed_in_price must be below retail_price")
        if self.network_fee and self.network_fee.per_kwh >= self.retail_price - self.feed_in_price:
            raise ValueError("network_fee.per_kwh must be below retail_price - feed_in_price (or nobody gains "
                             "from trading locally)")
        return self

    @property
    def crev_factor(self) -> int:
        return self.emission_factor_g_per_kwh if self.crev_factor_g_per_kwh is None else self.crev_factor_g_per_kwh


class MarketConfig(_Strict):
    gate_closure_s: int = Field(default=0, ge=0, le=3600)
    max_batch_size: int = Field(default=1024, ge=1, le=4096)


class OwnerShare(_Strict):
    household: str
    share: int = Field(gt=0, le=10_000)


class BatteryConfig(_Strict):
    id: str = Field(pattern=_SLUG.pattern)
    capacity_kwh: float = Field(gt=0, le=100_000)
    power_kw: float | None = Field(
        default=None, gt=0, le=100_000,
        description="inverter power in kW: the battery meter's rated power (default: capacity / 2 h)")
    efficiency: float = Field(gt=0.5, le=1.0, description="round-trip efficiency (0.5–1]")
    fee_tsl_per_kwh_slot: float = Field(ge=0, le=1000, description="TSL per kWh stored per 15-minute slot")
    owners: list[OwnerShare] = Field(min_length=1)
    location: str = Field(default="", max_length=12)


    @property
    def rated_power_w(self) -> int:
        """The battery meter's rated power in W (its inverter), never its capacity."""
        kw = self.capacity_kwh / 2 if self.power_kw is None else self.power_kw
        return max(int(kw * 1000), 1)


class StorageConfig(_Strict):
    welcome_grant_tsl: float = Field(default=0, ge=0)
    marketing_pool_tsl: float = Field(default=0, ge=0, description="TSL the treasury puts in the marketing pool")


class Founder(_Strict):
    household: str
    role: RoleName
    shares: int = Field(default=1, ge=0, le=10**12,
                        description="contribution shares recorded at deployment (revenue is split pro rata)")


class DaoConfig(_Strict):
    founders: list[Founder] = Field(min_length=1)
    voting_period_s: int = Field(default=3600, ge=1)
    execution_delay_s: int = Field(default=0, ge=0)
    threshold: int = Field(default=2, ge=1, description="for-votes needed (M of N)")


class SimulationConfig(_Strict):
    pv_kwp: float = Field(default=0, ge=0, le=100)
    load_kwh_day: float = Field(default=8, gt=0, le=500)
    home_battery_kwh: float = Field(default=0, ge=0, le=200)


class HouseholdConfig(_Strict):
    name: str = Field(pattern=_SLUG.pattern)
    kind: HouseholdKind
    certified: bool = Field(default=False, description="calibrated meter: earns C-REV")
    location: str = Field(default="", max_length=12, description="geohash")
    feeder: str = Field(default="", max_length=32, description="feeder (location group): lower network fee inside it")
    account: str | None = Field(default=None, description="the household's account (real deployments)")
    meter_signer: str | None = Field(default=None, description="address of the meter's device key (real deployments)")
    simulation: SimulationConfig = SimulationConfig()

    @field_validator("account", "meter_signer", mode="before")
    @classmethod
    def _unquoted(cls, v: object) -> object:
        return _yaml_address(v)

    @field_validator("account", "meter_signer")
    @classmethod
    def _addr(cls, v: str | None) -> str | None:
        if v is not None and not _ADDRESS.match(v):
            raise ValueError("must be a 0x-prefixed 20-byte hex address")
        return v

    @model_validator(mode="after")
    def _pv(self) -> HouseholdConfig:
        if self.kind != "consumer" and self.simulation.pv_kwp <= 0:
            raise ValueError(f"a {self.kind} household needs simulation.pv_kwp > 0")
        if self.kind == "pv_battery" and self.simulation.home_battery_kwh <= 0:
            raise ValueError("a pv_battery household needs simulation.home_battery_kwh > 0")
        return self

    @property
    def rated_power_w(self) -> int:
        """Meter rating: enough for PV peak or a household's peak load."""
        return int(max(self.simulation.pv_kwp * 1000, 10_000))

    @property
    def colour(self) -> str:
        return "grid" if self.kind == "consumer" else "solar"


class RegionConfig(_Strict):
    region: str = Field(min_length=1, max_length=64, description="display name")
    slug: str = Field(pattern=_SLUG.pattern, description="short id used in deployment records")
    local_currency: LocalCurrencyConfig
    grid: GridConfig
    market: MarketConfig = MarketConfig()
    storage: StorageConfig = StorageConfig()
    batteries: list[BatteryConfig] = Field(default_factory=list)
    dao: DaoConfig
    households: list[HouseholdConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> RegionConfig:
        names = [h.name for h in self.households]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"household names must be unique: {sorted(dupes)}")
        known = set(names)
        for f in self.dao.founders:
            if f.household not in known:
                raise ValueError(f"dao founder {f.household!r} is not a household")
        if self.dao.threshold > len(self.dao.founders):
            raise ValueError(f"dao threshold {self.dao.threshold} exceeds {len(self.dao.founders)} founders")
        for b in self.batteries:
            for o in b.owners:
                if o.household not in known:
                    raise ValueError(f"battery {b.id!r} owner {o.household!r} is not a household")
        return self

    def warnings(self) -> list[str]:
        """What this config allows that a co-op should not run with (deployment still proceeds;
        ``deploy_region`` reports each through its progress callback and the log)."""
        out = []
        founders = self.dao.founders
        if len(founders) > 1 and self.dao.threshold <= 1:
            out.append(f"dao.threshold is {self.dao.threshold} of {len(founders)} founders: any single founder "
                       "passes any proposal (treasury, roles, every parameter) alone; use a majority, e.g. "
                       f"threshold: {len(founders) // 2 + 1}")
        return out

    def household(self, name: str) -> HouseholdConfig:
        for h in self.households:
            if h.name == name:
                return h
        raise KeyError(name)

    def scaled(self, households: int) -> RegionConfig:
        """A copy with ``households`` households: the first N, or the list repeated with new names.

        Founders and battery owners must stay among the households kept.
        """
        if households < 1:
            raise ValueError("households must be >= 1")
        base = list(self.households)
        out: list[HouseholdConfig] = []
        i = 0
        while len(out) < households:
            h = base[i % len(base)]
            if i >= len(base):
                h = h.model_copy(update={"name": f"{h.name}-{i // len(base)}"})
            out.append(h)
            i += 1
        return self.model_validate({**self.model_dump(), "households": [h.model_dump() for h in out]})


CONFIG_DIR = project_root() / "configs" / "regions"


def load_region(path: str | Path) -> RegionConfig:
    """Load a region file; a bare name (``sakura``) means ``configs/regions/<name>.yaml``."""
    p = Path(path)
    if not p.suffix and not p.exists():
        p = CONFIG_DIR / f"{p}.yaml"
    return load_model(p, RegionConfig)
