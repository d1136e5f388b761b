"""Talking to journeys on Temporal from a command: which journey a command is
about (`Subject`), connecting, waiting for an answer, reading a journey's
status whether it runs or has finished, and saying what Temporal's errors
mean for the person who typed the command.

temporalio and the domain models are imported inside the functions that use
them, so that building the command tree (`crm --help`) does not load them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from starter.cli.common import CliError, say, unreachable, when

if TYPE_CHECKING:
    from rich.table import Table

    from domain.settings import Settings
    from starter.client import Journeys

T = TypeVar("T")

# How long a command waits for a journey to answer a query or an update.
ANSWER_WITHIN_S = 30.0


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
        from domain.leads import lead_workflow_id

        return cls(
            noun="lead",
            entity_id=lead_id,
            workflow_id=lead_workflow_id(lead_id),
            status_command=f"crm lead status {lead_id}",
            pending="A claim or contact",
        )

    @classmethod
    def enrolment(cls, enrollment_id: str) -> Subject:
        from domain.courses import enrollment_workflow_id

        return cls(
            noun="enrolment",
            entity_id=enrollment_id,
            workflow_id=enrollment_workflow_id(enrollment_id),
            status_command=f"crm course status {enrollment_id}",
            pending="A callback or course end",
        )

    @classmethod
    def contract(cls, contract_id: str) -> Subject:
        from domain.payments import contract_workflow_id

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
        from domain.lifecycle import customer_workflow_id

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


def no_answer(settings: Settings, subject: Subject) -> CliError:
    return CliError(
        f"{subject.workflow_id} did not answer within {ANSWER_WITHIN_S:.0f} s: is a "
        f"worker polling task queue {settings.task_queue}? (`crm up` runs one). "
        f"{subject.pending} may still be applied when one does; check `{subject.status_command}`"
    )


def journey_error(settings: Settings, subject: Subject, exc: BaseException) -> CliError:
    """What a Temporal error means for the person who typed the command."""
    from temporalio.client import (
        WorkflowQueryFailedError,
        WorkflowUpdateFailedError,
        WorkflowUpdateRPCTimeoutOrCancelledError,
    )
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError, RPCStatusCode

    workflow_id = subject.workflow_id
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError) or (
        # A query nobody answers is cancelled by the server.
        isinstance(exc, RPCError)
        and exc.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)
    ):
        return no_answer(settings, subject)
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
    What was imported before is frozen first: modules are never garbage, and
    walking their objects made the collection a noticeable part of a short
    command's time.
    """
    import asyncio
    import gc

    async def go() -> T:
        try:
            return await main()
        finally:
            gc.collect()

    gc.freeze()
    try:
        return asyncio.run(go())
    finally:
        gc.unfreeze()  # an in-process caller (the tests' runner) collects as before


def with_journeys(
    settings: Settings,
    subject: Subject,
    action: Callable[[Journeys], Awaitable[T | CliError]],
) -> T:
    """Connects with the settings' address, namespace and task queue, runs `action`,
    and turns what Temporal says into messages about `subject`. An action reports
    its own failures by returning a `CliError` (not raising it: see `run_temporal`)."""
    import asyncio

    from temporalio.client import (
        WorkflowQueryFailedError,
        WorkflowUpdateFailedError,
        WorkflowUpdateRPCTimeoutOrCancelledError,
    )
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError

    from starter.client import Journeys, connect
    from starter.codec import CodecKeyError

    async def go() -> T | CliError:
        try:
            client = await connect(settings)
        except CodecKeyError as exc:
            return CliError(f"payload codec: {exc}")
        except RuntimeError as exc:  # the SDK's connect failure
            return CliError(unreachable(settings, exc))
        try:
            # Without a worker an update waits for ever; a person should not.
            async with asyncio.timeout(ANSWER_WITHIN_S):
                return await action(Journeys(client, task_queue=settings.task_queue,
                                             settings=settings))
        except TimeoutError:
            return no_answer(settings, subject)
        except (
            WorkflowAlreadyStartedError,
            WorkflowUpdateFailedError,
            WorkflowUpdateRPCTimeoutOrCancelledError,
            WorkflowQueryFailedError,
            RPCError,
        ) as exc:
            return journey_error(settings, subject, exc)
        except CodecKeyError as exc:  # an answer sealed with a key this ring lacks
            return CliError(f"{subject.workflow_id}: payload codec: {exc}")

    outcome = run_temporal(go)
    if isinstance(outcome, CliError):
        raise outcome
    return outcome


async def _closed_journey(
    journeys: Journeys, subject: Subject, result_type: type[T] | None
) -> T | CliError | None:
    """A finished journey's last status, or why it ended without one; None while it runs.

    A closed journey is not queried: its result is its final status, and a
    failed one has no status to give, only the failure. (The raw describe call:
    `WorkflowHandle.describe` also decodes the search attributes, and the
    time-skipping test server hands back an unset `CrmSlaDeadline` that it
    cannot decode.)"""
    from datetime import UTC

    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
    from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

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
        return CliError(f"{subject.workflow_id} {how} at {when(closed)}: {reason}")
    if result is None:
        return CliError(f"{subject.workflow_id} {how} at {when(closed)} without a status")
    return result


async def _journey_status(
    journeys: Journeys,
    subject: Subject,
    result_type: type[T],
    query: Callable[[], Awaitable[T]],
) -> T | CliError:
    """A running journey's status query, or a closed one's result (see `_closed_journey`)."""
    from temporalio.client import WorkflowQueryFailedError
    from temporalio.service import RPCError

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


def rejection_rows(table: Table, status: Any) -> None:
    """The signals a journey refused, as rows of its status table."""
    for rejection in status.rejections:
        table.add_row(
            "rejected", f"{rejection.signal} at {when(rejection.at)}: {rejection.reason}"
        )


def status_table(title: str, rows: list[tuple[str, Any]], status: Any) -> Table:
    """A status command's two-column table: its fields, then the refused signals."""
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for field, value in rows:
        table.add_row(field, str(value))
    rejection_rows(table, status)
    return table
