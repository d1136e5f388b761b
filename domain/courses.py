"""Course journey boundary models: enrolment, signals, activity payloads, status.

Lenient at the boundary (extra fields ignored; rules checked by the journey)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.journeys import Decision, Lenient, Rejection
from domain.limits import Duration, Id, Moment

JOURNEY = "course"


def enrollment_workflow_id(enrollment_id: str) -> str:
    return f"enrollment-{enrollment_id}"


class CourseStage(StrEnum):
    enrolled = "enrolled"
    course_ended = "course_ended"
    awaiting_callback = "awaiting_callback"
    escalated = "escalated"
    completed = "completed"


class CallbackOutcome(StrEnum):
    renewal_intent = "renewal_intent"
    no_interest = "no_interest"
    unreachable = "unreachable"


class CoursePolicy(BaseModel):
    """Post-course callback (docs/design.md, journey 4)."""

    model_config = ConfigDict(extra="ignore")

    callback_after: Duration = timedelta(hours=72)
    callback_window: Duration = timedelta(hours=24)
    learning_path_url: str = "https://learn.example.com/courses/{course_id}/path"
    community_url: str = "https://community.example.com/join/{course_id}"

    def scaled(self, factor: float) -> CoursePolicy:
        if factor == 1:
            return self
        return self.model_copy(update={"callback_after": self.callback_after / factor,
                                       "callback_window": self.callback_window / factor})


@dataclass(frozen=True)
class AdvisorLoad:
    staff_id: str
    group: str | None
    open_enrollments: int
    active: bool = True


def choose_advisor(
    advisors: Iterable[AdvisorLoad],
    *,
    group: str | None,
    exclude: Iterable[str] = (),
) -> str | None:
    """The active advisor who takes over an enrolment: from the departing
    advisor's group when anyone there is free to, else from any group; the one
    with the fewest open enrolments, ties to the lower id so the choice is the
    same on every run. None when no advisor is left."""
    excluded = set(exclude)
    eligible = [a for a in advisors if a.active and a.staff_id not in excluded]
    same_group = [a for a in eligible if group is not None and a.group == group]
    pool = same_group or eligible
    if not pool:
        return None
    return min(pool, key=lambda a: (a.open_enrollments, a.staff_id)).staff_id


class EnrollmentInput(Lenient):
    """A new enrolment. Its values must fit the store (domain/limits.py): a
    start that cannot be written fails at once rather than retrying for ever."""

    enrollment_id: Id
    customer_id: Id
    course_id: Id
    advisor_id: Id
    ends_at: Moment
    policy: CoursePolicy | None = None


class EndCourse(Lenient):
    ended_at: AwareDatetime | None = None


class LogCallback(Lenient):
    advisor_id: str = ""
    outcome: str = ""
    note: str | None = None


class EnrollRequest(Lenient):
    enrollment: EnrollmentInput
    workflow_id: str
    now: AwareDatetime


class CallbackTaskRequest(Lenient):
    enrollment_id: str
    workflow_id: str
    advisor_id: str
    now: AwareDatetime
    window: timedelta


class CourseEscalation(Lenient):
    enrollment_id: str
    workflow_id: str
    advisor_id: str
    now: AwareDatetime
    level: int = 1


class EscalationResult(Lenient):
    supervisor_id: str | None


class AdvisorHandover(Lenient):
    """The enrolment's advisor has been deactivated: someone else takes it over."""

    enrollment_id: str
    workflow_id: str
    from_advisor_id: str
    now: AwareDatetime
    n: int


class AdvisorHandoverResult(Lenient):
    # None: nobody active to take it over (no advisor, no manager above)
    advisor_id: str | None
    # True when no advisor was free and the departing advisor's manager took it
    fallback: bool = False


class CourseEndMoved(Lenient):
    enrollment_id: str
    workflow_id: str
    ends_at: AwareDatetime
    now: AwareDatetime
    n: int


class CallbackRecord(Lenient):
    enrollment_id: str
    workflow_id: str
    advisor_id: str
    outcome: CallbackOutcome
    note: str | None = None
    now: AwareDatetime


class CourseStatus(Lenient):
    enrollment_id: str
    customer_id: str
    course_id: str
    advisor_id: str
    stage: CourseStage
    ends_at: datetime
    callback_due_at: datetime | None = None
    escalated_to: str | None = None
    previous_advisors: list[str] = Field(default_factory=list)
    outcome: CallbackOutcome | None = None
    waiting_for: str | None = None
    deadline: datetime | None = None
    rejections: list[Rejection] = Field(default_factory=list)
    policy: CoursePolicy | None = None


__all__ = ["Decision"]
