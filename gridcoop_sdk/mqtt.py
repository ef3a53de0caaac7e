"""MQTT ingestion of meter readings: topic names, broker URLs, and a local Mosquitto broker.

Topology (docs/scaling.md): each gateway publishes every signed reading QoS 1 to
``gridcoop/<region>/readings/<meter id hex>`` with a persistent session; relay workers share the
stream with the MQTT v5 shared subscription ``$share/relay/gridcoop/<region>/readings/#``. The
payload is the relay wire format of :mod:`gridcoop_sdk.readings` (``SignedReading.to_json()``),
or a JSON array of one meter's readings in sequence order when a gateway sends a backlog (the
array keeps them in order: a shared subscription does not keep a meter's messages on one worker).

:class:`Mosquitto` starts Debian's broker (``make setup`` unpacks it into ``.tools/``, the
wrapper is ``.venv/bin/mosquitto``) on a free loopback port with a generated config: persistence
in its own folder, no limit on in-flight or queued QoS 1 messages (a worker with a persistent
session that is down gets its share when it comes back, nothing is dropped), anonymous loopback
clients. :meth:`Mosquitto.restart` stops it cleanly (it writes its database) and starts it again
on the same port and folder.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from .chain import free_port, stop_process
from .exceptions import GridcoopError
from .paths import project_root

log = logging.getLogger("gridcoop.mqtt")

#: The shared-subscription group of the relay workers.
SHARE_GROUP = "relay"
_REGION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_region(region: str) -> str:
    """A region name usable as one topic level (no ``/``, ``+``, ``#``)."""
    if not isinstance(region, str) or not _REGION.match(region):
        raise GridcoopError(f"region {region!r} cannot be an MQTT topic level (letters, digits, _ . - only)")
    return region


def readings_topic(region: str, meter_id: bytes) -> str:
    """``gridcoop/<region>/readings/0x<meter id hex>``: where a gateway publishes a meter's readings."""
    return f"gridcoop/{check_region(region)}/readings/0x{meter_id.hex()}"


def shared_subscription(region: str, group: str = SHARE_GROUP) -> str:
    """``$share/<group>/gridcoop/<region>/readings/#``: what the relay workers subscribe to."""
    return f"$share/{group}/gridcoop/{check_region(region)}/readings/#"


def topic_meter(topic: str, region: str) -> bytes | None:
    """The meter id named by a readings topic of ``region``, or None if the topic is not one."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "gridcoop" or parts[1] != region or parts[2] != "readings":
        return None
    m = parts[3]
    if not re.fullmatch(r"0x[0-9a-fA-F]{64}", m):
        return None
    return bytes.fromhex(m[2:])


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` (or ``tcp://``, or ``host:port``) → (host, port); port 1883 by default."""
    text = url if "://" in url else f"mqtt://{url}"
    u = urlparse(text)
    if u.scheme not in ("mqtt", "tcp") or not u.hostname:
        raise GridcoopError(f"broker URL {url!r}: expected mqtt://HOST[:PORT]")
    try:
        port = u.port or 1883
    except ValueError as exc:
        raise GridcoopError(f"broker URL {url!r}: bad port") from exc
    return u.hostname, port


def find_mosquitto() -> str | None:
    """The Mosquitto binary: ``$GRIDCOOP_MOSQUITTO``, the project's ``.venv/bin/mosquitto`` wrapper, PATH."""
    env = os.environ.get("GRIDCOOP_MOSQUITTO")
    if env:
        return env
    local = project_root() / ".venv" / "bin" / "mosquitto"
    if local.exists():
        return str(local)
    return shutil.which("mosquitto")


class Mosquitto:
    """A Mosquitto broker on a free loopback port, persistence in a temporary folder.

    >>> with Mosquitto() as broker:
    ...     broker.url          # mqtt://127.0.0.1:<port>
    """

    def __init__(self, *, port: int | None = None, data_dir: str | os.PathLike | None = None,
                 startup_timeout: float = 10.0, autosave_interval: int = 1):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="gridcoop-mosquitto-"))
        self.startup_timeout = startup_timeout
        self.autosave_interval = autosave_interval
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "mosquitto.log"

    def config(self) -> str:
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.data_dir}/",
            # Written on a clean stop and every N seconds with changes; a SIGKILLed broker loses
            # what came after the last save, which gateways re-send (docs/scaling.md).
            f"autosave_interval {self.autosave_interval}",
            "autosave_on_changes false",
            "max_inflight_messages 0",
            "max_queued_messages 0",
            "persistent_client_expiration 7d",
            "set_tcp_nodelay true",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("user root")  # started as root it would switch to user mosquitto otherwise
        return "\n".join(lines) + "\n"

    def start(self) -> Mosquitto:
        binary = find_mosquitto()
        if not binary:
            raise GridcoopError("mosquitto not found: run `make setup` (it unpacks Debian's mosquitto into .tools/) "
                                "or set GRIDCOOP_MOSQUITTO")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(self.config())
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.data_dir / "stderr.log", "ab"),  # noqa: SIM115
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise GridcoopError(f"mosquitto exited at start with code {self.proc.returncode}: {self._tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise GridcoopError(f"mosquitto did not listen on {self.url} within {self.startup_timeout}s: "
                                        f"{self._tail()}") from None
                time.sleep(0.05)
        log.info("mosquitto on %s (data in %s)", self.url, self.data_dir)
        return self

    def _tail(self) -> str:
        out = []
        for p in (self.data_dir / "stderr.log", self.log_path):
            try:
                out.append(p.read_text(errors="replace")[-1500:])
            except OSError:
                pass
        return " | ".join(x.strip() for x in out if x.strip())

    def stop(self, *, kill: bool = False) -> None:
        """Stop the broker: SIGTERM (it saves its database) or, with ``kill``, SIGKILL."""
        stop_process(self.proc, sig=signal.SIGKILL if kill else signal.SIGTERM)
        self.proc = None

    def restart(self, *, down_s: float = 0.0, kill: bool = False) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same port with the same data."""
        self.stop(kill=kill)
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
