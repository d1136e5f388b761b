"""Segments in the store: defining them, computing their members set-based
(`activities.segment_sql`), recording who entered and who left, and what
`crm segment show` prints.

A refresh of one segment is one transaction: the customers who meet the rule
now go into a scratch table; the difference with the stored members, both
ways, is recorded as entries and exits at the refresh's time; then the
members become the scratch table. Refreshing twice at the same moment
changes nothing the second time, so a retried activity is harmless.
"""

from __future__ import annotations

import logging
import time as clock
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Column, MetaData, String, Table, delete, func, insert, literal, select, text
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.rfm import DEFAULT_WORK_MEM
from activities.rfm_sql import counted, fresh_table, set_local
from activities.segment_sql import members
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
member_rows = cast(Table, schema.SegmentMember.__table__)
change_rows = cast(Table, schema.SegmentChange.__table__)


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
        segment.rule = definition.rule
        segment.description = definition.description
        segment.updated_at = now
        return False


def refresh_segment(store: Store, policy: SegmentPolicy, name: str, *,
                    now: datetime) -> RefreshResult:
    """Computes the segment's members at `now` and records who entered and left."""
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
        at = literal(now, type_=schema.UtcDateTime())
        fresh_table(session, segment_now)
        size = counted(session, insert(segment_now).from_select(
            ["customer_id"], members(condition, now)))
        if postgres:
            session.execute(text(f"ANALYZE {segment_now.name}"))
        is_member = (select(literal(1)).where(member_rows.c.segment == name,
                                              member_rows.c.customer_id
                                              == segment_now.c.customer_id).exists())
        still_in = (select(literal(1)).where(segment_now.c.customer_id
                                             == member_rows.c.customer_id).exists())
        entered = counted(session, insert(change_rows).from_select(
            ["segment", "customer_id", "change", "at"],
            select(literal(name), segment_now.c.customer_id, literal("entered"), at)
            .where(~is_member)))
        left = counted(session, insert(change_rows).from_select(
            ["segment", "customer_id", "change", "at"],
            select(literal(name), member_rows.c.customer_id, literal("left"), at)
            .where(member_rows.c.segment == name, ~still_in)))
        if left:
            session.execute(delete(member_rows).where(member_rows.c.segment == name, ~still_in)
                            .execution_options(synchronize_session=False))
        if entered:
            session.execute(insert(member_rows).from_select(
                ["segment", "customer_id", "since"],
                select(literal(name), segment_now.c.customer_id, at)
                .where(~is_member)))
        session.execute(text(f"DROP TABLE {segment_now.name}"))
        segment.size = size
        segment.refreshed_at = now
    result = RefreshResult(segment=name, size=size, entered=entered, left=left, at=now,
                           seconds=clock.perf_counter() - started)
    log.info("segment %s: %d members, %d entered, %d left", name, size, entered, left)
    return result


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
                done = refresh_segment(self.store, self.policy, name, now=now)
            except RuleError as exc:
                log.warning("segment %s not refreshed: %s", name, exc)
                answer.segments.append({"segment": name, "refused": str(exc)})
                continue
            answer.segments.append({"segment": name, "size": done.size,
                                    "entered": done.entered, "left": done.left,
                                    "seconds": round(done.seconds, 3)})
        if answer.segments and all("refused" in s for s in answer.segments):
            raise ApplicationError("no segment could be refreshed: " + "; ".join(
                f"{s['segment']}: {s['refused']}" for s in answer.segments), non_retryable=True)
        return answer
