"""Structured logs: one JSON object per line, for a log collector (Loki, Elasticsearch, CloudWatch …).

>>> use_json_logs()           # `--log-format json` on `gridcoop keeper serve` / `gridcoop bridge run`
>>> log.info("interval %s settled", iid, extra={"interval_id": iid, "gas_used": 91_000})
{"time": "2026-12-04T17:01:02.345Z", "level": "INFO", "logger": "gridcoop.keeper", "message": "interval 1934 settled",
 "interval_id": 1934, "gas_used": 91000, "pid": 4242}

Fields passed with ``extra=`` become top-level keys; an exception adds ``"exception"`` (the traceback).
"""

from __future__ import annotations

import json
import logging
import sys
import time

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime",
                                                                                      "taskName"}
_enabled = False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                       + f".{int(record.msecs):03d}Z",
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
        out["pid"] = record.process
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def use_json_logs(stream=None) -> None:
    """Make every handler of the root logger write JSON lines (adding one on stderr if it has none)."""
    global _enabled
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(stream or sys.stderr))
    for h in root.handlers:
        h.setFormatter(JsonFormatter())
    _enabled = True


def json_logs_enabled() -> bool:
    """Whether :func:`use_json_logs` ran (servers then route their access logs through the root logger)."""
    return _enabled
