"""`crm lead erase` and `crm customer erase` as a person uses them: the store
erased, the person's open journeys terminated with the reason, the histories
that still hold copies named; and what each prints when it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from tests.cli_support import UNREACHABLE, crm, crm_in_thread, status_json
from tests.harness import make_settings, running_worker, seed_staff


@pytest.fixture
def cli_store(sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("CRM_DATABASE_URL", str(sqlite_store.engine.url))
    seed_staff(sqlite_store)
    return sqlite_store


async def test_erasing_a_lead_ends_its_journey_with_the_reason(
    time_skipping_env: WorkflowEnvironment, cli_store: Store, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    async with running_worker(env.client, cli_store, make_settings(tmp_path)) as h:
        monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
        monkeypatch.setenv("TEMPORAL_NAMESPACE", env.client.namespace)
        monkeypatch.setenv("CRM_TASK_QUEUE", h.task_queue)
        new = await crm_in_thread("lead new --id ER1 --name 王芳 --phone 13800138000 "
                                  "--email wang.fang@example.com --region east "
                                  "--product-line erp --source web_form")
        assert new.exit_code == 0, new.output
        await status_json("ER1", stage="assigned")

        erased = await crm_in_thread("lead erase ER1 --reason 'request #7' --by dpo")

        assert erased.exit_code == 0, erased.output
        lines = erased.stdout.splitlines()
        assert lines[0].startswith("erased lead ER1 in the store (rows tombstoned or removed: "
                                   "leads 1")
        assert lines[1] == "terminated 1 open journeys (reason: erased: request #7): lead-ER1"
        assert lines[2] == ("Temporal's history still holds encrypted copies of their data in "
                            "lead-ER1 until the namespace's retention ends")
        handle = env.client.get_workflow_handle("lead-ER1")
        assert (await handle.describe()).status is WorkflowExecutionStatus.TERMINATED
        last = [e async for e in handle.fetch_history_events()][-1]
        assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED
        assert last.workflow_execution_terminated_event_attributes.reason == \
            "erased: request #7"
        lead = h.lead("ER1")
        assert (lead.name, lead.phone, lead.email) == ("erased", None, None)
        [record] = h.rows(schema.Erasure)
        assert (record.subject_id, record.erased_by) == ("ER1", "dpo")

        # Again: nothing left to erase or end, and the history is still named.
        again = await crm_in_thread("lead erase ER1 --reason 'request #7' --by dpo")
        assert again.exit_code == 0, again.output
        assert "terminated 0 open journeys" in again.stdout
        assert "copies of their data in lead-ER1" in again.stdout


def test_erasing_a_customer_without_temporal_erases_the_store_and_names_what_is_left(
    cli_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", UNREACHABLE)

    result = crm("customer erase cust-1 --reason 'erasure request'")

    assert result.exit_code == 1
    assert "erased customer cust-1 in the store" in result.stdout
    assert f"cannot reach Temporal at {UNREACHABLE}" in result.stderr
    assert "the erasure stands in the store, but these journeys were not ended: " \
           "customer-cust-1" in result.stderr
    with cli_store.unit_of_work() as session:
        customer = session.get(schema.Customer, "cust-1")
        assert customer is not None and customer.name == "erased"


@pytest.mark.parametrize(("command", "message"), [
    ("customer erase nobody --reason r", "no customer 'nobody' in the store"),
    ("lead erase nobody --reason r", "no lead 'nobody' in the store"),
    ("customer erase cust-1 --reason ' '", "an erasure needs a reason"),
])
def test_an_erasure_that_cannot_be_done_says_why(
    cli_store: Store, monkeypatch: pytest.MonkeyPatch, command: str, message: str
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", UNREACHABLE)
    result = crm(command)
    assert result.exit_code == 1
    assert message in result.stderr
