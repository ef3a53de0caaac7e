"""Prometheus metrics of the keeper (order intake, settlement, settlement transactions, the settler
lock) and of its meter-reading relay — every definition in this one module; the keeper's API serves
them at ``GET /metrics`` (:func:`metrics_response`). A relay worker in another process imports the
``RELAY_*`` metrics from here and serves them with :func:`prometheus_client.start_http_server`.

Names follow Prometheus conventions (``_total`` counters, ``_seconds``, base units); labels have a
small fixed set of values (no interval ids or addresses as labels). Alert rules: docs/operations.md.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

# ------------------------------------------------------------------ orders
ORDERS = Counter("gridcoop_keeper_orders_total", "Signed orders received, by result (accepted|refused) and, for a "
                 "refusal, the field that was wrong.", ["result", "field"])

# ------------------------------------------------------------------ settlement
INTERVALS = Counter("gridcoop_keeper_intervals_total", "Intervals finished by this keeper, by final state "
                    "(settled|empty|failed).", ["state"])
SETTLEMENT_LAG = Histogram("gridcoop_keeper_settlement_lag_seconds", "From an interval's gate closure (chain time) "
                           "to its settlement receipt, per settled interval.",
                           buckets=(5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600))
LAST_SETTLED_INTERVAL = Gauge("gridcoop_keeper_last_settled_interval", "Id of the interval this keeper settled last.")
LAST_SETTLEMENT_LAG = Gauge("gridcoop_keeper_last_settlement_lag_seconds",
                            "Settlement lag of the interval this keeper settled last.")
LAST_SETTLEMENT_GAS = Gauge("gridcoop_keeper_last_settlement_gas", "Gas used by the settlement of the interval this "
                            "keeper settled last.")
SETTLEMENT_GAS = Histogram("gridcoop_keeper_settlement_gas", "Gas used per settled interval.",
                           buckets=(100e3, 200e3, 500e3, 1e6, 2e6, 5e6, 10e6, 20e6, 30e6))
UNSETTLED_AGE = Gauge("gridcoop_keeper_oldest_unsettled_seconds", "How long ago the gate closed of the oldest "
                      "interval that has work and is not settled yet (0: none); set by the settler every round.")
SETTLEMENT_ERRORS = Counter("gridcoop_keeper_settlement_errors_total", "Settlement attempts that raised (node down, "
                            "lost settler lock, …); the state machine resumes next round.", ["error"])
REORGS = Counter("gridcoop_keeper_reorged_settlements_total", "Settlements a reorg removed (settled again).")

# ------------------------------------------------------------------ settlement transactions (txmanager)
SETTLEMENT_TXS = Counter("gridcoop_keeper_settlement_txs_total", "Settlement transaction events: signed, sent, "
                         "mined, replaced_stuck (fee bumped after stuck_after), resent_lost (the node lost it).",
                         ["event"])

# ------------------------------------------------------------------ one settler at a time
IS_SETTLER = Gauge("gridcoop_keeper_is_settler", "1 while this keeper holds the settler lock of its market, else 0 "
                   "(standby). Across all keepers of a market the sum must be 1.")
SETTLER_EPOCH = Gauge("gridcoop_keeper_settler_epoch", "Fencing token (epoch) of this keeper's settler lock; it "
                      "rises on every take-over.")
SETTLER_TAKEOVERS = Counter("gridcoop_keeper_settler_takeovers_total", "Times this keeper became the settler.")

# ------------------------------------------------------------------ meter-reading relay (HTTP here; MQTT workers too)
RELAY_READINGS = Counter("gridcoop_relay_readings_total", "Signed meter readings the relay handled, by result "
                         "(accepted|duplicate|refused) and reason (the registry's error name, or the input check "
                         "that failed).", ["result", "reason"])
RELAY_BATCHES = Counter("gridcoop_relay_batches_total", "Relay batches, by outcome (ok|bad_request|node_down|"
                        "tx_failed).", ["outcome"])
RELAY_GAS = Counter("gridcoop_relay_gas_total", "Gas the relay account paid for readings.")


def metrics_response():
    """``GET /metrics`` body and content type (the process's default registry)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# ------------------------------------------------------------------ MQTT relay workers
class MqttRelayCollector:
    """The counters of one MQTT relay worker (``keeper.mqtt_relay.RelayWorker``) as Prometheus
    metrics, read from its stats when scraped (``gridcoop relay mqtt --metrics-port N``):
    messages, readings by result (accepted, already_on_chain, refused by reason, deferred), gas,
    node errors, broker disconnects, and the queue of messages received but not yet on chain."""

    def __init__(self, worker) -> None:
        self.worker = worker

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.worker.stats
        msgs = CounterMetricFamily("gridcoop_mqtt_relay_messages", "MQTT messages taken from the broker.")
        msgs.add_metric([], s.messages)
        yield msgs
        readings = CounterMetricFamily("gridcoop_mqtt_relay_readings", "Readings by result (refused: by reason).",
                                       labels=["result", "reason"])
        readings.add_metric(["accepted", ""], s.accepted)
        readings.add_metric(["already_on_chain", ""], s.already_on_chain)
        readings.add_metric(["deferred", ""], s.deferred)
        readings.add_metric(["duplicate_publish", ""], s.duplicate_publish)
        for reason, n in sorted(s.refused.items()):
            readings.add_metric(["refused", str(reason)], n)
        yield readings
        for name, value, doc in (("batches", s.batches, "submitReadings transactions sent."),
                                 ("gas", s.gas, "Gas the worker's account paid."),
                                 ("node_errors", s.node_errors, "Node calls that failed (messages kept)."),
                                 ("db_errors", s.db_errors, "Writes to the keeper's store that failed (kept)."),
                                 ("broker_disconnects", s.broker_disconnects, "Connections to the broker lost.")):
            c = CounterMetricFamily(f"gridcoop_mqtt_relay_{name}", doc)
            c.add_metric([], value)
            yield c
        lag = GaugeMetricFamily("gridcoop_mqtt_relay_lag_seconds", "Seconds from the broker's delivery of a message "
                                "to its acknowledgement (on chain or refused, and recorded): the last one, and the "
                                "most since the worker started.", labels=["which"])
        lag.add_metric(["last"], s.last_lag_s)
        lag.add_metric(["max"], s.max_lag_s)
        yield lag
        q = GaugeMetricFamily("gridcoop_mqtt_relay_queue", "Messages received and not yet acknowledged (on chain "
                              "or refused): the worker's backlog.")
        q.add_metric([], self.worker.backlog())
        yield q


def serve_relay_metrics(worker, port: int, host: str = "127.0.0.1"):
    """Serve one relay worker's metrics at ``http://host:port/metrics`` (own registry, a thread)."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(MqttRelayCollector(worker))
    return start_http_server(port, addr=host, registry=registry)
