"""`crm course`: enrol a student (the course journey), move the course's end,
log the post-course callback, and show where an enrolment stands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from domain.vocabulary import CALLBACK_OUTCOMES
from starter.cli.common import CliError, aware, console, load_settings, reports_errors, say, when
from starter.cli.journey import Subject, journey_status, status_table, with_journeys

if TYPE_CHECKING:
    from rich.table import Table

    from domain.courses import CourseStatus
    from starter.client import Journeys

# Its help is its registry entry's (domain/registry.py): `crm --help` lists it
# without importing this module.
course_app = typer.Typer(no_args_is_help=True)

OUTCOMES_HELP = ", ".join(CALLBACK_OUTCOMES)


@course_app.command("enroll")
@reports_errors
def course_enroll(
    enrollment_id: Annotated[
        str, typer.Option("--id", help="The enrolment id (journey: enrollment-{id}).")
    ],
    customer: Annotated[str, typer.Option(help="The student's customer id.")],
    course: Annotated[str, typer.Option(help="The course id.")],
    advisor: Annotated[str, typer.Option(help="The advisor's staff id (logs the callback).")],
    ends_at: Annotated[str, typer.Option(help="When the course ends, ISO-8601 with offset.")],
) -> None:
    """Enrol a student: start the course journey (welcome, then the post-course callback)."""
    from domain.courses import EnrollmentInput

    settings = load_settings()
    ends = aware(ends_at, "--ends-at")
    assert ends is not None  # given: the option is required
    # The journey checks the customer and the advisor against the store; an
    # unknown one fails the journey, which `crm course status` then says.
    enrollment = EnrollmentInput(
        enrollment_id=enrollment_id,
        customer_id=customer,
        course_id=course,
        advisor_id=advisor,
        ends_at=ends,
    )

    async def start(journeys: Journeys) -> None:
        await journeys.enroll(enrollment)

    subject = Subject.enrolment(enrollment_id)
    with_journeys(settings, subject, start)
    subject.say_started("CourseJourney", settings.task_queue)


@course_app.command("end")
@reports_errors
def course_end(
    enrollment_id: Annotated[str, typer.Argument(help="The enrolment whose course ended.")],
    at: Annotated[
        str | None, typer.Option(help="When it ended, ISO-8601 with offset (default: now).")
    ] = None,
) -> None:
    """Say the course ended (or ends) at another time (signal); the callback follows 72 h on."""
    from domain.courses import EndCourse

    settings = load_settings()
    end = EndCourse(ended_at=aware(at, "--at"))
    subject = Subject.enrolment(enrollment_id)
    with_journeys(settings, subject, lambda journeys: journeys.end_course(enrollment_id, end))
    subject.say_sent("course end")


@course_app.command("callback")
@reports_errors
def course_callback(
    enrollment_id: Annotated[str, typer.Argument(help="The enrolment called back.")],
    advisor_id: Annotated[str, typer.Argument(help="The advisor who made the call.")],
    outcome: Annotated[str, typer.Option(help=f"One of: {OUTCOMES_HELP}.")],
    note: Annotated[str | None, typer.Option(help="What was said.")] = None,
) -> None:
    """Log the post-course callback; says at once whether it was accepted."""
    from domain.courses import CallbackOutcome, LogCallback

    settings = load_settings()
    if outcome not in {o.value for o in CallbackOutcome}:
        outcomes = ", ".join(o.value for o in CallbackOutcome)
        raise CliError(f"--outcome {outcome!r} is not one of: {outcomes}")
    callback = LogCallback(advisor_id=advisor_id, outcome=outcome, note=note)
    decision = with_journeys(
        settings,
        Subject.enrolment(enrollment_id),
        lambda journeys: journeys.log_callback(enrollment_id, callback),
    )
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"accepted: {advisor_id} logged {outcome} for enrolment {enrollment_id}")


def _course_table(status: CourseStatus) -> Table:
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value),
        ("customer", status.customer_id),
        ("course", status.course_id),
        ("advisor", status.advisor_id),
        ("course ends", when(status.ends_at)),
        ("callback due", when(status.callback_due_at)),
        ("escalated to", status.escalated_to or "-"),
        ("outcome", status.outcome.value if status.outcome else "-"),
        ("waiting for", status.waiting_for or "-"),
        ("deadline", when(status.deadline)),
    ]
    return status_table(f"enrolment {status.enrollment_id}", rows, status)


@course_app.command("status")
@reports_errors
def course_status(
    enrollment_id: Annotated[str, typer.Argument(help="The enrolment.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show where an enrolment's journey stands; a failed journey says why (exit 1)."""
    from domain.courses import CourseStatus

    settings = load_settings()
    status = journey_status(
        settings,
        Subject.enrolment(enrollment_id),
        CourseStatus,
        lambda journeys: journeys.course_status(enrollment_id),
    )
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
    else:
        console().print(_course_table(status))
