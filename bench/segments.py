"""Ten segment rules over the RFM benchmark's customers, beside one RFM sweep
in the same run.

    python -m bench.segments [--customers 1000000] [--orders 5000000]
                             [--day-orders 3000]
                             [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                             [--keep]

Creates a throwaway PostgreSQL database, migrates it and generates the
customers and orders as `bench.rfm` does (`bench.rfm_data`), then what
customers follow (a quarter follow one or two categories) and a tenth of
them with logged contacts. On business day D (today in Asia/Shanghai) it
times:

1. the first full RFM sweep (every tier changes) and the steady full sweep
   (nothing changes), the sweep the segments are held against;
2. the ten rules' first refresh (full), in which every member enters;
3. day D+1: a day's orders (`bench.rfm`'s, 2% dated the day before), a day's
   follows and contacts, a few customers' fields, the RFM sweep of D+1
   (incremental: the day's tiers change); then the ten rules' daily
   refresh at the end of D+1 (incremental: the candidates only);
4. the ten rules recomputed in full at the same moment, the check: they
   must record nobody entering or leaving (and their time is what a daily
   refresh cost before it was incremental).

A day passes here in seconds, on one connection: the refreshes look at facts
stamped since the previous one with no margin (`FACTS_MARGIN` is for the
transactions a real store has open while a refresh reads; this one has
none), or every stamp of the load and the first sweep would count as new.

It prints each rule's members and time, the totals, and the ratios of the
ten rules to one sweep (the goal: the daily refresh of all ten within 2x of
the steady sweep). It exits 1 when the full refresh disagrees with the daily
one, and drops the database at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from activities.rfm import RfmSweeper
from activities.segments import define_segment, refresh_segment
from activities.store import Store, make_engine, migrate
from bench.postgres import autocommit, say, settings_report, throwaway_database
from bench.rfm_data import ZONE, add_days_purchases, data_profile, generate, tier_counts
from domain.lifecycle import RfmPolicy, business_day, local_midnight
from domain.segments import RefreshResult, SegmentDefinition, SegmentPolicy

RULES: dict[str, dict[str, Any]] = {
    # the documents' example: 母婴 3+ times a month and follows 美妆
    "family-and-beauty": {"all": [
        {"orders": {"category": "baby", "within_days": 30, "min_count": 3}},
        {"follows": {"category": "beauty"}}]},
    "baby-buyers-90d": {"orders": {"category": "baby", "within_days": 90}},
    "beauty-spenders": {"orders": {"category": "beauty", "within_days": 180, "min_count": 2,
                                   "min_amount": "300"}},
    # the coupon: bought in the year, nothing in the last 90 days
    "no-repurchase-90d": {"all": [{"orders": {"within_days": 365}},
                                  {"orders": {"within_days": 90, "max_count": 0}}]},
    "vip-spend": {"orders": {"within_days": 365, "min_amount": "2000"}},
    "core-or-potential": {"tier": ["core", "potential"]},
    "drinks-fans-not-buying-tea": {"all": [
        {"follows": {"category": ["tea", "coffee"]}},
        {"not": {"orders": {"category": "tea", "within_days": 180}}}]},
    "wechat-engaged": {"interactions": {"channel": "wechat", "within_days": 90,
                                        "min_count": 2}},
    "favourite-drinks": {"field": {"name": "favourite_category", "in": ["tea", "coffee"]}},
    "new-or-frequent": {"any": [{"tier": "new"},
                                {"orders": {"within_days": 30, "min_count": 5}}]},
}


def add_interests_and_contacts(engine: Engine, *, customers: int, end: datetime) -> None:
    """A quarter of the customers follow one or two categories; a tenth have
    up to four logged contacts over the last 180 days, by one rep."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        # A history, not a day's changes (as `bench.rfm_data.generate`).
        for table in ("customer_interests", "interactions"):
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        conn.execute(text("SELECT setseed(0.17)"))
        conn.execute(text(
            "INSERT INTO staff (id, name, role, regions, product_lines, seniority, active, "
            "timezone, locale, capacity, created_at) VALUES ('bench-rep', 'Bench Rep', 'rep', "
            "'[]', '[]', 1, true, :zone, 'zh-CN', 50, :end)"), {"zone": ZONE, "end": end})
        conn.execute(text("""
            INSERT INTO customer_interests (customer_id, category, source, at)
            SELECT DISTINCT c.id, (ARRAY['beauty','baby','tea','coffee','snacks','home',
                                         'books','sports'])[1 + floor(random() * 8)::int],
                   'app', CAST(:end AS timestamptz) - interval '30 days'
            FROM customers c CROSS JOIN generate_series(1, 2) AS k
            WHERE random() < 0.18
            ON CONFLICT DO NOTHING
        """), {"end": end})
        conn.execute(text("""
            INSERT INTO interactions (key, customer_id, staff_id, channel, at, recorded_at)
            SELECT 'bench-' || c.id || '-' || k, c.id, 'bench-rep',
                   (ARRAY['wechat','phone','email'])[1 + floor(random() * 3)::int],
                   CAST(:end AS timestamptz) - random() * interval '180 days',
                   CAST(:end AS timestamptz)
            FROM (SELECT id FROM customers WHERE random() < 0.1) c
            CROSS JOIN generate_series(1, 4) AS k
            WHERE random() < 0.6
        """), {"end": end})
        for table in ("customer_interests", "interactions"):
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    autocommit(engine, "VACUUM (ANALYZE) customer_interests")
    autocommit(engine, "VACUUM (ANALYZE) interactions")
    with engine.connect() as conn:
        follows, contacts = conn.execute(text(
            "SELECT (SELECT count(*) FROM customer_interests), "
            "(SELECT count(*) FROM interactions)")).one()
    say(f"  {follows:,} follows, {contacts:,} contacts: {time.perf_counter() - t0:.1f} s")


