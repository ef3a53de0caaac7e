"""A throwaway PostgreSQL server on a loopback port, for the tests and the benchmarks.

>>> with PostgresServer() as pg:
...     url = pg.create_database("keeper_a")     # postgresql://gridcoop@127.0.0.1:<port>/keeper_a

The binaries are Debian's ``postgresql-15`` as ``make setup`` unpacks it into ``.tools/`` (no root
needed, like ``mbpoll``), else ``$GRIDCOOP_PG_BINDIR``, else an installed ``/usr/lib/postgresql/*/bin``.
``initdb`` and ``postgres`` refuse to run as root: when this process is root, the server runs as the
unprivileged ``nobody`` (``setpriv``) in a data directory it owns under ``/tmp``; if ``nobody`` cannot
reach the binaries where they are (a checkout under a private home folder), they are copied once to a
world-readable folder under ``/tmp`` first. The data directory is deleted when the server stops. Not
durable by default (``fsync=off``): a test server.
"""

from __future__ import annotations

import atexit
import glob
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .chain import free_port
from .exceptions import GridcoopError

#: The PostgreSQL major version that ``make setup`` unpacks (Makefile DEB_PACKAGES).
PG_MAJOR = 15
SUPERUSER = "gridcoop"
_REPO = Path(__file__).resolve().parents[1]


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``postgres`` (see the module doc for the search order)."""
    candidates: list[Path] = []
    if os.environ.get("GRIDCOOP_PG_BINDIR"):
        candidates.append(Path(os.environ["GRIDCOOP_PG_BINDIR"]))
    candidates.append(_REPO / ".tools" / "root" / "usr" / "lib" / "postgresql" / str(PG_MAJOR) / "bin")
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for c in candidates:
        if (c / "initdb").is_file() and (c / "postgres").is_file():
            return c
    raise GridcoopError("no PostgreSQL server binaries found (initdb, postgres): run `make setup` (it unpacks "
                        "Debian's postgresql-15 into .tools/) or set GRIDCOOP_PG_BINDIR")


def _reachable_by(argv_prefix: list[str], path: Path) -> bool:
    """Whether the user of ``argv_prefix`` (setpriv …) can execute ``path``."""
    if not argv_prefix:
        return True
    r = subprocess.run([*argv_prefix, "/usr/bin/test", "-x", str(path)], capture_output=True, timeout=30)
    return r.returncode == 0


def public_copy(bindir: Path) -> Path:
    """Copy the PostgreSQL installation around ``bindir`` (…/usr/lib/postgresql/N/{bin,lib} and
    …/usr/share/postgresql/N, the layout postgres finds its files by) to a world-readable folder under
    /tmp, once per source folder; return the copy's bindir."""
    ver_dir = bindir.parent  # …/usr/lib/postgresql/15
    usr = ver_dir.parents[2]  # …/usr
    share = usr / "share" / "postgresql" / ver_dir.name
    tag = hashlib.sha256(str(bindir.resolve()).encode()).hexdigest()[:12]
    dest = Path("/tmp") / f"gridcoop-pgbin-{tag}"
    target_bin = dest / "usr" / "lib" / "postgresql" / ver_dir.name / "bin"
    if (target_bin / "postgres").is_file():
        return target_bin
    tmp = Path(tempfile.mkdtemp(prefix=f"gridcoop-pgbin-{tag}.", dir="/tmp"))
    shutil.copytree(ver_dir, tmp / "usr" / "lib" / "postgresql" / ver_dir.name, symlinks=True)
    if share.is_dir():
        shutil.copytree(share, tmp / "usr" / "share" / "postgresql" / ver_dir.name, symlinks=True)
    for d, _dirs, _files in os.walk(tmp):
        os.chmod(d, 0o755)
    try:
        os.rename(tmp, dest)  # atomic: another process may have made the same copy meanwhile
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target_bin


class PostgresServer:
    """A PostgreSQL server with a fresh cluster, trust authentication on 127.0.0.1 only."""

    def __init__(self, *, port: int | None = None, durable: bool = False, log_path: str | os.PathLike | None = None,
                 startup_timeout: float = 30.0, max_connections: int = 100) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.durable = durable
        self.startup_timeout = startup_timeout
        self.max_connections = max_connections
        self.bindir = find_bindir()
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self.base: Path | None = None
        self._log = None

    # ------------------------------------------------------------------ privileges
    def _as_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        nobody = pwd.getpwnam("nobody")
        return [shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={nobody.pw_uid}",
                f"--regid={nobody.pw_gid}", "--clear-groups"]

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(path, nobody.pw_uid, nobody.pw_gid)

    def _env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "TZ": "UTC", "HOME": str(self.base)}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> PostgresServer:
        if not _reachable_by(self._as_user(), self.bindir / "postgres"):
            self.bindir = public_copy(self.bindir)
        # under /tmp (world-writable), not $TMPDIR: the unprivileged server user must reach it
        self.base = Path(tempfile.mkdtemp(prefix="gridcoop-pg-", dir="/tmp" if os.geteuid() == 0 else None))
        self._chown(self.base)
        data = self.base / "data"
        r = subprocess.run([*self._as_user(), str(self.bindir / "initdb"), "-D", str(data), "-U", SUPERUSER,
                            "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                           env=self._env(), capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            self._cleanup()
            raise GridcoopError(f"initdb failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-800:]}")
        settings = {"listen_addresses": self.host, "port": str(self.port), "unix_socket_directories": str(self.base),
                    "max_connections": str(self.max_connections), "shared_buffers": "32MB",
                    "log_min_messages": "warning", "log_line_prefix": "%m [%p] "}
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        argv = [*self._as_user(), str(self.bindir / "postgres"), "-D", str(data)]
        for k, v in settings.items():
            argv += ["-c", f"{k}={v}"]
        self._argv = argv
        log_path = self.log_path or (self.base / "postgres.log")
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, env=self._env(), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        atexit.register(self.stop)
        self._wait_ready(log_path)
        return self

    def down(self) -> None:
        """Stop the server but keep its data (a database that goes away; :meth:`up` brings it back)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(20)

    def up(self) -> None:
        """Start the server again on the same port and data after :meth:`down`."""
        self.proc = subprocess.Popen(self._argv, env=self._env(), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_ready(self.log_path or (self.base / "postgres.log"))

    def _wait_ready(self, log_path: Path) -> None:
        import psycopg

        deadline = time.monotonic() + self.startup_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.05)
        tail = Path(log_path).read_text(errors="replace")[-1500:] if Path(log_path).exists() else ""
        self.stop()
        raise GridcoopError(f"PostgreSQL did not start on {self.host}:{self.port} ({last}); log:\n{tail}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: roll back sessions, checkpoint, exit
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ databases
    def dsn(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (letters, digits, ``_``) and return its ``postgresql://`` URL."""
        import psycopg

        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}: letters, digits and _ only")
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
