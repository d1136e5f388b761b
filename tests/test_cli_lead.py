"""`crm lead` as a person uses it: input checks, an unreachable Temporal, and a
lead journey driven on the time-skipping server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from starter.cli import journey as cli_journey
from tests import cli_support
from tests.cli_support import UNREACHABLE, _terminate, crm, crm_in_thread, point_cli_at, status_json
from tests.harness import make_settings, running_worker, seed_staff

# Fixtures shared with the other modules split from the same subject.
store_url = cli_support.store_url
NEW_LEAD = "lead new --id L1 --name 张伟 --region east --product-line erp --source web_form"


def test_lead_input_is_checked_before_any_journey_starts(store_url: str) -> None:
    bad_phone = crm(f"{NEW_LEAD} --phone 12")
    assert bad_phone.exit_code == 1
    assert "phone '12'" in bad_phone.stderr

    no_contact = crm(NEW_LEAD)
    assert no_contact.exit_code == 1
    assert "--phone, --email or --company" in no_contact.stderr

    naive = crm("lead contact L1 rep-a --channel phone --at 2026-01-05T10:00")
    assert naive.exit_code == 1
    assert "needs a UTC offset" in naive.stderr

    not_money = crm("lead convert L1 --amount lots")
    assert not_money.exit_code == 1
    assert "--amount 'lots'" in not_money.stderr

    fax = crm("lead contact L1 rep-a --channel fax")
    assert fax.exit_code == 2  # a usage error, refused before Temporal is asked
    refusal = " ".join(fax.stderr.replace("│", " ").split())
    assert "'fax' is not one of" in refusal
    for allowed in ("'phone'", "'email'", "'chat'", "'visit'"):
        assert allowed in refusal


def test_lead_commands_say_when_temporal_is_unreachable(store_url: str) -> None:
    result = crm("lead status L1")
    assert result.exit_code == 1
    assert f"cannot reach Temporal at {UNREACHABLE}" in result.stderr
    assert "crm up" in result.stderr


async def test_lead_new_status_and_claim_through_the_cli(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    seed_staff(sqlite_store)  # no rep covers "north": the lead waits in the pool
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
        monkeypatch.setenv("TEMPORAL_NAMESPACE", env.client.namespace)
        monkeypatch.setenv("CRM_TASK_QUEUE", h.task_queue)
        try:
            new = await crm_in_thread(
                "lead new --id CLI1 --name 张伟 --phone '+86 139 0000 1111' "
                "--company 星辰制造有限公司 --region north --product-line erp --source web_form "
                "--need 'ERP for 200 staff'"
            )
            assert new.exit_code == 0, new.output
            assert new.stdout.splitlines()[0] == "lead-CLI1"

            pooled = await status_json("CLI1", stage="pooled")
            assert pooled["owner_id"] is None

            claimed = await crm_in_thread("lead claim CLI1 rep-a")
            assert claimed.exit_code == 0, claimed.output
            assert "accepted: rep-a owns lead CLI1" in claimed.stdout

            assigned = await status_json("CLI1", stage="assigned")
            assert assigned["owner_id"] == "rep-a"
            assert assigned["deadline"] is not None

            table = await crm_in_thread("lead status CLI1")
            assert table.exit_code == 0, table.output
            assert "assigned" in table.stdout and "rep-a" in table.stdout

            # The update's validator refuses a claim on an owned lead: exit 1 and why.
            again = await crm_in_thread("lead claim CLI1 rep-b")
            assert again.exit_code == 1
            assert "rejected: lead is assigned, not in the pool" in again.stderr

            duplicate = await crm_in_thread(
                "lead new --id CLI1 --name 张伟 --phone 13900001111 --region north "
                "--product-line erp --source web_form"
            )
            assert duplicate.exit_code == 1
            assert "already has a journey (lead-CLI1" in duplicate.stderr

            missing = await crm_in_thread("lead status NOPE")
            assert missing.exit_code == 1
            assert "no running journey lead-NOPE" in missing.stderr
        finally:
            try:
                await env.client.get_workflow_handle("lead-CLI1").terminate("test over")
            except Exception:  # noqa: BLE001 - never started, or already over
                pass


async def test_a_journey_without_a_worker_gets_a_clear_answer(
    time_skipping_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = time_skipping_env
    monkeypatch.setattr(cli_journey, "ANSWER_WITHIN_S", 1.0)
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", env.client.namespace)
    monkeypatch.setenv("CRM_TASK_QUEUE", "nobody-polls-this")
    new = await crm_in_thread(f"{NEW_LEAD.replace('L1', 'IDLE1')} --phone 13900002222")
    assert new.exit_code == 0, new.output
    try:
        claim = await crm_in_thread("lead claim IDLE1 rep-a")
        assert claim.exit_code == 1
        assert "lead-IDLE1 did not answer within 1 s" in claim.stderr
        assert "task queue nobody-polls-this" in claim.stderr
    finally:
        await env.client.get_workflow_handle("lead-IDLE1").terminate("test over")


async def test_a_lead_whose_input_failed_says_why_in_lead_status(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Started over the API with a phone the journey refuses: the journey fails,
    and `crm lead status` says so, and why, with exit 1, as every status does."""
    env = time_skipping_env
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        point_cli_at(env, h.task_queue, monkeypatch)
        try:
            await env.client.start_workflow(
                "LeadJourney",
                {"lead_id": "BAD1", "name": "Han Mei", "phone": "12345", "region": "east",
                 "product_line": "erp", "source": "referral"},
                id="lead-BAD1", task_queue=h.task_queue,
            )
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                status = await crm_in_thread("lead status BAD1")
                if status.exit_code != 0:
                    break
                assert asyncio.get_running_loop().time() < deadline, status.output
                await asyncio.sleep(0.1)
            assert status.exit_code == 1
            assert "lead-BAD1 failed at" in status.stderr
            assert "phone" in status.stderr and "12345" in status.stderr
            assert "new" not in status.stdout

            as_json = await crm_in_thread("lead status BAD1 --json")
            assert as_json.exit_code == 1 and as_json.stdout == ""
            assert "lead-BAD1 failed at" in as_json.stderr
        finally:
            await _terminate(env, "lead-BAD1")
