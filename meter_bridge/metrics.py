"""Prometheus metrics of the meter bridge (gateway) — every definition in this one module.
``gridcoop bridge run --metrics-port N`` serves them at ``http://127.0.0.1:N/metrics``.
Alert rules: docs/operations.md."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OUTBOX = Gauge("gridcoop_bridge_outbox_readings", "Readings in the durable outbox, by status (pending: signed, not "
               "on chain yet — the outbox depth; rejected: refused by the chain, kept).", ["status"])
READINGS = Counter("gridcoop_bridge_readings_total", "Signed readings by what happened to them: signed, then "
                   "accepted|duplicate|refused|deferred by the chain (reason: the registry's error name).",
                   ["result", "reason"])
PUSH_FAILURES = Counter("gridcoop_bridge_push_failures_total", "Pushes that failed (keeper/node unreachable); the "
                        "readings stay in the outbox and are pushed again with backoff.")
METER_READ_ERRORS = Counter("gridcoop_bridge_meter_read_errors_total", "Failed Modbus polls, by meter site.",
                            ["meter"])
METERS_UNREACHABLE = Gauge("gridcoop_bridge_meters_unreachable", "Meter sites whose last Modbus poll failed.")
METERS = Gauge("gridcoop_bridge_meters", "Meter sites this gateway polls.")
INTERVAL_PROBLEMS = Counter("gridcoop_bridge_interval_problems_total", "Intervals the builder flagged (gap, counter "
                            "reset, …), by kind.", ["kind"])
