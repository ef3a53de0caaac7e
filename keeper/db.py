"""The keeper's database (SQLAlchemy; SQLite by default, PostgreSQL by URL).

Tables: ``orders`` (every accepted signed order and its status), ``intervals`` (one row per
interval: the settlement state machine), ``settlement_txs`` (every signed settlement transaction,
stored *before* it is broadcast) and ``trades`` (the settled trades, for reports).

Interval states::

    open ──clear──▶ sending ──receipt──▶ settled
      │                │  (signed tx persisted first; after a crash it is re-sent or found mined)
      └─ no trades ─▶ empty              └─ reverted ─▶ failed (orders stay, re-cleared next time)

A settlement that a reorg removed is put back to ``open`` and settled again.

The schema is versioned with Alembic (``keeper/migrations``): :class:`Database` brings a database
to the newest revision when it opens it (``migrate=False`` skips that; ``gridcoop keeper db
upgrade`` does it by hand). A keeper database made before migrations existed (tables, no
``alembic_version``) is stamped as the initial revision and upgraded from there.
``settler_leases`` holds the fencing token of the one keeper allowed to settle (keeper/settler.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The revision that holds the schema as it was before migrations existed (create_all).
INITIAL_REVISION = "0001"
#: Key of the transaction-level advisory lock that serialises migrations on PostgreSQL.
MIGRATION_LOCK_KEY = 0x6772_6964_636F_6F70  # "gridcoop"

ORDER_OPEN = "open"
ORDER_CANCELLED = "cancelled"
ORDER_DROPPED = "dropped"  # removed before settlement (would fail on chain); reason says why
ORDER_FILLED = "filled"
ORDER_PARTIAL = "partially_filled"
ORDER_UNFILLED = "unfilled"

IV_OPEN = "open"
IV_SENDING = "sending"
IV_SETTLED = "settled"
IV_EMPTY = "empty"
IV_FAILED = "failed"


class Base(DeclarativeBase):
    pass


class OrderRow(Base):
    __tablename__ = "orders"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hash: Mapped[str] = mapped_column(String(66), unique=True, index=True)
    interval_id: Mapped[int] = mapped_column(BigInteger, index=True)
    maker: Mapped[str] = mapped_column(String(42), index=True)
    side: Mapped[str] = mapped_column(String(4))
    amount_wh: Mapped[int] = mapped_column(BigInteger)
    limit_price: Mapped[str] = mapped_column(String(80))  # decimal text: prices exceed int64 for 18-dec tokens
    payment_token: Mapped[str] = mapped_column(String(42))
    partially_fillable: Mapped[bool] = mapped_column(Boolean)
    expiry: Mapped[int] = mapped_column(BigInteger)
    counterparty: Mapped[str] = mapped_column(String(42))
    colour: Mapped[str] = mapped_column(String(66))
    signed_json: Mapped[str] = mapped_column(Text)
    prefer: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list of preferred makers, best first
    status: Mapped[str] = mapped_column(String(20), default=ORDER_OPEN, index=True)
    filled_wh: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    received_at: Mapped[float] = mapped_column(Float)


class IntervalRow(Base):
    __tablename__ = "intervals"
    interval_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(10), default=IV_OPEN)
    price: Mapped[str | None] = mapped_column(String(80), nullable=True)
    volume_wh: Mapped[int] = mapped_column(BigInteger, default=0)
    money: Mapped[str] = mapped_column(String(80), default="0")
    n_orders: Mapped[int] = mapped_column(Integer, default=0)
    n_trades: Mapped[int] = mapped_column(Integer, default=0)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    batch_json: Mapped[str | None] = mapped_column(Text, nullable=True)  # the cleared batch, for re-checks
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time)


class TxRow(Base):
    __tablename__ = "settlement_txs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    interval_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("intervals.interval_id"), index=True)
    nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw_tx: Mapped[str] = mapped_column(Text)
    max_fee: Mapped[str] = mapped_column(String(80))
    priority_fee: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(10), default="signed")  # signed|sent|mined|replaced|dropped
    created_at: Mapped[float] = mapped_column(Float)


class TradeRow(Base):
    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    interval_id: Mapped[int] = mapped_column(BigInteger, index=True)
    seller: Mapped[str] = mapped_column(String(42), index=True)
    buyer: Mapped[str] = mapped_column(String(42), index=True)
    sell_hash: Mapped[str] = mapped_column(String(66))
    buy_hash: Mapped[str] = mapped_column(String(66))
    wh: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[str] = mapped_column(String(80))
    fee_per_kwh: Mapped[str] = mapped_column(String(80), default="0")  # network fee the buyer paid on top
    money: Mapped[str] = mapped_column(String(80))
    payment_token: Mapped[str] = mapped_column(String(42))
    tx_hash: Mapped[str] = mapped_column(String(66))


class SettlerLeaseRow(Base):
    """Who may settle a market: ``epoch`` is the fencing token, raised by every keeper that takes over."""

    __tablename__ = "settler_leases"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[float] = mapped_column(Float)


class RelayedReadingRow(Base):
    """What a relay worker did with a signed reading (``gridcoop relay mqtt --db``): ``accepted`` or
    ``already_on_chain`` (with the transaction), or ``refused`` with the registry's or the worker's
    reason. One row per (meter, sequence, result): a re-publish of an accepted reading adds no row."""

    __tablename__ = "relayed_readings"
    meter_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    result: Mapped[str] = mapped_column(String(20), primary_key=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    interval_start: Mapped[int] = mapped_column(BigInteger, index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    worker: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[float] = mapped_column(Float)


def normalize_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` → psycopg 3 (the `postgres` extra), not SQLAlchemy's psycopg2."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Database:
    """Engine + session factory; ``with db.session() as s:`` commits on success.

    ``with db.settle_session() as s:`` is the same, but first runs ``db.fence(s)`` (set by the keeper's
    settler lock) in that transaction: a keeper that lost the right to settle cannot record
    settlement state."""

    def __init__(self, url: str = "sqlite:///keeper.db", *, migrate: bool = True) -> None:
        kw: dict = {}
        url = normalize_url(url)
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_postgres = url.startswith("postgresql")
        if self.is_sqlite:
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if url in ("sqlite://", "sqlite:///:memory:"):
                kw["poolclass"] = StaticPool  # one in-memory database shared by every session
        else:
            kw["pool_pre_ping"] = True  # a database server restart must not break the next request
        self.engine = create_engine(url, **kw)
        if self.is_sqlite:
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn, _record):  # durable and concurrent enough for a keeper
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.close()
        self.fence: Callable[[Session], None] | None = None
        self.on_dispose: list[Callable[[], None]] = []
        if migrate:
            self.upgrade()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # ------------------------------------------------------------------ migrations
    def alembic_config(self, connection=None):
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        cfg.attributes["connection"] = connection
        return cfg

    def current_revision(self) -> str | None:
        from alembic.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head_revision() -> str:
        from alembic.script import ScriptDirectory

        return _head(ScriptDirectory(str(MIGRATIONS)))

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (Alembic). On PostgreSQL one keeper migrates at a time
        (transaction-level advisory lock; the DDL is transactional)."""
        from alembic import command

        with self._sqlite_migration_lock(), self.engine.begin() as conn:
            if self.is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            tables = set(inspect(conn).get_table_names())
            cfg = self.alembic_config(conn)
            if "alembic_version" not in tables and "intervals" in tables:
                command.stamp(cfg, INITIAL_REVISION)  # made by create_all before migrations existed
            command.upgrade(cfg, revision)

    @contextmanager
    def _sqlite_migration_lock(self):
        """Processes opening one SQLite file at once (two relay workers) migrate one at a time: an
        exclusive lock on a file beside the database (PostgreSQL uses an advisory lock instead)."""
        path = self.url.split("sqlite:///", 1)[1] if self.is_sqlite and self.url.startswith("sqlite:///") else ""
        if not path or path == ":memory:" or not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            yield  # in memory, or a folder that does not exist (opening the database says so)
            return
        import fcntl

        with open(f"{path}.migrate-lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @contextmanager
    def session(self):
        s: Session = self._sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    @contextmanager
    def settle_session(self):
        """A session for recording settlement state: checks the settler's fencing token first."""
        with self.session() as s:
            if self.fence is not None:
                self.fence(s)
            yield s

    def interval(self, s: Session, iid: int, *, create: bool = True) -> IntervalRow | None:
        row = s.get(IntervalRow, iid)
        if row is None and create:
            row = IntervalRow(interval_id=iid, state=IV_OPEN, updated_at=time.time())
            s.add(row)
            s.flush()
        return row

    def open_orders(self, s: Session, iid: int) -> list[OrderRow]:
        return list(s.scalars(select(OrderRow).where(OrderRow.interval_id == iid,
                                                     OrderRow.status == ORDER_OPEN).order_by(OrderRow.seq)))

    def dispose(self) -> None:
        for release in self.on_dispose:
            release()
        self.on_dispose.clear()
        self.engine.dispose()


_HEADS: dict[str, str] = {}


def _head(script) -> str:
    if "head" not in _HEADS:
        _HEADS["head"] = script.get_current_head()
    return _HEADS["head"]
