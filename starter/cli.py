"""The `crm` command: start and steer lead and course journeys, manage staff and
customers, run the dev stack.

Every command reads `Settings()` once, at its top, and hands it down (the
settings are the composition root's, never a module global), so an
environment change between two invocations (a test, a second terminal) is
always seen. Failures a person can act on print a short message on stderr and
exit with code 1; only the unexpected shows a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.customers import CustomerRecord, add_customer, list_customers
from activities.staff import (
    ROLES,
    StaffError,
    StaffMember,
    add_staff,
    deactivate_staff,
    list_staff,
)
from activities.store import Store, migrate
from domain.contact import InvalidContact, normalise_email, normalise_phone
from domain.courses import (
    CallbackOutcome,
    CourseStatus,
    EndCourse,
    EnrollmentInput,
    LogCallback,
    enrollment_workflow_id,
)
from domain.leads import Convert, LeadInput, LeadStatus, LogContact, lead_workflow_id
from domain.settings import Settings
from starter import devstack
from starter.client import Journeys, connect

P = ParamSpec("P")
T = TypeVar("T")

# Tracebacks stay short and without locals: locals hold settings, whose
# database URL may carry a password.
app = typer.Typer(
    name="crm",
    help="CRM customer journeys on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
lead_app = typer.Typer(
    help="Lead journeys: start, claim, log contact, convert, discard, status.", no_args_is_help=True
)
course_app = typer.Typer(
    help="Course journeys: enroll, end the course, log the callback, status.",
    no_args_is_help=True,
)
staff_app = typer.Typer(help="Staff in the CRM store: add, list, deactivate.", no_args_is_help=True)
customer_app = typer.Typer(help="Customers in the CRM store: add, list.", no_args_is_help=True)
db_app = typer.Typer(help="The CRM store's schema.", no_args_is_help=True)
app.add_typer(lead_app, name="lead")
app.add_typer(course_app, name="course")
app.add_typer(staff_app, name="staff")
app.add_typer(customer_app, name="customer")
app.add_typer(db_app, name="db")


# -- plumbing -------------------------------------------------------------------------


class CliError(Exception):
    """A failure the user can act on: printed as one message, exit code 1."""


def load_settings() -> Settings:
    """The one place a command reads its settings."""
    return Settings()  # type: ignore[call-arg]  # fields come from the environment


# How long a command waits for a journey to answer a query or an update.
ANSWER_WITHIN_S = 30.0

# Piped output (grep, a file) has no terminal to fit: tables keep their
# natural width up to this, so each row stays on one line.
PIPE_WIDTH = 240


def _console(*, stderr: bool = False) -> Console:
    # Built per call so output goes to the current sys.stdout/stderr (the CLI
    # runner swaps them); soft wrap keeps messages and ids on one line, and
    # markup is off because messages carry user text such as "[east]".
    console = Console(stderr=stderr, soft_wrap=True, markup=False, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def say(message: str, *, style: str | None = None) -> None:
    _console().print(message, style=style)


def warn(message: str) -> None:
    _console(stderr=True).print(message, style="yellow")


def fail(message: str) -> NoReturn:
    _console(stderr=True).print(message, style="red")
    raise typer.Exit(1)


def reports_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Turns a `CliError` raised anywhere in a command into its message and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except CliError as exc:
            fail(str(exc))

    return wrapper


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as SQLAlchemy will reject it
        return url


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """The store named by the settings; a store error becomes a message that says
    which store and what to try (most often: the schema was never created)."""
    store = Store.from_url(settings.database_url)
    try:
        yield store
    except SQLAlchemyError as exc:
        raise CliError(
            f"store {_safe_url(settings.database_url)}: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]} (has `crm db upgrade` run?)"
        ) from exc
    finally:
        store.dispose()


def _unreachable(settings: Settings, exc: BaseException) -> str:
    return (
        f"cannot reach Temporal at {settings.temporal_address} "
        f"(namespace {settings.temporal_namespace}): {exc} "
        "- is it running? (`crm up` starts a development one)"
    )


@dataclass(frozen=True)
class Subject:
    """What a journey command is about, so its messages name the right journey."""

    noun: str  # "lead", "enrolment"
    entity_id: str
    workflow_id: str
    status_command: str  # where to look next, e.g. `crm lead status L1`
    pending: str  # what may still be applied once a worker answers

    @classmethod
    def lead(cls, lead_id: str) -> Subject:
        return cls(
            noun="lead",
            entity_id=lead_id,
            workflow_id=lead_workflow_id(lead_id),
            status_command=f"crm lead status {lead_id}",
            pending="A claim or contact",
        )

    @classmethod
    def enrolment(cls, enrollment_id: str) -> Subject:
        return cls(
            noun="enrolment",
            entity_id=enrollment_id,
            workflow_id=enrollment_workflow_id(enrollment_id),
            status_command=f"crm course status {enrollment_id}",
            pending="A callback or course end",
        )


def _no_answer(settings: Settings, subject: Subject) -> CliError:
    return CliError(
        f"{subject.workflow_id} did not answer within {ANSWER_WITHIN_S:.0f} s: is a "
        f"worker polling task queue {settings.task_queue}? (`crm up` runs one). "
        f"{subject.pending} may still be applied when one does; check `{subject.status_command}`"
    )


def _journey_error(settings: Settings, subject: Subject, exc: BaseException) -> CliError:
    """What a Temporal error means for the person who typed the command."""
    workflow_id = subject.workflow_id
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError) or (
        # A query nobody answers is cancelled by the server.
        isinstance(exc, RPCError)
        and exc.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)
    ):
        return _no_answer(settings, subject)
    if isinstance(exc, WorkflowAlreadyStartedError):
        return CliError(
            f"{subject.noun} {subject.entity_id} already has a journey ({workflow_id}, "
            "running or finished); a journey id is used once"
        )
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        reason = getattr(cause, "message", None) or str(cause or exc)
        return CliError(f"rejected: {reason}")
    if isinstance(exc, WorkflowQueryFailedError):
        return CliError(f"{workflow_id} could not answer: {exc}")
    if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
        return CliError(
            f"no running journey {workflow_id} for {subject.noun} {subject.entity_id}: "
            f"{exc.message}"
        )
    if isinstance(exc, RPCError):
        return CliError(f"{workflow_id}: Temporal said {exc.status.name}: {exc.message}")
    return CliError(f"{workflow_id}: {exc}")


def run_temporal(main: Callable[[], Awaitable[T]]) -> T:
    """`asyncio.run` for code that makes Temporal clients.

    A client sits in reference cycles, so it outlives its last name; one still
    alive when the interpreter shuts down can abort the process instead of
    letting it exit (temporalio/sdk-python#300). Collecting while the loop
    still runs frees it in time. For the same reason `main` returns its
    errors as values: a raised error's traceback would keep the client alive.
    """

    async def go() -> T:
        try:
            return await main()
        finally:
            gc.collect()

    return asyncio.run(go())


def with_journeys(
    settings: Settings,
    subject: Subject,
    action: Callable[[Journeys], Awaitable[T | CliError]],
) -> T:
    """Connects with the settings' address, namespace and task queue, runs `action`,
    and turns what Temporal says into messages about `subject`. An action reports
    its own failures by returning a `CliError` (not raising it: see `run_temporal`)."""

    async def go() -> T | CliError:
        try:
            client = await connect(settings)
        except RuntimeError as exc:  # the SDK's connect failure
            return CliError(_unreachable(settings, exc))
        try:
            # Without a worker an update waits for ever; a person should not.
            async with asyncio.timeout(ANSWER_WITHIN_S):
                return await action(Journeys(client, task_queue=settings.task_queue))
        except TimeoutError:
            return _no_answer(settings, subject)
        except (
            WorkflowAlreadyStartedError,
            WorkflowUpdateFailedError,
            WorkflowUpdateRPCTimeoutOrCancelledError,
            WorkflowQueryFailedError,
            RPCError,
        ) as exc:
            return _journey_error(settings, subject, exc)

    outcome = run_temporal(go)
    if isinstance(outcome, CliError):
        raise outcome
    return outcome


def _aware(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CliError(f"{option} {value!r} is not an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        raise CliError(f"{option} {value!r} needs a UTC offset, e.g. 2026-01-05T10:00:00+08:00")
    return parsed


def _when(value: datetime | None) -> str:
    return value.isoformat() if value else "-"


def _problems(exc: ValidationError) -> str:
    """One line per invalid field, naming the field and the value given."""
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "input"
        message = error["msg"].removeprefix("Value error, ")
        given = error.get("input")
        if given is not None and not isinstance(given, dict) and repr(given) not in message:
            message += f" (got {given!r})"
        lines.append(f"{field}: {message}")
    return "; ".join(lines)


# -- lead -----------------------------------------------------------------------------


@lead_app.command("new")
@reports_errors
def lead_new(
    lead_id: Annotated[str, typer.Option("--id", help="The CRM lead id (journey: lead-{id}).")],
    name: Annotated[str, typer.Option(help="The contact's name.")],
    region: Annotated[str, typer.Option(help="Sales region, for assignment.")],
    product_line: Annotated[str, typer.Option(help="Product line, for assignment.")],
    source: Annotated[str, typer.Option(help="web_form, mini_program, ecommerce, ...")],
    phone: Annotated[str | None, typer.Option(help="Phone; bare numbers are read as +86.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    company: Annotated[str | None, typer.Option(help="Company name.")] = None,
    need: Annotated[str | None, typer.Option(help="What the lead asked for.")] = None,
    locale: Annotated[str | None, typer.Option(help="zh-CN or en (default: configured).")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone, e.g. Asia/Shanghai.")] = None,
) -> None:
    """Start a lead's journey (intake, de-duplication, scoring, assignment)."""
    settings = load_settings()
    # The journey normalises contact details itself; checking here too means a
    # typo is a message now rather than a failed journey later.
    try:
        if phone:
            normalise_phone(phone)
        if email:
            normalise_email(email)
    except InvalidContact as exc:
        raise CliError(str(exc)) from exc
    if not (phone or email or company):
        raise CliError("a lead needs --phone, --email or --company")
    lead = LeadInput(
        lead_id=lead_id,
        name=name,
        phone=phone,
        email=email,
        company=company,
        region=region,
        product_line=product_line,
        source=source,
        need=need,
        locale=locale,
        timezone=timezone,
    )

    async def start(journeys: Journeys) -> str:
        handle = await journeys.start_lead(lead)
        return handle.id

    workflow_id = with_journeys(settings, Subject.lead(lead_id), start)
    say(workflow_id)
    say(
        f"started LeadJourney on task queue {settings.task_queue}; see `crm lead status {lead_id}`",
        style="dim",
    )


@lead_app.command("claim")
@reports_errors
def lead_claim(
    lead_id: Annotated[str, typer.Argument(help="The lead to claim from the pool.")],
    owner_id: Annotated[str, typer.Argument(help="The rep who takes it.")],
) -> None:
    """Claim a pooled lead for a rep; says at once whether it was accepted."""
    settings = load_settings()
    decision = with_journeys(
        settings, Subject.lead(lead_id), lambda journeys: journeys.claim_lead(lead_id, owner_id)
    )
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"accepted: {owner_id} owns lead {lead_id}; first touch due {_when(decision.due_at)}")


