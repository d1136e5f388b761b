"""The daily RFM sweep: every customer's tier, set-based in SQL.

The rule is `domain.lifecycle.rfm_tier`. Recency is counted in whole business
days; rather than converting every order's time to a local date in SQL (which
PostgreSQL and SQLite do differently), the sweep turns each threshold into the
UTC instant of a local midnight, so every test is a timestamp comparison on an
indexed column.

A full sweep recomputes everyone. The daily (incremental) sweep recomputes
only the customers whose tier can have changed since the previous sweep: a
purchase since then, an order that left the trailing window, recency that
crossed 30/90/180 days or a first purchase that stopped being new.

Figures at scale (1M customers, 5M orders) and the indexes the sweep wants
beyond the migrations: bench/README.md (`python -m bench.rfm`).
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Column,
    CursorResult,
    Executable,
    MetaData,
    Select,
    String,
    Subquery,
    Table,
    and_,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    union,
    update,
)
from sqlalchemy.orm import Session

from activities.journal import record_event
from activities.store import Store
from domain import schema
from domain.lifecycle import RfmPolicy, Tier, local_midnight
from domain.money import to_minor

# Both are Tables (declared models); the ORM types `__table__` as the
# FromClause it may be for other mappings, which `update()` does not take.
customers = cast(Table, schema.Customer.__table__)
orders = cast(Table, schema.Order.__table__)

# The sweep's own work_mem on PostgreSQL (SET LOCAL): enough to hash a day's
# candidates and the customer join without spilling, not so much that the
# planner trades a streamed aggregate over an index for a hash of every
# customer (see bench/README.md).
DEFAULT_WORK_MEM = "64MB"
# SQLAlchemy keeps an INSERT's row count only when asked.
COUNTED = {"preserve_rowcount": True}
# The sweep's own journal entries, apart from every customer journey's funnel.
SWEEP_JOURNAL = "rfm_sweep"


# Scratch tables of one sweep (temporary: private to its connection, created and
# dropped inside the sweep's transaction).
_scratch = MetaData()
rfm_candidates = Table("rfm_candidates", _scratch,
                       Column("customer_id", String(64), nullable=False),
                       prefixes=["TEMPORARY"])
rfm_changes = Table("rfm_changes", _scratch,
                    Column("customer_id", String(64), nullable=False),
                    Column("tier", String(16)),
                    prefixes=["TEMPORARY"])


@dataclass(frozen=True)
class Thresholds:
    """The local-midnight instants a business day's rule compares against."""

    end: datetime  # orders before this count (end of the business day)
    window_start: datetime  # F and M count orders from here
    core: datetime  # R < 30 days  <=>  last purchase at or after this
    potential: datetime
    dormant: datetime  # R >= 180 days  <=>  last purchase before this
    new: datetime  # first purchase within 30 days  <=>  at or after this

    @classmethod
    def for_day(cls, day: date, zone: str, p: RfmPolicy) -> Thresholds:
        def midnight(days_back: int) -> datetime:
            return local_midnight(day - timedelta(days=days_back), zone)

        return cls(
            end=local_midnight(day + timedelta(days=1), zone),
            window_start=midnight(p.window_days - 1),
            core=midnight(p.core_recency_days - 1),
            potential=midnight(p.potential_recency_days - 1),
            dormant=midnight(p.dormant_recency_days - 1),
            new=midnight(p.new_within_days - 1),
        )


@dataclass(frozen=True)
class SweepResult:
    business_day: date
    mode: str
    candidates: int | None
    changed: int
    outboxed: int
    seconds: float


def _tier_expression(agg: Any, t: Thresholds, p: RfmPolicy, currency: str) -> Any:
    core_m = to_minor(p.core_monetary, currency)
    potential_m = to_minor(p.potential_monetary, currency)
    dormant_m = to_minor(p.dormant_monetary, currency)
    return case(
        (agg.c.last_at.is_(None), None),
        (and_(agg.c.last_at >= t.core, agg.c.f >= p.core_frequency, agg.c.m >= core_m),
         literal(Tier.core.value)),
        (and_(agg.c.last_at >= t.potential, agg.c.f >= p.potential_frequency,
              agg.c.m >= potential_m), literal(Tier.potential.value)),
        (agg.c.first_at >= t.new, literal(Tier.new.value)),
        (and_(agg.c.last_at < t.dormant, agg.c.f >= p.dormant_frequency, agg.c.m >= dormant_m),
         literal(Tier.dormant.value)),
        (or_(agg.c.last_at < t.dormant, agg.c.f == 0), literal(Tier.lost.value)),
        else_=literal(Tier.regular.value),
    )


