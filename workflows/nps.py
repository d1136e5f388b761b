"""NpsJourney: one customer's NPS survey for a period, and what follows a low score.

The customer is asked (a reminder: it goes through the send path's quiet
hours, with no frequency cap) how likely they are to recommend us, 0 to 10,
with an optional reason; reminded once after 3 days; the survey closes 14
days after it was asked. A detractor (0–6) gets the owner a follow-up task
due within 2 days; not done by then, it is escalated to the owner's manager,
and the journey waits on until it is logged. A passive or promoter is
thanked. A loyalty member earns the survey points for answering. A reason
that contains a word of a policy category is tagged with that category.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.journeys import Decision
    from domain.messaging import MessageClass, Recipient
    from domain.nps import (
        JOURNEY,
        MAX_SCORE,
        Answer,
        AnswerRecord,
        AnswerRecorded,
        EscalatedTo,
        FollowedUp,
        FollowUpEscalation,
        FollowUpRecord,
        LaunchedPage,
        LaunchPage,
        LogFollowUp,
        NpsInput,
        NpsPolicy,
        NpsStage,
        NpsStatus,
        OpenSurvey,
        OwnerHandover,
        PointsTold,
        Respondent,
        SurveyOpened,
        SurveyStep,
        reason_category,
        survey_id,
    )

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    CRM_OWNER_ID,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    STORE_RETRY,
    Agenda,
    Deadline,
    Due,
    Inbound,
    Journey,
    Plan,
    answering,
    call,
    moves,
    start_input,
)

FOLLOWING_UP = (NpsStage.follow_up, NpsStage.escalated)
ENDS = (NpsStage.completed, NpsStage.expired)


def answer_window(policy: NpsPolicy) -> Deadline:
    return Deadline("survey_closed", "answer", within=policy.answer_within,
                    reminder_before=policy.answer_within - policy.reminder_after,
                    reminder_step="survey_reminder", on_miss="close the survey", sla=False)


def follow_up(policy: NpsPolicy) -> Deadline:
    return Deadline("follow_up_missed", "detractor follow-up", within=policy.follow_up_within,
                    on_miss="escalate to the owner's manager")


def plan(policy: NpsPolicy | None = None) -> Plan:
    """A survey with a reminder after 3 days, closed after 14; a detractor's
    follow-up by the owner within 2 days, then the owner's manager."""
    policy = policy or NpsPolicy()
    stage = NpsStage
    return Plan(
        journey=JOURNEY,
        parts=(answer_window(policy), follow_up(policy)),
        start=stage.asked,
        transitions=moves(
            (stage.asked, "survey_closed", stage.expired),
            (stage.asked, "answer", stage.completed),
            (stage.asked, "answer", stage.follow_up),
            (stage.follow_up, "follow_up_missed", stage.escalated),
            (FOLLOWING_UP, "log_follow_up", stage.completed),
        ),
        ends=ENDS,
    )


@dataclass
class NpsState:
    customer_id: str
    period: str
    stage: NpsStage = NpsStage.asked
    owner_id: str | None = None
    closes_at: datetime | None = None
    reminded: bool = False
    score: int | None = None
    respondent: Respondent | None = None
    reason: str | None = None
    category: str | None = None
    follow_up_due: datetime | None = None
    followed_up_at: datetime | None = None
    on_time: bool | None = None
    escalated_to: str | None = None
    counters: dict[str, int] = field(default_factory=dict)


