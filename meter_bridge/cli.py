"""``meter-bridge``: run the gateway, simulate meters, make device keys, inspect the outbox,
register meters on chain. ``meter-bridge COMMAND --help`` explains every option."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

import click

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


def _clock(clock_file: str | None, start: float | None, speed: float):
    from .simulator import AcceleratedClock

    if clock_file:
        return FileClock(clock_file)
    if start is not None or speed != 1.0:
        return AcceleratedClock(start if start is not None else time.time(), speed)
    return time.time


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("pymodbus", "web3", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def handler(signum, frame):  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def main(verbose: bool) -> None:
    """meter-bridge: Modbus meters → signed 15-minute readings → MeterRegistry."""
    _setup_logging(verbose)


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Gateway YAML: meters (host/port/unit/register map/key), outbox path, pusher direct|http.")
@click.option("--poll-interval", type=float, default=None,
              help="Seconds between polls (overrides the config's poll_interval).")
@with_clock
def run(config_path: str, poll_interval: float | None, clock_file: str | None, clock_start: float | None,
        speed: float) -> None:
    """Run the gateway until SIGTERM/Ctrl-C: poll, sign each closed interval, store, push."""
    from .app import build_gateway
    from .config import load_config

    stop = _stop_event()
    try:
        cfg = load_config(config_path)
        gw = build_gateway(cfg, clock=_clock(clock_file, clock_start, speed), source=config_path)
    except GridcoopError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        gw.run(poll_interval=poll_interval or cfg.poll_interval, stop=stop)
    finally:
        gw.close()
        click.echo("gateway stopped", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=5020, show_default=True,
              help="TCP port (502 needs root).")
@click.option("--households", type=int, default=2, show_default=True,
              help="Number of households; household i has grid meter unit 2i+1 and PV meter unit 2i+2.")
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
    """Serve simulated household meters over Modbus TCP until Ctrl-C."""
    from .simulator import Household, MeterSimulator

    if households < 1 or households > 120:
        raise click.BadParameter("must be 1..120 (two unit ids per household)", param_hint="--households")
    hh = [Household(f"house-{i + 1}", grid_unit=2 * i + 1, pv_unit=2 * i + 2, grid_map=grid_map, pv_map=pv_map,
                    pv_peak_w=pv_peak_w, load_kwh_day=load_kwh_day, battery_wh=battery_wh,
                    battery_power_w=battery_power_w) for i in range(households)]
    stop = _stop_event()
    try:
        sim = MeterSimulator(hh, clock=_clock(clock_file, clock_start, speed), host=host, port=port).start()
    except (GridcoopError, ValueError, OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    for h in hh:
        click.echo(f"{h.name}: grid meter unit {h.grid_unit} ({grid_map}), PV meter unit {h.pv_unit} ({pv_map})")
    click.echo(f"serving on {host}:{port}; Ctrl-C to stop")
    stop.wait()
    sim.stop()


@main.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Keystore file to write.")
@click.option("--passphrase-env", default="METER_KEY_PASSPHRASE", show_default=True,
              help="Environment variable holding the passphrase that encrypts the key.")
def keygen(out: str, passphrase_env: str) -> None:
    """Create a meter device key as an encrypted keystore file and print its address."""
    from eth_account import Account

    passphrase = os.environ.get(passphrase_env)
    if not passphrase:
        raise click.UsageError(f"set {passphrase_env} to the passphrase for the new key")
    p = Path(out)
    if p.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite a device key")
    acct = Account.create()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(Account.encrypt(acct.key, passphrase)))
    os.chmod(p, 0o600)
    click.echo(acct.address)


@main.command()
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Gateway YAML (its outbox is inspected).")
@click.option("--outbox", "outbox_path", default=None, type=click.Path(dir_okay=False),
              help="Outbox SQLite file (instead of --config).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(config_path: str | None, outbox_path: str | None, as_json: bool) -> None:
    """Outbox depth, last accepted sequence per meter, refused readings and the last error."""
    from .outbox import Outbox

    if not (config_path or outbox_path):
        raise click.UsageError("give --config or --outbox")
    if config_path:
        from .config import load_config

        try:
            outbox_path = load_config(config_path).outbox
        except GridcoopError as exc:
            raise click.ClickException(str(exc)) from exc
    if not Path(outbox_path).exists():  # type: ignore[arg-type]
        raise click.ClickException(f"no outbox at {outbox_path}")
    import sqlite3

    try:
        ob = Outbox(outbox_path)  # type: ignore[arg-type]
        st = ob.status()
        st["refused"] = ob.rows(["rejected"])
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"{outbox_path} is not a readable outbox: {exc}") from exc
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    click.echo(f"pending:  {st['pending']}\naccepted: {st['accepted']}\nrefused:  {st['rejected']}")
    for name, seq in sorted(st["last_accepted_sequence"].items()):
        click.echo(f"  {name}: last accepted sequence {seq}")
    for r in st["refused"]:
        click.echo(f"  refused {r['name']} sequence {r['sequence']}: {r['reason']}")
    if st["last_error"]:
        e = st["last_error"]
        click.echo(f"last error ({time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(e['t']))} UTC, {e['kind']}): "
                   f"{e['detail']}")


@main.command()
@click.option("--rpc-url", required=True, help="JSON-RPC endpoint of the chain.")
@click.option("--registry", default=None, help="MeterRegistry address (default: the deployments file).")
@click.option("--registrar-key-env", default="GRIDCOOP_REGISTRAR_KEY", show_default=True,
              help="Environment variable with the hex key of an account holding REGISTRAR_ROLE.")
@click.option("--meter", "meter_name", required=True, help="Meter name (its id is keccak256 of it) or 0x-id.")
@click.option("--signer", default=None, help="Device key address (or use --key-file).")
@click.option("--key-file", default=None, type=click.Path(dir_okay=False),
              help="Device keystore; its address is the signer (no passphrase needed).")
@click.option("--owner", required=True, help="Account that receives WATT (and C-REV).")
@click.option("--kind", type=click.Choice(["producer", "consumer", "prosumer", "battery"]), required=True,
              help="What the meter measures.")
@click.option("--colour", default="solar", show_default=True, help="Energy source attribute (solar, wind, grid …).")
@click.option("--certified/--not-certified", default=False, show_default=True,
              help="Calibrated meter (needed for C-REV).")
@click.option("--rated-power-w", type=int, required=True, help="Rated power in W (plausibility limit).")
@click.option("--location", default="", help="Location, e.g. a geohash.")
def register(rpc_url: str, registry: str | None, registrar_key_env: str, meter_name: str, signer: str | None,
             key_file: str | None, owner: str, kind: str, colour: str, certified: bool, rated_power_w: int,
             location: str) -> None:
    """Register a meter on chain (for operators holding REGISTRAR_ROLE)."""
    from eth_account import Account

    from gridcoop_sdk.chain import connect
    from gridcoop_sdk.contracts import at
    from gridcoop_sdk.meters import register_meter
    from gridcoop_sdk.readings import meter_id

    key = os.environ.get(registrar_key_env)
    if not key:
        raise click.UsageError(f"set {registrar_key_env} to the registrar's hex key")
    try:
        Account.from_key(key)
    except Exception as exc:
        raise click.ClickException(f"{registrar_key_env} does not hold a valid hex private key") from exc
    if bool(signer) == bool(key_file):
        raise click.UsageError("give exactly one of --signer or --key-file")
    if key_file:
        signer = "0x" + json.loads(Path(key_file).read_text())["address"].removeprefix("0x")
    try:
        w3 = connect(rpc_url)
        reg = at(w3, "MeterRegistry", registry)
        mid = meter_id(meter_name)
        rcpt = register_meter(w3, Account.from_key(key), reg, meter_id=mid, signer=signer, owner=owner, kind=kind,
                              colour=colour, certified=certified, rated_power_w=rated_power_w, location=location)
    except GridcoopError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"registered {meter_name} as 0x{mid.hex()} (tx {rcpt['transactionHash'].hex()})")


if __name__ == "__main__":
    main()