def _aggregate(t: Thresholds, only: Select[Any] | None) -> Any:
    in_window = orders.c.at >= t.window_start
    query = (
        select(
            orders.c.customer_id.label("customer_id"),
            func.max(orders.c.at).label("last_at"),
            func.min(orders.c.at).label("first_at"),
            func.sum(case((in_window, 1), else_=0)).label("f"),
            func.sum(case((in_window, orders.c.amount_minor), else_=0)).label("m"),
        )
        .where(orders.c.at < t.end)
        .group_by(orders.c.customer_id)
    )
    if only is not None:
        query = query.where(orders.c.customer_id.in_(only))
    # A subquery, not a CTE: a statement that starts with WITH gets no row count
    # from pysqlite.
    return query.subquery("agg")


def _all_changes(t: Thresholds, p: RfmPolicy, currency: str) -> Select[Any]:
    """(customer id, new tier) of every customer whose tier differs from the
    stored one: one pass over the orders, grouped by customer (in customer
    order where an index on (customer_id, at) carries the amount too)."""
    agg = _aggregate(t, None)
    new_tier = _tier_expression(agg, t, p, currency)
    return (select(customers.c.id, new_tier)
            .select_from(customers.outerjoin(agg, agg.c.customer_id == customers.c.id))
            .where(customers.c.tier.is_distinct_from(new_tier)))


def _candidate_changes(t: Thresholds, p: RfmPolicy, currency: str) -> Select[Any]:
    """The same for the candidates only (SQLite, whose planner looks each one up)."""
    agg = _aggregate(t, select(rfm_candidates.c.customer_id))
    new_tier = _tier_expression(agg, t, p, currency)
    return (select(customers.c.id, new_tier)
            .select_from(customers.join(rfm_candidates,
                                        rfm_candidates.c.customer_id == customers.c.id)
                         .outerjoin(agg, agg.c.customer_id == customers.c.id))
            .where(customers.c.tier.is_distinct_from(new_tier)))


def _candidate_changes_lateral(t: Thresholds, p: RfmPolicy, currency: str) -> Select[Any]:
    """The same on PostgreSQL, one candidate at a time (LATERAL): the customer by
    its key, its orders by (customer_id, at). Written so, the cost follows the
    day's candidates; as a join, the planner may well prefer to read every
    customer once, which costs more than the whole incremental sweep should."""
    # In key order (a sorted subquery is not flattened), so that neighbouring
    # candidates share index pages.
    candidate = (select(rfm_candidates.c.customer_id)
                 .order_by(rfm_candidates.c.customer_id).subquery("candidate"))
    in_window = orders.c.at >= t.window_start
    figures = (
        select(
            customers.c.id.label("customer_id"),
            customers.c.tier.label("tier"),
            func.max(orders.c.at).label("last_at"),
            func.min(orders.c.at).label("first_at"),
            func.sum(case((in_window, 1), else_=0)).label("f"),
            func.sum(case((in_window, orders.c.amount_minor), else_=0)).label("m"),
        )
        .select_from(customers.outerjoin(
            orders, and_(orders.c.customer_id == customers.c.id, orders.c.at < t.end)))
        .where(customers.c.id == candidate.c.customer_id)
        .group_by(customers.c.id, customers.c.tier)
        .lateral("agg")
    )
    new_tier = _tier_expression(figures, t, p, currency)
    return (select(figures.c.customer_id, new_tier)
            .select_from(candidate.join(figures, true()))
            .where(figures.c.tier.is_distinct_from(new_tier)))


