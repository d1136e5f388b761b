"""NPS surveys: one per customer and period, the answer and a detractor's follow-up

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nps_surveys",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("respondent", sa.String(length=10), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("follow_up_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("followed_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("followed_up_by", sa.String(length=64), nullable=True),
        sa.Column("escalated_to", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_nps_surveys_customer_id_customers")),
        sa.ForeignKeyConstraint(["owner_id"], ["staff.id"],
                                name=op.f("fk_nps_surveys_owner_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nps_surveys")),
    )
    op.create_index(op.f("ix_nps_surveys_customer_id"), "nps_surveys", ["customer_id"],
                    unique=False)
    op.create_index(op.f("ix_nps_surveys_owner_id"), "nps_surveys", ["owner_id"], unique=False)
    op.create_index("ix_nps_surveys_period", "nps_surveys", ["period", "answered_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_nps_surveys_period", table_name="nps_surveys")
    op.drop_index(op.f("ix_nps_surveys_owner_id"), table_name="nps_surveys")
    op.drop_index(op.f("ix_nps_surveys_customer_id"), table_name="nps_surveys")
    op.drop_table("nps_surveys")
