"""``gridcoop demo``: a simulated co-op day end to end. Logic: :mod:`coop_demo`."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import click

from gridcoop_sdk.exceptions import GridcoopError

from .common import CONTEXT


def _sigterm_as_interrupt() -> None:
    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@click.command("demo", context_settings=CONTEXT)
@click.option("--config", "config", default="sakura", show_default=True, metavar="FILE|NAME",
              help="Region config (YAML); a bare name means configs/regions/NAME.yaml.")
@click.option("--second-config", default="kaede", show_default=True, metavar="FILE|NAME",
              help="A second region deployed on the same chain with the same code.")
@click.option("--no-second", is_flag=True, help="Skip the second region.")
@click.option("--households", type=click.IntRange(1, 200), default=None,
              help="Number of households (default: as many as the config lists).")
@click.option("--intervals", type=click.IntRange(1, 96 * 7), default=96, show_default=True,
              help="15-minute intervals to simulate (96 = one day).")
@click.option("--start-hour", type=click.FloatRange(0, 23.75), default=0.0, show_default=True,
              help="Hour of the day (UTC) the run starts at, e.g. 10 for a short sunny run.")
@click.option("--second-intervals", type=click.IntRange(1, 96), default=8, show_default=True,
              help="Intervals the second region runs (from 10:00 of the next day).")
@click.option("--speed", type=click.FloatRange(min=1, min_open=False), default=3600.0, show_default=True,
              help="Simulated seconds per real second; the day never runs ahead of the work.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder (default: reports/demo-<timestamp>).")
@click.option("--rpc-url", default=None, metavar="URL",
              help="Use this node (it must allow evm_setNextBlockTimestamp) instead of starting anvil.")
@click.option("--dao-via-sdk", is_flag=True,
              help="Run the noon DAO vote through the SDK instead of the `ape run dao` scripts (faster).")
def demo(config, second_config, no_second, households, intervals, start_hour, second_intervals, speed, out,
         rpc_url, dao_via_sdk) -> None:
    """Run a simulated co-op day end to end on a self-started local chain.

    Starts anvil on a free port, deploys the region from --config and hands every admin role to
    its DAO, starts Modbus meter simulators, the meter bridge and the keeper's HTTP API, and
    plays the day: signed readings, signed orders cleared and settled every 15 minutes, battery
    storage with TSL fees, a DAO vote at noon, C-REV issuance and a retirement. Writes CSVs, PNG
    plots and index.html into the report folder, then deploys and runs the second region. The
    chain it started is stopped at the end (also on Ctrl-C).
    """
    from coop_demo.day import Demo, DemoOptions

    _sigterm_as_interrupt()
    logging.getLogger().setLevel(logging.WARNING)
    opts = DemoOptions(config=config, second_config=None if no_second else second_config,
                       households=households, intervals=intervals, start_hour=start_hour,
                       second_intervals=second_intervals,
                       speed=speed, out=out, rpc_url=rpc_url, dao_vote_via_scripts=not dao_via_sdk)
    d = Demo(opts)
    try:
        d.run()
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
    except GridcoopError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    finally:
        d.close()
