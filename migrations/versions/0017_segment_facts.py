"""Segments refresh incrementally: the database stamps each customer whose
facts a rule can read changed, and a segment keeps when it last looked

`customer_fact_stamps` holds, per customer, the store's own clock at the
last change of a fact a rule can read: a field a rule may test (or the
tier), an order, an interaction or a followed category of the customer
added, changed or removed. Triggers keep it, so every writer (the journeys,
the RFM sweep, an import, a hand-written UPDATE) is seen; a table of its own,
indexed by the time, so that a refresh finds the day's changes without
reading every customer, and a tier written by the sweep stays a heap-only
update of the customer. `segments.facts_seen_at` is the same clock at a
segment's last refresh; empty, the next refresh recomputes every customer
(so each segment's first refresh after this migration is a full one).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The customer fields a rule may test (domain.segments.CUSTOMER_FIELDS, tier
# included), and the tables of the customers' other facts.
FIELDS = ("locale", "timezone", "owner_id", "advisor_id", "company", "favourite_category",
          "lifecycle_state", "tier")
FACTS = ("orders", "interactions", "customer_interests")

# SQLite keeps times as text in SQLAlchemy's layout, to the microsecond.
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"


def upgrade() -> None:
    op.create_table(
        "customer_fact_stamps",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_fact_stamps")),
    )
    op.create_index("ix_customer_fact_stamps_changed_at", "customer_fact_stamps",
                    ["changed_at", "customer_id"], unique=False)
    op.add_column("segments", sa.Column("facts_seen_at", sa.DateTime(timezone=True),
                                        nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _postgresql_triggers() -> None:
    # Statement triggers over the transition tables: a statement that writes a
    # million rows (the first RFM sweep) stamps them in one set-based upsert.
    changed = " OR ".join(f"n.{f} IS DISTINCT FROM o.{f}" for f in FIELDS)
    stamp = ("INSERT INTO customer_fact_stamps (customer_id, changed_at) SELECT id, now() "
             "FROM ({}) AS changed WHERE id IS NOT NULL "
             "ON CONFLICT (customer_id) DO UPDATE SET changed_at = excluded.changed_at")
    op.execute(f"""
        CREATE FUNCTION stamp_customers() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {stamp.format("SELECT id FROM added")};
            ELSE
                {stamp.format(f"SELECT n.id FROM added n JOIN removed o USING (id) "
                              f"WHERE {changed}")};
            END IF;
            RETURN NULL;
        END $$""")
    op.execute(f"""
        CREATE FUNCTION stamp_fact_customers() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {stamp.format("SELECT DISTINCT customer_id AS id FROM added")};
            ELSIF TG_OP = 'DELETE' THEN
                {stamp.format("SELECT DISTINCT customer_id AS id FROM removed")};
            ELSE
                {stamp.format("SELECT customer_id AS id FROM added "
                              "UNION SELECT customer_id FROM removed")};
            END IF;
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER customers_facts_new AFTER INSERT ON customers "
               "REFERENCING NEW TABLE AS added "
               "FOR EACH STATEMENT EXECUTE FUNCTION stamp_customers()")
    op.execute("CREATE TRIGGER customers_facts_changed AFTER UPDATE ON customers "
               "REFERENCING OLD TABLE AS removed NEW TABLE AS added "
               "FOR EACH STATEMENT EXECUTE FUNCTION stamp_customers()")
    for table in FACTS:
        for name, event, tables in (("added", "INSERT", "NEW TABLE AS added"),
                                    ("removed", "DELETE", "OLD TABLE AS removed"),
                                    ("changed", "UPDATE",
                                     "OLD TABLE AS removed NEW TABLE AS added")):
            op.execute(f"CREATE TRIGGER {table}_facts_{name} AFTER {event} ON {table} "
                       f"REFERENCING {tables} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION stamp_fact_customers()")


def _sqlite_triggers() -> None:
    changed = " OR ".join(f"OLD.{f} IS NOT NEW.{f}" for f in FIELDS)

    def stamp(customer: str) -> str:
        return (f"INSERT OR REPLACE INTO customer_fact_stamps (customer_id, changed_at) "
                f"SELECT id, {SQLITE_NOW} FROM ({customer}) WHERE id IS NOT NULL;")

    op.execute(f"CREATE TRIGGER customers_facts_new AFTER INSERT ON customers "
               f"FOR EACH ROW BEGIN {stamp('SELECT NEW.id AS id')} END")
    op.execute(f"CREATE TRIGGER customers_facts_changed AFTER UPDATE OF {', '.join(FIELDS)} "
               f"ON customers FOR EACH ROW WHEN {changed} "
               f"BEGIN {stamp('SELECT NEW.id AS id')} END")
    for table in FACTS:
        op.execute(f"CREATE TRIGGER {table}_facts_added AFTER INSERT ON {table} "
                   f"FOR EACH ROW BEGIN {stamp('SELECT NEW.customer_id AS id')} END")
        op.execute(f"CREATE TRIGGER {table}_facts_removed AFTER DELETE ON {table} "
                   f"FOR EACH ROW BEGIN {stamp('SELECT OLD.customer_id AS id')} END")
        op.execute(f"CREATE TRIGGER {table}_facts_changed AFTER UPDATE ON {table} "
                   f"FOR EACH ROW BEGIN "
                   f"{stamp('SELECT OLD.customer_id AS id UNION SELECT NEW.customer_id')} END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in FACTS:
        for name in ("added", "removed", "changed"):
            op.execute(f"DROP TRIGGER {table}_facts_{name}" + (f" ON {table}" if postgres else ""))
    for name in ("new", "changed"):
        op.execute(f"DROP TRIGGER customers_facts_{name}" + (" ON customers" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION stamp_fact_customers()")
        op.execute("DROP FUNCTION stamp_customers()")
    with op.batch_alter_table("segments") as batch:
        batch.drop_column("facts_seen_at")
    op.drop_index("ix_customer_fact_stamps_changed_at", table_name="customer_fact_stamps")
    op.drop_table("customer_fact_stamps")
