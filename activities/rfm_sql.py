"""The statements of the RFM sweep (`activities.rfm`): the thresholds of a
business day, the tier as a SQL expression, the customers whose tier can have
changed, and the scratch tables a sweep fills."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
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
    literal,
    or_,
    select,
    text,
    true,
    union,
)
from sqlalchemy.orm import Session

from domain import schema
from domain.lifecycle import RfmPolicy, Tier, local_midnight
from domain.money import to_minor

# Both are Tables (declared models); the ORM types `__table__` as the
# FromClause it may be for other mappings, which `update()` does not take.
customers = cast(Table, schema.Customer.__table__)
orders = cast(Table, schema.Order.__table__)

# SQLAlchemy keeps an INSERT's row count only when asked.
COUNTED = {"preserve_rowcount": True}


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


def tier_expression(agg: Any, t: Thresholds, p: RfmPolicy, currency: str) -> Any:
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


def aggregate(t: Thresholds, only: Select[Any] | None) -> Any:
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


def all_changes(t: Thresholds, p: RfmPolicy, currency: str) -> Select[Any]:
    """(customer id, new tier) of every customer whose tier differs from the
    stored one: one pass over the orders, grouped by customer (in customer
    order where an index on (customer_id, at) carries the amount too)."""
    agg = aggregate(t, None)
    new_tier = tier_expression(agg, t, p, currency)
    return (select(customers.c.id, new_tier)
            .select_from(customers.outerjoin(agg, agg.c.customer_id == customers.c.id))
            .where(customers.c.tier.is_distinct_from(new_tier)))


def candidate_changes(t: Thresholds, p: RfmPolicy, currency: str) -> Select[Any]:
    """The same for the candidates only (SQLite, whose planner looks each one up)."""
    agg = aggregate(t, select(rfm_candidates.c.customer_id))
    new_tier = tier_expression(agg, t, p, currency)
    return (select(customers.c.id, new_tier)
            .select_from(customers.join(rfm_candidates,
                                        rfm_candidates.c.customer_id == customers.c.id)
                         .outerjoin(agg, agg.c.customer_id == customers.c.id))
            .where(customers.c.tier.is_distinct_from(new_tier)))


def candidate_changes_lateral(t: Thresholds, p: RfmPolicy, currency: str) -> Select[Any]:
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
    new_tier = tier_expression(figures, t, p, currency)
    return (select(figures.c.customer_id, new_tier)
            .select_from(candidate.join(figures, true()))
            .where(figures.c.tier.is_distinct_from(new_tier)))


def candidates_since(previous: Thresholds, current: Thresholds) -> Subquery:
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


def counted(session: Session, statement: Executable) -> int:
    """Runs an INSERT or UPDATE and returns how many rows it wrote."""
    result = session.execute(statement, execution_options=COUNTED)
    # What a DML statement returns is a CursorResult, which has the count;
    # Session.execute is typed with the Result every statement returns.
    return cast("CursorResult[Any]", result).rowcount


def set_local(session: Session, setting: str, value: str) -> None:
    """SET LOCAL on PostgreSQL: until the sweep's transaction ends."""
    session.execute(select(func.set_config(setting, value, True)))


def fresh_table(session: Session, table: Table) -> None:
    # pysqlite runs DDL outside the transaction until the first write, so a
    # scratch table can outlive a sweep that failed on the same connection.
    session.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
    table.create(session.connection())
