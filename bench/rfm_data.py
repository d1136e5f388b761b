"""The data `bench.rfm` sweeps, generated in SQL: customers and two years of
orders with skewed counts, recency and amounts; its profile; a day's purchases."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, text

from bench.postgres import autocommit, say
from domain.lifecycle import local_midnight

ZONE = "Asia/Shanghai"
CURRENCY = "CNY"
CATEGORIES = ["tea", "coffee", "snacks", "beauty", "baby", "home", "books", "sports"]
# Generated orders go back this far from the end of day D.
HISTORY_DAYS = 730


def pick_customer(n: int) -> str:
    """SQL for a customer number in 1..n drawn with a skew (density ~ rank^-0.44),
    the ranks scattered over the numbers (a bijection when gcd(prime, n) = 1)."""
    prime = 7919 if n % 7919 else 104729
    return f"1 + (floor({n} * power(random(), 1.8))::bigint * {prime}) % {n}"


def _index_definitions(conn: Any, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that back no constraint."""
    return [tuple(r) for r in conn.execute(text(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "WHERE i.tablename = :t AND i.schemaname = current_schema() "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"),
        {"t": table}).all()]


def _constraints(conn: Any, table: str, kinds: str) -> list[tuple[str, str]]:
    return [tuple(r) for r in conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = CAST(:t AS regclass) AND position(contype in :k) > 0 "
        "ORDER BY contype DESC"),  # p (primary key) before f (foreign keys)
        {"t": table, "k": kinds}).all()]


