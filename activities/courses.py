"""Course activities: enrolment, the callback task, escalation, the outcome."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.journal import record_event
from activities.logs import activity_logger
from activities.message_records import entity_loader
from activities.store import Store, refuse_invalid
from activities.store.erasure import Held, Person, held_as_customer
from activities.store.staff import active_manager_above
from domain import limits, schema
from domain.courses import (
    JOURNEY,
    AdvisorHandover,
    AdvisorHandoverResult,
    AdvisorLoad,
    CallbackRecord,
    CallbackTaskRequest,
    CourseEndMoved,
    CourseEscalation,
    CoursePolicy,
    CourseStage,
    EnrollRequest,
    EscalationResult,
    choose_advisor,
)
from domain.journeys import Decision
from domain.sla import CalendarClock

log = activity_logger("crm.courses")


class CourseActivities:
    def __init__(self, *, store: Store, policy: CoursePolicy,
                 clock: CalendarClock | None = None) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock or CalendarClock()

    @activity.defn
    def load_course_policy(self) -> CoursePolicy:
        return self.policy

    @activity.defn
    def enroll_student(self, request: EnrollRequest) -> None:
        """Records the enrolment; an unknown student or advisor is refused, writing nothing."""
        e = request.enrollment
        with self.store.unit_of_work() as session:
            if session.get(schema.Enrollment, e.enrollment_id) is not None:
                return  # a retry of an enrolment that committed
            problems = []
            if not e.course_id.strip():
                problems.append("course_id is required")
            if session.get(schema.Customer, e.customer_id) is None:
                problems.append(f"unknown customer {e.customer_id!r}")
            advisor = session.get(schema.Staff, e.advisor_id)
            if advisor is None:
                problems.append(f"unknown advisor {e.advisor_id!r}")
            elif advisor.role != "advisor":
                problems.append(f"staff {advisor.id} is a {advisor.role}, not an advisor")
            elif not advisor.active:
                problems.append(f"advisor {advisor.id} is inactive")
            if problems:
                raise ApplicationError(
                    f"enrolment {e.enrollment_id!r} rejected: " + "; ".join(problems),
                    type="InvalidEnrollment",
                    non_retryable=True,
                )
            session.add(
                schema.Enrollment(
                    id=e.enrollment_id,
                    customer_id=e.customer_id,
                    course_id=e.course_id,
                    advisor_id=e.advisor_id,
                    ends_at=e.ends_at,
                    status="enrolled",
                    enrolled_at=request.now,
                )
            )
            record_event(session, key=f"{request.workflow_id}:enrolled", journey=JOURNEY,
                         entity_id=e.enrollment_id, step="enrolled", at=request.now,
                         detail={"course_id": e.course_id, "advisor_id": e.advisor_id})
            log.info("enrolment %s of %s on %s", e.enrollment_id, e.customer_id, e.course_id)

    @activity.defn
    def move_course_end(self, request: CourseEndMoved) -> None:
        refuse_invalid({"ended_at": limits.moment_problem(request.ends_at)})
        with self.store.unit_of_work() as session:
            enrollment = _enrollment(session, request.enrollment_id)
            enrollment.ends_at = request.ends_at
            record_event(session, key=f"{request.workflow_id}:end_moved:{request.n}",
                         journey=JOURNEY, entity_id=enrollment.id, step="end_moved",
                         at=request.now, detail={"ends_at": request.ends_at.isoformat()})

    @activity.defn
    def mark_course_ended(self, request: CourseEndMoved) -> None:
        with self.store.unit_of_work() as session:
            enrollment = _enrollment(session, request.enrollment_id)
            enrollment.status = "course_ended"
            record_event(session, key=f"{request.workflow_id}:course_ended:{request.n}",
                         journey=JOURNEY, entity_id=enrollment.id, step="course_ended",
                         at=request.ends_at)

    @activity.defn
    def create_callback_task(self, request: CallbackTaskRequest) -> Decision:
        """The advisor's callback task, due within the policy's window (computed once, here)."""
        key = f"{request.workflow_id}:callback"
        with self.store.unit_of_work() as session:
            enrollment = _enrollment(session, request.enrollment_id)
            existing = session.scalar(select(schema.Task).where(schema.Task.key == key))
            if existing is not None:
                return Decision(accepted=True, due_at=existing.due_at)
            due = self.clock.due(request.now, request.window)
            session.add(
                schema.Task(
                    key=key,
                    kind="callback",
                    entity_kind="enrollment",
                    entity_id=enrollment.id,
                    assignee_id=request.advisor_id,
                    due_at=due,
                    status="open",
                    created_at=request.now,
                )
            )
            enrollment.callback_due_at = due
            enrollment.status = "awaiting_callback"
            record_event(session, key=key, journey=JOURNEY, entity_id=enrollment.id,
                         step="callback_task", at=request.now,
                         detail={"advisor_id": request.advisor_id, "due_at": due.isoformat()})
            return Decision(accepted=True, due_at=due)

    @activity.defn
    def escalate_callback(self, request: CourseEscalation) -> EscalationResult:
        """A callback not logged in time goes to the advisor's supervisor."""
        key = f"{request.workflow_id}:escalation:{request.level}"
        with self.store.unit_of_work() as session:
            enrollment = _enrollment(session, request.enrollment_id)
            done = session.scalar(select(schema.Escalation).where(schema.Escalation.key == key))
            if done is not None:
                # A retry: the supervisor the first attempt escalated to, not
                # whoever supervises the advisor now.
                return EscalationResult(supervisor_id=done.to_staff_id)
            advisor = session.get(schema.Staff, request.advisor_id)
            supervisor = advisor.manager_id if advisor else None
            session.add(
                schema.Escalation(
                    key=key,
                    journey=JOURNEY,
                    entity_id=enrollment.id,
                    level=request.level,
                    reason="post-course callback not logged in time",
                    from_staff_id=request.advisor_id,
                    to_staff_id=supervisor,
                    at=request.now,
                )
            )
            enrollment.status = "escalated"
            record_event(session, key=key, journey=JOURNEY, entity_id=enrollment.id,
                         step="escalated", at=request.now, detail={"supervisor_id": supervisor})
            log.info("enrolment %s callback escalated to %s", enrollment.id, supervisor)
            return EscalationResult(supervisor_id=supervisor)

    @activity.defn
    def reassign_advisor(self, request: AdvisorHandover) -> AdvisorHandoverResult:
        """A deactivated advisor's enrolment, with its open callback task, goes to
        the least-loaded active advisor (their own group first); with no advisor
        left, to the nearest active manager above them, who is told like anyone."""
        refuse_invalid({"staff_id": limits.text_problem(request.from_advisor_id, limits.ID)})
        key = f"{request.workflow_id}:handover:{request.n}"
        with self.store.unit_of_work() as session:
            enrollment = _enrollment(session, request.enrollment_id)
            done = session.scalar(
                select(schema.JourneyEvent).where(schema.JourneyEvent.key == key))
            if done is not None:  # retry of a committed handover
                detail = done.detail or {}
                return AdvisorHandoverResult(advisor_id=detail.get("advisor_id"),
                                             fallback=bool(detail.get("fallback")))
            previous = session.get(schema.Staff, request.from_advisor_id)
            advisor = choose_advisor(_advisor_loads(session),
                                     group=previous.group if previous else None,
                                     exclude=[request.from_advisor_id])
            fallback = advisor is None
            if advisor is None:
                manager = active_manager_above(session, previous)
                advisor = manager.id if manager else None
            detail = {"from_advisor_id": request.from_advisor_id, "advisor_id": advisor,
                      "fallback": fallback}
            if advisor is None:
                record_event(session, key=key, journey=JOURNEY, entity_id=enrollment.id,
                             step="advisor_unassigned", at=request.now, detail=detail)
                log.warning("enrolment %s: nobody active to take over from %s",
                            enrollment.id, request.from_advisor_id)
                return AdvisorHandoverResult(advisor_id=None, fallback=True)
            enrollment.advisor_id = advisor
            session.execute(
                update(schema.Task)
                .where(schema.Task.entity_kind == "enrollment",
                       schema.Task.entity_id == enrollment.id, schema.Task.status == "open")
                .values(assignee_id=advisor)
            )
            record_event(session, key=key, journey=JOURNEY, entity_id=enrollment.id,
                         step="advisor_reassigned", at=request.now, detail=detail)
            log.info("enrolment %s handed from %s to %s%s", enrollment.id,
                     request.from_advisor_id, advisor, " (no advisor free)" if fallback else "")
            return AdvisorHandoverResult(advisor_id=advisor, fallback=fallback)

    @activity.defn
    def record_callback(self, request: CallbackRecord) -> None:
        refuse_invalid({"advisor_id": limits.text_problem(request.advisor_id, limits.ID),
                        "note": limits.text_problem(request.note, limits.TEXT)})
        key = f"{request.workflow_id}:callback_logged"
        with self.store.unit_of_work() as session:
            enrollment = _enrollment(session, request.enrollment_id)
            if session.scalar(select(schema.Interaction.id).where(schema.Interaction.key == key)):
                return
            session.add(
                schema.Interaction(
                    key=key,
                    customer_id=enrollment.customer_id,
                    staff_id=request.advisor_id,
                    channel="phone",
                    note=f"post-course callback: {request.outcome.value}"
                    + (f" — {request.note}" if request.note else ""),
                    at=request.now,
                    recorded_at=request.now,
                )
            )
            session.execute(
                update(schema.Task)
                .where(schema.Task.entity_kind == "enrollment",
                       schema.Task.entity_id == enrollment.id, schema.Task.status == "open")
                .values(status="done", closed_at=request.now)
            )
            enrollment.callback_outcome = request.outcome.value
            enrollment.callback_at = request.now
            enrollment.status = "completed"
            record_event(session, key=key, journey=JOURNEY, entity_id=enrollment.id,
                         step=f"callback_{request.outcome.value}", at=request.now)


