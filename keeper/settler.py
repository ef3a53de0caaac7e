"""One settler at a time: which keeper process may settle a market's intervals.

- **PostgreSQL** (several keepers on one database): the settler holds a session-level advisory lock
  (``pg_try_advisory_lock``) on a connection of its own, keyed by chain id and market. The others
  serve the order API and stand by, trying the lock every round. A settler that dies (SIGKILL, power
  cut, lost network) loses its connection, the server releases the lock, and the next keeper to try
  takes over — no lease to wait out. Taking over raises the market's row in ``settler_leases``
  (``epoch``, the fencing token); every write that records settlement state
  (:meth:`keeper.db.Database.settle_session`) first reads that row ``FOR SHARE`` in the same
  transaction and refuses if the epoch is no longer its own. So a keeper that lost the lock without
  noticing (paused, partitioned) cannot record a decision or store a new transaction, and because a
  transaction is stored before it is broadcast, it cannot broadcast a new one either: the new settler
  finishes whatever the old one stored (same signed bytes, same nonce).
- **SQLite**: one keeper per database file. The keeper holds an exclusive ``flock`` on
  ``<file>.settler.lock`` while it runs; a second keeper on the same file refuses to start
  (:class:`SettlerBusy`). Run several keepers on PostgreSQL.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from gridcoop_sdk.exceptions import GridcoopError

from .db import Database, SettlerLeaseRow

log = logging.getLogger("gridcoop.keeper.settler")


class SettlerBusy(GridcoopError):
    """Another keeper holds the settler lock of this SQLite database file."""


class LostSettlerLock(GridcoopError):
    """This keeper is no longer the settler (another one took over): it must not record settlement state."""


def lock_name(chain_id: int, market: str) -> str:
    return f"settler:{chain_id}:{market.lower()}"


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key from the lock's name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SettlerLock:
    """The interface: :meth:`ensure` (am I the settler? try to become it), :meth:`release`."""

    epoch: int | None = None
    holder: str = ""

    def ensure(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        pass

    @property
    def kind(self) -> str:
        return type(self).__name__


class NoLock(SettlerLock):
    """An in-memory SQLite database: nobody else can see it."""

    def ensure(self) -> bool:
        return True


class SqliteFileLock(SettlerLock):
    """``flock`` on ``<database file>.settler.lock``: taken at start, refused if another keeper has it."""

    def __init__(self, db_path: str) -> None:
        self.path = Path(db_path + ".settler.lock")
        self.holder = holder_id()
        self._fd: int | None = None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = ""
            try:
                other = os.pread(fd, 200, 0).decode(errors="replace").strip()
            except OSError:
                pass
            os.close(fd)
            raise SettlerBusy(
                f"another keeper ({other or 'unknown'}) is running on the SQLite database {db_path}: SQLite supports "
                "one keeper per database file; stop it, or run several keepers on one PostgreSQL database "
                "(--db postgresql://…)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.holder.encode(), 0)
        self._fd = fd
        self.epoch = 0

    def ensure(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


class PgAdvisoryLock(SettlerLock):
    """Session-level advisory lock on a dedicated connection + an epoch fencing token in ``settler_leases``."""

    def __init__(self, db: Database, name: str, *, on_change=None) -> None:
        self.db, self.name, self.key = db, name, lock_key(name)
        self.holder = holder_id()
        self.on_change = on_change
        # One connection of its own, outside the pool (NullPool: closing it really closes it, which
        # is what releases the lock). TCP keepalives let the server notice a vanished host.
        self._engine = create_engine(db.url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args={
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
            "application_name": f"gridcoop-settler {self.holder}"[:63]})
        self._conn = None
        self.epoch = None
        self.acquired_at: float | None = None

    def ensure(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception as exc:  # the lock's connection is gone: so is the lock
                log.warning("settler lock %s lost (connection: %s)", self.name, str(exc).splitlines()[0][:120])
                self._drop()
        return self._try()

    def _try(self) -> bool:
        try:
            conn = self._engine.connect()
        except Exception as exc:
            log.warning("settler lock %s: cannot connect: %s", self.name, str(exc).splitlines()[0][:120])
            return False
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        try:
            with self.db.session() as s:
                row = s.scalar(select(SettlerLeaseRow).where(SettlerLeaseRow.name == self.name).with_for_update())
                if row is None:
                    row = SettlerLeaseRow(name=self.name, epoch=0, holder="", acquired_at=0.0)
                    s.add(row)
                previous = row.holder
                row.epoch = (row.epoch or 0) + 1
                row.holder, row.acquired_at = self.holder, time.time()
                s.flush()
                self.epoch = row.epoch
        except Exception:
            self._drop()
            raise
        self.acquired_at = time.time()
        log.info("this keeper (%s) is now the settler of %s (epoch %s%s)", self.holder, self.name, self.epoch,
                 f", after {previous}" if previous else "")
        if self.on_change:
            self.on_change(True)
        return True

    def fence(self, s: Session) -> None:
        """Inside a settlement write: refuse unless this keeper's epoch is still the current one."""
        if self.epoch is None:
            raise LostSettlerLock(f"this keeper is not the settler of {self.name}")
        current = s.scalar(select(SettlerLeaseRow.epoch).where(SettlerLeaseRow.name == self.name)
                           .with_for_update(read=True))
        if current != self.epoch:
            self._drop()
            raise LostSettlerLock(f"settler of {self.name} is now epoch {current}, this keeper had {self.epoch}")

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        was = self.epoch
        self.epoch = None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass
        if was is not None and self.on_change:
            self.on_change(False)

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            except Exception:
                pass
        self._drop()
        self._engine.dispose()


def settler_lock(db: Database, chain_id: int, market: str, *, on_change=None) -> SettlerLock:
    """The right lock for ``db``: a file lock for an SQLite file (taken now; :class:`SettlerBusy` if
    held), an advisory lock for PostgreSQL (taken by the first :meth:`SettlerLock.ensure`)."""
    if db.is_postgres:
        lock: SettlerLock = PgAdvisoryLock(db, lock_name(chain_id, market), on_change=on_change)
        db.fence = lock.fence
    elif db.is_sqlite:
        path = db.engine.url.database
        lock = NoLock() if not path or path == ":memory:" else SqliteFileLock(path)
    else:
        log.warning("database %s is neither SQLite nor PostgreSQL: no settler lock; run one keeper only",
                    db.engine.url.get_backend_name())
        lock = NoLock()
    db.on_dispose.append(lock.release)
    return lock
