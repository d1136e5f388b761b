"""CourseJourney: the post-course callback, 72 hours after the course ends.

On enrolment the student is welcomed with the learning path and the community
invitation. When the course has ended (at `ends_at`, which `end_course`
moves), the journey waits the policy's 72 hours, then gives the advisor a
callback task and asks the student for feedback. A callback not logged within
the policy's window is escalated to the advisor's supervisor. The advisor's
outcome ends the journey; a renewal intention brings the student a renewal offer.
An advisor who is deactivated before the callback is logged hands the student
on (`staff_deactivated`): every later task, escalation and sign-off follows
the new advisor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.courses import (
        JOURNEY,
        AdvisorHandover,
        AdvisorHandoverResult,
        CallbackOutcome,
        CallbackRecord,
        CallbackTaskRequest,
        CourseEndMoved,
        CourseEscalation,
        CoursePolicy,
        CourseStage,
        CourseStatus,
        EndCourse,
        EnrollmentInput,
        EnrollRequest,
        EscalationResult,
        LogCallback,
    )
    from domain.journeys import Decision
    from domain.messaging import MessageClass, Recipient

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    CRM_OWNER_ID,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    Agenda,
    Deadline,
    Due,
    Inbound,
    Journey,
    Plan,
    WaitUntil,
    answering,
    call,
    moves,
    start_input,
)

CALLBACK_DUE = (CourseStage.awaiting_callback, CourseStage.escalated)
COURSE_END = WaitUntil("course_ended", "course over", fact="the course end", wait="course_end")


def callback(policy: CoursePolicy) -> WaitUntil:
    return WaitUntil("callback_due", "callback task", fact="the course end",
                     offset=policy.callback_after)


def callback_window(policy: CoursePolicy) -> Deadline:
    return Deadline("callback_missed", "callback", within=policy.callback_window,
                    on_miss="escalate to the advisor's supervisor")


def plan(policy: CoursePolicy | None = None) -> Plan:
    """The course ends; 72 hours later a callback task, due within 24 hours,
    then the advisor's supervisor."""
    policy = policy or CoursePolicy()
    stage = CourseStage
    return Plan(
        journey=JOURNEY,
        parts=(COURSE_END, callback(policy), callback_window(policy)),
        start=stage.enrolled,
        transitions=moves(
            (stage.enrolled, "course_ended", stage.course_ended),
            (stage.course_ended, "end_course", stage.enrolled),
            (stage.course_ended, "callback_due", stage.awaiting_callback),
            (stage.awaiting_callback, "callback_missed", stage.escalated),
            (CALLBACK_DUE, "log_callback", stage.completed),
        ),
        ends=(stage.completed,),
    )


@dataclass
class CourseState:
    enrollment_id: str
    customer_id: str
    course_id: str
    advisor_id: str
    ends_at: datetime
    stage: CourseStage = CourseStage.enrolled
    callback_due_at: datetime | None = None
    escalated_to: str | None = None
    previous_advisors: list[str] = field(default_factory=list)
    outcome: CallbackOutcome | None = None
    counters: dict[str, int] = field(default_factory=dict)


