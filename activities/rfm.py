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
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.orm import Session

from activities.store import Store
from domain import schema
from domain.lifecycle import RfmPolicy, Tier, local_midnight
from domain.money import to_minor

customers = schema.Customer.__table__
orders = schema.Order.__table__


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
    return query.cte("agg")


def _candidates(previous: Thresholds, current: Thresholds) -> Select[Any]:
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


class RfmSweeper:
    @staticmethod
    def _changed_on(session: Session, day: date) -> int:
        return session.scalar(select(func.count()).select_from(customers)
                              .where(customers.c.tier_changed_on == day)) or 0

    def __init__(self, *, store: Store, policy: RfmPolicy, zone: str,
                 currency: str = "CNY") -> None:
        self.store = store
        self.policy = policy
        self.zone = zone
        self.currency = currency

    def sweep(self, day: date, *, full: bool = False, now: datetime | None = None) -> SweepResult:
        """Writes the tier of the customers whose tier changed on `day` and puts the
        changes that carry a strategy in the tier outbox. Re-running a day is harmless."""
        started = clock.perf_counter()
        now = now or datetime.now(UTC)
        t = Thresholds.for_day(day, self.zone, self.policy)
        with self.store.unit_of_work() as session:
            previous_day = session.scalar(
                select(func.max(schema.RfmSweep.business_day))
                .where(schema.RfmSweep.business_day < day))
            incremental = (not full and previous_day is not None
                           and (day - previous_day).days <= 7)
            only = None
            candidates = None
            if incremental:
                assert previous_day is not None
                only_sq = _candidates(Thresholds.for_day(previous_day, self.zone, self.policy), t)
                only = select(only_sq.c[0])
            agg = _aggregate(t, only)
            new_tier = _tier_expression(agg, t, self.policy, self.currency)
            # Counted rather than taken from rowcount, which SQLite does not
            # report for UPDATE ... FROM.
            changed_before = self._changed_on(session, day)
            outboxed_before = session.scalar(select(func.count()).select_from(
                schema.TierOutbox).where(schema.TierOutbox.business_day == day)) or 0
            session.execute(
                update(customers)
                .where(customers.c.id == agg.c.customer_id)
                .where(customers.c.tier.is_distinct_from(new_tier))
                .values(tier=new_tier, tier_changed_on=day)
                .execution_options(synchronize_session=False)
            )
            # Customers with no order before the day's end have no tier.
            if not incremental:
                session.execute(
                    update(customers)
                    .where(customers.c.tier.is_not(None))
                    .where(~customers.c.id.in_(select(orders.c.customer_id)
                                               .where(orders.c.at < t.end)))
                    .values(tier=None, tier_changed_on=day)
                )
            changed_rows = self._changed_on(session, day) - changed_before
            session.execute(
                insert(schema.TierOutbox).from_select(
                    ["customer_id", "tier", "business_day", "created_at"],
                    select(customers.c.id, customers.c.tier, literal(day), literal(now))
                    .where(customers.c.tier_changed_on == day,
                           customers.c.tier.in_([tier.value for tier in
                                                 self.policy.strategy_tiers]))
                    .where(~select(schema.TierOutbox.id).where(
                        schema.TierOutbox.customer_id == customers.c.id,
                        schema.TierOutbox.business_day == day,
                        schema.TierOutbox.tier == customers.c.tier).exists())
                )
            )
            outboxed = (session.scalar(select(func.count()).select_from(schema.TierOutbox)
                                       .where(schema.TierOutbox.business_day == day)) or 0) \
                - outboxed_before
            existing = session.get(schema.RfmSweep, day)
            if existing is None:
                session.add(schema.RfmSweep(
                    business_day=day, mode="incremental" if incremental else "full",
                    changed=changed_rows, started_at=now, finished_at=datetime.now(UTC)))
            else:
                existing.changed += changed_rows
                existing.finished_at = datetime.now(UTC)
        return SweepResult(business_day=day, mode="incremental" if incremental else "full",
                           candidates=candidates, changed=changed_rows, outboxed=outboxed,
                           seconds=clock.perf_counter() - started)


def customer_tiers(session: Session) -> dict[str, str | None]:
    return dict(session.execute(select(customers.c.id, customers.c.tier)).all())
