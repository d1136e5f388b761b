"""`crm opportunity` and `crm onboarding` as a person uses them, on the
time-skipping server: open, refused and accepted stage moves, an activity, the
quote, a loss refused without a reason code, the win with its contract and
onboarding, the service group and the delivery; and `crm ticket transfer`."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from tests.cli_support import _poll, _terminate, crm_in_thread, point_cli_at
from tests.harness import make_settings, running_worker, seed_staff


async def test_opportunity_to_won_and_onboarding_through_the_cli(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        point_cli_at(env, h.task_queue, monkeypatch)
        try:
            started = await crm_in_thread(
                "opportunity start --id OC1 --customer cust-1 --owner rep-a "
                "--amount 50000 --close-date 2030-01-31")
            assert started.exit_code == 0, started.output
            assert started.stdout.splitlines()[0] == "opportunity-OC1"
            await _poll("opportunity status OC1", lambda s: s["stage"] == "needs_analysis")
            skipped = await crm_in_thread("opportunity advance OC1 negotiation")
            assert skipped.exit_code == 1
            assert "skips proposal: a reason is required" in skipped.stderr
            moved = await crm_in_thread("opportunity advance OC1 proposal --note 'needs done'")
            assert moved.exit_code == 0, moved.output
            logged = await crm_in_thread("opportunity activity OC1 rep-a --kind visit")
            assert logged.exit_code == 0, logged.output
            quoted = await crm_in_thread("opportunity quote OC1 --amount 48000")
            assert quoted.exit_code == 0, quoted.output
            await _poll("opportunity status OC1", lambda s: s["quote_amount"] == "48000")
            lost = await crm_in_thread("opportunity lose OC1 --reason 'too expensive'")
            assert lost.exit_code == 1 and "unknown reason code" in lost.stderr
            won = await crm_in_thread("opportunity win OC1")
            assert won.exit_code == 0, won.output
            # Won, the journey ends (or refuses while it finishes): a second win changes nothing.
            again = await crm_in_thread("opportunity win OC1")
            assert again.exit_code == 1
            assert "already won" in again.stderr or "no running journey" in again.stderr
            contract = await _poll("contract status OC1", lambda s: bool(s["milestones"]))
            assert [m["percent"] for m in contract["milestones"]] == ["30", "70"]
            await _poll("onboarding status OC1", lambda s: s["service_lead_id"] is not None)
            ready = await crm_in_thread("onboarding group-ready OC1 https://chat.example.com/g1")
            assert ready.exit_code == 0, ready.output
            delivered = await crm_in_thread("onboarding delivered OC1 sup-after_sales")
            assert delivered.exit_code == 0, delivered.output
            onboarding = await _poll("onboarding status OC1",
                                     lambda s: s["stage"] == "delivered")
            assert onboarding["on_time"] is True
            shown = await crm_in_thread("opportunity status OC1")
            assert shown.exit_code == 0 and "won" in shown.stdout
        finally:
            for workflow_id in ("opportunity-OC1", "contract-OC1", "onboarding-OC1"):
                await _terminate(env, workflow_id)


async def test_a_ticket_transferred_through_the_cli(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        point_cli_at(env, h.task_queue, monkeypatch)
        try:
            opened = await crm_in_thread("ticket open --id TT1 --customer cust-1 "
                                         "--type technical --subject 'wrong invoice'")
            assert opened.exit_code == 0, opened.output
            await _poll("ticket status TT1", lambda s: s["assignee_id"] is not None)
            sent = await crm_in_thread("ticket transfer TT1 --to after_sales "
                                       "--reason 'billing question' --by tech-1")
            assert sent.exit_code == 0, sent.output
            moved = await _poll("ticket status TT1", lambda s: s["transfers"] == 1)
            assert (moved["group"], moved["assignee_id"]) == ("after_sales", "as-1")
        finally:
            await _terminate(env, "ticket-TT1")
