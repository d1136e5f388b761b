"""Indexes shaped for the daily RFM sweep

The full sweep aggregates every customer's orders; on PostgreSQL the covering
index `(customer_id, at) INCLUDE (amount_minor)` makes that an index-only scan
in customer order instead of a hash of every customer. The incremental sweep
finds the day's candidates (orders recorded since the previous sweep, orders
entering or leaving the 365-day window, recency and first-purchase crossings)
through index-only lookups. The tier columns lose their indexes: nothing
searches by them (reports count tiers over the table), and without them a
changed tier is a heap-only update that touches no index; `fillfactor = 90`
leaves room on each page for that.

Each index is created IF NOT EXISTS: on a large live store an operator can
build them beforehand with CREATE INDEX CONCURRENTLY under the same names, and
this migration then only drops what they replace. SQLite has no INCLUDE; it
gets the same indexes with the included column as a last key column.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 23:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# name, table, key columns, included columns
NEW_INDEXES: list[tuple[str, str, list[str], list[str]]] = [
    ("ix_orders_recorded_at", "orders", ["recorded_at"], []),
    ("ix_orders_customer_at_amount", "orders", ["customer_id", "at"], ["amount_minor"]),
    ("ix_orders_at_customer_id", "orders", ["at"], ["customer_id"]),
    ("ix_customers_last_purchase_at_id", "customers", ["last_purchase_at"], ["id"]),
    ("ix_customers_first_purchase_at_id", "customers", ["first_purchase_at"], ["id"]),
]

# name, table, columns: what the new indexes replace, and the tier indexes.
OLD_INDEXES: list[tuple[str, str, list[str]]] = [
    ("ix_orders_customer_at", "orders", ["customer_id", "at"]),
    ("ix_orders_at", "orders", ["at"]),
    ("ix_customers_last_purchase_at", "customers", ["last_purchase_at"]),
    ("ix_customers_first_purchase_at", "customers", ["first_purchase_at"]),
    ("ix_customers_tier", "customers", ["tier"]),
    ("ix_customers_tier_changed_on", "customers", ["tier_changed_on"]),
]


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    postgres = _postgres()
    for name, table, columns, include in NEW_INDEXES:
        if postgres:
            op.create_index(name, table, columns, postgresql_include=include,
                            if_not_exists=True)
        else:
            op.create_index(name, table, columns + include, if_not_exists=True)
    for name, table, _ in OLD_INDEXES:
        op.drop_index(name, table_name=table, if_exists=True)
    if postgres:
        op.execute("ALTER TABLE customers SET (fillfactor = 90)")


def downgrade() -> None:
    postgres = _postgres()
    if postgres:
        op.execute("ALTER TABLE customers RESET (fillfactor)")
    for name, table, columns in OLD_INDEXES:
        op.create_index(name, table, columns, if_not_exists=True)
    for name, table, _, _ in NEW_INDEXES:
        op.drop_index(name, table_name=table, if_exists=True)