@workflow.defn(name="NpsJourney", failure_exception_types=[pydantic.ValidationError])
class NpsJourney(Journey):
    journey = JOURNEY
    entity_kind = "nps"
    signals = {"answer": Answer, "log_follow_up": LogFollowUp}
    planned = staticmethod(plan)

    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.survey = s = start_input(args, NpsInput)
        self.state = NpsState(customer_id=s.customer_id, period=s.period)
        self.policy: NpsPolicy = s.policy or NpsPolicy()
        self._setup_journey(survey_id(s.customer_id, s.period), self.state.counters,
                            plan(self.policy))

    @workflow.run
    async def run(self, *args: Any) -> NpsStatus:
        """Takes one `NpsInput`."""
        s, survey = self.state, self.survey
        if survey.policy is None:
            self.policy = await call("load_nps_policy", result_type=NpsPolicy)
            self.plan = plan(self.policy)
        self._upsert({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: s.customer_id})
        try:
            opened: SurveyOpened = await call("open_nps_survey", OpenSurvey(
                survey=survey.model_copy(update={"policy": None}), workflow_id=self.workflow_id,
                answer_within=self.policy.answer_within, now=workflow.now()), SurveyOpened)
        except ActivityError as err:
            cause = err.cause
            raise ApplicationError(cause.message if isinstance(cause, ApplicationError)
                                   else str(err), type="InvalidSurvey",
                                   non_retryable=True) from err
        s.owner_id, s.closes_at = opened.owner_id, opened.closes_at
        self._send_customer("survey", {"period": s.period, "closes_at": s.closes_at})
        self._publish()
        await self._serve(lambda: s.stage in ENDS)
        await self._drain()
        return self.status()

    answer_now = answering("answer", Answer, "_answer_problem")
    log_follow_up_now = answering("log_follow_up", LogFollowUp, "_follow_up_problem")

    @workflow.query(name="status")
    def status(self) -> NpsStatus:
        s = self.state
        return NpsStatus(
            customer_id=s.customer_id, period=s.period, stage=s.stage, owner_id=s.owner_id,
            closes_at=s.closes_at, reminded=s.reminded, score=s.score, respondent=s.respondent,
            reason=s.reason, category=s.category, follow_up_due=s.follow_up_due,
            followed_up_at=s.followed_up_at, on_time=s.on_time, escalated_to=s.escalated_to,
            deadline=self._agenda().next_at(), rejections=list(self.rejections),
            policy=self.policy)

    def _ended_reason(self) -> str:
        return f"the survey is {self.state.stage.value}"

    # -- the clock -------------------------------------------------------------------------

    def _agenda(self) -> Agenda:
        s = self.state
        if s.stage is NpsStage.asked:
            return Agenda.of(answer_window(self.policy).entries(s.closes_at,
                                                                reminded=s.reminded))
        if s.stage is NpsStage.follow_up:
            return Agenda.of(follow_up(self.policy).entries(s.follow_up_due))
        return Agenda()

    async def _step_survey_reminder(self, entry: Due) -> None:
        s = self.state
        s.reminded = True
        await call("record_nps_step", self._survey_step("reminded"))
        self._send_customer("survey_reminder", {"period": s.period, "closes_at": s.closes_at})
        self._publish()

    async def _step_survey_closed(self, entry: Due) -> None:
        await call("record_nps_step", self._survey_step("expired"))
        self.state.stage = NpsStage.expired
        self._publish()

    async def _step_follow_up_missed(self, entry: Due) -> None:
        s = self.state
        to: EscalatedTo = await call("escalate_nps_follow_up", FollowUpEscalation(
            survey_id=self.entity_id, workflow_id=self.workflow_id, owner_id=s.owner_id,
            now=workflow.now()), EscalatedTo)
        s.escalated_to = to.manager_id
        self._notify_staff(to.manager_id, "follow_up_escalated", {
            "owner_id": s.owner_id, "due_at": s.follow_up_due, "score": s.score,
            "reason": s.reason})
        s.stage = NpsStage.escalated
        self._publish()

    # -- acting on signals -----------------------------------------------------------------

    async def _on_answer(self, item: Inbound) -> Decision:
        s, answer = self.state, item.payload
        if problem := self._answer_problem(answer):
            return Decision(accepted=False, reason=problem)
        assert answer.score is not None
        reason = (answer.reason or "").strip() or None
        category = reason_category(reason, self.policy.reason_categories)
        recorded: AnswerRecorded = await call("record_nps_answer", AnswerRecord(
            survey_id=self.entity_id, workflow_id=self.workflow_id, score=answer.score,
            reason=reason, category=category, follow_up_within=self.policy.follow_up_within,
            points=self.policy.points_for_answer, now=workflow.now()), AnswerRecorded)
        s.score, s.reason, s.category = answer.score, reason, category
        s.respondent, s.follow_up_due = recorded.respondent, recorded.follow_up_due
        if self.policy.points_for_answer:
            await call("credit_survey_points", self._survey_step("points"), PointsTold)
        if recorded.respondent is Respondent.detractor:
            self._notify_staff(s.owner_id, "follow_up_task", {
                "score": answer.score, "reason": reason, "category": category,
                "due_at": recorded.follow_up_due})
            s.stage = NpsStage.follow_up
        else:
            self._send_customer("thanks", {"score": answer.score,
                                           "respondent": recorded.respondent.value})
            s.stage = NpsStage.completed
        self._publish()
        return Decision(accepted=True, due_at=recorded.follow_up_due)

    async def _on_log_follow_up(self, item: Inbound) -> Decision:
        s, done = self.state, item.payload
        if problem := self._follow_up_problem(done):
            return Decision(accepted=False, reason=problem)
        followed: FollowedUp = await call("record_nps_follow_up", FollowUpRecord(
            survey_id=self.entity_id, workflow_id=self.workflow_id, staff_id=done.staff_id,
            note=done.note, now=workflow.now()), FollowedUp)
        s.followed_up_at, s.on_time = workflow.now(), followed.on_time
        s.stage = NpsStage.completed
        self._publish()
        return Decision(accepted=True, at=s.followed_up_at)

    async def _on_staff_deactivated(self, item: Inbound) -> Decision | None:
        if rejected := self._nobody_named(item):
            return rejected
        s, gone = self.state, item.payload.staff_id
        if s.stage in ENDS or gone != s.owner_id:
            return None
        to: EscalatedTo = await call("hand_over_nps_survey", OwnerHandover(
            survey_id=self.entity_id, workflow_id=self.workflow_id, from_staff_id=gone,
            now=workflow.now(), n=self._count("handover")), EscalatedTo)
        if to.manager_id is None:
            return None
        s.owner_id = to.manager_id
        if s.stage in FOLLOWING_UP:
            self._notify_staff(s.owner_id, "follow_up_task", {
                "score": s.score, "reason": s.reason, "category": s.category,
                "due_at": s.follow_up_due})
        self._publish()
        return Decision(accepted=True)

    def _answer_problem(self, answer: Answer) -> str | None:
        s = self.state
        if answer.score is None:
            return f"score is required: 0 to {MAX_SCORE}"
        if not 0 <= answer.score <= MAX_SCORE:
            return f"score {answer.score} is not between 0 and {MAX_SCORE}"
        if answer.reason is not None and len(answer.reason) > 2000:
            return "reason is longer than 2000 characters"
        if s.stage is NpsStage.expired:
            return "the survey is closed: it was not answered in time"
        if s.stage is not NpsStage.asked:
            return f"the survey is already answered ({s.score})"
        return None

    def _follow_up_problem(self, done: LogFollowUp) -> str | None:
        s = self.state
        if not done.staff_id.strip():
            return "staff_id is required: who followed up"
        if s.stage not in FOLLOWING_UP:
            if s.stage is NpsStage.completed and s.respondent is Respondent.detractor:
                return "the follow-up is already logged"
            return f"no follow-up is due (stage {s.stage.value})"
        if done.staff_id not in (s.owner_id, s.escalated_to):
            return (f"{done.staff_id} is neither the owner ({s.owner_id or 'nobody'}) nor "
                    f"the manager it was escalated to ({s.escalated_to or 'nobody'})")
        return None

    # -- small helpers ---------------------------------------------------------------------

    def _survey_step(self, step: str) -> SurveyStep:
        return SurveyStep(survey_id=self.entity_id, workflow_id=self.workflow_id, step=step,
                          now=workflow.now())

    def _send_customer(self, step: str, facts: dict[str, Any]) -> None:
        self.messenger.send(step=step, message_class=MessageClass.reminder,
                            recipient=Recipient(kind="customer", id=self.state.customer_id),
                            entity_kind=self.entity_kind, entity_id=self.entity_id, facts=facts)

    def _stage_name(self) -> str:
        return self.state.stage.value

    def _publish(self) -> None:
        s = self.state
        deadline = self._agenda().next_at()
        self._upsert({CRM_STAGE: s.stage.value, CRM_OWNER_ID: s.owner_id,
                      CRM_SLA_DEADLINE: deadline})
        answered = f"{s.score} ({s.respondent.value})" if s.respondent else "not yet"
        workflow.set_current_details(
            f"**NPS survey {s.period} of customer {s.customer_id}** — stage "
            f"`{s.stage.value}`\n\nanswer: {answered}; owner: {s.owner_id or 'nobody'}"
            + (f"; next at {deadline.isoformat()}" if deadline else ""))


@workflow.defn(name="NpsLaunch")
class NpsLaunch:
    """A period's surveys (started by the `nps-quarterly` schedule at the start
    of each period, for the one that ended): every customer with a purchase or
    a ticket in it, a page at a time, at most a page a second."""

    @workflow.run
    async def run(self, page: LaunchPage) -> LaunchedPage:
        started = 0
        while True:
            done: LaunchedPage = await workflow.execute_activity(
                "launch_nps_page", page, start_to_close_timeout=timedelta(minutes=5),
                retry_policy=STORE_RETRY, result_type=LaunchedPage)
            started += done.started
            page = LaunchPage(period=done.period, after=done.last, limit=page.limit)
            if done.started < page.limit:
                return LaunchedPage(period=done.period, started=started, last=done.last)
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(page)
            await workflow.sleep(timedelta(seconds=1))