def add_days_interests_and_contacts(engine: Engine, *, customers: int, day_end: datetime,
                                    follows: int, contacts: int, fields: int) -> None:
    """A day's new follows, logged contacts and changed favourite categories
    (the stamps' triggers see them all), for customers drawn at random."""
    pick = f"'cust-' || lpad((1 + floor(random() * {customers}))::text, 7, '0')"
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(0.29)"))
        conn.execute(text(f"""
            INSERT INTO customer_interests (customer_id, category, source, at)
            SELECT DISTINCT {pick}, (ARRAY['beauty','baby','tea','coffee'])
                                    [1 + floor(random() * 4)::int], 'app',
                   CAST(:end AS timestamptz) - interval '6 hours'
            FROM generate_series(1, :n)
            ON CONFLICT DO NOTHING
        """), {"end": day_end, "n": follows})
        conn.execute(text(f"""
            INSERT INTO interactions (key, customer_id, staff_id, channel, at, recorded_at)
            SELECT 'bench-day-' || g, {pick}, 'bench-rep',
                   (ARRAY['wechat','phone'])[1 + floor(random() * 2)::int],
                   CAST(:end AS timestamptz) - random() * interval '23 hours',
                   CAST(:end AS timestamptz) - interval '1 hour'
            FROM generate_series(1, :n) AS g
        """), {"end": day_end, "n": contacts})
        conn.execute(text(f"""
            UPDATE customers SET favourite_category = 'tea'
            WHERE id IN (SELECT {pick} FROM generate_series(1, :n))
        """), {"n": fields})
    autocommit(engine, "ANALYZE customer_interests")
    autocommit(engine, "ANALYZE interactions")


def refresh_all(store: Store, policy: SegmentPolicy, now: datetime, label: str, *,
                full: bool = False) -> list[RefreshResult]:
    results = []
    for name in RULES:
        done = refresh_segment(store, policy, name, now=now, full=full, margin=timedelta(0))
        looked_at = f" ({done.candidates:,} candidates)" if done.candidates is not None else ""
        say(f"  {label} {name:<28} {done.size:>9,} members, {done.entered:>9,} entered, "
            f"{done.left:>7,} left  {done.seconds:6.2f} s  {done.mode}{looked_at}")
        results.append(done)
    return results


