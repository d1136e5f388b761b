"""`crm batch`: signal or terminate every running journey a visibility query
matches, as one Temporal batch job, and follow the job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from starter.cli.common import CliError, load_settings, reports_errors, say, unreachable

if TYPE_CHECKING:
    from temporalio.client import Client

T = TypeVar("T")

# Its help is declared in starter/cli/app.py: `crm --help` lists it
# without importing this module.
batch_app = typer.Typer(no_args_is_help=True)

QUERY = typer.Option(help="A visibility query, e.g. \"CrmJourney = 'lead' AND "
                          "CrmOwnerId = 'rep-a'\"; only running journeys are touched.")


def _run(action: Callable[[Client], Awaitable[T]]) -> T:
    from temporalio.service import RPCError

    from starter.cli.journey import run_temporal
    from starter.client import connect

    settings = load_settings()

    async def go() -> T | CliError:
        try:
            client = await connect(settings)
        except RuntimeError as exc:
            return CliError(unreachable(settings, exc))
        try:
            return await action(client)
        except RPCError as exc:
            return CliError(f"Temporal refused the batch job: {exc.message}")

    outcome = run_temporal(go)
    if isinstance(outcome, CliError):
        raise outcome
    return outcome


@batch_app.command("signal")
@reports_errors
def batch_signal(
    query: Annotated[str, QUERY],
    signal: Annotated[str, typer.Option(help="The signal, e.g. staff_deactivated.")],
    reason: Annotated[str, typer.Option(help="Why: recorded with the job.")],
    payload: Annotated[str, typer.Option(help="The signal's payload, a JSON object.")] = "{}",
) -> None:
    """Signal every running journey the query matches; prints the job id."""
    from starter.batch import parse_payload, signal_all

    if not reason.strip():
        raise CliError("--reason is required")
    try:
        body = parse_payload(payload)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    job = _run(lambda client: signal_all(client, query, signal, body, reason))
    say(f"batch job {job} started: `crm batch status {job}` follows it")


@batch_app.command("terminate")
@reports_errors
def batch_terminate(
    query: Annotated[str, QUERY],
    reason: Annotated[str, typer.Option(help="Why: recorded in every journey's history.")],
) -> None:
    """Terminate every running journey the query matches; prints the job id."""
    from starter.batch import terminate_all

    if not reason.strip():
        raise CliError("--reason is required")
    job = _run(lambda client: terminate_all(client, query, reason))
    say(f"batch job {job} started: `crm batch status {job}` follows it")


@batch_app.command("status")
@reports_errors
def batch_status(job_id: Annotated[str, typer.Argument(help="The job id.")]) -> None:
    """A batch job's state and how many journeys it reached."""
    from starter.batch import describe

    job = _run(lambda client: describe(client, job_id))
    say(f"{job.job_id}: {job.operation} {job.state}, {job.done}/{job.total} done, "
        f"{job.failed} failed; query: {job.query}; reason: {job.reason}")