def _candidates(previous: Thresholds, current: Thresholds) -> Subquery:
    """Customers whose tier can differ between two consecutive sweeps."""
    crossing = [
        # recency crossed a threshold: last purchase between the two days' cut-offs
        select(customers.c.id).where(customers.c.last_purchase_at >= cut_prev,
                                     customers.c.last_purchase_at < cut_now)
        for cut_prev, cut_now in ((previous.core, current.core),
                                  (previous.potential, current.potential),
                                  (previous.dormant, current.dormant),
                                  (previous.window_start, current.window_start))
    ]
    return union(
        # bought since the previous sweep (or a purchase reported late, dated before it)
        select(orders.c.customer_id).where(orders.c.recorded_at >= previous.end),
        select(orders.c.customer_id).where(orders.c.at >= previous.end,
                                           orders.c.at < current.end),
        # an order left the trailing window
        select(orders.c.customer_id).where(orders.c.at >= previous.window_start,
                                           orders.c.at < current.window_start),
        # the first purchase stopped being new
        select(customers.c.id).where(customers.c.first_purchase_at >= previous.new,
                                     customers.c.first_purchase_at < current.new),
        *crossing,
    ).subquery()


def _counted(session: Session, statement: Executable) -> int:
    """Runs an INSERT or UPDATE and returns how many rows it wrote."""
    result = session.execute(statement, execution_options=COUNTED)
    # What a DML statement returns is a CursorResult, which has the count;
    # Session.execute is typed with the Result every statement returns.
    return cast("CursorResult[Any]", result).rowcount


def _set_local(session: Session, setting: str, value: str) -> None:
    """SET LOCAL on PostgreSQL: until the sweep's transaction ends."""
    session.execute(select(func.set_config(setting, value, True)))


def _fresh(session: Session, table: Table) -> None:
    # pysqlite runs DDL outside the transaction until the first write, so a
    # scratch table can outlive a sweep that failed on the same connection.
    session.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
    table.create(session.connection())