def run(args: argparse.Namespace) -> int:
    day = business_day(datetime.now(UTC), ZONE)
    now = local_midnight(day + timedelta(days=1), ZONE)  # the end of day D
    with throwaway_database(args.database_url, args.keep, prefix="crm_bench_segments") as url:
        migrate(url)
        engine = make_engine(url, pool_size=1, max_overflow=0)
        try:
            say(f"migrated; generating {args.customers:,} customers and {args.orders:,} "
                f"orders up to business day D = {day} ({ZONE})")
            generate(engine, customers=args.customers, orders=args.orders, day=day,
                     seed=0.42)
            add_interests_and_contacts(engine, customers=args.customers, end=now)
            data_profile(engine)
            print("\nPostgreSQL settings (server's):")
            for name, value in settings_report(engine):
                print(f"  {name:<32} {value}")
            print()
            store = Store(engine)
            sweeper = RfmSweeper(store=store, policy=RfmPolicy(), zone=ZONE)
            first_sweep = sweeper.sweep(day, full=True)
            say(f"first full RFM sweep: {first_sweep.seconds:.2f} s, "
                f"{first_sweep.changed:,} tiers set ({tier_counts(engine)})")
            autocommit(engine, "VACUUM (ANALYZE) customers")
            steady_sweep = sweeper.sweep(day, full=True)
            say(f"steady full RFM sweep: {steady_sweep.seconds:.2f} s, "
                f"{steady_sweep.changed:,} changed")

            policy = SegmentPolicy()
            for name, rule in RULES.items():
                define_segment(store, policy, SegmentDefinition(name=name, rule=rule), now=now)
            say("first refresh of the ten rules (every member enters)")
            first = refresh_all(store, policy, now, "first ")
            autocommit(engine, "VACUUM (ANALYZE) segment_members")

            next_day = day + timedelta(days=1)
            next_now = local_midnight(next_day + timedelta(days=1), ZONE)
            touched = add_days_purchases(engine, customers=args.customers, day=next_day,
                                         count=args.day_orders, backdated=0.02, seed=0.1)
            add_days_interests_and_contacts(engine, customers=args.customers,
                                            day_end=next_now, follows=args.day_orders // 3,
                                            contacts=args.day_orders // 3,
                                            fields=args.day_orders // 10)
            say(f"D+1 ({next_day}): {args.day_orders:,} orders ({touched:,} customers), "
                f"{args.day_orders // 3:,} follows and contacts, {args.day_orders // 10:,} "
                "favourite categories")
            next_sweep = sweeper.sweep(next_day)
            say(f"RFM sweep of D+1: {next_sweep.seconds:.2f} s ({next_sweep.mode}, "
                f"{next_sweep.changed:,} tiers changed)")
            say("the daily refresh of the ten rules at the end of D+1")
            daily = refresh_all(store, policy, next_now, "daily ")
            say("the ten rules recomputed in full at the same moment (the check)")
            check = refresh_all(store, policy, next_now, "full  ", full=True)
        finally:
            engine.dispose()
    first_s = sum(r.seconds for r in first)
    daily_s = sum(r.seconds for r in daily)
    check_s = sum(r.seconds for r in check)
    disagree = sum(r.entered + r.left for r in check)
    print(f"\nsummary: {args.customers:,} customers, {args.orders:,} orders, "
          f"{len(RULES)} rules (wall time)")
    print(f"  one RFM full sweep, first / steady:        {first_sweep.seconds:8.2f} s / "
          f"{steady_sweep.seconds:.2f} s (the incremental sweep of D+1: "
          f"{next_sweep.seconds:.2f} s)")
    print(f"  ten rules, first refresh (all enter):      {first_s:8.2f} s "
          f"= {first_s / first_sweep.seconds:.2f}x the first sweep")
    ratio = daily_s / steady_sweep.seconds
    print(f"  ten rules, daily refresh of D+1:           {daily_s:8.2f} s "
          f"= {ratio:.2f}x the steady sweep (goal <= 2x: {'met' if ratio <= 2 else 'MISSED'}); "
          f"{sum(r.candidates or 0 for r in daily):,} candidates in all")
    print(f"  ten rules, full recompute of D+1 (check):  {check_s:8.2f} s "
          f"= {check_s / steady_sweep.seconds:.2f}x the steady sweep; entries and exits it "
          f"found that the daily refresh had not: {disagree} (must be 0)")
    print(f"  members in all ten: {sum(r.size for r in check):,}")
    say("done")
    return 1 if disagree else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.segments",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--day-orders", type=int, default=3_000,
                        help="orders recorded on D+1 (a third as many follows and contacts)")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server; a throwaway database is created there")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run(parse_args()))