def generate(engine: Engine, *, customers: int, orders: int, day: date, seed: float) -> None:
    """Customers and orders in SQL. The orders' keys and the secondary indexes of
    both tables are taken off while loading and put back exactly as the
    migrations made them (from their definitions in the catalogue)."""
    end = local_midnight(day + timedelta(days=1), ZONE)
    categories = "ARRAY[" + ",".join(f"'{c}'" for c in CATEGORIES) + "]"
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        order_indexes = _index_definitions(conn, "orders")
        customer_indexes = _index_definitions(conn, "customers")
        order_constraints = _constraints(conn, "orders", "pf")
        for name, _ in order_constraints:
            conn.execute(text(f'ALTER TABLE orders DROP CONSTRAINT "{name}"'))
        for name, _ in order_indexes + customer_indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        # The segments' fact stamps (migration 0017): a loaded history is no
        # change since a segment refresh.
        for table in ("orders", "customers"):
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))

        conn.execute(text("SELECT setseed(:s)"), {"s": seed})
        t0 = time.perf_counter()
        # Who each customer is: when they last bought (active, lapsing or gone),
        # how far back their history goes, their favourite category.
        conn.execute(text(f"""
            CREATE TEMP TABLE bench_profile AS
            SELECT idx, 'cust-' || lpad(idx::text, 7, '0') AS id, gap_days,
                   random() * ({HISTORY_DAYS} - gap_days) AS span_days,
                   ({categories})[1 + floor(random() * {len(CATEGORIES)})::int] AS fav
            FROM (
                SELECT idx, CASE WHEN r < 0.45 THEN least(-ln(1 - random()) * 25, 300)
                                 WHEN r < 0.75 THEN 30 + random() * 220
                                 ELSE 180 + random() * ({HISTORY_DAYS} - 181) END AS gap_days
                FROM (SELECT idx, random() AS r FROM generate_series(1, :n) AS idx) s
            ) g
        """), {"n": customers})
        conn.execute(text("ALTER TABLE bench_profile ADD PRIMARY KEY (idx)"))
        conn.execute(text("ANALYZE bench_profile"))
        say(f"  profiles of {customers:,} customers: {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        # Orders: a customer drawn with a skew (rank^-0.44 density), a time between
        # their last purchase and the start of their history, a log-normal amount.
        conn.execute(text(f"""
            INSERT INTO orders (id, customer_id, amount_minor, currency, category, at,
                                recorded_at)
            SELECT 'ord-' || lpad(o.g::text, 8, '0'), p.id,
                   greatest(500, round(exp(ln(8000) + 0.9 * sqrt(-2 * ln(1 - o.u1))
                                           * cos(2 * pi() * o.u2))))::bigint,
                   '{CURRENCY}',
                   CASE WHEN o.u3 < 0.6 THEN p.fav
                        ELSE ({categories})[1 + floor(o.u4 * {len(CATEGORIES)})::int] END,
                   at, at + o.u5 * interval '10 minutes'
            FROM (
                SELECT g, {pick_customer(customers)} AS idx,
                       random() AS u, random() AS u1, random() AS u2, random() AS u3,
                       random() AS u4, random() AS u5
                FROM generate_series(1, :orders) AS g
            ) o
            JOIN bench_profile p ON p.idx = o.idx
            CROSS JOIN LATERAL (
                SELECT CAST(:end AS timestamptz)
                       - interval '1 second' * floor(86400 * (p.gap_days + o.u * p.span_days))
                       - interval '1 second' AS at
            ) t
        """), {"n": customers, "orders": orders, "end": end})
        say(f"  {orders:,} orders: {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        conn.execute(text("""
            INSERT INTO customers (id, name, locale, timezone, phone, email, created_at,
                                   first_purchase_at, last_purchase_at, order_count,
                                   favourite_category)
            SELECT p.id, 'Customer ' || p.idx, 'zh-CN', :zone,
                   '+86138' || lpad(p.idx::text, 8, '0'), 'c' || p.idx || '@example.com',
                   coalesce(a.first_at, CAST(:end AS timestamptz) - interval '400 days')
                       - random() * interval '60 days',
                   a.first_at, a.last_at, coalesce(a.n, 0),
                   CASE WHEN a.n IS NOT NULL THEN p.fav END
            FROM bench_profile p
            LEFT JOIN (SELECT customer_id, min(at) AS first_at, max(at) AS last_at,
                              count(*) AS n
                       FROM orders GROUP BY customer_id) a ON a.customer_id = p.id
            ORDER BY p.idx
        """), {"zone": ZONE, "end": end})
        say(f"  customers with their figures: {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        for name, definition in order_constraints:
            conn.execute(text(f'ALTER TABLE orders ADD CONSTRAINT "{name}" {definition}'))
        for _, definition in order_indexes + customer_indexes:
            conn.execute(text(definition))
        for table in ("orders", "customers"):
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        conn.execute(text("DROP TABLE bench_profile"))
        say(f"  indexes and constraints back: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    autocommit(engine, "VACUUM (ANALYZE) orders")
    autocommit(engine, "VACUUM (ANALYZE) customers")
    say(f"  VACUUM ANALYZE: {time.perf_counter() - t0:.1f} s")


def data_profile(engine: Engine) -> None:
    with engine.connect() as conn:
        sizes = conn.execute(text(
            "SELECT pg_size_pretty(pg_total_relation_size('orders')), "
            "pg_size_pretty(pg_total_relation_size('customers'))")).one()
        per = conn.execute(text(
            "SELECT count(*) FILTER (WHERE order_count = 0), "
            "percentile_disc(0.5) WITHIN GROUP (ORDER BY order_count), "
            "percentile_disc(0.99) WITHIN GROUP (ORDER BY order_count), max(order_count) "
            "FROM customers")).one()
    say(f"  orders {sizes[0]}, customers {sizes[1]} (with indexes); orders per customer: "
        f"median {per[1]}, p99 {per[2]}, max {per[3]}; never bought: {per[0]:,}")


def tier_counts(engine: Engine) -> str:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT coalesce(tier, '(none)'), count(*) FROM customers GROUP BY 1 "
            "ORDER BY 2 DESC")).all()
    return ", ".join(f"{t} {n:,}" for t, n in rows)


def add_days_purchases(engine: Engine, *, customers: int, day: date, count: int,
                       backdated: float, seed: float) -> int:
    """`count` orders recorded during business day `day` for existing customers
    (drawn with the same skew as the history: frequent buyers buy more), a share
    of them dated the day before; the customers' figures updated as
    `record_purchase` does. Returns how many customers bought."""
    start = local_midnight(day, ZONE)
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(:s)"), {"s": seed})
        conn.execute(text(f"""
            CREATE TEMP TABLE bench_day ON COMMIT DROP AS
            SELECT 'ord-' || :tag || '-' || lpad(g::text, 6, '0') AS id, c.id AS customer_id,
                   greatest(500, round(exp(ln(8000) + 0.9 * sqrt(-2 * ln(1 - random()))
                                           * cos(2 * pi() * random()))))::bigint AS amount_minor,
                   c.favourite_category AS category, r.recorded_at,
                   CASE WHEN random() < :backdated THEN r.recorded_at - interval '1 day'
                        ELSE r.recorded_at - interval '3 minutes' END AS at
            FROM (SELECT g, {pick_customer(customers)} AS idx, random() AS v
                  FROM generate_series(1, :count) g) s
            JOIN customers c ON c.id = 'cust-' || lpad(s.idx::text, 7, '0')
            CROSS JOIN LATERAL (
                SELECT CAST(:start AS timestamptz) + interval '5 minutes'
                       + s.v * interval '23 hours' AS recorded_at
            ) r
        """), {"tag": day.strftime("%Y%m%d"), "count": count, "backdated": backdated,
               "start": start})
        conn.execute(text("""
            INSERT INTO orders (id, customer_id, amount_minor, currency, category, at,
                                recorded_at)
            SELECT id, customer_id, amount_minor, 'CNY', category, at, recorded_at
            FROM bench_day
        """))
        customers = conn.execute(text("""
            UPDATE customers c SET
                last_purchase_at = greatest(c.last_purchase_at, d.last_at),
                first_purchase_at = least(c.first_purchase_at, d.first_at),
                order_count = c.order_count + d.n
            FROM (SELECT customer_id, max(at) AS last_at, min(at) AS first_at, count(*) AS n
                  FROM bench_day GROUP BY customer_id) d
            WHERE c.id = d.customer_id
        """)).rowcount
    autocommit(engine, "ANALYZE orders")
    autocommit(engine, "ANALYZE customers")
    return customers