@lead_app.command("contact")
@reports_errors
def lead_contact(
    lead_id: Annotated[str, typer.Argument(help="The lead contacted.")],
    owner_id: Annotated[str, typer.Argument(help="The owner who made the contact.")],
    channel: Annotated[str, typer.Option(help="phone, email, chat, visit, ...")],
    note: Annotated[str | None, typer.Option(help="What was said.")] = None,
    at: Annotated[
        str | None, typer.Option(help="When, ISO-8601 with offset (default: now).")
    ] = None,
) -> None:
    """Log a contact with a lead; prints when the next follow-up is due."""
    settings = load_settings()
    contact = LogContact(owner_id=owner_id, channel=channel, note=note, at=_aware(at, "--at"))
    decision = with_journeys(
        settings, Subject.lead(lead_id), lambda journeys: journeys.log_contact(lead_id, contact)
    )
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"logged; next follow-up due {_when(decision.due_at)}")


@lead_app.command("convert")
@reports_errors
def lead_convert(
    lead_id: Annotated[str, typer.Argument(help="The lead that became an opportunity.")],
    name: Annotated[str | None, typer.Option(help="Opportunity name.")] = None,
    amount: Annotated[str | None, typer.Option(help="Expected amount, e.g. 120000.00.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "CNY",
) -> None:
    """Convert a lead into an opportunity (signal); the journey ends."""
    settings = load_settings()
    try:
        value = Decimal(amount) if amount is not None else None
    except InvalidOperation as exc:
        raise CliError(f"--amount {amount!r} is not a decimal number") from exc
    if value is not None and not value.is_finite():
        raise CliError(f"--amount {amount!r} is not a decimal number")
    convert = Convert(opportunity_name=name, amount=value, currency=currency.upper())
    with_journeys(
        settings, Subject.lead(lead_id), lambda journeys: journeys.convert_lead(lead_id, convert)
    )
    say(f"convert sent to {lead_workflow_id(lead_id)}; see `crm lead status {lead_id}`")


@lead_app.command("discard")
@reports_errors
def lead_discard(
    lead_id: Annotated[str, typer.Argument(help="The lead to drop.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the lead).")],
) -> None:
    """Discard a lead with a reason (signal); the journey ends."""
    settings = load_settings()
    if not reason.strip():
        raise CliError("--reason must say why the lead is discarded")
    with_journeys(
        settings, Subject.lead(lead_id), lambda journeys: journeys.discard_lead(lead_id, reason)
    )
    say(f"discard sent to {lead_workflow_id(lead_id)}; see `crm lead status {lead_id}`")


def _status_table(status: LeadStatus) -> Table:
    table = Table(title=f"lead {status.lead_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value),
        ("owner", status.owner_id or "-"),
        ("score", status.score if status.score is not None else "-"),
        ("waiting for", status.waiting_for or "-"),
        ("deadline", _when(status.deadline)),
        ("contacts", status.contacts),
        ("missed follow-ups", status.missed_follow_ups),
        ("reassignments", status.reassignments),
        ("previous owners", ", ".join(status.previous_owners) or "-"),
        ("merged leads", ", ".join(status.merged_leads) or "-"),
        ("opportunity", status.opportunity_id or "-"),
    ]
    for field, value in rows:
        table.add_row(field, str(value))
    for rejection in status.rejections:
        table.add_row(
            "rejected", f"{rejection.signal} at {_when(rejection.at)}: {rejection.reason}"
        )
    return table


@lead_app.command("status")
@reports_errors
def lead_status(
    lead_id: Annotated[str, typer.Argument(help="The lead.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show where a lead's journey stands (the `status` query)."""
    settings = load_settings()
    status = with_journeys(
        settings, Subject.lead(lead_id), lambda journeys: journeys.lead_status(lead_id)
    )
    if as_json:
        # Plain print: JSON must not be wrapped or styled.
        typer.echo(status.model_dump_json(indent=2))
    else:
        _console().print(_status_table(status))


# -- course ---------------------------------------------------------------------------

OUTCOMES = ", ".join(outcome.value for outcome in CallbackOutcome)


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
    settings = load_settings()
    ends = _aware(ends_at, "--ends-at")
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

    async def start(journeys: Journeys) -> str:
        handle = await journeys.enroll(enrollment)
        return handle.id

    workflow_id = with_journeys(settings, Subject.enrolment(enrollment_id), start)
    say(workflow_id)
    say(
        f"started CourseJourney on task queue {settings.task_queue}; "
        f"see `crm course status {enrollment_id}`",
        style="dim",
    )


@course_app.command("end")
@reports_errors
def course_end(
    enrollment_id: Annotated[str, typer.Argument(help="The enrolment whose course ended.")],
    at: Annotated[
        str | None, typer.Option(help="When it ended, ISO-8601 with offset (default: now).")
    ] = None,
) -> None:
    """Say the course ended (or ends) at another time (signal); the callback follows 72 h on."""
    settings = load_settings()
    end = EndCourse(ended_at=_aware(at, "--at"))
    subject = Subject.enrolment(enrollment_id)
    with_journeys(settings, subject, lambda journeys: journeys.end_course(enrollment_id, end))
    say(
        f"course end sent to {subject.workflow_id}; see `{subject.status_command}` "
        "(a refusal shows there)"
    )


@course_app.command("callback")
@reports_errors
def course_callback(
    enrollment_id: Annotated[str, typer.Argument(help="The enrolment called back.")],
    advisor_id: Annotated[str, typer.Argument(help="The advisor who made the call.")],
    outcome: Annotated[str, typer.Option(help=f"One of: {OUTCOMES}.")],
    note: Annotated[str | None, typer.Option(help="What was said.")] = None,
) -> None:
    """Log the post-course callback; says at once whether it was accepted."""
    settings = load_settings()
    if outcome not in {o.value for o in CallbackOutcome}:
        raise CliError(f"--outcome {outcome!r} is not one of: {OUTCOMES}")
    callback = LogCallback(advisor_id=advisor_id, outcome=outcome, note=note)
    decision = with_journeys(
        settings,
        Subject.enrolment(enrollment_id),
        lambda journeys: journeys.log_callback(enrollment_id, callback),
    )
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"accepted: {advisor_id} logged {outcome} for enrolment {enrollment_id}")


async def _closed_course(
    journeys: Journeys, enrollment_id: str, subject: Subject
) -> CourseStatus | CliError | None:
    """A finished journey's last status, or why it ended without one; None while it runs.

    A closed journey is not queried: its result is its final status, and a
    failed one has no status to give, only the failure. (The raw describe call:
    `WorkflowHandle.describe` also decodes the search attributes, and the
    time-skipping test server hands back an unset `CrmSlaDeadline` that it
    cannot decode.)"""
    described = await journeys.client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=journeys.client.namespace,
            execution=WorkflowExecution(workflow_id=subject.workflow_id),
        )
    )
    info = described.workflow_execution_info
    status = WorkflowExecutionStatus(info.status) if info.status else None
    if status is None or status is WorkflowExecutionStatus.RUNNING:
        return None
    handle = journeys.course(enrollment_id)
    try:
        return await handle.result(follow_runs=False)
    except WorkflowFailureError as exc:
        cause = exc.cause
        # E.g. the enrolment activity's refusal: "... rejected: unknown customer 'x'".
        reason = getattr(cause, "message", None) or str(cause or exc)
        how = status.name.lower().replace("_", " ")
        closed = info.close_time.ToDatetime(UTC) if info.HasField("close_time") else None
        return CliError(f"{subject.workflow_id} {how} at {_when(closed)}: {reason}")


async def _course_status(journeys: Journeys, enrollment_id: str) -> CourseStatus | CliError:
    subject = Subject.enrolment(enrollment_id)
    closed = await _closed_course(journeys, enrollment_id, subject)
    if closed is not None:
        return closed
    try:
        return await journeys.course_status(enrollment_id)
    except (WorkflowQueryFailedError, RPCError):
        # It may have closed between the two calls.
        closed = await _closed_course(journeys, enrollment_id, subject)
        if closed is None:
            raise
        return closed


def _course_table(status: CourseStatus) -> Table:
    table = Table(title=f"enrolment {status.enrollment_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value),
        ("customer", status.customer_id),
        ("course", status.course_id),
        ("advisor", status.advisor_id),
        ("course ends", _when(status.ends_at)),
        ("callback due", _when(status.callback_due_at)),
        ("escalated to", status.escalated_to or "-"),
        ("outcome", status.outcome.value if status.outcome else "-"),
        ("waiting for", status.waiting_for or "-"),
        ("deadline", _when(status.deadline)),
    ]
    for field, value in rows:
        table.add_row(field, str(value))
    for rejection in status.rejections:
        table.add_row(
            "rejected", f"{rejection.signal} at {_when(rejection.at)}: {rejection.reason}"
        )
    return table


@course_app.command("status")
@reports_errors
def course_status(
    enrollment_id: Annotated[str, typer.Argument(help="The enrolment.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show where an enrolment's journey stands; a failed journey says why (exit 1)."""
    settings = load_settings()
    status = with_journeys(
        settings,
        Subject.enrolment(enrollment_id),
        lambda journeys: _course_status(journeys, enrollment_id),
    )
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
    else:
        _console().print(_course_table(status))


# -- staff ----------------------------------------------------------------------------


@staff_app.command("add")
@reports_errors
def staff_add(
    staff_id: Annotated[str, typer.Option("--id", help="Staff id.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    group: Annotated[str | None, typer.Option(help="Support group (agents).")] = None,
    regions: Annotated[
        list[str] | None, typer.Option("--region", help="A region served (repeatable).")
    ] = None,
    product_lines: Annotated[
        list[str] | None,
        typer.Option("--product-line", help="A product line sold (repeatable)."),
    ] = None,
    manager: Annotated[str | None, typer.Option(help="Manager's staff id.")] = None,
    seniority: Annotated[int | None, typer.Option(help="Higher wins assignment ties.")] = None,
    capacity: Annotated[int | None, typer.Option(help="Most open leads at once.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail for staff messages.")] = None,
    phone: Annotated[str | None, typer.Option(help="Mobile for SMS.")] = None,
    chat: Annotated[str | None, typer.Option(help="Chat handle.")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone.")] = None,
    locale: Annotated[str | None, typer.Option(help="zh-CN or en.")] = None,
) -> None:
    """Add a staff member, or update the one with this id."""
    settings = load_settings()
    given: dict[str, Any] = {
        "id": staff_id,
        "name": name,
        "role": role,
        "group": group,
        "regions": regions,
        "product_lines": product_lines,
        "manager_id": manager,
        "seniority": seniority,
        "capacity": capacity,
        "email": email,
        "phone": phone,
        "chat": chat,
        "timezone": timezone,
        "locale": locale,
    }
    # Options not given fall back to the model's defaults, kept in one place.
    try:
        member = StaffMember.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise CliError(f"staff {staff_id} not saved: {_problems(exc)}") from exc
    with open_store(settings) as store:
        try:
            add_staff(store, member, now=datetime.now(UTC))
        except StaffError as exc:
            raise CliError(f"staff {staff_id} not saved: {exc}") from exc
    say(f"saved {member.role} {member.id} ({member.name})")


@staff_app.command("list")
@reports_errors
def staff_list(
    role: Annotated[str | None, typer.Option(help="Only this role.")] = None,
) -> None:
    """List staff as a table."""
    settings = load_settings()
    with open_store(settings) as store:
        members = list_staff(store, role=role)
    if not members:
        say("no staff" + (f" with role {role}" if role else ""))
        return
    # A light box so ten columns fit an 80-column terminal; ids and roles never wrap.
    table = Table(
        title="staff",
        caption="sen.: seniority (wins ties); cap.: most open leads",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for column in (
        "id",
        "name",
        "role",
        "group",
        "regions",
        "products",
        "manager",
        "sen.",
        "cap.",
        "active",
    ):
        table.add_column(
            column, overflow="fold", no_wrap=column in ("id", "role", "manager", "active")
        )
    for m in members:
        table.add_row(
            m.id,
            m.name,
            m.role,
            m.group or "-",
            ", ".join(m.regions) or "-",
            ", ".join(m.product_lines) or "-",
            m.manager_id or "-",
            str(m.seniority),
            str(m.capacity),
            "yes" if m.active else "no",
        )
    _console().print(table)


async def _tell_journeys(
    settings: Settings, staff_id: str, lead_ids: list[str]
) -> tuple[list[str], dict[str, str]] | CliError:
    """Signals each lead's journey; one finished journey does not stop the others.
    (An unreachable Temporal comes back as a value, as in `with_journeys`.)"""
    try:
        client = await connect(settings)
    except RuntimeError as exc:  # the SDK's connect failure
        return CliError(
            f"{_unreachable(settings, exc)}\nthe deactivation stands, but these open leads' "
            f"journeys were not told: {', '.join(lead_ids)}; run "
            f"`crm staff deactivate {staff_id}` again once Temporal is up"
        )
    journeys = Journeys(client, task_queue=settings.task_queue)
    told: list[str] = []
    failed: dict[str, str] = {}
    for lead_id in lead_ids:
        try:
            await journeys.tell_staff_deactivated([lead_id], staff_id)
        except RPCError as exc:
            failed[lead_id] = exc.message
        else:
            told.append(lead_id)
    return told, failed


@staff_app.command("deactivate")
@reports_errors
def staff_deactivate(
    staff_id: Annotated[str, typer.Argument(help="The staff member leaving.")],
) -> None:
    """Deactivate a staff member and tell their open leads' journeys to reassign them."""
    settings = load_settings()
    with open_store(settings) as store:
        try:
            lead_ids = deactivate_staff(store, staff_id, now=datetime.now(UTC))
        except StaffError as exc:
            raise CliError(str(exc)) from exc
    say(f"deactivated {staff_id} in the store")
    if not lead_ids:
        # Nothing to signal, so Temporal is not needed (nor contacted).
        say("they own no open leads; told 0 journeys")
        return
    outcome = run_temporal(lambda: _tell_journeys(settings, staff_id, lead_ids))
    if isinstance(outcome, CliError):
        raise outcome
    told, failed = outcome
    say(f"told {len(told)} journeys to reassign: {', '.join(told) or '-'}")
    if failed:
        # Rerunning is safe: the store change repeats and the journeys are told again.
        for lead_id, reason in failed.items():
            warn(f"lead {lead_id}: journey not told: {reason}")
        raise typer.Exit(1)


# -- customer -------------------------------------------------------------------------


@customer_app.command("add")
@reports_errors
def customer_add(
    customer_id: Annotated[str, typer.Option("--id", help="Customer id.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone; bare numbers are read as +86.")] = None,
    company: Annotated[str | None, typer.Option(help="Company name.")] = None,
    locale: Annotated[str | None, typer.Option(help="zh-CN (default) or en.")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone (default: Asia/Shanghai).")
    ] = None,
    owner: Annotated[str | None, typer.Option(help="The owning rep's staff id.")] = None,
) -> None:
    """Add a customer, or replace the one with this id (options not given: defaults)."""
    settings = load_settings()
    given: dict[str, Any] = {
        "id": customer_id,
        "name": name,
        "email": email,
        "phone": phone,
        "company": company,
        "locale": locale,
        "timezone": timezone,
        "owner_id": owner,
    }
    try:
        customer = CustomerRecord.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise CliError(f"customer {customer_id} not saved: {_problems(exc)}") from exc
    with open_store(settings) as store:
        # The store would refuse an unknown owner too, but as a bare foreign-key error.
        if owner is not None and owner not in {m.id for m in list_staff(store)}:
            raise CliError(f"customer {customer_id} not saved: owner {owner!r} is not staff")
        add_customer(store, customer, now=datetime.now(UTC))
    say(f"saved customer {customer.id} ({customer.name})")


@customer_app.command("list")
@reports_errors
def customer_list() -> None:
    """List customers as a table."""
    settings = load_settings()
    with open_store(settings) as store:
        customers = list_customers(store)
    if not customers:
        say("no customers")
        return
    table = Table(title="customers", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for column in ("id", "name", "email", "phone", "company", "locale", "timezone", "owner"):
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "locale", "owner"))
    for c in customers:
        table.add_row(
            c.id,
            c.name,
            c.email or "-",
            c.phone or "-",
            c.company or "-",
            c.locale,
            c.timezone,
            c.owner_id or "-",
        )
    _console().print(table)


# -- db -------------------------------------------------------------------------------


@db_app.command("upgrade")
@reports_errors
def db_upgrade() -> None:
    """Create or upgrade the store's schema (Alembic, to head)."""
    settings = load_settings()
    try:
        migrate(settings.database_url)
    except SQLAlchemyError as exc:
        raise CliError(f"store {_safe_url(settings.database_url)}: {exc}") from exc
    say(f"store {_safe_url(settings.database_url)} is at the latest schema")


# -- up -------------------------------------------------------------------------------


@app.command("up")
@reports_errors
def up(
    port: Annotated[int, typer.Option(help="Temporal frontend (gRPC) port.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port.")] = 8233,
    http_port: Annotated[int, typer.Option(help="Temporal HTTP API port.")] = 7243,
    db_file: Annotated[
        str, typer.Option(help="The dev server's SQLite file (journeys survive restarts).")
    ] = "var/temporal.db",
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the journey worker in-process.")
    ] = True,
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed staff and leads and play them, time sped up.")
    ] = False,
    time_scale: Annotated[
        float | None,
        typer.Option(help="Divide every journey duration (the demo's default: a day in 5 s)."),
    ] = None,
) -> None:
    """Run a development stack: store migrated, Temporal dev server, worker."""
    settings = load_settings()
    options = devstack.DevStackOptions(
        port=port,
        ui_port=ui_port,
        http_port=http_port,
        db_file=Path(db_file),
        worker=worker or demo,
        demo=demo,
        time_scale=time_scale,
    )

    def announce(server: devstack.RunningServer, stack: Settings) -> None:
        if server.reused:
            say(f"Temporal already runs on {options.address}: reusing it")
            say(
                f"Temporal UI: that server's own (a dev server on port {options.port} serves it "
                f"at http://{devstack.HOST}:{options.port + 1000} unless told otherwise)"
            )
        else:
            say(f"Temporal dev server on {options.address} (log: {options.server_log})")
            say(f"Temporal UI: {options.ui_url}")
        say(f"store: {_safe_url(stack.database_url)} (migrated); task queue: {stack.task_queue}")
        if options.worker:
            say("worker: running; Ctrl-C stops it" + ("" if server.reused else ", then the server"))
        elif server.reused:
            say("worker: not started (--no-worker); nothing left to run")
        else:
            say("worker: not started (--no-worker); Ctrl-C stops the server")
        say(
            "try: crm staff add --id rep-a --name 'Rep A' --role rep --region east "
            "--product-line erp && crm lead new --id L1 --name 张伟 --phone 13800138000 "
            "--region east --product-line erp --source web_form",
            style="bold",
        )

    try:
        run_temporal(lambda: devstack.run_dev_stack(settings, options, announce=announce))
    except devstack.DevStackError as exc:
        raise CliError(str(exc)) from exc
    except SQLAlchemyError as exc:  # migrating the store
        raise CliError(f"store {_safe_url(settings.database_url)}: {exc}") from exc
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    say("stopped")
