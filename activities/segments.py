"""Segments in the store: defining them, computing their members set-based
(`activities.segment_sql`), recording who entered and who left, and what
`crm segment show` prints.

A refresh of one segment is one transaction: the customers who meet the rule
now go into a scratch table; the difference with the stored members, both
ways, is recorded as entries and exits at the refresh's time; then the
members become the scratch table. Refreshing twice at the same moment
changes nothing the second time, so a retried activity is harmless.

The daily refresh is incremental: only the candidates
(`activities.segment_sql.candidates`) are evaluated and compared, the
customers whose facts changed since the previous refresh looked (by the
store's clock, less `FACTS_MARGIN`) or whose windows slid over one of their
orders or interactions since the previous refresh's time. Every kind of rule
can be refreshed so. A full refresh recomputes everyone: the first one, after
the rule changed, when asked (`full`, `crm segment refresh --full`) and when
`now` is before the previous refresh.
"""

from __future__ import annotations

import logging
import time as clock
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Column,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.rfm import DEFAULT_WORK_MEM
from activities.rfm_sql import counted, fresh_table, set_local
from activities.segment_sql import candidates, members
from activities.store import Store
from domain import schema
from domain.segments import (
    RefreshResult,
    RuleError,
    SegmentDefinition,
    SegmentPolicy,
    SegmentRefreshAnswer,
    SegmentRefreshRequest,
    check_name,
    parse_rule,
)

log = logging.getLogger("crm.segments")

_scratch = MetaData()
segment_now = Table("segment_now", _scratch,
                    Column("customer_id", String(64), nullable=False, primary_key=True),
                    prefixes=["TEMPORARY"])
segment_candidates = Table("segment_candidates", _scratch,
                           Column("customer_id", String(64), nullable=False, primary_key=True),
                           prefixes=["TEMPORARY"])
member_rows = cast(Table, schema.SegmentMember.__table__)
change_rows = cast(Table, schema.SegmentChange.__table__)

# How much earlier than the previous refresh's start a fact's stamp may be and
# still be looked at: the stamp is its transaction's start, and a transaction
# still open when that refresh read (the RFM sweep, an import) commits later.
FACTS_MARGIN = timedelta(hours=1)


def define_segment(store: Store, policy: SegmentPolicy, definition: SegmentDefinition, *,
                   now: datetime) -> bool:
    """Stores a segment's rule (checked first: `RuleError` says why it is
    refused, and nothing is written). True when it is new, False when an
    existing segment's rule was replaced (its members stay until the next
    refresh)."""
    name = check_name(definition.name)
    parse_rule(definition.rule, policy)
    with store.unit_of_work() as session:
        segment = session.get(schema.Segment, name)
        if segment is None:
            session.add(schema.Segment(name=name, rule=definition.rule,
                                       description=definition.description, defined_at=now,
                                       updated_at=now, size=0))
            return True
        if segment.rule != definition.rule:
            segment.facts_seen_at = None  # members of another rule: recompute them all
        segment.rule = definition.rule
        segment.description = definition.description
        segment.updated_at = now
        return False


def refresh_segment(store: Store, policy: SegmentPolicy, name: str, *, now: datetime,
                    full: bool = False, margin: timedelta = FACTS_MARGIN) -> RefreshResult:
    """Computes the segment's members at `now` and records who entered and
    left: for the candidates only when the previous refresh allows it (see
    the module), for every customer when `full`."""
    started = clock.perf_counter()
    with store.unit_of_work() as session:
        segment = session.get(schema.Segment, name, with_for_update=True)
        if segment is None:
            raise RuleError(f"no segment named {name!r}")
        condition = parse_rule(segment.rule, policy)
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:
            # As the RFM sweep: enough to hash a rule's customers (a NOT IN
            # over a subquery is hashed only if it fits) without spilling.
            set_local(session, "work_mem", DEFAULT_WORK_MEM)
        facts_seen_at = store_clock(session)
        previous, facts_since = segment.refreshed_at, segment.facts_seen_at
        incremental = (not full and previous is not None and facts_since is not None
                       and previous <= now)
        looked_at = None
        among = None
        if incremental:
            assert previous is not None and facts_since is not None
            among = segment_candidates
            fresh_table(session, among)
            looked_at = counted(session, insert(among).from_select(
                ["customer_id"], candidates(condition, since=previous, now=now,
                                            facts_since=facts_since - margin)))
            if postgres:
                session.execute(text(f"ANALYZE {among.name}"))
        at = literal(now, type_=schema.UtcDateTime())
        fresh_table(session, segment_now)
        if postgres and incremental:
            # From here on, each candidate by its key, its orders, contacts and
            # membership by theirs. The cost model would rather read every
            # customer (or member) once and hash the candidates, as the RFM
            # sweep found (activities/rfm.py), which costs more than the rest.
            set_local(session, "enable_seqscan", "off")
        size = counted(session, insert(segment_now).from_select(
            ["customer_id"], members(condition, now, among)))
        if postgres:
            session.execute(text(f"ANALYZE {segment_now.name}"))
        is_member = (select(literal(1)).where(member_rows.c.segment == name,
                                              member_rows.c.customer_id
                                              == segment_now.c.customer_id).exists())
        still_in = (select(literal(1)).where(segment_now.c.customer_id
                                             == member_rows.c.customer_id).exists())
        # The stored members who may have left: all of them, or the candidates.
        looked = [member_rows.c.segment == name, ~still_in]
        if among is not None:
            looked.append(select(literal(1)).where(
                among.c.customer_id == member_rows.c.customer_id).exists())
        entered = counted(session, insert(change_rows).from_select(
            ["segment", "customer_id", "change", "at"],
            select(literal(name), segment_now.c.customer_id, literal("entered"), at)
            .where(~is_member)))
        left = counted(session, insert(change_rows).from_select(
            ["segment", "customer_id", "change", "at"],
            select(literal(name), member_rows.c.customer_id, literal("left"), at)
            .where(*looked)))
        if left:
            session.execute(delete(member_rows).where(*looked)
                            .execution_options(synchronize_session=False))
        if entered:
            session.execute(insert(member_rows).from_select(
                ["segment", "customer_id", "since"],
                select(literal(name), segment_now.c.customer_id, at)
                .where(~is_member)))
        for table in (segment_now, among) if among is not None else (segment_now,):
            session.execute(text(f"DROP TABLE {table.name}"))
        if incremental:
            size = segment.size + entered - left
        segment.size = size
        segment.refreshed_at = now
        segment.facts_seen_at = facts_seen_at
    result = RefreshResult(segment=name, size=size, entered=entered, left=left, at=now,
                           seconds=clock.perf_counter() - started,
                           mode="incremental" if incremental else "full",
                           candidates=looked_at)
    log.info("segment %s (%s): %d members, %d entered, %d left", name, result.mode, size,
             entered, left)
    return result


