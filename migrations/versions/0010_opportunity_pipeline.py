"""The opportunity pipeline: expected close, quote and outcome on each
opportunity, and its stage history with timestamps

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("close_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("stage_entered_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("last_activity_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("quote_amount_minor", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("contract_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lost_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("lost_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_opportunities_contract_id"),
                                          ["contract_id"])
    op.create_table(
        "opportunity_stages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("opportunity_id", sa.String(length=80), nullable=False),
        sa.Column("from_stage", sa.String(length=32), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"],
                                name=op.f("fk_opportunity_stages_opportunity_id_opportunities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity_stages")),
        sa.UniqueConstraint("key", name=op.f("uq_opportunity_stages_key")),
    )
    op.create_index(op.f("ix_opportunity_stages_opportunity_id"), "opportunity_stages",
                    ["opportunity_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_opportunity_stages_opportunity_id"), table_name="opportunity_stages")
    op.drop_table("opportunity_stages")
    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_opportunities_contract_id"), type_="unique")
        for column in ("closed_at", "lost_note", "lost_reason", "contract_id",
                       "quote_amount_minor", "last_activity_at", "stage_entered_at",
                       "close_date"):
            batch_op.drop_column(column)
