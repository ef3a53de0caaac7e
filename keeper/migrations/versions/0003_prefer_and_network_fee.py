"""orders.prefer (ranked preferred partners) and trades.fee_per_kwh (the network fee a buyer paid on top).

A keeper database made before migrations by a release that already had these columns is stamped
0001 like any other; this migration then adds only what is missing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _has(table: str, column: str) -> bool:
    return column in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    if not _has("orders", "prefer"):
        op.add_column("orders", sa.Column("prefer", sa.Text(), nullable=True))
    if not _has("trades", "fee_per_kwh"):
        # server default for the rows already there (no fee before), then as the model has it
        with op.batch_alter_table("trades") as batch:
            batch.add_column(sa.Column("fee_per_kwh", sa.String(80), nullable=False, server_default="0"))
        with op.batch_alter_table("trades") as batch:
            batch.alter_column("fee_per_kwh", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("trades") as batch:
        batch.drop_column("fee_per_kwh")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("prefer")
