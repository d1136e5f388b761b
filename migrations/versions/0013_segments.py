"""Segments: tag rules, their members with entries and exits, and the
categories customers follow

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("defined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_segments")),
    )
    op.create_table(
        "segment_members",
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_segment_members_customer_id_customers")),
        sa.ForeignKeyConstraint(["segment"], ["segments.name"],
                                name=op.f("fk_segment_members_segment_segments")),
        sa.PrimaryKeyConstraint("segment", "customer_id", name=op.f("pk_segment_members")),
    )
    op.create_index(op.f("ix_segment_members_customer_id"), "segment_members",
                    ["customer_id"], unique=False)
    op.create_table(
        "segment_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_segment_changes_customer_id_customers")),
        sa.ForeignKeyConstraint(["segment"], ["segments.name"],
                                name=op.f("fk_segment_changes_segment_segments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_changes")),
    )
    op.create_index(op.f("ix_segment_changes_customer_id"), "segment_changes",
                    ["customer_id"], unique=False)
    op.create_index("ix_segment_changes_segment_at", "segment_changes", ["segment", "at"],
                    unique=False)
    op.create_table(
        "customer_interests",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_customer_interests_customer_id_customers")),
        sa.PrimaryKeyConstraint("customer_id", "category", name=op.f("pk_customer_interests")),
    )
    op.create_index("ix_customer_interests_category", "customer_interests",
                    ["category", "customer_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_customer_interests_category", table_name="customer_interests")
    op.drop_table("customer_interests")
    op.drop_index("ix_segment_changes_segment_at", table_name="segment_changes")
    op.drop_index(op.f("ix_segment_changes_customer_id"), table_name="segment_changes")
    op.drop_table("segment_changes")
    op.drop_index(op.f("ix_segment_members_customer_id"), table_name="segment_members")
    op.drop_table("segment_members")
    op.drop_table("segments")
