"""The `crm` command: start and steer lead, course, contract and customer
journeys, manage and import staff, customers and leads, sweep RFM tiers, run
the dev stack.

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
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select
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
from activities.rfm import RfmSweeper
from activities.staff import (
    ROLES,
    StaffError,
    StaffMember,
    add_staff,
    deactivate_staff,
    list_staff,
)
from activities.store import Store, migrate
from domain import schema
from domain.contact import InvalidContact, normalise_email, normalise_phone
from domain.courses import (
    CallbackOutcome,
    CourseStatus,
    EndCourse,
    EnrollmentInput,
    LogCallback,
    enrollment_workflow_id,
)
from domain.leads import (
    ContactChannel,
    Convert,
    LeadInput,
    LeadStatus,
    LogContact,
    lead_workflow_id,
)
from domain.lifecycle import (
    LifecycleStatus,
    Purchase,
    Tier,
    business_day,
    customer_workflow_id,
)
from domain.money import to_minor
from domain.payments import (
    Accept,
    ContractInput,
    ContractStatus,
    MilestoneRule,
    MilestoneState,
    PlanError,
    RecordPayment,
    contract_workflow_id,
    split_amounts,
)
from domain.settings import Settings
from starter import devstack, imports
from starter.client import Journeys, connect
from starter.imports import ImportReport, Outcome, Status

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
customer_app = typer.Typer(
    help="Customers: add and list them in the store; report purchases and opt-outs to their "
    "lifecycle journeys, status.",
    no_args_is_help=True,
)
contract_app = typer.Typer(
    help="Contract payment journeys: sign, accept, pay, cancel, status.", no_args_is_help=True
)
rfm_app = typer.Typer(help="RFM tiers: run the daily sweep by hand.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import staff, customers or leads from a CSV file (header row: the field names; "
    "lists separated by ';').",
    no_args_is_help=True,
)
db_app = typer.Typer(help="The CRM store's schema.", no_args_is_help=True)
app.add_typer(lead_app, name="lead")
app.add_typer(course_app, name="course")
app.add_typer(contract_app, name="contract")
app.add_typer(staff_app, name="staff")
app.add_typer(customer_app, name="customer")
ticket_app = typer.Typer(
    help="Ticket journeys: open, respond, wait, reply, resolve, reopen, rate, status.",
    no_args_is_help=True,
)
app.add_typer(ticket_app, name="ticket")
app.add_typer(rfm_app, name="rfm")
app.add_typer(import_app, name="import")
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
    hint: str = ""  # added when there is no such journey

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

    @classmethod
    def contract(cls, contract_id: str) -> Subject:
        return cls(
            noun="contract",
            entity_id=contract_id,
            workflow_id=contract_workflow_id(contract_id),
            status_command=f"crm contract status {contract_id}",
            pending="A payment, acceptance or cancellation",
        )

    @classmethod
    def ticket(cls, ticket_id: str) -> Subject:
        return cls(
            noun="ticket",
            entity_id=ticket_id,
            workflow_id=f"ticket-{ticket_id}",
            status_command=f"crm ticket status {ticket_id}",
            pending="A response, resolution or rating",
        )

    @classmethod
    def customer(cls, customer_id: str) -> Subject:
        return cls(
            noun="customer",
            entity_id=customer_id,
            workflow_id=customer_workflow_id(customer_id),
            status_command=f"crm customer status {customer_id}",
            pending="A purchase or opt-out",
            hint="a customer's journey starts with their first reported purchase "
            "(`crm customer purchase`)",
        )

    def say_started(self, workflow_type: str, task_queue: str) -> None:
        say(self.workflow_id)
        say(f"started {workflow_type} on task queue {task_queue}; see `{self.status_command}`",
            style="dim")

    def say_sent(self, what: str) -> None:
        """A signal is sent, not answered: where its acceptance or refusal shows."""
        say(f"{what} sent to {self.workflow_id}; see `{self.status_command}` "
            "(a refusal shows there)")


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
            f"{exc.message}" + (f"; {subject.hint}" if subject.hint else "")
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
    """One clause per invalid field, naming the field and the value given."""
    return imports.validation_problems(exc)


def _decimal(value: str, option: str, *, positive: bool = False) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise CliError(f"{option} {value!r} is not a decimal number") from exc
    if not amount.is_finite():
        raise CliError(f"{option} {value!r} is not a decimal number")
    if positive and amount <= 0:
        raise CliError(f"{option} {value!r} must be positive")
    return amount


def _money(value: str, currency: str, option: str = "--amount") -> Decimal:
    """A positive amount, exact in the currency's minor unit."""
    amount = _decimal(value, option, positive=True)
    try:
        to_minor(amount, currency)
    except ValueError as exc:
        raise CliError(f"{option} {value!r}: {exc}") from exc
    return amount


