"""One region's co-op running for real: chain contracts, Modbus meter simulators, the meter
bridge, the keeper with its HTTP API, and the households' strategies.

:class:`CommunityRun` owns the parts of one region; :mod:`coop_demo.day` drives one or more of
them through the simulated day and writes the report.

Timeline of interval *k* (T = its start, clock from :class:`~coop_demo.clock.SimClock`):

1. at T + 10 min the households decide and sign their orders for interval *k + 1* (sent to the
   keeper over HTTP) and, around noon, deposit WATT into the community battery;
2. at T + 15 min (the end of *k*) the chain's clock follows; the bridge polls every meter over
   Modbus TCP, closes interval *k*, signs each reading with the meter's device key, stores it
   in its outbox and pushes the batch to the keeper's relay, which submits it to the
   MeterRegistry (WATT minted for export, burnt for import, C-REV issued for certified
   self-consumption);
3. interval *k + 1* has closed for orders: the keeper clears it and settles it on chain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from gridcoop_sdk import grid as grid_sdk
from gridcoop_sdk import orders as orders_sdk
from gridcoop_sdk import storage as storage_sdk
from gridcoop_sdk.chain import free_port
from gridcoop_sdk.readings import ReadingSigner, meter_id
from gridcoop_sdk.region import Region, deploy_region, to_units
from gridcoop_sdk.region_config import HouseholdConfig, RegionConfig
from gridcoop_sdk.tx import send
from gridcoop_sdk.units import INTERVAL_SECONDS, interval_id, watt_to_wh
from keeper.api import create_app, serve_in_thread
from keeper.client import KeeperClient
from keeper.relay import readings_router
from keeper.service import Keeper
from meter_bridge.gateway import Gateway, Site
from meter_bridge.intervals import IntervalBuilder
from meter_bridge.outbox import Outbox
from meter_bridge.pushers import HttpPusher
from meter_bridge.reader import ModbusMeterReader
from meter_bridge.registermap import load_map
from meter_bridge.simulator import Household, MeterSimulator

from .accounts import Operators, device_key
from .clock import SimClock
from .strategies import Intent, decide, limit_prices

log = logging.getLogger("coop_demo")

MAX_UINT = 2**256 - 1


@dataclass
class IntervalRecord:
    interval: int
    time: str
    price_base_units: int | None = None  # clearing price, currency base units per kWh (None: no trade)
    volume_wh: int = 0
    trades: int = 0
    orders: int = 0
    readings: int = 0
    gas_used: int = 0
    tx: str = ""
    battery_soc_wh: int = 0
    fees_base_units: int = 0  # TSL fees paid in this step, exact (BatteryStorage.totalFeesPaid before/after)
    deposits_wh: int = 0
    withdrawals_wh: int = 0
    refused_orders: int = 0
    debt_paid_wh: int = 0  # energy debt the households paid on chain this step (at the retail price)
    debt_paid_base_units: int = 0


@dataclass
class CommunityRun:
    cfg: RegionConfig
    w3: Web3
    ops: Operators
    households: dict[str, LocalAccount]
    clock: SimClock
    workdir: Path
    region: Region | None = None
    records: list[IntervalRecord] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ set-up
    def deploy(self, say) -> Region:
        """Deploy the region from its config, fund the households, hand every role to the DAO."""
        cfg = self.cfg
        signers = {h.name: device_key(cfg.slug, h.name).address for h in cfg.households}
        owners = {name: acct.address for name, acct in self.households.items()}

        def fund(region: Region) -> None:
            cur = region["LocalCurrency"]
            amount = to_units(cfg.local_currency.issue_per_household, cfg.local_currency.decimals)
            if amount and not cfg.local_currency.address:
                for acct in self.households.values():
                    send(self.w3, self.ops.deployer, cur.functions.issue(acct.address, amount))
                # the utility pays feed-in for what the grid buys: as much as all households hold
                send(self.w3, self.ops.deployer, cur.functions.issue(self.utility, amount * len(self.households)))
                say(f"issued {cfg.local_currency.issue_per_household:,} {cfg.local_currency.symbol} "
                    f"to each of {len(self.households)} households and the utility")

        self.region = deploy_region(self.w3, self.ops.deployer, cfg, keeper=self.ops.keeper.address,
                                    owners=owners, device_signers=signers, progress=say,
                                    before_handover=fund, grid_account=self.ops.utility.address)
        self._approve_all(say)
        return self.region

    @property
    def utility(self) -> str:
        """The grid participant's account (the config's ``grid.account``, or the demo's utility)."""
        return self.cfg.grid.account or self.ops.utility.address

    def _approve_all(self, say) -> None:
        r = self.region
        market, storage = r["EnergyMarket"], r["BatteryStorage"]
        if self.utility == self.ops.utility.address:
            send(self.w3, self.ops.utility, r["LocalCurrency"].functions.approve(market.address, MAX_UINT))
        granted = 0
        for name, acct in self.households.items():
            send(self.w3, acct, r["WattToken"].functions.approve(market.address, MAX_UINT))
            send(self.w3, acct, r["LocalCurrency"].functions.approve(market.address, MAX_UINT))
            send(self.w3, acct, r["WattToken"].functions.approve(storage.address, MAX_UINT))
            send(self.w3, acct, r["TeslaToken"].functions.approve(storage.address, MAX_UINT))
            try:
                storage_sdk.claim_welcome_grant(self.w3, acct, storage)
                granted += 1
            except Exception as exc:  # noqa: BLE001 - a refused grant is reported, not fatal
                self.events.append(f"welcome grant for {name} refused: {exc}")
        say(f"households approved the market and the battery; {granted} welcome grants of "
            f"{self.cfg.storage.welcome_grant_tsl} TSL claimed")

    def start_services(self, say) -> None:
        cfg, r = self.cfg, self.region
        chain_id = self.w3.eth.chain_id
        registry = r["MeterRegistry"]
        # Modbus meter simulators: one TCP server, each household's grid meter (SDM630) on its own
        # unit id and a PV generation meter (SunSpec 213) for households with PV.
        sims: list[Household] = []
        unit = 1
        self._units: dict[str, tuple[int, int | None]] = {}
        for h in cfg.households:
            pv_unit = unit + 1 if h.simulation.pv_kwp > 0 else None
            sims.append(Household(
                name=h.name, grid_unit=unit, pv_unit=pv_unit, pv_peak_w=int(h.simulation.pv_kwp * 1000),
                load_kwh_day=h.simulation.load_kwh_day, battery_wh=int(h.simulation.home_battery_kwh * 1000),
                battery_power_w=int(h.simulation.home_battery_kwh * 500)))
            self._units[h.name] = (unit, pv_unit)
            unit += 2
        self.sim_port = free_port()
        self.simulator = MeterSimulator(sims, clock=self.clock, port=self.sim_port).start()
        say(f"Modbus TCP meter simulator on 127.0.0.1:{self.sim_port}: {len(self._units)} households, "
            f"{sum(1 for u in self._units.values() if u[1])} PV meters")

        # The keeper: clearing engine, settlement, HTTP API with the readings relay.
        db = self.workdir / "keeper.sqlite"
        db.unlink(missing_ok=True)
        self.keeper = Keeper(self.w3, self.ops.keeper, r["EnergyMarket"], f"sqlite:///{db}", clock=self.clock,
                             stuck_after=6 * 3600)  # simulated seconds: the clock jumps 10 min per step
        relay = readings_router(self.w3, self.ops.relay, registry)
        self.api = serve_in_thread(create_app(self.keeper, routers=[relay]), "127.0.0.1", free_port())
        self.keeper_url = self.api.url
        self.client = KeeperClient(self.keeper_url)
        say(f"keeper HTTP API on {self.keeper_url} (orders, intervals, readings relay)")

        # The meter bridge: polls the simulator over Modbus TCP, signs with each meter's device key.
        sites = []
        for h in cfg.households:
            grid_unit, pv_unit = self._units[h.name]
            key = device_key(cfg.slug, h.name).key
            mid = r.meter_ids[h.name]
            sites.append(Site(
                name=h.name,
                signer=ReadingSigner(key, chain_id, registry.address),
                grid=ModbusMeterReader(load_map("eastron_sdm630"), port=self.sim_port, unit=grid_unit),
                generation=(ModbusMeterReader(load_map("sunspec_213"), port=self.sim_port, unit=pv_unit)
                            if pv_unit else None),
                builder=IntervalBuilder(h.name, meter_id(mid)),
            ))
        outbox = self.workdir / "gateway-outbox.sqlite"
        outbox.unlink(missing_ok=True)  # a fresh chain: nothing of an earlier run is pending
        self.gateway = Gateway(sites, Outbox(outbox, clock=self.clock),
                               HttpPusher(self.keeper_url), clock=self.clock)
        self.gateway.poll_once()  # baseline sample of every counter
        say(f"meter bridge polling {len(sites)} meters, pushing to the keeper relay")

    # ------------------------------------------------------------------ one interval
    def _hour(self, ts: float) -> float:
        return self.clock.local_hour(ts)

    def forecast(self, h: HouseholdConfig, start: int) -> tuple[int, int]:
        """(generation, consumption) Wh the household expects in the interval starting at ``start``."""
        hh = next(x for x in self.simulator.households if x.name == h.name)
        gen = cons = 0.0
        for i in range(30):
            t = start + 15 + 30 * i
            gen += hh.pv_power(t) * 30 / 3600
            cons += hh.load_power(t) * 30 / 3600
        return int(gen), int(cons)

    def place_orders(self, target_interval: int) -> list[tuple[str, Intent]]:
        cfg, r = self.cfg, self.region
        chain_id = self.w3.eth.chain_id
        market = r["EnergyMarket"]
        start = target_interval * INTERVAL_SECONDS
        buy_limit, sell_limit = limit_prices(self._hour(start), cfg.grid)
        dec = cfg.local_currency.decimals
        storage = r["BatteryStorage"]
        battery_id = next(iter(r.battery_ids.values()), None)
        intents = []
        for h in cfg.households:
            acct = self.households[h.name]
            watt = watt_to_wh(r["WattToken"].functions.balanceOf(acct.address).call())
            stored = storage_sdk.stored(storage, battery_id, acct.address) if battery_id is not None else 0
            gen, cons = self.forecast(h, start)
            intent = decide(kind=h.kind, hour=self._hour(start), watt_wh=watt, forecast_generation_wh=gen,
                            forecast_consumption_wh=cons, stored_wh=stored,
                            uses_community_battery=h.kind == "pv_battery" and battery_id is not None)
            intents.append((h.name, intent))
            for side, wh, price in (("sell", intent.sell_wh, sell_limit), ("buy", intent.buy_wh, buy_limit)):
                if wh <= 0:
                    continue
                order = orders_sdk.Order(
                    maker=acct.address, side=side, interval_id=target_interval, amount_wh=int(wh),
                    limit_price=to_units(price, dec), payment_token=r["LocalCurrency"].address,
                    expiry=start + 2 * INTERVAL_SECONDS, partially_fillable=True)
                signed = orders_sdk.sign_order(order, acct.key, chain_id, market.address)
                self.client.submit_order(signed)
        return intents

    def battery_moves(self, intents: list[tuple[str, Intent]], rec: IntervalRecord) -> None:
        r = self.region
        if not r.battery_ids:
            return
        storage = r["BatteryStorage"]
        battery_id = next(iter(r.battery_ids.values()))
        # every fee this step, whether paid explicitly or by a withdrawal, exact in base units
        fees_before = storage.functions.totalFeesPaid().call()
        try:
            self._battery_moves(intents, rec, storage, battery_id)
        finally:
            rec.fees_base_units += storage.functions.totalFeesPaid().call() - fees_before

    def _battery_moves(self, intents: list[tuple[str, Intent]], rec: IntervalRecord, storage, battery_id: int) -> None:
        for name, intent in intents:
            acct = self.households[name]
            try:
                if intent.deposit_wh:
                    storage_sdk.deposit(self.w3, acct, storage, battery_id, intent.deposit_wh, colour="solar")
                    rec.deposits_wh += intent.deposit_wh
                elif intent.withdraw:
                    amount = storage_sdk.stored(storage, battery_id, acct.address)
                    if amount:
                        storage_sdk.withdraw(self.w3, acct, storage, battery_id, amount)
                        rec.withdrawals_wh += amount
                # battery users settle what they owe every hour (withdrawals pay it anyway)
                if self.clock.local_hour(self.clock.now()) % 1 >= 0.5 and \
                        self.clock.local_hour(self.clock.now()) % 1 < 0.75 and \
                        storage_sdk.owed(storage, battery_id, acct.address):
                    storage_sdk.pay_fees(self.w3, acct, storage, battery_id)
            except Exception as exc:  # noqa: BLE001 - the chain refused: report and go on
                self.events.append(f"{rec.time} battery move of {name} refused: {exc}")

    def step(self, k: int, *, on_midday=None) -> IntervalRecord:
        """Run interval ``k`` of the day (0-based from the clock's start)."""
        start = self.clock.interval_start(k)
        iid = interval_id(start)
        rec = IntervalRecord(interval=iid, time=self.clock.label(start))
        # 1. orders for the next interval, battery deposits/withdrawals
        self.clock.advance_to(start + 600)
        self._chain_time(start + 600)
        intents = self.place_orders(iid + 1)
        self.battery_moves(intents, rec)
        if on_midday:
            on_midday(self, rec)
        # 2. end of the interval: meters → bridge → keeper relay → MeterRegistry
        end = start + INTERVAL_SECONDS
        self.clock.advance_to(end)
        self._chain_time(end)
        signed = self.gateway.poll_once()
        self.gateway.drain()
        rec.readings = len(signed)
        self.pay_energy_debts(rec)
        # 3. the next interval closed for orders: clear and settle it
        result = self.keeper.settle_interval(iid + 1)
        rec.interval = iid + 1  # the row is the settled interval (its readings arrive next step)
        rec.time = self.clock.label(start + INTERVAL_SECONDS)
        if result.error:
            self.events.append(f"{rec.time} interval {iid + 1}: {result.state}: {result.error}")
        # no trade, no price (the report leaves a gap in the plot instead of a fake zero)
        rec.price_base_units = int(result.price) if result.price and result.trades else None
        rec.volume_wh = int(result.volume_wh)
        rec.trades = int(result.trades)
        rec.orders = int(result.orders)
        rec.refused_orders = len(result.dropped or {})
        rec.gas_used = int(result.gas_used or 0)
        rec.tx = result.tx_hash or ""
        if self.region.battery_ids:
            bid = next(iter(self.region.battery_ids.values()))
            rec.battery_soc_wh = storage_sdk.battery_info(self.region["BatteryStorage"], bid).stored_wh
        self.records.append(rec)
        return rec

    def pay_energy_debts(self, rec: IntervalRecord) -> None:
        """Each household pays its energy debt (grid imports beyond its WATT) at the retail price,
        as soon as its reading recorded it: no debt is left off chain."""
        r = self.region
        market, registry = r["EnergyMarket"], r["MeterRegistry"]
        paid = r["LocalCurrency"].functions.balanceOf(self.utility).call()
        for name, acct in self.households.items():
            debt = grid_sdk.energy_debt_wh(registry, acct.address)
            if not debt:
                continue
            try:
                grid_sdk.pay_energy_debt(self.w3, acct, market, acct.address, debt)
                rec.debt_paid_wh += debt
            except Exception as exc:  # noqa: BLE001 - the chain refused (funds): report, the debt stays
                self.events.append(f"{rec.time} energy debt of {name} ({debt} Wh) not paid: {exc}")
        rec.debt_paid_base_units = r["LocalCurrency"].functions.balanceOf(self.utility).call() - paid

    def _chain_time(self, ts: int) -> None:
        latest = self.w3.eth.get_block("latest")["timestamp"]
        if ts > latest:
            self.w3.provider.make_request("evm_setNextBlockTimestamp", [int(ts)])
            self.w3.provider.make_request("evm_mine", [])

    # ------------------------------------------------------------------ tear-down
    def stop(self) -> None:
        for part in ("gateway", "api", "simulator"):
            obj = getattr(self, part, None)
            if obj is None:
                continue
            try:
                obj.close() if part == "gateway" else obj.stop()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.debug("stopping %s failed", part, exc_info=True)
        keeper = getattr(self, "keeper", None)
        if keeper is not None:
            keeper.stop()

