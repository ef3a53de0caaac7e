"""``gridcoop bridge …``: the meter gateway (poll Modbus meters, sign 15-minute readings, keep them
in the outbox, push them), its outbox status, and a Modbus meter simulator. Logic: :mod:`meter_bridge`."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from pathlib import Path

import click

from .common import group, log_format_option, service_logging

clock_options = [
    click.option("--clock-file", default=None, metavar="PATH",
                 help="Read the current time (Unix seconds) from this file instead of the system clock "
                      "(tests and demos drive the simulator and the gateway together this way)."),
    click.option("--clock-start", type=float, default=None, metavar="UNIX",
                 help="Start the clock at this Unix time (with --speed for an accelerated demo)."),
    click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
                 help="Clock speed factor (96 runs a day in 15 minutes)."),
]


def with_clock(fn):
    for opt in reversed(clock_options):
        fn = opt(fn)
    return fn


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def handler(signum, frame):  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


@group("bridge")
def bridge() -> None:
    """The meter gateway: Modbus meters → signed 15-minute readings → outbox → MeterRegistry.

    The gateway's YAML (--config) names the meters, their device keys, the outbox and how to push
    (direct transactions, the keeper's HTTP relay, or an MQTT broker that `gridcoop relay mqtt`
    workers read). `simulate` serves simulated meters to try it.
    """


@bridge.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Gateway YAML: meters (host/port/unit/register map/key), outbox path, pusher direct|http|mqtt.")
@click.option("--poll-interval", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds between polls (overrides the config's poll_interval).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="Serve Prometheus metrics at http://--metrics-host:PORT/metrics (outbox depth, readings by "
                   "result and reason, meters unreachable); default: off.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address of the metrics endpoint.")
@log_format_option
@with_clock
def run(config_path: str, poll_interval: float | None, metrics_port: int | None, metrics_host: str, log_format: str,
        clock_file: str | None, clock_start: float | None, speed: float) -> None:
    """Run the gateway until SIGTERM/Ctrl-C: poll, sign each closed interval, store, push."""
    from meter_bridge.app import build_gateway
    from meter_bridge.clock import make_clock
    from meter_bridge.config import load_config

    service_logging(log_format)
    stop = _stop_event()
    cfg = load_config(config_path)
    gw = build_gateway(cfg, clock=make_clock(clock_file, clock_start, speed), source=config_path)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(metrics_port, addr=metrics_host)
        except OSError as exc:
            gw.close()
            raise click.ClickException(f"--metrics-port {metrics_port}: {exc}") from exc
        click.echo(f"metrics on http://{metrics_host}:{metrics_port}/metrics", err=True)
    try:
        gw.run(poll_interval=poll_interval or cfg.poll_interval, stop=stop)
    finally:
        gw.close()
        click.echo("gateway stopped", err=True)


@bridge.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=5020, show_default=True,
              help="TCP port (502 needs root).")
@click.option("--households", type=int, default=2, show_default=True,
              help="Number of households (1..120); household i has grid meter unit 2i+1 and PV meter unit 2i+2.")
@click.option("--pv-peak-w", type=int, default=5000, show_default=True, help="PV peak power per household (W).")
@click.option("--load-kwh-day", type=float, default=9.0, show_default=True, help="Daily load per household (kWh).")
@click.option("--battery-wh", type=int, default=0, show_default=True, help="Battery capacity per household (Wh).")
@click.option("--battery-power-w", type=int, default=2500, show_default=True, help="Battery charge/discharge limit (W).")
@click.option("--grid-map", default="eastron_sdm630", show_default=True,
              help="Register map of the grid meters (eastron_sdm630, sunspec_203, sunspec_213).")
@click.option("--pv-map", default="sunspec_213", show_default=True, help="Register map of the PV meters.")
@with_clock
def simulate(host: str, port: int, households: int, pv_peak_w: int, load_kwh_day: float, battery_wh: int,
             battery_power_w: int, grid_map: str, pv_map: str, clock_file: str | None, clock_start: float | None,
             speed: float) -> None:
    """Serve simulated household meters (SDM630 + SunSpec) over Modbus TCP until Ctrl-C."""
    from gridcoop_sdk.exceptions import GridcoopError
    from meter_bridge.clock import make_clock
    from meter_bridge.simulator import Household, MeterSimulator

    if households < 1 or households > 120:
        raise click.BadParameter("must be 1..120 (two unit ids per household)", param_hint="--households")
    hh = [Household(f"house-{i + 1}", grid_unit=2 * i + 1, pv_unit=2 * i + 2, grid_map=grid_map, pv_map=pv_map,
                    pv_peak_w=pv_peak_w, load_kwh_day=load_kwh_day, battery_wh=battery_wh,
                    battery_power_w=battery_power_w) for i in range(households)]
    service_logging()
    stop = _stop_event()
    try:
        sim = MeterSimulator(hh, clock=make_clock(clock_file, clock_start, speed), host=host, port=port).start()
    except (GridcoopError, ValueError, OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    for h in hh:
        click.echo(f"{h.name}: grid meter unit {h.grid_unit} ({grid_map}), PV meter unit {h.pv_unit} ({pv_map})")
    click.echo(f"serving on {host}:{port}; Ctrl-C to stop")
    stop.wait()
    sim.stop()


@bridge.command()
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Gateway YAML (its outbox is inspected).")
@click.option("--outbox", "outbox_path", default=None, type=click.Path(dir_okay=False),
              help="Outbox SQLite file (instead of --config).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(config_path: str | None, outbox_path: str | None, as_json: bool) -> None:
    """Outbox depth, last accepted sequence per meter, refused readings and the last error."""
    from meter_bridge.outbox import Outbox

    if not (config_path or outbox_path):
        raise click.UsageError("give --config or --outbox")
    if config_path:
        from meter_bridge.config import load_config

        outbox_path = load_config(config_path).outbox
    if not Path(outbox_path).exists():  # type: ignore[arg-type]
        raise click.ClickException(f"no outbox at {outbox_path} (the gateway creates it on its first run)")
    try:
        ob = Outbox(outbox_path)  # type: ignore[arg-type]
        st = ob.status()
        st["refused"] = ob.rows(["rejected"])
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"{outbox_path} is not a readable outbox: {exc}") from exc
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    click.echo(f"pending:  {st['pending']}")
    if st.get("sent"):
        click.echo(f"sent:     {st['sent']} (the MQTT broker took them; not on chain yet)")
    click.echo(f"accepted: {st['accepted']}\nrefused:  {st['rejected']}")
    for name, seq in sorted(st["last_accepted_sequence"].items()):
        click.echo(f"  {name}: last accepted sequence {seq}")
    for r in st["refused"]:
        click.echo(f"  refused {r['name']} sequence {r['sequence']}: {r['reason']}")
    if st["last_error"]:
        e = st["last_error"]
        click.echo(f"last error ({time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(e['t']))} UTC, {e['kind']}): "
                   f"{e['detail']}")