def _currency(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise CliError(f"--currency {value!r} is not an ISO 4217 code such as CNY")
    return code


async def _closed_journey(
    journeys: Journeys, subject: Subject, result_type: type[T] | None
) -> T | CliError | None:
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
    how = status.name.lower().replace("_", " ")
    closed = info.close_time.ToDatetime(UTC) if info.HasField("close_time") else None
    handle = journeys.client.get_workflow_handle(subject.workflow_id, result_type=result_type)
    try:
        result = await handle.result(follow_runs=False)
    except WorkflowFailureError as exc:
        cause = exc.cause
        # E.g. the enrolment activity's refusal: "... rejected: unknown customer 'x'".
        reason = getattr(cause, "message", None) or str(cause or exc)
        return CliError(f"{subject.workflow_id} {how} at {_when(closed)}: {reason}")
    if result is None:
        return CliError(f"{subject.workflow_id} {how} at {_when(closed)} without a status")
    return result


async def _journey_status(
    journeys: Journeys,
    subject: Subject,
    result_type: type[T],
    query: Callable[[], Awaitable[T]],
) -> T | CliError:
    """A running journey's status query, or a closed one's result (see `_closed_journey`)."""
    closed = await _closed_journey(journeys, subject, result_type)
    if closed is not None:
        return closed
    try:
        return await query()
    except (WorkflowQueryFailedError, RPCError):
        # It may have closed between the two calls.
        closed = await _closed_journey(journeys, subject, result_type)
        if closed is None:
            raise
        return closed


def journey_status(
    settings: Settings,
    subject: Subject,
    result_type: type[T],
    query: Callable[[Journeys], Awaitable[T]],
) -> T:
    """What every journey's `status` command shows: a running journey's status
    query, a finished one's final status; a failed one raises why (exit 1)."""
    return with_journeys(
        settings,
        subject,
        lambda journeys: _journey_status(journeys, subject, result_type, lambda: query(journeys)),
    )


def _rejection_rows(table: Table, status: Any) -> None:
    for rejection in status.rejections:
        table.add_row(
            "rejected", f"{rejection.signal} at {_when(rejection.at)}: {rejection.reason}"
        )


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

    async def start(journeys: Journeys) -> None:
        await journeys.start_lead(lead)

    subject = Subject.lead(lead_id)
    with_journeys(settings, subject, start)
    subject.say_started("LeadJourney", settings.task_queue)


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
    channel: Annotated[ContactChannel, typer.Option(help="How the lead was reached.")],
    note: Annotated[str | None, typer.Option(help="What was said.")] = None,
    at: Annotated[
        str | None, typer.Option(help="When, ISO-8601 with offset (default: now).")
    ] = None,
) -> None:
    """Log a contact with a lead; prints when the next follow-up is due."""
    settings = load_settings()
    contact = LogContact(
        owner_id=owner_id, channel=channel.value, note=note, at=_aware(at, "--at")
    )
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
    value = _decimal(amount, "--amount") if amount is not None else None
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
    _rejection_rows(table, status)
    return table