def store_clock(session: Session) -> datetime:
    """The database's clock, which stamps the customers' facts (migration
    0017): on PostgreSQL the transaction's start, as the stamps are."""
    if session.get_bind().dialect.name == "postgresql":
        now = select(func.now(type_=schema.UtcDateTime()))
    else:  # to the millisecond, where CURRENT_TIMESTAMP has whole seconds
        now = select(literal_column("strftime('%Y-%m-%d %H:%M:%f', 'now')",
                                    type_=schema.UtcDateTime()))
    return session.execute(now).scalar_one()


def segment_names(store: Store) -> list[str]:
    with store.unit_of_work() as session:
        return list(session.scalars(select(schema.Segment.name).order_by(schema.Segment.name)))


@dataclass(frozen=True)
class SegmentView:
    name: str
    description: str
    rule: dict[str, Any]
    size: int
    refreshed_at: datetime | None
    entered: int  # in the last `days`
    left: int
    recent: list[tuple[datetime, str, str]]  # (at, customer, entered|left), newest first


def show_segment(store: Store, name: str, *, now: datetime, days: int = 30,
                 recent: int = 20) -> SegmentView:
    since = now - timedelta(days=days)
    with store.unit_of_work() as session:
        segment = session.get(schema.Segment, name)
        if segment is None:
            raise RuleError(f"no segment named {name!r}")
        counts: dict[str, int] = {change: n for change, n in session.execute(
            select(change_rows.c.change, func.count())
            .where(change_rows.c.segment == name, change_rows.c.at >= since)
            .group_by(change_rows.c.change)).all()}
        latest = [(at, customer, change) for at, customer, change in session.execute(
            select(change_rows.c.at, change_rows.c.customer_id, change_rows.c.change)
            .where(change_rows.c.segment == name)
            .order_by(change_rows.c.at.desc(), change_rows.c.id.desc()).limit(recent)).all()]
        return SegmentView(name=name, description=segment.description, rule=segment.rule,
                           size=segment.size, refreshed_at=segment.refreshed_at,
                           entered=int(counts.get("entered", 0)),
                           left=int(counts.get("left", 0)), recent=latest)


def segment_members(session: Session, name: str) -> set[str]:
    return set(session.scalars(select(member_rows.c.customer_id)
                               .where(member_rows.c.segment == name)))


class SegmentActivities:
    """The daily refresh (the `segments-daily` schedule's `SegmentRefresh`)."""

    def __init__(self, *, store: Store, policy: SegmentPolicy) -> None:
        self.store = store
        self.policy = policy

    @activity.defn
    def refresh_segments(self, request: SegmentRefreshRequest) -> SegmentRefreshAnswer:
        """Every segment named (all of them when none is), each in its own
        transaction; a segment whose stored rule no longer passes the policy
        is skipped and said so, the others still refresh."""
        now = datetime.now(UTC)
        answer = SegmentRefreshAnswer()
        for name in request.names or segment_names(self.store):
            try:
                done = refresh_segment(self.store, self.policy, name, now=now,
                                       full=request.full)
            except RuleError as exc:
                log.warning("segment %s not refreshed: %s", name, exc)
                answer.segments.append({"segment": name, "refused": str(exc)})
                continue
            answer.segments.append({"segment": name, "size": done.size,
                                    "entered": done.entered, "left": done.left,
                                    "mode": done.mode, "seconds": round(done.seconds, 3)})
        if answer.segments and all("refused" in s for s in answer.segments):
            raise ApplicationError("no segment could be refreshed: " + "; ".join(
                f"{s['segment']}: {s['refused']}" for s in answer.segments), non_retryable=True)
        return answer
