"""The keeper's database (SQLAlchemy; SQLite by default, PostgreSQL by URL).

Tables: ``orders`` (every accepted signed order and its status), ``intervals`` (one row per
interval: the settlement state machine), ``settlement_txs`` (every signed settlement transaction,
stored *before* it is broadcast) and ``trades`` (the settled trades, for reports).

Interval states::

    open ──clear──▶ sending ──receipt──▶ settled
      │                │  (signed tx persisted first; after a crash it is re-sent or found mined)
      └─ no trades ─▶ empty              └─ reverted ─▶ failed (orders stay, re-cleared next time)

A settlement that a reorg removed is put back to ``open`` and settled again.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

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
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

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


class Database:
    """Engine + session factory; ``with db.session() as s:`` commits on success."""

    def __init__(self, url: str = "sqlite:///keeper.db") -> None:
        kw: dict = {}
        if url.startswith(("postgresql://", "postgres://")):
            # psycopg 3 (the `postgres` extra), not SQLAlchemy's default psycopg2
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        if url.startswith("sqlite"):
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.url = url
        self.engine = create_engine(url, **kw)
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn, _record):  # durable and concurrent enough for a keeper
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.close()
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

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
        self.engine.dispose()