def _enrollment(session: Session, enrollment_id: str) -> schema.Enrollment:
    enrollment = session.get(schema.Enrollment, enrollment_id)
    if enrollment is None:
        raise ApplicationError(f"unknown enrolment {enrollment_id!r}", type="UnknownEnrollment",
                               non_retryable=True)
    return enrollment


def _advisor_loads(session: Session) -> list[AdvisorLoad]:
    open_counts = dict(
        session.execute(
            select(schema.Enrollment.advisor_id, func.count())
            .where(schema.Enrollment.status != CourseStage.completed.value)
            .group_by(schema.Enrollment.advisor_id)
        ).all()
    )
    return [
        AdvisorLoad(staff_id=staff.id, group=staff.group,
                    open_enrollments=open_counts.get(staff.id, 0), active=staff.active)
        for staff in session.scalars(select(schema.Staff).where(schema.Staff.role == "advisor"))
    ]


@entity_loader("enrollment")
def _enrollment_for_message(session: Session, enrollment_id: str) -> dict[str, Any] | None:
    enrollment = session.get(schema.Enrollment, enrollment_id)
    if enrollment is None:
        return None
    advisor = session.get(schema.Staff, enrollment.advisor_id)
    customer = session.get(schema.Customer, enrollment.customer_id)
    return {
        "id": enrollment.id,
        "course_id": enrollment.course_id,
        "ends_at": enrollment.ends_at,
        "callback_due_at": enrollment.callback_due_at,
        "advisor": {"id": advisor.id, "name": advisor.name} if advisor else None,
        "student": {"id": customer.id, "name": customer.name} if customer else None,
    }


def open_roles(session: Session, staff_id: str) -> list[str]:
    """The enrolments not yet completed whose advisor the staff member is."""
    return sorted(session.scalars(select(schema.Enrollment.id).where(
        schema.Enrollment.advisor_id == staff_id,
        schema.Enrollment.status != CourseStage.completed.value)))


def personal_data(session: Session, person: Person) -> Held:
    """The person's enrolments, for erasure: they hold nothing to scrub."""
    return held_as_customer(session, person, schema.Enrollment.id)
