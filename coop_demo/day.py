"""``gridcoop demo``: a simulated co-op day end to end on a self-started local chain.

Starts anvil, deploys the region of a config file (and a second region from another config),
runs real Modbus meter simulators, the meter bridge and the keeper's HTTP API, plays the day on
an accelerated clock with a progress view, and writes a report folder (CSV, PNG, HTML).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from gridcoop_sdk import crev as crev_sdk
from gridcoop_sdk import dao as dao_sdk
from gridcoop_sdk import readings as readings_sdk
from gridcoop_sdk import storage as storage_sdk
from gridcoop_sdk.chain import Anvil, connect
from gridcoop_sdk.exceptions import GridcoopError
from gridcoop_sdk.paths import project_root
from gridcoop_sdk.region import to_units
from gridcoop_sdk.region_config import RegionConfig, load_region
from gridcoop_sdk.units import INTERVAL_SECONDS, watt_to_kwh
from keeper.reports import battery as battery_report
from keeper.reports import carbon
from keeper.reports import market as market_report
from keeper.reports.amounts import fmt, to_display, total

from .accounts import accounts_needed, household_accounts, load_accounts, operators
from .clock import DEFAULT_DAY, SimClock, day_start
from .community import CommunityRun
from .report import DemoReport, write_report

log = logging.getLogger("coop_demo")


@dataclass
class DemoOptions:
    config: str = "sakura"
    second_config: str | None = "kaede"
    households: int | None = None
    intervals: int = 96
    second_intervals: int = 8
    speed: float = 3600.0
    day: str = DEFAULT_DAY
    start_hour: float = 0.0
    out: Path | None = None
    rpc_url: str | None = None
    dao_vote_via_scripts: bool = True


TSL_DECIMALS = 18


def _interval_table(run: CommunityRun) -> pd.DataFrame:
    """One row per interval; token amounts as exact ints (``…_base_units``, object columns) with an
    exact Decimal display column beside each (``price_per_kwh`` in the currency, ``fees_tsl``)."""
    df = pd.DataFrame([asdict(r) for r in run.records])
    if df.empty:
        return df
    dec = run.cfg.local_currency.decimals
    prices = [r.price_base_units for r in run.records]
    fees = [r.fees_base_units for r in run.records]
    df["price_base_units"] = pd.Series(prices, index=df.index, dtype=object)
    df.insert(df.columns.get_loc("price_base_units") + 1, "price_per_kwh", pd.Series(
        [None if p is None else to_display(p, dec) for p in prices], index=df.index, dtype=object))
    df["fees_base_units"] = pd.Series(fees, index=df.index, dtype=object)
    df.insert(df.columns.get_loc("fees_base_units") + 1, "fees_tsl", pd.Series(
        [to_display(f, TSL_DECIMALS) for f in fees], index=df.index, dtype=object))
    return df


def _rate(units: int) -> str:
    """A TSL amount (fee rate) for a message, exact."""
    return fmt(to_display(units, TSL_DECIMALS))


class Demo:
    def __init__(self, opts: DemoOptions, console: Console | None = None):
        self.opts = opts
        self.console = console or Console(width=None if sys.stdout.isatty() else 120)
        self.node: Anvil | None = None
        self.runs: list[CommunityRun] = []
        self.reports: list[DemoReport] = []
        self._pending: tuple[int, int, int] | None = None

    def say(self, msg: str) -> None:
        self.console.print(f"  {msg}")

    # --------------------------------------------------------------------------------------
    def run(self) -> Path:
        o = self.opts
        t0 = time.monotonic()
        primary = load_region(o.config)
        if o.households:
            primary = primary.scaled(o.households)
        second = load_region(o.second_config) if o.second_config else None
        sizes = [len(primary.households)] + ([len(second.households)] if second else [])
        start = day_start(o.day, 0) + int(o.start_hour * 3600) // INTERVAL_SECONDS * INTERVAL_SECONDS
        out = o.out or project_root() / "reports" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
        out.mkdir(parents=True, exist_ok=True)

        if o.rpc_url:
            w3 = connect(o.rpc_url)
            url = o.rpc_url
            # a running chain's clock only moves forward: play the day that starts after it
            day0 = (int(w3.eth.get_block("latest")["timestamp"]) // 86400 + 1) * 86400
            start = day0 + int(o.start_hour * 3600) // INTERVAL_SECONDS * INTERVAL_SECONDS
        else:
            day0 = day_start(o.day, 0)
            self.node = Anvil(accounts=accounts_needed(sizes), extra_args=[
                "--timestamp", str(start - 3600), "--gas-limit", "60000000",
            ], log_path=out / "anvil.log").start()
            w3, url = self.node.w3, self.node.url
        self.console.rule(f"gridcoop demo — {primary.region}")
        self.say(f"chain: anvil at {url} (chain id {w3.eth.chain_id}); report folder {out}")
        accounts = load_accounts(accounts_needed(sizes))

        run = self._community(primary, w3, accounts, 0, 0, start, out / primary.slug)
        self._play(run, o.intervals, midday=True, retire=True)
        report = self._report(run, out / primary.slug)
        self.reports.append(report)
        html = write_report(report, out / primary.slug)

        second_report = None
        if second:
            self.console.rule(f"second region — {second.region} (same code, config {o.second_config})")
            start2 = day0 + 86400 + 10 * 3600  # the next day, from 10:00
            run2 = self._community(second, w3, accounts, 1, sizes[0], start2, out / second.slug)
            self._play(run2, o.second_intervals, midday=False, retire=False)
            second_report = self._report(run2, out / second.slug)
            write_report(second_report, out / second.slug)
            self._independence(run, run2, report)
        self._summary(report, second_report, time.monotonic() - t0)
        self.console.print(f"\nreport: {html}")
        return html

    def close(self) -> None:
        for r in self.runs:
            r.stop()
        if self.node:
            self.node.stop()
            self.console.print(f"stopped anvil at {self.node.url}")

    # --------------------------------------------------------------------------------------
    def _community(self, cfg: RegionConfig, w3, accounts, index: int, offset: int, start: int,
                   workdir: Path) -> CommunityRun:
        workdir.mkdir(parents=True, exist_ok=True)
        clock = SimClock(start, speed=self.opts.speed)
        names = [h.name for h in cfg.households]
        run = CommunityRun(cfg, w3, operators(accounts, index), household_accounts(accounts, offset, names),
                           clock, workdir)
        self.runs.append(run)
        self.console.print(f"[bold]deploying {cfg.region}[/bold] ({len(names)} households, "
                           f"currency {cfg.local_currency.symbol})")
        run.deploy(self.say)
        run.start_services(self.say)
        return run

    def _play(self, run: CommunityRun, intervals: int, *, midday: bool, retire: bool) -> None:
        cfg = run.cfg
        # the noon vote: at 12:00, or half-way through a run that does not reach noon
        noon = (12 * 3600 - run.clock.start % 86400) // INTERVAL_SECONDS
        vote_at = (noon if 0 <= noon < intervals - 2 else intervals // 2) if midday else -1
        sym = cfg.local_currency.symbol
        self.console.print(f"[bold]running {intervals} intervals[/bold] (clock x{self.opts.speed:g})")
        header = (f"  {'time':>5}  {sym + '/kWh':>8}  {'kWh':>7}  {'trades':>6}  {'readings':>8}  {'battery kWh':>11}  "
                  f"{'settlement gas':>14}  tx")
        self.console.print(header)

        def midday_hook(r: CommunityRun, rec) -> None:
            if len(r.records) == vote_at:
                self._dao_propose_fee(r, rec)
            elif self._pending is not None:
                self._dao_execute_fee(r, rec)

        for k in range(intervals):
            rec = run.step(k, on_midday=midday_hook if midday else None)
            self.console.print(
                f"  {rec.time:>5}  {float(to_display(rec.price_base_units or 0, cfg.local_currency.decimals)):8.2f}  "
                f"{rec.volume_wh / 1000:7.2f}  {rec.trades:6d}  "
                f"{rec.readings:8d}  {rec.battery_soc_wh / 1000:11.2f}  {rec.gas_used:>14,}  {rec.tx[:12] or '-'}")
        if retire:
            self._retire(run)

    def _dao_propose_fee(self, run: CommunityRun, rec) -> None:
        """At noon a founder proposes a 50% higher battery fee; the other founders vote for it."""
        r, cfg = run.region, run.cfg
        storage = r["BatteryStorage"]
        bid = next(iter(r.battery_ids.values()))
        old = storage.functions.feeRate(bid).call()
        new = old * 3 // 2
        founders = [run.households[f.household] for f in cfg.dao.founders]
        desc = f"Raise the {cfg.batteries[0].id} fee by 50% at noon"
        if self.opts.dao_vote_via_scripts:
            out = self._dao_script(run, founders[0], "propose", [
                "--call", f"{cfg.slug}.BatteryStorage", "setFeeRate", f"{bid},{new}", "-d", desc])
            pid = int(re.search(r"proposal (\d+) created", out).group(1))
            for f in founders[:cfg.dao.threshold]:
                self._dao_script(run, f, "vote", [str(pid), "--support", "for"])
        else:
            call = dao_sdk.encode_call(storage, "setFeeRate", bid, new)
            pid = dao_sdk.propose(run.w3, founders[0], r.dao, [call], desc)
            for f in founders[:cfg.dao.threshold]:
                dao_sdk.vote(run.w3, f, r.dao, pid, "for")
        st = dao_sdk.status(run.w3, r.dao, pid)
        self._pending = (pid, old, int(st["vote_end"]))
        msg = (f"{rec.time} DAO proposal #{pid}: battery fee {_rate(old)} → {_rate(new)} TSL/kWh/slot; "
               f"{st['for']} of {st['total_weight']} votes for, voting ends {run.clock.label(st['vote_end'])}")
        run.events.append(msg)
        self.say(f"[magenta]{msg}[/magenta]")

    def _dao_execute_fee(self, run: CommunityRun, rec) -> None:
        pid, old, vote_end = self._pending
        if run.w3.eth.get_block("latest")["timestamp"] <= vote_end:
            return
        r = run.region
        executor = run.households[run.cfg.dao.founders[0].household]
        if self.opts.dao_vote_via_scripts:
            self._dao_script(run, executor, "execute", [str(pid)])
        else:
            dao_sdk.execute(run.w3, executor, r.dao, pid)
        self._pending = None
        storage = r["BatteryStorage"]
        bid = next(iter(r.battery_ids.values()))
        slot = storage.functions.currentSlot().call()
        now, nxt = storage.functions.feeRateAt(bid, slot).call(), storage.functions.feeRateAt(bid, slot + 1).call()
        msg = (f"{rec.time} DAO proposal #{pid} executed by the treasury: battery fee {_rate(now)} this slot, "
               f"{_rate(nxt)} TSL/kWh/slot from the next (was {_rate(old)})")
        run.events.append(msg)
        self.say(f"[magenta]{msg}[/magenta]")

    def _dao_script(self, run: CommunityRun, member, command: str, args: list[str]) -> str:
        """Run ``ape run dao <command>`` against this chain as ``member``; returns its output."""
        env = {**os.environ, "APE_FOUNDRY_HOST": run.w3.provider.endpoint_uri,
               "GRIDCOOP_MEMBER_KEY": member.key.hex()}
        ape = str(Path(sys.executable).with_name("ape"))
        cmd = [ape, "run", "dao", command, *args, "--dao", run.cfg.slug, "--network", "ethereum:local:foundry"]
        t = time.monotonic()
        proc = subprocess.run(cmd, cwd=project_root(), env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise GridcoopError(f"`ape run dao {command}` failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
        last = (proc.stdout.strip().splitlines() or [""])[-1]
        self.say(f"ape run dao {command} ({time.monotonic() - t:.1f}s): {last}")
        return proc.stdout

    def _retire(self, run: CommunityRun) -> None:
        crev = run.region.crev
        best = max(run.households.items(), key=lambda kv: crev.token.functions.balanceOf(kv[1].address).call())
        name, acct = best
        bal = crev.token.functions.balanceOf(acct.address).call()
        if not bal:
            run.events.append("no C-REV earned: nothing to retire")
            return
        amount = bal // 2
        cert = crev_sdk.retire(run.w3, acct, crev, amount, beneficiary_name=f"{name} household",
                               beneficiary=acct.address, message=f"{run.cfg.region} demo day",
                               period_start=run.clock.start, period_end=int(run.clock.now()))
        tr = crev_sdk.trace(run.w3, crev, cert)
        msg = (f"{name} retired {crev_sdk.format_crev(amount)} C-REV: certificate #{cert} traces to "
               f"{len(tr.lots)} lots from {len({lot.info.meter_id for lot in tr.lots})} meter(s)")
        run.events.append(msg)
        self.say(f"[green]{msg}[/green]")
        (run.workdir / f"certificate-{cert}.txt").write_text(crev_sdk.format_trace(tr))

    # --------------------------------------------------------------------------------------
    def _report(self, run: CommunityRun, folder: Path) -> DemoReport:
        w3, r, cfg = run.w3, run.region, run.cfg
        intervals = _interval_table(run)
        owners = {acct.address: name for name, acct in run.households.items()}
        kinds_colour = {h.name: h.colour for h in cfg.households}
        colours = {readings_sdk.meter_id(mid): h_colour for name, mid in r.meter_ids.items()
                   for h_colour in [kinds_colour.get(name, "battery")]}
        readings = carbon.load_readings(w3, r["MeterRegistry"].address, colours=colours)
        seller_colours = {acct.address: kinds_colour[name] for name, acct in run.households.items()}
        seller_colours[run.utility] = "grid"  # energy the grid participant sold came from the public grid
        trades = carbon.load_trades(w3, r["EnergyMarket"].address, colours=seller_colours)
        issued, retired = carbon.load_crev_flows(w3, r.crev.token.address)
        rep = carbon.carbon_report(readings, trades, carbon.CarbonReportConfig(
            grid_factor_g_per_kwh=cfg.grid.emission_factor_g_per_kwh, crev_factor_g_per_kwh=cfg.grid.crev_factor),
            crev_issued=issued, crev_retired=retired)
        kinds = {h.name: h.kind for h in cfg.households}
        hh = readings.assign(household=readings["owner"].map(owners))
        hh = hh.merge(rep[["participant", "interval_id", "bought_wh", "renewable_ratio", "co2_g",
                           "renewable_bought_wh"]].rename(columns={"participant": "owner"}),
                      on=["owner", "interval_id"], how="left")
        sold = trades.groupby(["seller", "interval_id"])["wh"].sum().rename("sold_wh").reset_index()
        hh = hh.merge(sold.rename(columns={"seller": "owner"}), on=["owner", "interval_id"], how="left")
        for col in ("sold_wh", "bought_wh", "co2_g", "renewable_bought_wh"):
            hh[col] = pd.to_numeric(hh[col], errors="coerce").fillna(0)
        hh["renewable_wh"] = hh["self_consumed_wh"] + hh["renewable_bought_wh"]
        hh["kind"] = hh["household"].map(kinds)
        hh = hh.rename(columns={"interval_id": "interval"}).sort_values(["household", "interval"], kind="stable")
        hh = hh[["interval", "household", "kind", "generation_wh", "consumption_wh", "import_wh", "export_wh",
                 "self_consumed_wh", "bought_wh", "sold_wh", "renewable_wh", "renewable_ratio", "co2_g"]]
        trades_out = trades.assign(seller=trades["seller"].map(owners), buyer=trades["buyer"].map(owners))
        trades_out.to_csv(folder / "trades.csv", index=False)

        balances = []
        crev = r.crev
        dec = cfg.local_currency.decimals
        sym = cfg.local_currency.symbol
        bid = next(iter(r.battery_ids.values()), None)
        for name, acct in run.households.items():
            a = acct.address
            watt = r["WattToken"].functions.balanceOf(a).call()
            money = r["LocalCurrency"].functions.balanceOf(a).call()
            tsl = r["TeslaToken"].functions.balanceOf(a).call()
            crev_units = crev.token.functions.balanceOf(a).call()
            # each token: exact base units (a Python int) and the same amount as an exact Decimal
            balances.append({
                "household": name, "kind": kinds[name],
                "WATT_base_units": watt, "WATT_kWh": watt_to_kwh(watt),
                f"{sym}_base_units": money, sym: to_display(money, dec),
                "TSL_base_units": tsl, "TSL": to_display(tsl, TSL_DECIMALS),
                "stored_kWh": (storage_sdk.stored(r["BatteryStorage"], bid, a) / 1000) if bid is not None else 0,
                "energy_debt_kWh": r["MeterRegistry"].functions.energyDebtWh(a).call() / 1000,
                "C-REV_base_units": crev_units, "C-REV_t": to_display(crev_units, 18),
            })
        balances_df = pd.DataFrame(balances)
        for col in ("WATT_base_units", f"{sym}_base_units", "TSL_base_units", "C-REV_base_units"):
            balances_df[col] = pd.Series([b[col] for b in balances], index=balances_df.index, dtype=object)

        split = battery_report.fee_split(battery_report.fetch_events(w3, r["BatteryStorage"]),
                                         platform="platform (DAO shares)", marketing="marketing")
        names = {acct.address: f"owner {name}" for name, acct in run.households.items()}
        parts = split[split["role"].isin(["owner", "marketing", "platform"])]
        units = [int(a) for a in parts["amount_base_units"]]
        fees_df = pd.DataFrame({"payee": [names.get(p, p) for p in parts["payee"]], "role": list(parts["role"])})
        fees_df["fee_base_units"] = pd.Series(units, index=fees_df.index, dtype=object)
        fees_df["fee_tsl"] = pd.Series([to_display(u, TSL_DECIMALS) for u in units], index=fees_df.index,
                                       dtype=object)
        notes = list(run.events)
        fees_paid = total(split[split["role"] == "fees_paid"]["amount_base_units"])
        on_chain = r["BatteryStorage"].functions.totalFeesPaid().call()
        checks = {
            "fee parts (owners + marketing + platform) == fees paid": total(units) == fees_paid
            and bool(split[split["role"] == "fees_paid"]["check"].all()),
            "fees paid == BatteryStorage.totalFeesPaid": fees_paid == on_chain,
            "fees per interval add up to BatteryStorage.totalFeesPaid":
                total(rec.fees_base_units for rec in run.records) == on_chain,
        }
        for what, ok in checks.items():
            if not ok:
                log.error("%s: report check failed: %s", cfg.region, what)
                notes.append(f"REPORT CHECK FAILED: {what}")
        grid = self._grid_figures(run, hh, balances)
        checks["households' money spent == market + grid + energy debt payments (exact)"] = grid.pop("_spent_ok")
        checks["no energy debt left off chain"] = grid["energy debt left (kWh)"] == 0
        for what, ok in list(checks.items())[-2:]:
            if not ok:
                log.error("%s: report check failed: %s", cfg.region, what)
                notes.append(f"REPORT CHECK FAILED: {what}")
        summary = self._summary_figures(run, intervals, hh, trades, fees_paid, all(checks.values()))
        summary.update(grid)
        return DemoReport(region=cfg.region, intervals=intervals, households=hh, balances=balances_df,
                          fees=fees_df, summary=summary, notes=notes)

    def _grid_figures(self, run: CommunityRun, hh: pd.DataFrame, balances: list[dict]) -> dict[str, object]:
        """What the households paid the grid and earned from it, against the co-op market, and the
        savings of being in the co-op: their bill at the utility alone (every kWh imported at
        retail, every kWh exported at feed-in) less their bill in the co-op (money spent in the
        market and on energy debt, less the WATT they still hold or stored, valued at feed-in)."""
        r, cfg = run.region, run.cfg
        cur, dec, sym = r["LocalCurrency"], cfg.local_currency.decimals, cfg.local_currency.symbol
        g = market_report.grid_figures(run.keeper.db, run.utility)
        debt_wh = sum(rec.debt_paid_wh for rec in run.records)
        debt_paid = sum(rec.debt_paid_base_units for rec in run.records)
        spent = (g["local_paid_base_units"] - g["local_received_base_units"] + g["paid_base_units"]
                 - g["received_base_units"] + debt_paid)
        # every household started with issue_per_household; market and debt payments are all that moved it
        start = to_units(cfg.local_currency.issue_per_household, dec) * len(run.households)
        now = sum(cur.functions.balanceOf(a.address).call() for a in run.households.values())
        feed_in, retail = to_units(cfg.grid.feed_in_price, dec), to_units(cfg.grid.retail_price, dec)
        left_wh = sum(int(b["WATT_base_units"]) for b in balances) // 10**15 + int(
            round(sum(b["stored_kWh"] for b in balances) * 1000))
        alone = int(hh["import_wh"].sum()) * retail - int(hh["export_wh"].sum()) * feed_in  # × 1000
        coop = spent * 1000 - left_wh * feed_in
        debt_left = sum(b["energy_debt_kWh"] for b in balances)
        d = lambda v: to_display(v, dec)  # noqa: E731 - base units -> currency, exact
        k = lambda v: to_display(v, dec + 3)  # noqa: E731 - base units x 1000 -> currency, exact
        return {
            "bought from the grid in the market (kWh)": g["sold_wh"] / 1000,
            f"paid to the grid in the market ({sym})": d(g["paid_base_units"]),
            "sold to the grid in the market (kWh)": g["bought_wh"] / 1000,
            f"earned from the grid ({sym})": d(g["received_base_units"]),
            "traded between neighbours (kWh)": g["local_wh"] / 1000,
            "energy debt paid on chain (kWh)": debt_wh / 1000,
            f"energy debt paid to the grid ({sym})": d(debt_paid),
            "energy debt left (kWh)": debt_left,
            f"bill at the utility alone ({sym})": k(alone),
            f"bill in the co-op ({sym}, WATT left at feed-in)": k(coop),
            f"savings of the co-op ({sym})": k(alone - coop),
            "_spent_ok": cfg.local_currency.address is not None or start - now == spent,
        }

    def _summary_figures(self, run, intervals, hh, trades, fees_paid: int, checks_ok: bool) -> dict[str, object]:
        r, cfg = run.region, run.cfg
        sym = cfg.local_currency.symbol
        total_trade_wh = int(trades["wh"].sum()) if len(trades) else 0
        # the volume-weighted average price of the settled trades: Σ wh × price / Σ wh, exact
        market = market_report.trades_frame(run.keeper.db)
        value = total(w * p for w, p in zip(market["wh"], market["price_base_units"], strict=True))
        wh = int(market["wh"].sum())
        avg_price = to_display(value, cfg.local_currency.decimals) / wh if wh else Decimal(0)
        return {
            "intervals": len(intervals),
            "households": len(run.households),
            "readings accepted": int(len(hh)),
            "trades settled": int(len(trades)),
            "energy traded (kWh)": round(total_trade_wh / 1000, 3),
            "average price per kWh": f"{avg_price.quantize(Decimal('0.001'))} {sym}",
            "generation (kWh)": round(hh["generation_wh"].sum() / 1000, 3),
            "consumption (kWh)": round(hh["consumption_wh"].sum() / 1000, 3),
            "WATT supply (kWh)": watt_to_kwh(r["WattToken"].functions.totalSupply().call()),
            "battery fees (TSL)": to_display(fees_paid, TSL_DECIMALS),
            "C-REV issued (t-CO2e)": to_display(r.crev.token.functions.totalIssued().call(), 18),
            "C-REV retired (t-CO2e)": to_display(r.crev.token.functions.totalRetired().call(), 18),
            "CO2 from grid (kg)": round(hh["co2_g"].sum() / 1000, 3),
            "settlement gas": int(intervals["gas_used"].sum()),
            "report checks (exact, against the chain)": "pass" if checks_ok else "FAILED",
        }

    def _independence(self, a: CommunityRun, b: CommunityRun, rep_a: DemoReport) -> None:
        before = rep_a.summary["WATT supply (kWh)"]
        now = watt_to_kwh(a.region["WattToken"].functions.totalSupply().call())
        shared = set(a.region.addresses().values()) & set(b.region.addresses().values())
        lines = [
            f"{a.cfg.region}: {a.cfg.local_currency.symbol} at {a.region['LocalCurrency'].address}; "
            f"{b.cfg.region}: {b.cfg.local_currency.symbol} at {b.region['LocalCurrency'].address}",
            f"contracts shared by the two regions: {len(shared)}",
            f"{a.cfg.region} WATT supply before/after {b.cfg.region}'s intervals: {fmt(before)} / {fmt(now)} kWh",
        ]
        for line in lines:
            self.say(line)
        a.events.extend(lines)

    def _summary(self, rep: DemoReport, rep2: DemoReport | None, elapsed: float) -> None:
        t = Table(title=f"gridcoop demo — done in {elapsed:.0f}s")
        t.add_column("figure")
        t.add_column(rep.region, justify="right")
        if rep2:
            t.add_column(rep2.region, justify="right")
        keys = list(rep.summary)
        for k in keys:
            row = [k, _figure(rep.summary[k])]
            if rep2:
                row.append(_figure(rep2.summary.get(k, "")))
            t.add_row(*row)
        self.console.print(t)


def _figure(v: object) -> str:
    """A summary figure as text: exact Decimals in fixed point (no ``1E-18``), numbers with commas."""
    if isinstance(v, Decimal):
        return fmt(v)
    return f"{v:,}" if isinstance(v, int | float) else str(v)


__all__ = ["Demo", "DemoOptions", "INTERVAL_SECONDS"]
