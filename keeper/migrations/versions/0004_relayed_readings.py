"""relayed_readings: what each MQTT relay worker did with each signed reading (accepted, already on
chain, refused with the reason) — the relay's durable record in the keeper's store.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relayed_readings",
        sa.Column("meter_id", sa.String(66), primary_key=True, nullable=False),
        sa.Column("sequence", sa.BigInteger(), primary_key=True, autoincrement=False, nullable=False),
        sa.Column("result", sa.String(20), primary_key=True, nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("interval_start", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("worker", sa.String(120), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_relayed_readings_interval_start", "relayed_readings", ["interval_start"])


def downgrade() -> None:
    op.drop_index("ix_relayed_readings_interval_start", table_name="relayed_readings")
    op.drop_table("relayed_readings")