class RfmSweeper:
    """The sweep works in three set-based steps inside one transaction:

    1. (incremental only) the candidates: customers whose tier can have changed
       since the previous sweep, into a scratch table;
    2. the changes: every customer (or candidate) joined to its order figures,
       keeping only those whose tier differs from the stored one, into a
       scratch table; a customer with no order before the day's end gets no
       tier (the left join leaves its figures empty);
    3. the writes, driven by the (usually small) changes table: the customers'
       tier and the date it changed, and the tier outbox.

    Driving the writes from the changes rather than from the whole population
    keeps a steady-state sweep to one read of the orders; and the planner sees
    the true number of changes (the scratch tables are analysed) instead of
    statistics that the sweep's own UPDATE has just made stale.

    On PostgreSQL the sweep's transaction sets `work_mem` (None: the server's)."""

    def __init__(self, *, store: Store, policy: RfmPolicy, zone: str,
                 currency: str = "CNY", work_mem: str | None = DEFAULT_WORK_MEM) -> None:
        self.store = store
        self.policy = policy
        self.zone = zone
        self.currency = currency
        self.work_mem = work_mem

    def sweep(self, day: date, *, full: bool = False, now: datetime | None = None,
              call: str | None = None) -> SweepResult:
        """Writes the tier of the customers whose tier changed on `day` and puts the
        changes that carry a strategy in the tier outbox. Re-running a day is harmless.

        `call` names the activity call across its retries: its result is kept
        with the sweep, and a retry after the sweep committed answers that
        result again, rather than a second run's "0 changed" (or another
        day's figures, when the day is today and midnight passed meanwhile)."""
        started = clock.perf_counter()
        now = now or datetime.now(UTC)
        t = Thresholds.for_day(day, self.zone, self.policy)
        with self.store.unit_of_work() as session:
            if call is not None:
                done = recorded_sweep(session, call)
                if done is not None:
                    return done
            postgres = session.get_bind().dialect.name == "postgresql"
            if postgres and self.work_mem:
                _set_local(session, "work_mem", self.work_mem)
            previous_day = session.scalar(
                select(func.max(schema.RfmSweep.business_day))
                .where(schema.RfmSweep.business_day < day))
            incremental = (not full and previous_day is not None
                           and (day - previous_day).days <= 7)
            candidates = None
            if incremental:
                assert previous_day is not None
                _fresh(session, rfm_candidates)
                found = _candidates(Thresholds.for_day(previous_day, self.zone, self.policy), t)
                candidates = _counted(session, insert(rfm_candidates).from_select(
                    ["customer_id"], select(found.c[0])))
                if postgres:
                    session.execute(text(f"ANALYZE {rfm_candidates.name}"))
                changes = (_candidate_changes_lateral if postgres else _candidate_changes)(
                    t, self.policy, self.currency)
            else:
                changes = _all_changes(t, self.policy, self.currency)
            _fresh(session, rfm_changes)
            if postgres and not incremental:
                # The whole population, grouped in customer order straight off
                # the covering index. ANALYZE's sample of orders undercounts
                # the customers who have them (about half, at a million), and
                # on that estimate the planner would hash them all instead,
                # which takes twice as long (see bench/README.md).
                hashagg = session.execute(
                    select(func.current_setting("enable_hashagg"))).scalar_one()
                _set_local(session, "enable_hashagg", "off")
            changed_rows = _counted(
                session, insert(rfm_changes).from_select(["customer_id", "tier"], changes))
            if postgres and not incremental:
                _set_local(session, "enable_hashagg", hashagg)
            outboxed = 0
            if changed_rows:
                if postgres:
                    session.execute(text(f"ANALYZE {rfm_changes.name}"))
                    if incremental:
                        # Each change by the customer's key. The cost model
                        # would rather read every customer once and hash the
                        # day's few thousand changes, which alone costs more
                        # than the rest of the incremental sweep.
                        seqscan = session.execute(
                            select(func.current_setting("enable_seqscan"))).scalar_one()
                        _set_local(session, "enable_seqscan", "off")
                session.execute(
                    update(customers)
                    .where(customers.c.id == rfm_changes.c.customer_id)
                    .values(tier=rfm_changes.c.tier, tier_changed_on=day)
                    .execution_options(synchronize_session=False)
                )
                if postgres and incremental:
                    _set_local(session, "enable_seqscan", seqscan)
                outboxed = _counted(session, insert(schema.TierOutbox).from_select(
                    ["customer_id", "tier", "business_day", "created_at"],
                    select(rfm_changes.c.customer_id, rfm_changes.c.tier, literal(day),
                           literal(now))
                    .where(rfm_changes.c.tier.in_([tier.value for tier in
                                                   self.policy.strategy_tiers]))
                    .where(~select(schema.TierOutbox.id).where(
                        schema.TierOutbox.customer_id == rfm_changes.c.customer_id,
                        schema.TierOutbox.business_day == day,
                        schema.TierOutbox.tier == rfm_changes.c.tier).exists())
                ))
            for table in (rfm_changes, rfm_candidates) if incremental else (rfm_changes,):
                session.execute(text(f"DROP TABLE {table.name}"))
            existing = session.get(schema.RfmSweep, day)
            if existing is None:
                session.add(schema.RfmSweep(
                    business_day=day, mode="incremental" if incremental else "full",
                    changed=changed_rows, started_at=now, finished_at=datetime.now(UTC)))
            else:
                existing.changed += changed_rows
                existing.finished_at = datetime.now(UTC)
            result = SweepResult(business_day=day, mode="incremental" if incremental else "full",
                                 candidates=candidates, changed=changed_rows, outboxed=outboxed,
                                 seconds=clock.perf_counter() - started)
            if call is not None:
                record_event(session, key=_sweep_key(call), journey=SWEEP_JOURNAL,
                             entity_id=day.isoformat(), step="rfm_swept", at=now,
                             detail={"recorded_by": call, "result": {
                                 "business_day": day.isoformat(), "mode": result.mode,
                                 "candidates": candidates, "changed": changed_rows,
                                 "outboxed": outboxed, "seconds": result.seconds}})
        return result


def _sweep_key(call: str) -> str:
    return f"rfm_sweep:{call}"


def recorded_sweep(session: Session, call: str) -> SweepResult | None:
    """What the sweep named `call` did, if one of its attempts committed."""
    detail = session.scalar(select(schema.JourneyEvent.detail)
                            .where(schema.JourneyEvent.key == _sweep_key(call)))
    if not detail or detail.get("recorded_by") != call or "result" not in detail:
        return None
    done = detail["result"]
    return SweepResult(business_day=date.fromisoformat(done["business_day"]), mode=done["mode"],
                       candidates=done["candidates"], changed=done["changed"],
                       outboxed=done["outboxed"], seconds=done["seconds"])


def customer_tiers(session: Session) -> dict[str, str | None]:
    return dict(session.execute(select(customers.c.id, customers.c.tier)).all())
