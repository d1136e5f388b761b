"""Entering a campaign: who may enter (the re-entry policy), their arms
recorded, their runs started — at launch for the segment's members, and for
an `on_entry` campaign after each segment refresh for the customers who
entered the segment since the campaign last looked.

The campaign keeps the id of the last segment change it enrolled from
(`campaigns.entries_seen`), moved on in the same transaction that records the
new members, so an entry is looked at once: nothing lost, nothing twice. The
campaign's row is locked for that transaction (a launch, a pause and two
enrolments take turns), and the segment's row too, which a refresh holds
while it records entries, so no entry is committed behind the mark. Runs are
started after the commit, for the members entered at the enrolment's time:
a retried enrolment records no one again and starts what is not started yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.store import Store
from domain import schema
from domain.campaigns import (
    HOLDOUT,
    CampaignDefinition,
    CampaignInput,
    CouponTerms,
    Entry,
    Reentry,
    arm,
    campaign_workflow_id,
)

if TYPE_CHECKING:
    from temporalio.client import Client

OFF, ACTIVE, PAUSED = "off", "active", "paused"


def entrants(session: Session, definition: CampaignDefinition, now: datetime,
             among: Iterable[str] | None = None) -> list[tuple[str, int]]:
    """(customer, run number) of the segment's members (or of those `among`
    them) who may enter now: the re-entry policy decides for those who were
    in a run before, and nobody enters while their previous run is still going."""
    m = schema.CampaignMember
    query = select(schema.SegmentMember.customer_id).where(
        schema.SegmentMember.segment == definition.segment)
    if among is not None:
        query = query.where(schema.SegmentMember.customer_id.in_(list(among)))
    members = list(session.scalars(query.order_by(schema.SegmentMember.customer_id)))
    last = {customer: (run, ended) for customer, run, ended in session.execute(
        select(m.customer_id, m.run, m.ended_at).where(m.campaign == definition.name)
        .order_by(m.run)).all()}
    found = []
    for customer in members:
        if customer not in last:
            found.append((customer, 1))
            continue
        run, ended = last[customer]
        if definition.reentry is Reentry.never or ended is None:
            continue
        if definition.reentry is Reentry.after_cooldown and \
                now < ended + timedelta(days=definition.cooldown_days):
            continue
        found.append((customer, run + 1))
    return found


def enter(session: Session, definition: CampaignDefinition, found: list[tuple[str, int]],
          now: datetime) -> dict[str, int]:
    """Records each one's run with the arm a hash puts them in (a hold-out
    member's run ends as it starts); counts per arm."""
    counts: dict[str, int] = {}
    for customer, run in found:
        chosen = arm(definition, customer)
        counts[chosen] = counts.get(chosen, 0) + 1
        session.add(schema.CampaignMember(
            campaign=definition.name, customer_id=customer, run=run, arm=chosen,
            entered_at=now, attributed_until=now + timedelta(days=definition.attribution_days),
            ended_at=now if chosen == HOLDOUT else None,
            outcome="holdout" if chosen == HOLDOUT else None))
    return counts


def segment_mark(session: Session, segment: str) -> int:
    """The id of the segment's last recorded change (0: none yet), locking
    the segment's row so that a refresh recording entries goes first."""
    session.get(schema.Segment, segment, with_for_update=True)
    c = schema.SegmentChange
    return int(session.scalar(select(func.max(c.id)).where(c.segment == segment)) or 0)


def enrol_entrants(store: Store, name: str, *, now: datetime) -> dict[str, int]:
    """For an active on_entry campaign: the customers who entered its segment
    since its mark and are still in it, entered as the re-entry policy lets
    them; the mark moved on. Counts per arm (none for a campaign that is
    off, paused or enters only at launch: its mark stays where it is)."""
    c = schema.SegmentChange
    with store.unit_of_work() as session:
        row = session.get(schema.Campaign, name, with_for_update=True)
        if row is None or row.status != ACTIVE or row.entries_seen is None:
            return {}
        definition = CampaignDefinition.model_validate(row.definition)
        if definition.entry is not Entry.on_entry:
            return {}
        mark = segment_mark(session, definition.segment)
        entered = set(session.scalars(select(c.customer_id).where(
            c.segment == definition.segment, c.change == "entered",
            c.id > row.entries_seen, c.id <= mark)))
        row.entries_seen = mark
        if not entered:
            return {}
        return enter(session, definition, entrants(session, definition, now, entered), now)


def runs_to_start(store: Store, name: str, *, entered_at: datetime
                  ) -> tuple[CampaignDefinition | None, list[tuple[str, str, int]]]:
    """(customer, arm, run) of the runs entered at `entered_at` and not ended."""
    m = schema.CampaignMember
    with store.unit_of_work() as session:
        row = session.get(schema.Campaign, name)
        if row is None:
            return None, []
        definition = CampaignDefinition.model_validate(row.definition)
        found = session.execute(select(m.customer_id, m.arm, m.run).where(
            m.campaign == name, m.entered_at == entered_at, m.ended_at.is_(None),
            m.arm != HOLDOUT).order_by(m.customer_id)).all()
    return definition, [(customer, chosen, run) for customer, chosen, run in found]


async def start_runs(client: Client, *, task_queue: str, definition: CampaignDefinition,
                     entered: list[tuple[str, str, int]], now: datetime) -> int:
    """Starts a run for each (customer, arm, run); one already running is left
    as it is (one run of a campaign at a time). The number started."""
    variants = {v.name: v for v in definition.variants}
    coupon = (CouponTerms.model_validate(definition.coupon.model_dump())
              if definition.coupon else None)
    started = 0
    for customer, chosen, run in entered:
        try:
            await client.start_workflow(
                "CampaignJourney", CampaignInput(
                    campaign=definition.name, customer_id=customer, arm=chosen,
                    steps=definition.steps, templates=variants[chosen].templates
                    if chosen in variants else {},
                    exit_on_conversion=definition.exit_on_conversion, entered_at=now,
                    coupon=coupon, run=run),
                id=campaign_workflow_id(definition.name, customer), task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
            started += 1
        except WorkflowAlreadyStartedError:
            pass
    return started


def on_entry_campaigns(store: Store) -> list[str]:
    """The active campaigns that enrol customers as they enter their segment."""
    with store.unit_of_work() as session:
        rows = session.execute(select(schema.Campaign.name, schema.Campaign.definition).where(
            schema.Campaign.status == ACTIVE, schema.Campaign.entries_seen.is_not(None))
            .order_by(schema.Campaign.name)).all()
    return [name for name, data in rows if data.get("entry") == Entry.on_entry.value]
