"""Loyalty: the members (level, discount, referral code) and the points ledger

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loyalty_members",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("discount_percent", sa.Integer(), nullable=False),
        sa.Column("level_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("referral_code", sa.String(length=32), nullable=False),
        sa.Column("referred_by", sa.String(length=64), nullable=True),
        sa.Column("referral_rewarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_loyalty_members_customer_id_customers")),
        sa.ForeignKeyConstraint(["referred_by"], ["customers.id"],
                                name=op.f("fk_loyalty_members_referred_by_customers")),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_loyalty_members")),
        sa.UniqueConstraint("referral_code", name=op.f("uq_loyalty_members_referral_code")),
    )
    op.create_index(op.f("ix_loyalty_members_referred_by"), "loyalty_members", ["referred_by"])
    op.create_table(
        "loyalty_points",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("takes", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_loyalty_points_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_points")),
        sa.UniqueConstraint("key", name=op.f("uq_loyalty_points_key")),
    )
    op.create_index("ix_loyalty_points_customer_id", "loyalty_points", ["customer_id", "id"])
    op.create_index("ix_loyalty_points_kind_at", "loyalty_points", ["kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_loyalty_points_kind_at", table_name="loyalty_points")
    op.drop_index("ix_loyalty_points_customer_id", table_name="loyalty_points")
    op.drop_table("loyalty_points")
    op.drop_index(op.f("ix_loyalty_members_referred_by"), table_name="loyalty_members")
    op.drop_table("loyalty_members")
