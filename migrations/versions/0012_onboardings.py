"""Onboardings: a signed contract's service group, first delivery and check-in

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "onboardings",
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("service_lead_id", sa.String(length=64), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivery_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("group_link", sa.Text(), nullable=True),
        sa.Column("group_ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_by", sa.String(length=64), nullable=True),
        sa.Column("delivery_note", sa.Text(), nullable=True),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_onboardings_customer_id_customers")),
        sa.ForeignKeyConstraint(["owner_id"], ["staff.id"],
                                name=op.f("fk_onboardings_owner_id_staff")),
        sa.ForeignKeyConstraint(["service_lead_id"], ["staff.id"],
                                name=op.f("fk_onboardings_service_lead_id_staff")),
        sa.PrimaryKeyConstraint("contract_id", name=op.f("pk_onboardings")),
    )
    op.create_index(op.f("ix_onboardings_customer_id"), "onboardings", ["customer_id"],
                    unique=False)
    op.create_index(op.f("ix_onboardings_service_lead_id"), "onboardings",
                    ["service_lead_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_onboardings_service_lead_id"), table_name="onboardings")
    op.drop_index(op.f("ix_onboardings_customer_id"), table_name="onboardings")
    op.drop_table("onboardings")
