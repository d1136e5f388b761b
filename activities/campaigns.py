"""Campaigns in the store: declarations, launching (the audience from the
segment, each customer's arm recorded, a run started for each who is not in
the hold-out and may enter again), what a run asks while it walks its steps,
and the results per arm, set-based."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.campaign_entry import (
    ACTIVE,
    OFF,
    PAUSED,
    enrol_entrants,
    enter,
    entrants,
    on_entry_campaigns,
    runs_to_start,
    segment_mark,
    start_runs,
)
from activities.campaign_results import arm_results
from activities.journal import record_event
from activities.parts import ActivityParts
from activities.store import Store
from activities.store.erasure import Held, Person
from domain import schema
from domain.campaigns import (
    JOURNEY,
    ArmResult,
    CampaignDefinition,
    CampaignError,
    CampaignName,
    CampaignNames,
    CampaignPolicy,
    CampaignStage,
    CampaignState,
    Enrolled,
    EnrolRequest,
    Entry,
    LocalTime,
    NextTime,
    PurchaseCheck,
    PurchaseFound,
    ReplyCheck,
    ReplyFound,
    RunEnded,
    RunReplied,
    check_campaign,
)

if TYPE_CHECKING:
    from temporalio.client import Client


def define_campaign(store: Store, data: Any, *, now: datetime) -> CampaignDefinition:
    """Stores a declaration (checked first: `CampaignError` says why it is
    refused). A new campaign is off; a redefined one keeps its status."""
    definition = check_campaign(data)
    with store.unit_of_work() as session:
        if session.get(schema.Segment, definition.segment) is None:
            raise CampaignError(f"segment: no segment named {definition.segment!r}")
        row = session.get(schema.Campaign, definition.name)
        if row is None:
            session.add(schema.Campaign(name=definition.name,
                                        definition=definition.model_dump(mode="json"),
                                        status=OFF, defined_at=now, updated_at=now))
        else:
            row.definition, row.updated_at = definition.model_dump(mode="json"), now
    return definition


def campaign(session: Session, name: str, *, lock: bool = False
             ) -> tuple[schema.Campaign, CampaignDefinition]:
    row = session.get(schema.Campaign, name, with_for_update=lock)
    if row is None:
        raise CampaignError(f"no campaign named {name!r}")
    return row, CampaignDefinition.model_validate(row.definition)


def set_status(store: Store, name: str, status: str, *, now: datetime) -> None:
    with store.unit_of_work() as session:
        row, _ = campaign(session, name, lock=True)
        row.status, row.updated_at = status, now


async def launch(store: Store, client: Client, *, task_queue: str, name: str,
                 now: datetime) -> dict[str, int]:
    """Enters the segment's members who may enter: each one's arm recorded,
    a run started for each outside the hold-out. Counts per arm. An on_entry
    campaign enrols, from then on, whoever enters the segment after now."""
    with store.unit_of_work() as session:
        row, definition = campaign(session, name, lock=True)
        if row.status == PAUSED:
            raise CampaignError(f"campaign {name!r} is paused: resume it to launch")
        row.status = ACTIVE
        if definition.entry is Entry.on_entry:
            # Read before the members, under the segment's lock: an entry a
            # refresh records after it is the next enrolment's.
            row.entries_seen = segment_mark(session, definition.segment)
        found = entrants(session, definition, now)
        counts = enter(session, definition, found, now)
    _, entered = runs_to_start(store, name, entered_at=now)
    await start_runs(client, task_queue=task_queue, definition=definition, entered=entered,
                     now=now)
    return counts


def results(store: Store, name: str) -> list[ArmResult]:
    """Per arm: the customers who entered, those with an order within the
    attribution window after entering (converted), and its revenue per currency."""
    with store.unit_of_work() as session:
        _, definition = campaign(session, name)
        return arm_results(session, definition)


class CampaignActivities:
    """What a run asks of the store while it walks its steps."""

    @classmethod
    def from_parts(cls, parts: ActivityParts, policy: CampaignPolicy) -> CampaignActivities:
        return cls(store=parts.store, policy=policy, zone=parts.settings.default_timezone,
                   client=parts.client, task_queue=parts.task_queue)

    def __init__(self, *, store: Store, policy: CampaignPolicy, zone: str = "Asia/Shanghai",
                 client: Client | None = None, task_queue: str = "crm-journeys") -> None:
        self.store = store
        self.policy = policy
        self.zone = zone
        self.client = client
        self.task_queue = task_queue

    @activity.defn
    def on_entry_campaigns(self) -> CampaignNames:
        """The active campaigns that enrol customers as they enter their segment."""
        return CampaignNames(campaigns=on_entry_campaigns(self.store))

    @activity.defn
    async def enrol_campaign_entrants(self, request: EnrolRequest) -> Enrolled:
        """Enrols those who entered the campaign's segment since it last looked
        (`activities.campaign_entry`), and starts their runs."""
        if self.client is None:
            raise ApplicationError("no Temporal client to start the runs", non_retryable=True)
        arms = await asyncio.to_thread(enrol_entrants, self.store, request.campaign,
                                       now=request.now)
        definition, entered = await asyncio.to_thread(runs_to_start, self.store,
                                                      request.campaign, entered_at=request.now)
        started = 0 if definition is None else await start_runs(
            self.client, task_queue=self.task_queue, definition=definition, entered=entered,
            now=request.now)
        return Enrolled(campaign=request.campaign, arms=arms, started=started)

    @activity.defn
    def campaign_reply_since(self, check: ReplyCheck) -> ReplyFound:
        """The first contact logged with the customer at or after `since`, if any:
        a reply by another way than the one the `replied` signal reports."""
        with self.store.unit_of_work() as session:
            at = session.scalar(select(schema.Interaction.at).where(
                schema.Interaction.customer_id == check.customer_id,
                schema.Interaction.at >= check.since).order_by(schema.Interaction.at).limit(1))
        return ReplyFound(at=at)

    @activity.defn
    def campaign_purchase_since(self, check: PurchaseCheck) -> PurchaseFound:
        """The customer's first order at or after `since`, if any."""
        with self.store.unit_of_work() as session:
            order_id = session.scalar(select(schema.Order.id).where(
                schema.Order.customer_id == check.customer_id, schema.Order.at >= check.since)
                .order_by(schema.Order.at).limit(1))
        return PurchaseFound(order_id=order_id)

    @activity.defn
    def load_campaign_policy(self) -> CampaignPolicy:
        return self.policy

    @activity.defn
    def campaign_state(self, request: CampaignName) -> CampaignState:
        """Whether the campaign runs (active) or is paused (its touches wait)."""
        with self.store.unit_of_work() as session:
            row = session.get(schema.Campaign, request.campaign)
        return CampaignState(status=row.status if row else None)

    @activity.defn
    def campaign_next_local_time(self, request: LocalTime) -> NextTime:
        """The next `until` (HH:MM) in the customer's time zone after `now`."""
        from datetime import time

        with self.store.unit_of_work() as session:
            customer = session.get(schema.Customer, request.customer_id)
            zone = ZoneInfo(customer.timezone if customer and customer.timezone else self.zone)
        local = request.now.astimezone(zone)
        at = datetime.combine(local.date(), time.fromisoformat(request.until), zone)
        if at <= local:
            at = datetime.combine(local.date() + timedelta(days=1),
                                  time.fromisoformat(request.until), zone)
        return NextTime(at=at.astimezone(UTC))

    @activity.defn
    def record_campaign_reply(self, request: RunReplied) -> None:
        with self.store.unit_of_work() as session:
            record_event(session, key=f"{request.workflow_id}:replied:{request.n}:"
                         f"{request.at.isoformat()}",
                         journey=JOURNEY, entity_id=f"{request.campaign}:{request.customer_id}",
                         step="replied", at=request.at, detail={"channel": request.channel})

    @activity.defn
    def end_campaign_run(self, request: RunEnded) -> None:
        m = schema.CampaignMember
        with self.store.unit_of_work() as session:
            session.execute(update(m).where(
                m.campaign == request.campaign, m.customer_id == request.customer_id,
                m.ended_at.is_(None)).values(ended_at=request.now, outcome=request.outcome.value,
                                              order_id=request.order_id))
            record_event(session, key=f"{request.workflow_id}:{request.outcome.value}:"
                         f"{request.now.isoformat()}", journey=JOURNEY,
                         entity_id=f"{request.campaign}:{request.customer_id}",
                         step=request.outcome.value, at=request.now,
                         detail={"order_id": request.order_id})


def open_roles(session: Session, staff_id: str) -> list[str]:
    """A campaign run gives no one a role."""
    return []


__all__ = ["ACTIVE", "OFF", "PAUSED", "CampaignActivities", "CampaignStage", "define_campaign",
           "launch", "results", "set_status"]


def personal_data(session: Session, person: Person) -> Held:
    """The person's campaign runs, for erasure (a run keeps no free text)."""
    if person.customer_id is None:
        return Held()
    return Held(ids=[f"{name}-{person.customer_id}" for name in session.scalars(
        select(schema.CampaignMember.campaign).distinct()
        .where(schema.CampaignMember.customer_id == person.customer_id))])
