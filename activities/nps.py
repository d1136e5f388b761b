"""NPS activities: the survey asked, reminded and closed; the answer recorded
with its category; a detractor's follow-up task for the customer's owner, its
escalation and its completion; survey points told to a loyalty member's
journey; and the period's audience (customers with a purchase or a ticket in
it), each started on its own journey."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, union, update
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import Schedule, ScheduleActionStartWorkflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.journal import record_event
from activities.logs import activity_logger
from activities.message_records import entity_loader
from activities.parts import ActivityParts
from activities.store import Store, refuse_invalid
from activities.store.erasure import Held, Person, held_as_customer
from activities.store.staff import active_manager_above
from domain import limits, schema
from domain.loyalty import Behaviour, membership_workflow_id
from domain.nps import (
    JOURNEY,
    AnswerRecord,
    AnswerRecorded,
    EscalatedTo,
    FollowedUp,
    FollowUpEscalation,
    FollowUpRecord,
    LaunchedPage,
    LaunchPage,
    NpsInput,
    NpsPolicy,
    NpsStage,
    OpenSurvey,
    OwnerHandover,
    PointsTold,
    Respondent,
    SurveyOpened,
    SurveyStep,
    nps_workflow_id,
    period_bounds,
    previous_period,
    respondent,
    survey_id,
)

if TYPE_CHECKING:
    from temporalio.client import Client

    from domain.settings import Settings

log = activity_logger("crm.nps")
OPEN = (NpsStage.asked.value, NpsStage.follow_up.value, NpsStage.escalated.value)


async def start_nps_journey(client: Client, *, task_queue: str, survey: NpsInput) -> str:
    """Starts a customer's survey for a period; once (its id is used once)."""
    workflow_id = nps_workflow_id(survey.customer_id, survey.period)
    try:
        await client.start_workflow("NpsJourney", survey, id=workflow_id, task_queue=task_queue,
                                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError:
        pass
    return workflow_id


def active_customers(session: Session, period: str, *, after: str = "",
                     limit: int | None = None) -> list[str]:
    """The customers with a purchase or a ticket opened in the period (UTC
    days), in id order; those after `after`, at most `limit` of them."""
    start, end = period_bounds(period)
    lo = datetime.combine(start, time.min, UTC)
    hi = datetime.combine(end, time.min, UTC)
    bought = select(schema.Order.customer_id.label("id")).where(
        schema.Order.at >= lo, schema.Order.at < hi, schema.Order.customer_id > after)
    asked = select(schema.Ticket.customer_id.label("id")).where(
        schema.Ticket.created_at >= lo, schema.Ticket.created_at < hi,
        schema.Ticket.customer_id > after)
    found = union(bought, asked).subquery()
    query = select(found.c.id).order_by(found.c.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


class NpsActivities:
    @classmethod
    def from_parts(cls, parts: ActivityParts, policy: NpsPolicy) -> NpsActivities:
        return cls(store=parts.store, policy=policy, client=parts.client,
                   task_queue=parts.task_queue, zone=parts.settings.default_timezone)

    def __init__(self, *, store: Store, policy: NpsPolicy, client: Client | None = None,
                 task_queue: str = "crm-journeys", zone: str = "Asia/Shanghai") -> None:
        self.store = store
        self.policy = policy
        self.client = client
        self.task_queue = task_queue
        self.zone = zone

    @activity.defn
    def load_nps_policy(self) -> NpsPolicy:
        return self.policy

    @activity.defn
    async def launch_nps_page(self, page: LaunchPage) -> LaunchedPage:
        """Starts the surveys of one page of the period's active customers (a
        survey already started is left as it is, so a retried page is harmless)."""
        if self.client is None:
            raise ApplicationError("no Temporal client to start the surveys",
                                   non_retryable=True)
        period = page.period or previous_period(
            datetime.now(UTC).astimezone(ZoneInfo(self.zone)).date(), self.policy.every_months)
        ids = await asyncio.to_thread(self._page, period, page.after, page.limit)
        for customer_id in ids:
            await start_nps_journey(self.client, task_queue=self.task_queue,
                                    survey=NpsInput(customer_id=customer_id, period=period))
        return LaunchedPage(period=period, started=len(ids), last=ids[-1] if ids else page.after)

    def _page(self, period: str, after: str, limit: int) -> list[str]:
        with self.store.unit_of_work() as session:
            return active_customers(session, period, after=after, limit=limit)

    @activity.defn
    def open_nps_survey(self, request: OpenSurvey) -> SurveyOpened:
        """Records the survey; its follow-ups go to the customer's owner (else
        their advisor). It closes `answer_within` after it is asked."""
        s = request.survey
        key = survey_id(s.customer_id, s.period)
        with self.store.unit_of_work() as session:
            row = session.get(schema.NpsSurvey, key)
            if row is not None:  # a retry of an opening that committed
                return SurveyOpened(owner_id=row.owner_id, closes_at=row.closes_at)
            customer = session.get(schema.Customer, s.customer_id)
            if customer is None:
                raise ApplicationError(f"survey {key!r} rejected: unknown customer "
                                       f"{s.customer_id!r}", type="InvalidSurvey",
                                       non_retryable=True)
            owner = customer.owner_id or customer.advisor_id
            closes = request.now + request.answer_within
            session.add(schema.NpsSurvey(
                id=key, customer_id=s.customer_id, period=s.period, owner_id=owner,
                status=NpsStage.asked.value, asked_at=request.now, closes_at=closes))
            record_event(session, key=f"{request.workflow_id}:asked", journey=JOURNEY,
                         entity_id=key, step="asked", at=request.now,
                         detail={"period": s.period, "owner_id": owner})
            return SurveyOpened(owner_id=owner, closes_at=closes)

    @activity.defn
    def record_nps_step(self, request: SurveyStep) -> None:
        with self.store.unit_of_work() as session:
            row = _survey(session, request.survey_id)
            if request.step == "reminded":
                row.reminded_at = row.reminded_at or request.now
            elif request.step == "expired":
                row.status = NpsStage.expired.value
            record_event(session, key=f"{request.workflow_id}:{request.step}", journey=JOURNEY,
                         entity_id=row.id, step=request.step, at=request.now)

    @activity.defn
    def record_nps_answer(self, request: AnswerRecord) -> AnswerRecorded:
        """The answer, once; a detractor's follow-up task for the owner, due
        `follow_up_within` from now (worked out once, here)."""
        refuse_invalid({"reason": limits.text_problem(request.reason, limits.TEXT)})
        kind = respondent(request.score)
        with self.store.unit_of_work() as session:
            row = _survey(session, request.survey_id)
            if row.answered_at is not None:  # a retry of an answer that committed
                return AnswerRecorded(respondent=Respondent(row.respondent or kind.value),
                                      follow_up_due=row.follow_up_due, owner_id=row.owner_id)
            row.answered_at, row.score, row.respondent = request.now, request.score, kind.value
            row.reason, row.category = request.reason, request.category
            due = None
            if kind is Respondent.detractor:
                due = request.now + request.follow_up_within
                row.follow_up_due, row.status = due, NpsStage.follow_up.value
                session.add(schema.Task(
                    key=f"{request.workflow_id}:follow_up", kind="nps_follow_up",
                    entity_kind="nps", entity_id=row.id, assignee_id=row.owner_id, due_at=due,
                    status="open", created_at=request.now))
            else:
                row.status = NpsStage.completed.value
            record_event(session, key=f"{request.workflow_id}:answered", journey=JOURNEY,
                         entity_id=row.id, step="answered", at=request.now,
                         detail={"score": request.score, "respondent": kind.value,
                                 "category": request.category})
            return AnswerRecorded(respondent=kind, follow_up_due=due, owner_id=row.owner_id)

    @activity.defn
    async def credit_survey_points(self, request: SurveyStep) -> PointsTold:
        """Tells the customer's membership journey that they answered (its
        survey points, earned once per survey); False when they are not a
        member or their membership journey is not running."""
        if self.client is None or not self.policy.points_for_answer:
            return PointsTold(told=False)
        from temporalio.service import RPCError

        customer_id = request.survey_id.rsplit("-", 1)[0]
        try:
            await self.client.get_workflow_handle(membership_workflow_id(customer_id)).signal(
                "behaviour", Behaviour(kind="survey", ref=f"nps:{request.survey_id}"))
        except RPCError as err:  # not a member, or the membership has ended
            log.info("survey %s: no points told: %s", request.survey_id, err)
            return PointsTold(told=False)
        return PointsTold(told=True)

    @activity.defn
    def escalate_nps_follow_up(self, request: FollowUpEscalation) -> EscalatedTo:
        key = f"{request.workflow_id}:follow_up_escalated"
        with self.store.unit_of_work() as session:
            row = _survey(session, request.survey_id)
            done = session.scalar(select(schema.Escalation).where(schema.Escalation.key == key))
            if done is not None:
                return EscalatedTo(manager_id=done.to_staff_id)
            owner = session.get(schema.Staff, request.owner_id) if request.owner_id else None
            manager = active_manager_above(session, owner)
            row.status, row.escalated_to = NpsStage.escalated.value, manager.id if manager \
                else None
            session.add(schema.Escalation(
                key=key, journey=JOURNEY, entity_id=row.id, level=1,
                reason="detractor follow-up not done by its deadline",
                from_staff_id=owner.id if owner else None,
                to_staff_id=manager.id if manager else None, at=request.now))
            record_event(session, key=key, journey=JOURNEY, entity_id=row.id,
                         step="follow_up_escalated", at=request.now,
                         detail={"manager_id": manager.id if manager else None})
            return EscalatedTo(manager_id=manager.id if manager else None)

    @activity.defn
    def record_nps_follow_up(self, request: FollowUpRecord) -> FollowedUp:
        """The follow-up done, and whether it was on time."""
        refuse_invalid({"note": limits.text_problem(request.note, limits.TEXT)})
        with self.store.unit_of_work() as session:
            row = _survey(session, request.survey_id)
            if row.followed_up_at is None:
                row.followed_up_at, row.followed_up_by = request.now, request.staff_id
                row.status = NpsStage.completed.value
                session.execute(update(schema.Task).where(
                    schema.Task.key == f"{request.workflow_id}:follow_up",
                    schema.Task.status == "open").values(status="done", closed_at=request.now))
            on_time = row.follow_up_due is not None and row.followed_up_at <= row.follow_up_due
            record_event(session, key=f"{request.workflow_id}:followed_up", journey=JOURNEY,
                         entity_id=row.id, step="followed_up", at=row.followed_up_at,
                         detail={"by": row.followed_up_by, "on_time": on_time,
                                 "note": request.note})
            return FollowedUp(on_time=on_time)

    @activity.defn
    def hand_over_nps_survey(self, request: OwnerHandover) -> EscalatedTo:
        """A deactivated owner's survey (and open follow-up) goes to the
        nearest active manager above them."""
        with self.store.unit_of_work() as session:
            row = _survey(session, request.survey_id)
            if row.owner_id != request.from_staff_id:
                return EscalatedTo(manager_id=row.owner_id)  # a retry
            manager = active_manager_above(session, session.get(schema.Staff,
                                                                request.from_staff_id))
            if manager is None:
                return EscalatedTo(manager_id=None)
            row.owner_id = manager.id
            session.execute(update(schema.Task).where(
                schema.Task.entity_kind == "nps", schema.Task.entity_id == row.id,
                schema.Task.status == "open").values(assignee_id=manager.id))
            record_event(session, key=f"{request.workflow_id}:handover:{request.n}",
                         journey=JOURNEY, entity_id=row.id, step="owner_changed",
                         at=request.now, detail={"from": request.from_staff_id,
                                                 "to": manager.id})
            return EscalatedTo(manager_id=manager.id)


def _survey(session: Session, key: str) -> schema.NpsSurvey:
    row = session.get(schema.NpsSurvey, key)
    if row is None:
        raise ApplicationError(f"unknown survey {key!r}", type="UnknownSurvey",
                               non_retryable=True)
    return row


@entity_loader("nps")
def _survey_for_message(session: Session, key: str) -> dict[str, Any] | None:
    row = session.get(schema.NpsSurvey, key)
    if row is None:
        return None
    customer = session.get(schema.Customer, row.customer_id)
    return {"id": row.id, "period": row.period, "score": row.score, "reason": row.reason,
            "category": row.category, "closes_at": row.closes_at,
            "follow_up_due": row.follow_up_due,
            "customer": {"id": customer.id, "name": customer.name} if customer else None}


def open_roles(session: Session, staff_id: str) -> list[str]:
    """The surveys still open whose follow-ups the staff member owns."""
    return sorted(session.scalars(select(schema.NpsSurvey.id).where(
        schema.NpsSurvey.owner_id == staff_id, schema.NpsSurvey.status.in_(OPEN))))


# The surveys go out at this hour of a period's first day (business zone).
NPS_LAUNCH_HOUR = 10


def schedules(settings: Settings) -> dict[str, Schedule]:
    """`nps-quarterly`: at the start of each survey period (the policy's
    `every_months`: a quarter, or half a year), the surveys for the period that
    ended."""
    from activities.schedules import every_months

    return {"nps-quarterly": every_months(
        settings, ScheduleActionStartWorkflow(
            "NpsLaunch", LaunchPage(), id="nps-launch", task_queue=settings.task_queue),
        months=settings.policy_for("nps", NpsPolicy).every_months, hour=NPS_LAUNCH_HOUR)}


def personal_data(session: Session, person: Person) -> Held:
    """The person's surveys, for erasure: the reasons in their words go;
    scores stay."""
    return held_as_customer(session, person, schema.NpsSurvey.id, {"reason": None})
