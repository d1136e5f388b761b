"""`crm customer erase` and `crm lead erase`: erasure on request.

The store first (`activities.store.erasure`): personal fields tombstoned,
consent rows removed, the erasure recorded. Then the person's open journeys
are terminated with the reason `erased: REASON`. Terminating needs no change
to any journey's code (so nothing for running journeys to replay
differently), takes effect at once, and Temporal records the reason in the
history; a message a journey was sending meanwhile is refused by the send
path with the reason `erased`. Last, the command names every journey whose
history still holds (encrypted) copies of the person's data, until the
namespace's retention ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from starter.cli.common import CliError, load_settings, open_store, say, unreachable, warn
from starter.cli.journey import run_temporal

if TYPE_CHECKING:
    from activities.store.erasure import Erased
    from domain.settings import Settings


@dataclass
class Ended:
    """What Temporal said of each of the person's journeys."""

    terminated: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)  # over already; history kept
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def histories(self) -> list[str]:
        return [*self.terminated, *self.closed, *self.failed]


def who_asks(by: str | None) -> str:
    import getpass

    return by or getpass.getuser()


def erase(kind: str, subject_id: str, *, reason: str, by: str | None) -> None:
    """Erases a customer or a lead: store, journeys, report."""
    from datetime import UTC, datetime

    from activities.store.erasure import (
        ErasureError,
        erase_customer,
        erase_lead,
        unknown_entity_kinds,
    )

    settings = load_settings()
    eraser = erase_customer if kind == "customer" else erase_lead
    with open_store(settings) as store:
        try:
            erased = eraser(store, subject_id, reason=reason, by=who_asks(by),
                            now=datetime.now(UTC))
        except ErasureError as exc:
            raise CliError(str(exc)) from exc
    changed = ", ".join(f"{table} {n}" for table, n in erased.rows.items() if n) or "-"
    say(f"erased {kind} {subject_id} in the store (rows tombstoned or removed: {changed})")
    unknown = unknown_entity_kinds()
    if unknown:
        warn(f"journeys about {', '.join(unknown)} are not looked up by an erasure: find and "
             "end theirs by hand")
    outcome = run_temporal(lambda: _end_journeys(settings, erased, reason))
    if isinstance(outcome, CliError):
        raise outcome
    say(f"terminated {len(outcome.terminated)} open journeys (reason: erased: {reason}): "
        f"{', '.join(outcome.terminated) or '-'}")
    if outcome.histories:
        say("Temporal's history still holds encrypted copies of their data in "
            f"{', '.join(outcome.histories)} until the namespace's retention ends")
    else:
        say("no journey history holds their data")
    if outcome.failed:
        # Rerunning is safe: the store is erased again (nothing left) and the
        # journeys still open are terminated.
        for workflow_id, why in outcome.failed.items():
            warn(f"{workflow_id}: not terminated: {why}")
        raise typer.Exit(1)


async def _end_journeys(settings: Settings, erased: Erased, reason: str) -> Ended | CliError:
    """Terminates each of the person's running journeys; one that cannot be
    ended does not stop the others. Errors come back as values (`run_temporal`)."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.enums.v1 import WorkflowExecutionStatus
    from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
    from temporalio.service import RPCError, RPCStatusCode

    from starter.client import connect
    from starter.codec import CodecKeyError

    try:
        client = await connect(settings)
    except (RuntimeError, CodecKeyError) as exc:
        return CliError(
            f"{unreachable(settings, exc)}\nthe erasure stands in the store, but these "
            f"journeys were not ended: {', '.join(erased.workflow_ids)}; run "
            f"`crm {erased.subject_kind} erase {erased.subject_id} --reason …` again once "
            "Temporal is up")
    ended = Ended()
    for workflow_id in erased.workflow_ids:
        found = False
        try:
            described = await client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=client.namespace,
                    execution=WorkflowExecution(workflow_id=workflow_id)))
            found = True
            status = described.workflow_execution_info.status
            if status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
                ended.closed.append(workflow_id)
                continue
            await client.get_workflow_handle(workflow_id).terminate(reason=f"erased: {reason}")
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                if found:  # it ended between the two calls
                    ended.closed.append(workflow_id)
                continue  # never started, or its history is gone already
            ended.failed[workflow_id] = exc.message
        else:
            ended.terminated.append(workflow_id)
    return ended
