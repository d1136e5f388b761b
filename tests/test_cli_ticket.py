"""`crm ticket` as a person uses it, on the time-skipping server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from tests.cli_support import _poll, crm_in_thread, point_cli_at
from tests.harness import make_settings, running_worker, seed_staff


async def test_ticket_open_respond_resolve_rate_through_the_cli(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        point_cli_at(env, h.task_queue, monkeypatch)
        try:
            opened = await crm_in_thread(
                "ticket open --id TK1 --customer cust-1 --type technical "
                "--subject 'cannot log in'"
            )
            assert opened.exit_code == 0, opened.output
            assert opened.stdout.splitlines()[0] == "ticket-TK1"
            status = await _poll("ticket status TK1", lambda s: s["assignee_id"] is not None)
            assert status["stage"] == "awaiting_response" and status["group"] == "technical"
            agent = status["assignee_id"]
            bad = await crm_in_thread("ticket rate TK1 --score 9")
            assert bad.exit_code == 1 and "between 1 and 5" in bad.stderr
            responded = await crm_in_thread(f"ticket respond TK1 {agent} --note 'on it'")
            assert responded.exit_code == 0, responded.output
            resolved = await crm_in_thread(f"ticket resolve TK1 {agent} --resolution 'reset'")
            assert resolved.exit_code == 0, resolved.output
            rated = await crm_in_thread("ticket rate TK1 --score 5")
            assert rated.exit_code == 0, rated.output
            final = await _poll("ticket status TK1", lambda s: s["stage"] == "closed")
            assert final["first_response_at"] is not None
            shown = await crm_in_thread("ticket status TK1")
            assert shown.exit_code == 0 and "closed" in shown.stdout
        finally:
            await h.journeys.end_all()
