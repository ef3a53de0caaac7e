"""``gridcoop relay …``: relay workers that take signed meter readings from an MQTT broker and put
them on chain. Logic: :mod:`keeper.mqtt_relay`; topics: :mod:`gridcoop_sdk.mqtt`."""

from __future__ import annotations

import signal
import threading

import click

from .common import (
    Chain,
    account_from_env,
    chain_options,
    group,
    key_env_option,
    log_format_option,
    service_logging,
)


@group("relay")
def relay() -> None:
    """Relay workers: signed meter readings from an MQTT broker to the region's MeterRegistry.

    Gateways (`gridcoop bridge run` with `pusher: mqtt`) publish each signed reading QoS 1 to
    gridcoop/<region>/readings/<meter id>. Run two or more `gridcoop relay mqtt` workers with
    different --client-id: they share the stream through the MQTT v5 shared subscription
    $share/relay/gridcoop/<region>/readings/# and each acknowledges a message only once its
    readings are on chain or refused with a recorded reason (docs/scaling.md).
    """


@relay.command("mqtt")
@click.option("--broker", "broker_url", envvar="GRIDCOOP_MQTT_URL", default="mqtt://127.0.0.1:1883",
              show_default=True, metavar="URL", help="MQTT broker, mqtt://HOST[:PORT] (or $GRIDCOOP_MQTT_URL).")
@click.option("--client-id", required=True, metavar="ID",
              help="This worker's MQTT client id, the name of its persistent session: give each worker its "
                   "own and keep it across restarts (a restarted worker gets back the messages it had not "
                   "acknowledged).")
@click.option("--topic-region", default=None, metavar="NAME",
              help="Region level of the topic gridcoop/<region>/readings/# (default: --region).")
@click.option("--registry", default=None, metavar="ADDRESS",
              help="MeterRegistry address, for one deployed outside a region (default: the region's).")
@key_env_option("GRIDCOOP_RELAY_KEY", "the gas account that sends submitReadings (one per worker: each "
                "worker keeps its own nonces)")
@click.option("--batch-size", type=click.IntRange(1, 2000), default=500, show_default=True,
              help="Readings per submitReadings transaction (about 30,000 gas each; keep a batch under the "
                   "chain's block gas limit).")
@click.option("--window", "window_s", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Seconds to wait for more readings after the first one of a batch.")
@click.option("--refusals", "refusals_path", type=click.Path(dir_okay=False), default="relay-refusals.jsonl",
              show_default=True,
              help="JSON-lines file where every refused message or reading is recorded (with its reason) "
                   "before it is acknowledged.")
@click.option("--session-expiry", type=click.IntRange(min=0), default=7 * 86400, show_default=True,
              help="Seconds the broker keeps this worker's session (and its unacknowledged messages) while "
                   "it is down.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
              help="Serve Prometheus metrics (readings by result and refusal reason, gas, node and database "
                   "errors, broker disconnects, queue, delivery-to-acknowledgement lag) at "
                   "http://127.0.0.1:PORT/metrics.")
@click.option("--db", "db_url", envvar="GRIDCOOP_KEEPER_DB", default=None, metavar="URL",
              help="Record every reading's outcome (accepted, already on chain, refused with the reason) in "
                   "the keeper's store before acknowledging it: sqlite:///FILE or postgresql://… (table "
                   "relayed_readings; migrations applied on start).")
@log_format_option
@click.option("--stats-file", type=click.Path(dir_okay=False), default=None,
              help="Write the worker's counters (accepted, refused by reason, …) as JSON to this file "
                   "every few seconds.")
@chain_options
def mqtt_cmd(chain: Chain, broker_url: str, client_id: str, topic_region: str | None, registry: str | None,
             key_env: str, batch_size: int, window_s: float, refusals_path: str, session_expiry: int,
             metrics_port: int | None, db_url: str | None, log_format: str, stats_file: str | None) -> None:
    """Relay readings from MQTT to chain until SIGTERM/Ctrl-C: verify, batch, submit, acknowledge."""
    from gridcoop_sdk.exceptions import GridcoopError
    from gridcoop_sdk.mqtt import check_region, parse_broker_url
    from keeper.mqtt_relay import RelayWorker

    region = topic_region or chain.region
    if not region:
        raise click.UsageError("give --region NAME (or --topic-region NAME with --registry ADDRESS)")
    try:
        check_region(region)
        parse_broker_url(broker_url)
    except GridcoopError as exc:
        raise click.UsageError(str(exc)) from exc
    account = account_from_env(key_env, "the relay's gas account")
    reg = chain.contract("MeterRegistry", registry, "--registry")
    service_logging(log_format)
    stop = threading.Event()

    def handler(signum, frame):  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    worker = RelayWorker(chain.w3, account, reg, region=region, broker_url=broker_url, client_id=client_id,
                         batch_size=batch_size, window_s=window_s, refusals_path=refusals_path,
                         session_expiry=session_expiry, stats_path=stats_file, db_url=db_url)
    if metrics_port is not None:
        from keeper.metrics import serve_relay_metrics

        serve_relay_metrics(worker, metrics_port)
    worker.run(stop)
    click.echo(f"relay {client_id} stopped: {worker.stats.line()}", err=True)