@lead_app.command("status")
@reports_errors
def lead_status(
    lead_id: Annotated[str, typer.Argument(help="The lead.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show where a lead's journey stands; a failed journey says why (exit 1)."""
    settings = load_settings()
    status = journey_status(
        settings, Subject.lead(lead_id), LeadStatus, lambda journeys: journeys.lead_status(lead_id)
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
    settings = load_settings()
    end = EndCourse(ended_at=_aware(at, "--at"))
    subject = Subject.enrolment(enrollment_id)
    with_journeys(settings, subject, lambda journeys: journeys.end_course(enrollment_id, end))
    subject.say_sent("course end")


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
    _rejection_rows(table, status)
    return table


@course_app.command("status")
@reports_errors
def course_status(
    enrollment_id: Annotated[str, typer.Argument(help="The enrolment.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show where an enrolment's journey stands; a failed journey says why (exit 1)."""
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
        _console().print(_course_table(status))


# -- contract -------------------------------------------------------------------------

RELATIVE_TO = ("signing", "acceptance")


def _plan(value: str, amount: Decimal, currency: str) -> list[MilestoneRule]:
    """`percent:days:signing|acceptance[:name]`, comma-separated, e.g. the default
    plan "30:7:signing,70:30:acceptance"; the percentages must add up to 100."""
    rules = []
    for n, part in enumerate(value.split(","), 1):
        fields = [f.strip() for f in part.split(":")]
        if len(fields) not in (3, 4):
            raise CliError(
                f"--plan milestone {n} {part.strip()!r} is not percent:days:signing|acceptance"
            )
        percent = _decimal(fields[0], f"--plan milestone {n}: percent", positive=True)
        try:
            days = int(fields[1])
        except ValueError as exc:
            raise CliError(
                f"--plan milestone {n}: days {fields[1]!r} is not a whole number"
            ) from exc
        if days < 0:
            raise CliError(f"--plan milestone {n}: days {days} must not be negative")
        if fields[2] not in RELATIVE_TO:
            raise CliError(
                f"--plan milestone {n}: {fields[2]!r} is not one of: {', '.join(RELATIVE_TO)}"
            )
        name = fields[3] if len(fields) == 4 and fields[3] else None
        rules.append(
            MilestoneRule.model_validate(
                {"percent": percent, "due_days": days, "relative_to": fields[2], "name": name}
            )
        )
    try:  # the journey's own rule: positive shares adding up to 100
        split_amounts(amount, [rule.percent for rule in rules], currency)
    except PlanError as exc:
        raise CliError(f"--plan {value!r}: {exc}") from exc
    return rules


@contract_app.command("sign")
@reports_errors
def contract_sign(
    contract_id: Annotated[
        str, typer.Option("--id", help="The contract id (journey: contract-{id}).")
    ],
    customer: Annotated[str, typer.Option(help="The customer's id.")],
    owner: Annotated[str, typer.Option(help="The owning rep's staff id.")],
    amount: Annotated[str, typer.Option(help="The contract amount, e.g. 120000.00.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "CNY",
    signed_at: Annotated[
        str | None, typer.Option(help="When it was signed, ISO-8601 with offset (default: now).")
    ] = None,
    plan: Annotated[
        str | None,
        typer.Option(
            help="Milestones as percent:days:signing|acceptance[:name], comma-separated, "
            "e.g. '30:7:signing,70:30:acceptance' (default: the payment policy's plan)."
        ),
    ] = None,
) -> None:
    """Sign a contract: start its payment journey (milestones, reminders, overdue escalation)."""
    settings = load_settings()
    code = _currency(currency)
    value = _money(amount, code)
    signed = _aware(signed_at, "--signed-at") or datetime.now(UTC)
    # The journey checks the customer and the owner against the store; an
    # unknown one fails the journey, which `crm contract status` then says.
    contract = ContractInput(
        contract_id=contract_id,
        customer_id=customer,
        owner_id=owner,
        amount=value,
        currency=code,
        signed_at=signed,
        milestones=_plan(plan, value, code) if plan is not None else None,
    )

    async def start(journeys: Journeys) -> None:
        await journeys.sign_contract(contract)

    subject = Subject.contract(contract_id)
    with_journeys(settings, subject, start)
    subject.say_started("PaymentJourney", settings.task_queue)


@contract_app.command("accept")
@reports_errors
def contract_accept(
    contract_id: Annotated[str, typer.Argument(help="The contract accepted by the customer.")],
    at: Annotated[
        str | None, typer.Option(help="When, ISO-8601 with offset (default: now).")
    ] = None,
) -> None:
    """Record the customer's acceptance (signal): the acceptance milestones get their dates."""
    settings = load_settings()
    accept = Accept(accepted_at=_aware(at, "--at"))
    subject = Subject.contract(contract_id)
    with_journeys(settings, subject, lambda journeys: journeys.accept_contract(contract_id, accept))
    subject.say_sent("acceptance")


@contract_app.command("pay")
@reports_errors
def contract_pay(
    contract_id: Annotated[str, typer.Argument(help="The contract paid.")],
    amount: Annotated[str, typer.Option(help="The amount received, e.g. 36000.00.")],
    reference: Annotated[
        str, typer.Option(help="The payment's reference (a repeat is recorded once).")
    ],
    at: Annotated[
        str | None, typer.Option(help="When it was paid, ISO-8601 with offset (default: now).")
    ] = None,
    currency: Annotated[
        str | None, typer.Option(help="ISO 4217 code (default: the contract's).")
    ] = None,
) -> None:
    """Record a payment; says at once whether it was accepted, or why not."""
    settings = load_settings()
    code = _currency(currency) if currency is not None else None
    value = _money(amount, code) if code else _decimal(amount, "--amount", positive=True)
    if not reference.strip():
        raise CliError("--reference must name the payment")
    payment = RecordPayment(
        amount=value, reference=reference, paid_at=_aware(at, "--at"), currency=code
    )
    decision = with_journeys(
        settings,
        Subject.contract(contract_id),
        lambda journeys: journeys.record_payment(contract_id, payment),
    )
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    if decision.reason:  # e.g. "already recorded": accepted, nothing changed
        say(f"accepted: payment {reference} on contract {contract_id}: {decision.reason}")
        return
    say(f"accepted: payment {reference} of {value} recorded on contract {contract_id}")
    subject = Subject.contract(contract_id)
    status = journey_status(
        settings, subject, ContractStatus, lambda journeys: journeys.contract_status(contract_id)
    )
    if status.credit > 0:
        # Paid beyond what the contract asks: held for the customer, not revenue.
        say(f"credit: {status.credit} {status.currency} paid beyond the contract's "
            f"{status.amount} {status.currency} is held as the customer's credit")
    say(f"see `crm contract status {contract_id}`", style="dim")


@contract_app.command("cancel")
@reports_errors
def contract_cancel(
    contract_id: Annotated[str, typer.Argument(help="The contract to cancel.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the contract).")],
) -> None:
    """Cancel a contract with a reason (signal): its unpaid milestones are cancelled."""
    settings = load_settings()
    if not reason.strip():
        raise CliError("--reason must say why the contract is cancelled")
    subject = Subject.contract(contract_id)
    with_journeys(settings, subject, lambda journeys: journeys.cancel_contract(contract_id, reason))
    subject.say_sent("cancel")


def _contract_table(status: ContractStatus) -> Table:
    table = Table(title=f"contract {status.contract_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    action = status.next_action
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value),
        ("customer", status.customer_id),
        ("owner", status.owner_id),
        ("amount", f"{status.amount} {status.currency}"),
        ("paid", f"{status.paid} {status.currency}"),
        (
            "credit",
            f"{status.credit} {status.currency}"
            + (" (paid beyond the contract; not revenue)" if status.credit > 0 else ""),
        ),
        ("accepted", _when(status.accepted_at)),
        ("overdue from", _when(status.next_due)),
        (
            "next action",
            f"{action.kind.value} (milestone {action.seq}) at {_when(action.at)}"
            if action
            else "-",
        ),
        ("payments", ", ".join(status.references) or "-"),
        ("repeats ignored", status.ignored_duplicates),
    ]
    for field, value in rows:
        table.add_row(field, str(value))
    _rejection_rows(table, status)
    return table


def _milestones_table(status: ContractStatus) -> Table:
    table = Table(title="milestones", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for column in ("#", "milestone", "share", "amount", "due", "paid", "state"):
        table.add_column(column, no_wrap=True, justify="right" if column in ("#", "share",
                         "amount", "paid") else "left")  # fmt: skip
    for m in status.milestones:
        if m.due_date is not None:
            due = m.due_date.isoformat()
        elif m.state is MilestoneState.awaiting_acceptance:
            due = f"{m.due_days} d after acceptance"
        else:
            due = "-"
        table.add_row(
            str(m.seq), m.name, f"{m.percent}%", str(m.amount), due, str(m.paid), m.state.value
        )
    return table


@contract_app.command("status")
@reports_errors
def contract_status(
    contract_id: Annotated[str, typer.Argument(help="The contract.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show a contract's milestones and payments; a failed journey says why (exit 1)."""
    settings = load_settings()
    subject = Subject.contract(contract_id)
    status = journey_status(
        settings, subject, ContractStatus, lambda journeys: journeys.contract_status(contract_id)
    )
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
        return
    console = _console()
    console.print(_contract_table(status))
    console.print(_milestones_table(status))


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
    if member.role in ("agent", "supervisor"):
        groups = sorted(set(settings.ticket_policy.groups.values())
                        | {settings.ticket_policy.default_group})
        if not member.group:
            warn(f"{member.role} {member.id} has no --group, so no ticket reaches them "
                 f"(groups: {', '.join(groups)})")
        elif member.group not in groups:
            warn(f"{member.role} {member.id}: no ticket type is routed to group "
                 f"{member.group!r} (groups: {', '.join(groups)})")


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
    settings: Settings, staff_id: str, workflow_ids: list[str]
) -> tuple[list[str], dict[str, str]] | CliError:
    """Signals each journey; one that cannot be told does not stop the others.
    (An unreachable Temporal comes back as a value, as in `with_journeys`.)"""
    try:
        client = await connect(settings)
    except RuntimeError as exc:  # the SDK's connect failure
        return CliError(
            f"{_unreachable(settings, exc)}\nthe deactivation stands, but these open "
            f"journeys were not told: {', '.join(workflow_ids)}; run "
            f"`crm staff deactivate {staff_id}` again once Temporal is up"
        )
    journeys = Journeys(client, task_queue=settings.task_queue)
    told: list[str] = []
    failed: dict[str, str] = {}
    for workflow_id in workflow_ids:
        try:
            await journeys.tell_staff_deactivated([workflow_id], staff_id)
        except RPCError as exc:
            failed[workflow_id] = exc.message
        else:
            told.append(workflow_id)
    return told, failed


@staff_app.command("deactivate")
@reports_errors
def staff_deactivate(
    staff_id: Annotated[str, typer.Argument(help="The staff member leaving.")],
) -> None:
    """Deactivate a staff member and tell their open journeys (leads, tickets, courses,
    contracts, exclusive customers) to hand their part on."""
    settings = load_settings()
    with open_store(settings) as store:
        try:
            workflow_ids = deactivate_staff(store, staff_id, now=datetime.now(UTC))
        except StaffError as exc:
            raise CliError(str(exc)) from exc
    say(f"deactivated {staff_id} in the store")
    if not workflow_ids:
        # Nothing to signal, so Temporal is not needed (nor contacted).
        say("they hold no role in an open journey; told 0 journeys")
        return
    outcome = run_temporal(lambda: _tell_journeys(settings, staff_id, workflow_ids))
    if isinstance(outcome, CliError):
        raise outcome
    told, failed = outcome
    say(f"told {len(told)} journeys to reassign: {', '.join(told) or '-'}")
    if failed:
        # Rerunning is safe: the store change repeats and the journeys are told again.
        for workflow_id, reason in failed.items():
            warn(f"{workflow_id}: journey not told: {reason}")
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


CHANNELS = ("email", "sms", "chat")
# The lifecycle journey's store currency.
LIFECYCLE_CURRENCY = "CNY"


@customer_app.command("purchase")
@reports_errors
def customer_purchase(
    customer_id: Annotated[str, typer.Argument(help="The customer who bought.")],
    order: Annotated[str, typer.Option(help="The order id (a repeat is recorded once).")],
    amount: Annotated[str, typer.Option(help=f"The order amount in {LIFECYCLE_CURRENCY}.")],
    category: Annotated[str, typer.Option(help="The product category.")],
    at: Annotated[
        str | None, typer.Option(help="When, ISO-8601 with offset (default: now).")
    ] = None,
    coupon: Annotated[str | None, typer.Option(help="The coupon code redeemed.")] = None,
) -> None:
    """Report a purchase to the customer's lifecycle journey (started by the first one)."""
    settings = load_settings()
    if not order.strip():
        raise CliError("--order must name the order")
    if not category.strip():
        raise CliError("--category must name the product category")
    purchase = Purchase(
        order_id=order,
        amount=_money(amount, LIFECYCLE_CURRENCY),
        category=category,
        at=_aware(at, "--at"),
        coupon_code=coupon or None,
    )
    subject = Subject.customer(customer_id)
    with_journeys(
        settings, subject, lambda journeys: journeys.report_purchase(customer_id, purchase)
    )
    subject.say_sent(f"purchase {order}")


@customer_app.command("opt-out")
@reports_errors
def customer_opt_out(
    customer_id: Annotated[str, typer.Argument(help="The customer opting out.")],
    channel: Annotated[
        str | None,
        typer.Option(help=f"One of: {', '.join(CHANNELS)} (default: every channel)."),
    ] = None,
) -> None:
    """Opt a customer out of marketing messages on one channel, or on all of them."""
    settings = load_settings()
    if channel is not None and channel not in CHANNELS:
        raise CliError(f"--channel {channel!r} is not one of: {', '.join(CHANNELS)}")
    subject = Subject.customer(customer_id)
    with_journeys(settings, subject, lambda journeys: journeys.opt_out(customer_id, channel))
    where = f"on {channel}" if channel else "on every channel"
    say(f"opt-out of marketing {where} sent to {subject.workflow_id}")


def _store_tier(settings: Settings, customer_id: str) -> tuple[str | None, date | None] | None:
    """The customer's tier as the store has it, and the business day it was set.
    The daily sweep writes every tier there; the journey hears only of those
    that call for an action (core, potential). None when the store cannot say."""
    try:
        with open_store(settings) as store, store.unit_of_work() as session:
            row = session.execute(
                select(schema.Customer.tier, schema.Customer.tier_changed_on).where(
                    schema.Customer.id == customer_id
                )
            ).first()
    except (CliError, SQLAlchemyError, OSError) as exc:
        warn(f"the tier shown is the journey's: the store could not be read ({exc})")
        return None
    return (row[0], row[1]) if row else (None, None)


def _lifecycle_table(status: LifecycleStatus, tier_since: date | None = None) -> Table:
    table = Table(title=f"customer {status.customer_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    tier = status.tier or "-"
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value),
        ("tier", f"{tier} (since {tier_since.isoformat()})" if tier_since else tier),
        ("orders", status.orders),
        ("last purchase", _when(status.last_purchase_at)),
        ("dormant from", _when(status.dormant_at)),
        ("next step", _when(status.next_step_at)),
        ("win-back coupons", ", ".join(status.campaign) or "-"),
        ("win-backs credited", status.credited),
        ("runs", status.runs),
    ]
    for field, value in rows:
        table.add_row(field, str(value))
    _rejection_rows(table, status)
    return table


@customer_app.command("status")
@reports_errors
def customer_status(
    customer_id: Annotated[str, typer.Argument(help="The customer.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show where a customer's lifecycle journey stands (stage, win-back), with the
    tier from the store and the day it was set."""
    settings = load_settings()
    subject = Subject.customer(customer_id)
    status = journey_status(
        settings, subject, LifecycleStatus, lambda journeys: journeys.customer_status(customer_id)
    )
    tier, since = _store_tier(settings, customer_id) or (None, None)
    if tier:
        status = status.model_copy(update={"tier": tier})
    else:
        since = None
    if as_json:
        shown = status.model_dump(mode="json")
        shown["tier_changed_on"] = since.isoformat() if since else None
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        _console().print(_lifecycle_table(status, since))


# -- rfm ------------------------------------------------------------------------------


def _tier_counts(store: Store) -> tuple[dict[str | None, int], int]:
    """Customers per tier, and the strategy changes not yet told to their journeys."""
    with store.unit_of_work() as session:
        counts = dict(
            session.execute(
                select(schema.Customer.tier, func.count()).group_by(schema.Customer.tier)
            ).all()
        )
        queued = session.scalar(
            select(func.count())
            .select_from(schema.TierOutbox)
            .where(schema.TierOutbox.sent_at.is_(None))
        )
    return counts, queued or 0


@rfm_app.command("sweep")
@reports_errors
def rfm_sweep(
    day: Annotated[
        str | None,
        typer.Option(help="The business day, YYYY-MM-DD (default: today in the business zone)."),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Recompute every customer, not only those whose tier can have changed."
        ),
    ] = False,
) -> None:
    """Run the RFM sweep on the store now, as the daily schedule does; show the tiers."""
    settings = load_settings()
    zone = settings.default_timezone
    if day is None:
        when = business_day(datetime.now(UTC), zone)
    else:
        try:
            when = date.fromisoformat(day)
        except ValueError as exc:
            raise CliError(f"--day {day!r} is not a date (YYYY-MM-DD)") from exc
    with open_store(settings) as store:
        sweeper = RfmSweeper(store=store, policy=settings.lifecycle_policy.rfm, zone=zone)
        result = sweeper.sweep(when, full=full)
        counts, queued = _tier_counts(store)

    summary = Table(title=f"RFM sweep of {when.isoformat()} ({zone})", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value")
    summary.add_row("mode", result.mode)
    summary.add_row("tiers changed", str(result.changed))
    summary.add_row("strategy changes queued", str(result.outboxed))
    summary.add_row("seconds", f"{result.seconds:.3f}")
    tiers = Table(title="customers by tier", box=box.SIMPLE_HEAD, show_edge=False)
    tiers.add_column("tier")
    tiers.add_column("customers", justify="right")
    for tier in Tier:
        tiers.add_row(tier.value, str(counts.get(tier.value, 0)))
    tiers.add_row("none", str(counts.get(None, 0)))
    console = _console()
    console.print(summary)
    console.print(tiers)
    say(
        f"{queued} queued for the next dispatch: the RfmSweep workflow of the daily schedule "
        f"(rfm-daily, {settings.rfm_schedule_hour:02d}:00 {zone}) tells them to their "
        "customers' journeys",
        style="dim",
    )


# -- import ---------------------------------------------------------------------------

ImportFile = Annotated[
    Path,
    typer.Argument(
        help="A CSV file: a header row of field names, one record a row; lists "
        "(regions, product_lines) separated by ';'.",
        dir_okay=False,
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Check every row; write nothing.")]


@contextmanager
def _progress(what: str, total: int) -> Iterator[imports.Tick]:
    """A progress bar on a terminal's stderr (none in a pipe, so output stays clean)."""
    console = _console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(what, total=total)
        yield lambda _outcome: progress.advance(task)


def _read(path: Path, kind: str) -> list[imports.Row]:
    try:
        return imports.read_rows(path, kind)
    except imports.ImportFileError as exc:
        raise CliError(str(exc)) from exc


def _lines(outcomes: list[Outcome], most: int = 12) -> str:
    lines = [str(o.line) for o in outcomes[:most]]
    if len(outcomes) > most:
        lines.append(f"… {len(outcomes) - most} more")
    return ", ".join(lines) or "-"


def _report(path: Path, kind: str, report: ImportReport, done_label: str) -> None:
    """Duplicates on stdout, bad rows on stderr (each with its line), then the summary;
    exit 1 if every row was bad."""
    for outcome in report.of(Status.duplicate):
        say(f"line {outcome.line}: {outcome.entity_id}: skipped, {outcome.detail}")
    for outcome in report.of(Status.bad):
        who = f" ({outcome.entity_id})" if outcome.entity_id else ""
        warn(f"{path.name} line {outcome.line}{who}: bad row skipped: {outcome.detail}")
    done = report.of(Status.imported) + report.of(Status.valid)
    done.sort(key=lambda o: o.line)
    table = Table(title=f"import {kind} from {path.name}", box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    table.add_column("lines", overflow="fold")
    table.add_row(done_label, str(len(done)), _lines(done))
    table.add_row(
        "duplicates", str(len(report.of(Status.duplicate))), _lines(report.of(Status.duplicate))
    )
    table.add_row("bad rows", str(len(report.of(Status.bad))), _lines(report.of(Status.bad)))
    _console().print(table)
    if report.exit_code:
        raise CliError(f"every row of {path} was bad: nothing imported")


def _import_into_store(path: Path, kind: str, dry_run: bool) -> None:
    settings = load_settings()
    rows = _read(path, kind)
    if not rows:
        say(f"{path} has no rows: nothing to import")
        return
    importer = imports.import_staff if kind == "staff" else imports.import_customers
    with open_store(settings) as store, _progress(f"importing {kind}", len(rows)) as tick:
        report = importer(store, rows, now=datetime.now(UTC), dry_run=dry_run, tick=tick)
    _report(path, kind, report, "would import" if dry_run else "imported")
    if dry_run:
        say("dry run: nothing was written", style="dim")


@import_app.command("staff")
@reports_errors
def import_staff(file: ImportFile, dry_run: DryRun = False) -> None:
    """Import staff (columns: StaffMember's fields); managers go before their reports.
    A staff id already in the store is a duplicate (`crm staff add` changes one)."""
    _import_into_store(file, "staff", dry_run)


@import_app.command("customers")
@reports_errors
def import_customers(file: ImportFile, dry_run: DryRun = False) -> None:
    """Import customers (columns: id, name, locale, timezone, phone, email, company,
    owner_id); one with the id, phone, e-mail or company of a known customer is a
    duplicate of that customer."""
    _import_into_store(file, "customers", dry_run)


async def _start_leads(
    settings: Settings,
    good: list[tuple[imports.Row, LeadInput]],
    report: ImportReport,
    tick: imports.Tick,
) -> None | CliError:
    try:
        client = await connect(settings)
    except RuntimeError as exc:  # the SDK's connect failure
        return CliError(f"{_unreachable(settings, exc)}\nno lead journey was started")
    await imports.start_lead_journeys(
        Journeys(client, task_queue=settings.task_queue), good, report, tick=tick
    )
    return None


@import_app.command("leads")
@reports_errors
def import_leads(
    file: ImportFile,
    start_journeys: Annotated[
        bool,
        typer.Option(
            "--start-journeys",
            help="Start a LeadJourney for each good row (its intake writes the lead). "
            "Without it the file is only checked.",
        ),
    ] = False,
    dry_run: DryRun = False,
) -> None:
    """Import leads (columns: LeadInput's fields) by starting their journeys: intake
    writes each lead and merges it into an open lead with the same contact. A lead
    id already in the store is a duplicate."""
    settings = load_settings()
    rows = _read(file, "leads")
    if not rows:
        say(f"{file} has no rows: nothing to import")
        return
    starting = start_journeys and not dry_run
    with open_store(settings) as store, _progress("importing leads", len(rows)) as tick:
        report, good = imports.check_leads(store, rows, tick=tick)
        if starting:
            outcome = run_temporal(lambda: _start_leads(settings, good, report, tick))
            if isinstance(outcome, CliError):
                raise outcome
        else:
            imports.leads_not_started(good, report, tick=tick)
    if starting:
        label = "journeys started"
    elif dry_run:
        label = "would start" if start_journeys else "valid"
    else:
        label = "valid, not started"
    _report(file, "leads", report, label)
    started = len(report.of(Status.imported))
    if starting:
        say(
            f"started {started} LeadJourney(s) on task queue {settings.task_queue}; intake "
            "merges a lead into an open lead with the same phone, e-mail or company; "
            "see `crm lead status ID`",
            style="dim",
        )
    elif dry_run:
        say("dry run: nothing was written and no journey started", style="dim")
    else:
        say(
            "only checked: leads are imported by their journeys, and none was started; "
            "run again with --start-journeys to start them",
            style="dim",
        )


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


# The README's first lead ("Run it"), which `crm up` suggests once the stack runs.
WALKTHROUGH = (
    'staff add --id mgr-1 --name "张经理" --role manager --region east --chat mgr-1',
    'staff add --id rep-1 --name "李娜" --role rep --region east --product-line erp '
    "--manager mgr-1 --chat rep-1",
    "lead new --id L1 --name 王芳 --phone 13800138000 --email wang.fang@example.com "
    '--region east --product-line erp --source web_form --need "ERP for three plants"',
    "lead status L1",
    'lead contact L1 rep-1 --channel phone --note "demo booked"',
)


def _crm_command() -> str:
    """`crm` as this one was run (`.venv/bin/crm` from ./run.sh), so a suggested
    command can be pasted as it is."""
    invoked = sys.argv[0] if sys.argv else ""
    return invoked if Path(invoked).name == "crm" else "crm"


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
        crm = _crm_command()
        say("try, from another terminal (the README's walkthrough):", style="bold")
        for command in WALKTHROUGH:
            say(f"  {crm} {command}")

    try:
        run_temporal(lambda: devstack.run_dev_stack(settings, options, announce=announce))
    except devstack.DevStackError as exc:
        raise CliError(str(exc)) from exc
    except SQLAlchemyError as exc:  # migrating the store
        raise CliError(f"store {_safe_url(settings.database_url)}: {exc}") from exc
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    say("stopped")


# -- report ---------------------------------------------------------------------------


@app.command("report")
@reports_errors
def report(
    start: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: 30 days ago).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day, YYYY-MM-DD, included (default: today).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Also write the report as an HTML page with charts.")
    ] = None,
) -> None:
    """The KPIs of a period from the store: conversion, first touch, collection,
    overdue, win-back, tiers, escalations, ticket SLAs and CSAT per group and
    agent, and each journey's funnel."""
    from datetime import date, timedelta

    from starter.report import (
        TICKET_COLUMNS,
        build_report,
        render_html,
        render_text,
        ticket_tables,
    )

    settings = load_settings()
    try:
        last = date.fromisoformat(end) if end else datetime.now(UTC).date()
        first = date.fromisoformat(start) if start else last - timedelta(days=29)
    except ValueError as exc:
        raise CliError(f"dates are YYYY-MM-DD: {exc}") from exc
    if first > last:
        raise CliError(f"--from {first} is after --to {last}")
    with open_store(settings) as store:
        figures = build_report(store, start=first, end=last + timedelta(days=1))
    table = Table(box=box.SIMPLE, show_header=False)
    for label, value in render_text(figures):
        table.add_row(label, value)
    _console().print(table)
    for journey, steps in figures.funnels.items():
        funnel = Table(title=f"{journey} funnel", box=box.SIMPLE)
        funnel.add_column("step")
        funnel.add_column("reached", justify="right")
        funnel.add_column("dropped", justify="right")
        for step in steps:
            funnel.add_row(step.step, str(step.reached), str(step.dropped or ""))
        exits = ", ".join(f"{k} {v}" for k, v in figures.exits.get(journey, {}).items())
        funnel.caption = f"completed {figures.completed.get(journey, 0)}" + \
            (f"; {exits}" if exits else "")
        _console().print(funnel)
    for title, header, rows in ticket_tables(figures):
        tickets = Table(title=title, box=box.SIMPLE)
        for column in header:
            tickets.add_column(column, justify="right" if column in TICKET_COLUMNS else "left")
        for row in rows:
            tickets.add_row(*row)
        _console().print(tickets)
    if html is not None:
        html.write_text(render_html(figures), encoding="utf-8")
        say(f"wrote {html}")


# -- ticket ---------------------------------------------------------------------------


def _decided(decision: Any, done: str) -> None:
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"accepted: {done}" + (f" ({decision.reason})" if decision.reason else ""))


@ticket_app.command("open")
@reports_errors
def ticket_open(
    ticket_id: Annotated[str, typer.Option("--id", help="The ticket id (journey: ticket-{id}).")],
    customer: Annotated[str, typer.Option(help="The customer's id.")],
    ticket_type: Annotated[
        str, typer.Option("--type", help="technical, after_sales, complaint, order_query, other.")
    ],
    subject: Annotated[str, typer.Option(help="The ticket's subject.")],
    priority: Annotated[str, typer.Option(help="urgent, high, normal or low.")] = "normal",
    channel: Annotated[str, typer.Option(help="Where it came in (web, email, phone…).")] = "web",
    description: Annotated[str | None, typer.Option(help="The customer's words.")] = None,
) -> None:
    """Open a ticket: routed to its group, the first-response clock starts."""
    from domain.tickets import Priority, TicketInput, TicketType

    settings = load_settings()
    if ticket_type not in {t.value for t in TicketType}:
        raise CliError(f"--type {ticket_type!r} is not one of: "
                       + ", ".join(t.value for t in TicketType))
    if priority not in {p.value for p in Priority}:
        raise CliError(f"--priority {priority!r} is not one of: "
                       + ", ".join(p.value for p in Priority))
    ticket = TicketInput.model_validate({
        "ticket_id": ticket_id, "customer_id": customer, "type": ticket_type,
        "priority": priority, "subject": subject, "channel": channel,
        "description": description})

    async def start(journeys: Journeys) -> str:
        return (await journeys.open_ticket(ticket)).id

    say(with_journeys(settings, Subject.ticket(ticket_id), start))
    say(f"see `crm ticket status {ticket_id}`", style="dim")


@ticket_app.command("respond")
@reports_errors
def ticket_respond(
    ticket_id: Annotated[str, typer.Argument(help="The ticket.")],
    agent_id: Annotated[str, typer.Argument(help="The agent who answered.")],
    note: Annotated[str | None, typer.Option(help="What was said.")] = None,
) -> None:
    """Record the first (or a later) response; says at once whether it was accepted."""
    settings = load_settings()
    decision = with_journeys(settings, Subject.ticket(ticket_id),
                             lambda journeys: journeys.respond(ticket_id, agent_id, note))
    _decided(decision, f"{agent_id} responded on ticket {ticket_id}")


@ticket_app.command("wait")
@reports_errors
def ticket_wait(ticket_id: Annotated[str, typer.Argument(help="The ticket.")]) -> None:
    """The ticket waits on the customer: the SLA clock pauses (signal)."""
    settings = load_settings()
    with_journeys(settings, Subject.ticket(ticket_id),
                  lambda journeys: journeys.wait_on_customer(ticket_id))
    say(f"sent; see `crm ticket status {ticket_id}`")


@ticket_app.command("reply")
@reports_errors
def ticket_reply(ticket_id: Annotated[str, typer.Argument(help="The ticket.")]) -> None:
    """The customer replied: the SLA clock runs again (signal)."""
    settings = load_settings()
    with_journeys(settings, Subject.ticket(ticket_id),
                  lambda journeys: journeys.customer_replied(ticket_id))
    say(f"sent; see `crm ticket status {ticket_id}`")


@ticket_app.command("resolve")
@reports_errors
def ticket_resolve(
    ticket_id: Annotated[str, typer.Argument(help="The ticket.")],
    agent_id: Annotated[str, typer.Argument(help="The agent who resolved it.")],
    resolution: Annotated[str, typer.Option(help="What was done.")],
) -> None:
    """Resolve a ticket: the customer gets the notice and a rating request."""
    settings = load_settings()
    decision = with_journeys(settings, Subject.ticket(ticket_id),
                             lambda journeys: journeys.resolve(ticket_id, agent_id, resolution))
    _decided(decision, f"ticket {ticket_id} resolved by {agent_id}")


@ticket_app.command("reopen")
@reports_errors
def ticket_reopen(
    ticket_id: Annotated[str, typer.Argument(help="The ticket.")],
    reason: Annotated[str, typer.Option(help="Why the customer reopened it.")],
) -> None:
    """Reopen a resolved ticket (signal): the resolution clock goes on from the time used."""
    settings = load_settings()
    with_journeys(settings, Subject.ticket(ticket_id),
                  lambda journeys: journeys.reopen(ticket_id, reason))
    say(f"sent; see `crm ticket status {ticket_id}`")


@ticket_app.command("rate")
@reports_errors
def ticket_rate(
    ticket_id: Annotated[str, typer.Argument(help="The ticket.")],
    score: Annotated[int, typer.Option(help="1 to 5; below 3 reopens and escalates.")],
    comment: Annotated[str | None, typer.Option(help="The customer's comment.")] = None,
) -> None:
    """The customer's rating; says at once whether it was accepted."""
    settings = load_settings()
    if not 1 <= score <= 5:
        raise CliError(f"--score {score} is not between 1 and 5")
    decision = with_journeys(settings, Subject.ticket(ticket_id),
                             lambda journeys: journeys.rate(ticket_id, score, comment))
    _decided(decision, f"rating {score} on ticket {ticket_id}")


@ticket_app.command("status")
@reports_errors
def ticket_status(
    ticket_id: Annotated[str, typer.Argument(help="The ticket.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """A ticket's stage, owner and SLA figures; a failed journey says why (exit 1)."""
    from domain.tickets import TicketStatus

    settings = load_settings()
    subject = Subject.ticket(ticket_id)
    status = journey_status(
        settings, subject, TicketStatus, lambda journeys: journeys.ticket_status(ticket_id)
    )
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
        return
    table = Table(title=f"ticket {status.ticket_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for field, value in (
        ("stage", status.stage.value), ("type", status.type.value),
        ("priority", status.priority.value + (" (raised)" if status.priority_raised else "")),
        ("group", status.group or "-"), ("assignee", status.assignee_id or "-"),
        ("first response due", _when(status.first_response_due)),
        ("first response", _when(status.first_response_at)),
        ("resolution due", _when(status.resolution_due)),
        ("SLA clock", status.sla_clock or "-"), ("time used", str(status.time_used)),
        ("time paused", str(status.time_paused)), ("breaches", str(len(status.breaches))),
        ("escalations", str(len(status.escalations))), ("reopens", str(status.reopens)),
    ):
        table.add_row(field, value)
    _rejection_rows(table, status)
    _console().print(table)
