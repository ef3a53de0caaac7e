"""The keeper's schema as it was before migrations: orders, intervals, settlement_txs, trades.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
        sa.Column("hash", sa.String(66), nullable=False),
        sa.Column("interval_id", sa.BigInteger(), nullable=False),
        sa.Column("maker", sa.String(42), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("amount_wh", sa.BigInteger(), nullable=False),
        sa.Column("limit_price", sa.String(80), nullable=False),
        sa.Column("payment_token", sa.String(42), nullable=False),
        sa.Column("partially_fillable", sa.Boolean(), nullable=False),
        sa.Column("expiry", sa.BigInteger(), nullable=False),
        sa.Column("counterparty", sa.String(42), nullable=False),
        sa.Column("colour", sa.String(66), nullable=False),
        sa.Column("signed_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("filled_wh", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_orders_hash", "orders", ["hash"], unique=True)
    op.create_index("ix_orders_interval_id", "orders", ["interval_id"])
    op.create_index("ix_orders_maker", "orders", ["maker"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_table(
        "intervals",
        sa.Column("interval_id", sa.BigInteger(), primary_key=True, autoincrement=False, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("price", sa.String(80), nullable=True),
        sa.Column("volume_wh", sa.BigInteger(), nullable=False),
        sa.Column("money", sa.String(80), nullable=False),
        sa.Column("n_orders", sa.Integer(), nullable=False),
        sa.Column("n_trades", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("batch_json", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "settlement_txs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
        sa.Column("interval_id", sa.BigInteger(), sa.ForeignKey("intervals.interval_id"), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False, unique=True),
        sa.Column("raw_tx", sa.Text(), nullable=False),
        sa.Column("max_fee", sa.String(80), nullable=False),
        sa.Column("priority_fee", sa.String(80), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_settlement_txs_interval_id", "settlement_txs", ["interval_id"])
    op.create_table(
        "trades",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
        sa.Column("interval_id", sa.BigInteger(), nullable=False),
        sa.Column("seller", sa.String(42), nullable=False),
        sa.Column("buyer", sa.String(42), nullable=False),
        sa.Column("sell_hash", sa.String(66), nullable=False),
        sa.Column("buy_hash", sa.String(66), nullable=False),
        sa.Column("wh", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.String(80), nullable=False),
        sa.Column("money", sa.String(80), nullable=False),
        sa.Column("payment_token", sa.String(42), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
    )
    op.create_index("ix_trades_interval_id", "trades", ["interval_id"])
    op.create_index("ix_trades_seller", "trades", ["seller"])
    op.create_index("ix_trades_buyer", "trades", ["buyer"])


def downgrade() -> None:
    op.drop_table("trades")
    op.drop_table("settlement_txs")
    op.drop_table("intervals")
    op.drop_table("orders")