@workflow.defn(name="CourseJourney", failure_exception_types=[pydantic.ValidationError])
class CourseJourney(Journey):
    journey = JOURNEY
    entity_kind = "enrollment"
    signals = {"end_course": EndCourse, "log_callback": LogCallback}
    planned = staticmethod(plan)

    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.enrollment = enrollment = start_input(args, EnrollmentInput)
        self.state = CourseState(
            enrollment_id=enrollment.enrollment_id,
            customer_id=enrollment.customer_id,
            course_id=enrollment.course_id,
            advisor_id=enrollment.advisor_id,
            ends_at=enrollment.ends_at,
        )
        self.policy: CoursePolicy = enrollment.policy or CoursePolicy()
        self._setup_journey(enrollment.enrollment_id, self.state.counters, plan(self.policy))

    @workflow.run
    async def run(self, *args: Any) -> CourseStatus:
        """Takes one `EnrollmentInput`."""
        s, enrollment = self.state, self.enrollment
        if enrollment.policy is None:
            self.policy = await call("load_course_policy", result_type=CoursePolicy)
            self.plan = plan(self.policy)
        self._upsert({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: s.customer_id})
        await self._enroll(enrollment)
        self._send_student("welcome", MessageClass.reminder, {
            "learning_path_url": self.policy.learning_path_url.format(course_id=s.course_id),
            "community_url": self.policy.community_url.format(course_id=s.course_id),
        })
        self._publish()

        await self._serve(lambda: s.stage is CourseStage.completed)
        await self._drain()
        return self.status()

    # -- signals and the query -----------------------------------------------------

    log_callback_now = answering("log_callback", LogCallback, "_callback_problem")

    @workflow.query(name="status")
    def status(self) -> CourseStatus:
        s = self.state
        return CourseStatus(
            enrollment_id=s.enrollment_id,
            customer_id=s.customer_id,
            course_id=s.course_id,
            advisor_id=s.advisor_id,
            stage=s.stage,
            ends_at=s.ends_at,
            callback_due_at=s.callback_due_at,
            escalated_to=s.escalated_to,
            previous_advisors=list(s.previous_advisors),
            outcome=s.outcome,
            waiting_for=self._waiting_for(),
            deadline=self._agenda().next_at(),
            rejections=list(self.rejections),
            policy=self.policy,
        )

    def _ended_reason(self) -> str:
        return f"the enrollment is {self.state.stage.value}"

    # -- the clock -------------------------------------------------------------------

    def _agenda(self) -> Agenda:
        s = self.state
        if s.stage is CourseStage.enrolled:
            return Agenda.of(COURSE_END.entries(s.ends_at))
        if s.stage is CourseStage.course_ended:
            return Agenda.of(callback(self.policy).entries(s.ends_at))
        if s.stage is CourseStage.awaiting_callback:
            return Agenda.of(callback_window(self.policy).entries(s.callback_due_at))
        return Agenda()

    async def _step_course_ended(self, entry: Due) -> None:
        s = self.state
        await call("mark_course_ended", self._end_moved(s.ends_at, "course_ended"))
        self._set_stage(CourseStage.course_ended)

    async def _step_callback_due(self, entry: Due) -> None:
        s = self.state
        task: Decision = await call(
            "create_callback_task",
            CallbackTaskRequest(
                enrollment_id=s.enrollment_id,
                workflow_id=self.workflow_id,
                advisor_id=s.advisor_id,
                now=workflow.now(),
                window=self.policy.callback_window,
            ),
            Decision,
        )
        s.callback_due_at = task.due_at
        self._notify_staff(s.advisor_id, "callback_task", {"due_at": task.due_at})
        self._send_student("feedback_request", MessageClass.reminder, {})
        self._set_stage(CourseStage.awaiting_callback)

    async def _step_callback_missed(self, entry: Due) -> None:
        s = self.state
        result: EscalationResult = await call(
            "escalate_callback",
            CourseEscalation(
                enrollment_id=s.enrollment_id,
                workflow_id=self.workflow_id,
                advisor_id=s.advisor_id,
                now=workflow.now(),
                level=self._count("escalation"),
            ),
            EscalationResult,
        )
        s.escalated_to = result.supervisor_id
        self._notify_staff(result.supervisor_id, "callback_escalated",
                           {"advisor_id": s.advisor_id, "due_at": s.callback_due_at})
        self._set_stage(CourseStage.escalated)

    # -- acting on signals -------------------------------------------------------------

    async def _on_end_course(self, item: Inbound) -> Decision:
        s, end = self.state, item.payload
        if s.stage not in (CourseStage.enrolled, CourseStage.course_ended):
            return Decision(accepted=False,
                            reason=f"the callback is already {s.stage.value}; the end cannot move")
        ends_at = end.ended_at or item.received_at
        await call("move_course_end", self._end_moved(ends_at, "end_moved"))
        s.ends_at = ends_at
        if s.stage is CourseStage.course_ended and ends_at > workflow.now():
            s.stage = CourseStage.enrolled  # the course runs on: it has not ended after all
        self._publish()
        return Decision(accepted=True, due_at=ends_at + self.policy.callback_after)

    async def _on_log_callback(self, item: Inbound) -> Decision:
        s, callback = self.state, item.payload
        problem = self._callback_problem(callback)
        if problem:
            return Decision(accepted=False, reason=problem)
        outcome = CallbackOutcome(callback.outcome)
        await call(
            "record_callback",
            CallbackRecord(
                enrollment_id=s.enrollment_id,
                workflow_id=self.workflow_id,
                advisor_id=callback.advisor_id,
                outcome=outcome,
                note=callback.note,
                now=workflow.now(),
            ),
        )
        s.outcome = outcome
        if outcome is CallbackOutcome.renewal_intent:
            self._send_student("renewal_offer", MessageClass.marketing, {})
        self._set_stage(CourseStage.completed)
        return Decision(accepted=True)

    async def _on_staff_deactivated(self, item: Inbound) -> Decision | None:
        if rejected := self._nobody_named(item):
            return rejected
        s, gone = self.state, item.payload.staff_id
        if s.stage is CourseStage.completed or gone != s.advisor_id:
            return None  # a broadcast about someone else: nothing to do
        result: AdvisorHandoverResult = await call(
            "reassign_advisor",
            AdvisorHandover(
                enrollment_id=s.enrollment_id,
                workflow_id=self.workflow_id,
                from_advisor_id=gone,
                now=workflow.now(),
                n=self._count("handover"),
            ),
            AdvisorHandoverResult,
        )
        if result.advisor_id is None:
            # Recorded in the store; the student stays with the departed advisor
            # until an admin adds someone and tells the journey again.
            workflow.logger.warning("enrolment %s: nobody active to take over from %s",
                                    s.enrollment_id, gone)
            return None
        s.previous_advisors.append(gone)
        s.advisor_id = result.advisor_id
        self._notify_staff(s.advisor_id, "advisor_reassigned", {
            "previous_advisor_id": gone,
            "due_at": s.callback_due_at if s.stage in CALLBACK_DUE else None,
            "fallback": result.fallback,
        })
        self._publish()
        return Decision(accepted=True)

    def _callback_problem(self, callback: LogCallback) -> str | None:
        s = self.state
        if callback.advisor_id != s.advisor_id:
            return (f"{callback.advisor_id or 'nobody'} is not this student's advisor "
                    f"({s.advisor_id})")
        if callback.outcome not in {o.value for o in CallbackOutcome}:
            return (f"unknown outcome {callback.outcome!r}: expected one of "
                    + ", ".join(o.value for o in CallbackOutcome))
        if s.stage is CourseStage.completed:
            return "the enrollment is completed: its callback is logged"
        if s.stage not in CALLBACK_DUE:
            due = s.ends_at + self.policy.callback_after
            return (f"no callback is due yet (stage {s.stage.value}; "
                    f"due from {due.isoformat()})")
        return None

    # -- small helpers -------------------------------------------------------------------

    async def _enroll(self, enrollment: EnrollmentInput) -> None:
        try:
            await call("enroll_student", EnrollRequest(
                enrollment=enrollment.model_copy(update={"policy": None}),
                workflow_id=self.workflow_id,
                now=workflow.now(),
            ))
        except ActivityError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(err)
            raise ApplicationError(message, type="InvalidEnrollment", non_retryable=True) from err

    def _send_student(self, step: str, message_class: MessageClass, facts: dict[str, Any]) -> None:
        self.messenger.send(
            step=step,
            message_class=message_class,
            recipient=Recipient(kind="customer", id=self.state.customer_id),
            entity_kind=self.entity_kind,
            entity_id=self.entity_id,
            facts=facts,
        )

    def _end_moved(self, ends_at: datetime, step: str) -> CourseEndMoved:
        return CourseEndMoved(
            enrollment_id=self.state.enrollment_id,
            workflow_id=self.workflow_id,
            ends_at=ends_at,
            now=workflow.now(),
            n=self._count(step),
        )

    def _set_stage(self, stage: CourseStage) -> None:
        self.state.stage = stage
        self._publish()

    def _waiting_for(self) -> str | None:
        s = self.state
        if s.stage is CourseStage.enrolled:
            return "the course to end"
        if s.stage is CourseStage.course_ended:
            return f"{self.policy.callback_after} after the course end, for the callback task"
        if s.stage is CourseStage.awaiting_callback:
            return f"the callback by {s.advisor_id}"
        if s.stage is CourseStage.escalated:
            return f"the callback by {s.advisor_id} (escalated to {s.escalated_to or 'nobody'})"
        return None

    def _stage_name(self) -> str:
        return self.state.stage.value

    def _publish(self) -> None:
        s = self.state
        deadline = self._agenda().next_at()
        self._upsert({
            CRM_STAGE: s.stage.value,
            CRM_OWNER_ID: s.advisor_id,
            CRM_SLA_DEADLINE: deadline,
        })
        lines = [f"**Enrolment {s.enrollment_id}** (course {s.course_id}) — stage "
                 f"`{s.stage.value}`", f"advisor: {s.advisor_id}"
                 + (f" (took over from {', '.join(s.previous_advisors)})"
                    if s.previous_advisors else "")]
        waiting = self._waiting_for()
        if waiting:
            lines.append(f"waiting for {waiting}"
                         + (f" until {deadline.isoformat()}" if deadline else ""))
        workflow.set_current_details("\n\n".join(lines))



