"""Acting on many journeys at once through Temporal's batch operations: the
server runs the job (paced, retried, visible in the UI's batch list), not a
loop of single calls in a terminal that may close halfway.

- signal every journey a visibility query matches (all leads of a rep on
  leave: `CrmJourney = 'lead' AND CrmOwnerId = 'rep-a'`), with one payload;
- terminate every journey a query matches, with a reason;
- describe a job: its state and how many journeys it reached.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from temporalio.client import Client

IDENTITY = "crm batch"
RUNNING = "ExecutionStatus = 'Running'"


@dataclass
class BatchJob:
    job_id: str
    operation: str
    state: str
    total: int
    done: int
    failed: int
    query: str
    reason: str


def scoped(query: str) -> str:
    """Only running journeys: a batch about journeys is never about finished ones."""
    return f"({query}) AND {RUNNING}" if query.strip() else RUNNING


async def signal_all(client: Client, query: str, signal: str, payload: dict[str, Any],
                     reason: str, *, per_second: float = 50.0) -> str:
    """Starts a job that signals every running journey `query` matches; its id."""
    from temporalio.api.batch.v1 import BatchOperationSignal
    from temporalio.api.common.v1 import Payloads
    from temporalio.api.workflowservice.v1 import StartBatchOperationRequest

    job_id = f"crm-signal-{uuid.uuid4().hex[:12]}"
    payloads = await client.data_converter.encode([payload])
    await client.workflow_service.start_batch_operation(StartBatchOperationRequest(
        namespace=client.namespace, visibility_query=scoped(query), job_id=job_id,
        reason=reason, max_operations_per_second=per_second,
        signal_operation=BatchOperationSignal(signal=signal, input=Payloads(payloads=payloads),
                                              identity=IDENTITY)))
    return job_id


async def terminate_all(client: Client, query: str, reason: str, *,
                        per_second: float = 50.0) -> str:
    """Starts a job that terminates every running journey `query` matches; its id."""
    from temporalio.api.batch.v1 import BatchOperationTermination
    from temporalio.api.workflowservice.v1 import StartBatchOperationRequest

    job_id = f"crm-terminate-{uuid.uuid4().hex[:12]}"
    await client.workflow_service.start_batch_operation(StartBatchOperationRequest(
        namespace=client.namespace, visibility_query=scoped(query), job_id=job_id,
        reason=reason, max_operations_per_second=per_second,
        termination_operation=BatchOperationTermination(identity=IDENTITY)))
    return job_id


async def describe(client: Client, job_id: str) -> BatchJob:
    from temporalio.api.enums.v1 import BatchOperationState, BatchOperationType
    from temporalio.api.workflowservice.v1 import DescribeBatchOperationRequest

    job = await client.workflow_service.describe_batch_operation(
        DescribeBatchOperationRequest(namespace=client.namespace, job_id=job_id))
    return BatchJob(
        job_id=job.job_id,
        operation=BatchOperationType.Name(job.operation_type).removeprefix(
            "BATCH_OPERATION_TYPE_").lower(),
        state=BatchOperationState.Name(job.state).removeprefix(
            "BATCH_OPERATION_STATE_").lower(),
        total=job.total_operation_count, done=job.complete_operation_count,
        failed=job.failure_operation_count, query=job.query, reason=job.reason)


def parse_payload(text: str) -> dict[str, Any]:
    """A signal's payload from the command line: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--payload is not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise ValueError(f"--payload must be a JSON object, got {type(value).__name__}")
    return value
