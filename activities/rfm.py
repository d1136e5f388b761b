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
beyond the migrations: bench/README.md (`python -m bench.rfm`). The statements
themselves are in `activities.rfm_sql`.
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, insert, literal, select, text, update
from sqlalchemy.orm import Session
from temporalio.client import Schedule, ScheduleActionStartWorkflow

from activities.journal import record_event
from activities.rfm_sql import (
    Thresholds,
    all_changes,
    candidate_changes,
    candidate_changes_lateral,
    candidates_since,
    counted,
    customers,
    fresh_table,
    rfm_candidates,
    rfm_changes,
    set_local,
)
from activities.store import Store
from domain import schema
from domain.lifecycle import RfmPolicy
from domain.settings import Settings

# The sweep's own work_mem on PostgreSQL (SET LOCAL): enough to hash a day's
# candidates and the customer join without spilling, not so much that the
# planner trades a streamed aggregate over an index for a hash of every
# customer (see bench/README.md).
DEFAULT_WORK_MEM = "64MB"
# The sweep's own journal entries, apart from every customer journey's funnel.
SWEEP_JOURNAL = "rfm_sweep"


@dataclass(frozen=True)
class SweepResult:
    business_day: date
    mode: str
    candidates: int | None
    changed: int
    outboxed: int
    seconds: float


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
                set_local(session, "work_mem", self.work_mem)
            previous_day = session.scalar(
                select(func.max(schema.RfmSweep.business_day))
                .where(schema.RfmSweep.business_day < day))
            incremental = (not full and previous_day is not None
                           and (day - previous_day).days <= 7)
            candidates = None
            if incremental:
                assert previous_day is not None
                fresh_table(session, rfm_candidates)
                previous = Thresholds.for_day(previous_day, self.zone, self.policy)
                found = candidates_since(previous, t)
                candidates = counted(session, insert(rfm_candidates).from_select(
                    ["customer_id"], select(found.c[0])))
                if postgres:
                    session.execute(text(f"ANALYZE {rfm_candidates.name}"))
                changes = (candidate_changes_lateral if postgres else candidate_changes)(
                    t, self.policy, self.currency)
            else:
                changes = all_changes(t, self.policy, self.currency)
            fresh_table(session, rfm_changes)
            if postgres and not incremental:
                # The whole population, grouped in customer order straight off
                # the covering index. ANALYZE's sample of orders undercounts
                # the customers who have them (about half, at a million), and
                # on that estimate the planner would hash them all instead,
                # which takes twice as long (see bench/README.md).
                hashagg = session.execute(
                    select(func.current_setting("enable_hashagg"))).scalar_one()
                set_local(session, "enable_hashagg", "off")
            changed_rows = counted(
                session, insert(rfm_changes).from_select(["customer_id", "tier"], changes))
            if postgres and not incremental:
                set_local(session, "enable_hashagg", hashagg)
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
                        set_local(session, "enable_seqscan", "off")
                session.execute(
                    update(customers)
                    .where(customers.c.id == rfm_changes.c.customer_id)
                    .values(tier=rfm_changes.c.tier, tier_changed_on=day)
                    .execution_options(synchronize_session=False)
                )
                if postgres and incremental:
                    set_local(session, "enable_seqscan", seqscan)
                outboxed = counted(session, insert(schema.TierOutbox).from_select(
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


def schedules(settings: Settings) -> dict[str, Schedule]:
    """`rfm-daily`: the sweep at the nightly hour (02:00 by default) in the
    business time zone."""
    from activities.schedules import daily

    return {"rfm-daily": daily(settings, ScheduleActionStartWorkflow(
        "RfmSweep", "", id="rfm-sweep", task_queue=settings.task_queue))}
