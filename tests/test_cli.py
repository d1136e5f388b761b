"""The `crm` command as a person uses it: its output and exit codes.

Tiers: store-only commands run on a tmp SQLite store with Temporal pointed at a
closed port; the lead and course commands drive a journey on the time-skipping server;
`crm up` builds its dev-server command line without a server, and (marked
`devserver`) really starts the stack and stops it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from activities.staff import StaffMember, list_staff
from activities.store import Store
from domain import schema
from domain.settings import TASK_QUEUE, Settings
from starter import devstack
from starter.cli import app
from starter.cli import journey as cli_journey
from starter.cli import up as cli_up
from starter.client import data_converter
from tests.harness import make_settings, running_worker, seed_staff
from workflows.common import SEARCH_ATTRIBUTES

# Nothing listens on port 1: connecting is refused at once.
UNREACHABLE = "127.0.0.1:1"
REPO = Path(__file__).resolve().parent.parent

runner = CliRunner()


def crm(command: str) -> Result:
    """Runs `crm <command>`, split as a shell would."""
    return runner.invoke(app, shlex.split(command))


async def crm_in_thread(command: str) -> Result:
    """The CLI runs its own event loop (`asyncio.run`), so from an async test it
    runs in a thread while the test's loop keeps the worker going."""
    return await asyncio.to_thread(crm, command)


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated tmp SQLite store named by CRM_DATABASE_URL; Temporal unreachable."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    monkeypatch.delenv("COLUMNS", raising=False)  # tables keep one line per row
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", UNREACHABLE)
    result = crm("db upgrade")
    assert result.exit_code == 0, result.output
    assert "latest schema" in result.stdout
    return url


def staff_in(url: str) -> dict[str, StaffMember]:
    store = Store.from_url(url)
    try:
        return {member.id: member for member in list_staff(store)}
    finally:
        store.dispose()


# -- staff ------------------------------------------------------------------------------


def test_staff_add_list_deactivate_round_trip(store_url: str) -> None:
    added = crm(
        "staff add --id mgr-east --name 'Manager East' --role manager --region east "
        "--email mgr.east@example.com"
    )
    assert added.exit_code == 0, added.output
    added = crm(
        "staff add --id rep-a --name 'Rep A' --role rep --region east --region north "
        "--product-line erp --manager mgr-east --seniority 3 --phone '138 0013 8000'"
    )
    assert added.exit_code == 0, added.output
    assert "saved rep rep-a" in added.stdout

    listed = crm("staff list")
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert "Manager East" in rows["mgr-east"]
    assert "east, north" in rows["rep-a"] and rows["rep-a"].split()[-1] == "yes"

    reps = crm("staff list --role rep")
    ids = {line.split()[0] for line in reps.stdout.splitlines() if line.strip()}
    assert "rep-a" in ids and "mgr-east" not in ids

    # No open leads: nothing to tell, so the unreachable Temporal does not matter.
    gone = crm("staff deactivate rep-a")
    assert gone.exit_code == 0, gone.output
    assert "deactivated rep-a" in gone.stdout
    assert "told 0 journeys" in gone.stdout

    row = next(line for line in crm("staff list").stdout.splitlines() if "rep-a" in line)
    assert row.split()[-1] == "no"
    rep = staff_in(store_url)["rep-a"]
    assert rep.active is False
    assert rep.phone == "+8613800138000"
    assert rep.manager_id == "mgr-east"


def test_staff_add_warns_of_an_agent_or_supervisor_no_ticket_reaches(store_url: str) -> None:
    groups = "after_sales, complaints, general, orders, technical"
    for role in ("agent", "supervisor"):
        added = crm(f"staff add --id {role}-1 --name 'No Group' --role {role}")
        assert added.exit_code == 0, added.output  # saved all the same
        assert f"saved {role} {role}-1" in added.stdout
        assert (f"{role} {role}-1 has no --group, so no ticket reaches them "
                f"(groups: {groups})") in added.stderr
    odd = crm("staff add --id agent-2 --name 'Odd Group' --role agent --group billing")
    assert odd.exit_code == 0, odd.output
    assert "no ticket type is routed to group 'billing'" in odd.stderr
    fine = crm("staff add --id agent-3 --name 'Tech' --role agent --group technical")
    rep = crm("staff add --id rep-1 --name 'Rep' --role rep --region east")
    assert fine.exit_code == rep.exit_code == 0 and fine.stderr == rep.stderr == ""


def test_deactivate_with_open_leads_keeps_the_store_change_when_temporal_is_down(
    store_url: str,
) -> None:
    assert crm("staff add --id rep-a --name 'Rep A' --role rep").exit_code == 0
    store = Store.from_url(store_url)
    try:
        with store.unit_of_work() as session:
            session.add(
                schema.Lead(
                    id="L9", name="张伟", region="east", product_line="erp", source="web_form",
                    stage="assigned", owner_id="rep-a",
                    received_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )  # fmt: skip
    finally:
        store.dispose()

    result = crm("staff deactivate rep-a")

    # Exit 1: a journey still needs telling, and running the command again does it.
    assert result.exit_code == 1
    assert "deactivated rep-a" in result.stdout
    assert f"cannot reach Temporal at {UNREACHABLE}" in result.stderr
    assert "the deactivation stands" in result.stderr
    assert "L9" in result.stderr
    assert staff_in(store_url)["rep-a"].active is False


def test_an_unknown_role_is_rejected_naming_it(store_url: str) -> None:
    result = crm("staff add --id x1 --name X --role chef")
    assert result.exit_code == 1
    assert "role" in result.stderr and "'chef'" in result.stderr
    assert "rep, agent" in result.stderr  # and says what would do
    assert "x1" not in staff_in(store_url)


def test_a_bad_phone_is_rejected_naming_it(store_url: str) -> None:
    result = crm("staff add --id x2 --name X --role rep --phone 123")
    assert result.exit_code == 1
    assert "phone '123'" in result.stderr
    assert "x2" not in staff_in(store_url)


def test_unknown_manager_and_unknown_staff_are_clear_errors(store_url: str) -> None:
    result = crm("staff add --id x3 --name X --role rep --manager nobody")
    assert result.exit_code == 1
    assert "manager 'nobody' does not exist" in result.stderr

    result = crm("staff deactivate nobody")
    assert result.exit_code == 1
    assert "unknown staff 'nobody'" in result.stderr


def test_a_store_without_schema_says_to_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = crm("staff list")
    assert result.exit_code == 1
    assert "crm db upgrade" in result.stderr


# -- customer ---------------------------------------------------------------------------


def test_customer_add_list_round_trip(store_url: str) -> None:
    assert crm("staff add --id rep-a --name 'Rep A' --role rep").exit_code == 0
    added = crm(
        "customer add --id c-1 --name 周杰 --email Zhou.Jie@Example.com --phone '136 0013 6000' "
        "--company 星辰制造有限公司 --owner rep-a"
    )
    assert added.exit_code == 0, added.output
    assert "saved customer c-1 (周杰)" in added.stdout
    added = crm(
        "customer add --id c-2 --name Emma --email emma@example.com --locale en "
        "--timezone Europe/London"
    )
    assert added.exit_code == 0, added.output

    listed = crm("customer list")
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines() if line.strip()}
    assert rows["c-1"] == [
        "c-1", "周杰", "zhou.jie@example.com", "+8613600136000", "星辰制造有限公司",
        "zh-CN", "Asia/Shanghai", "rep-a",
    ]  # fmt: skip
    assert rows["c-2"][-3:] == ["en", "Europe/London", "-"]

    # Same id: an update, not a second customer.
    assert crm("customer add --id c-2 --name 'Emma Stone'").exit_code == 0
    relisted = crm("customer list").stdout
    assert "Emma Stone" in relisted and relisted.count("c-2") == 1


def test_a_bad_customer_is_rejected_naming_the_field_and_value(store_url: str) -> None:
    bad_email = crm("customer add --id c-9 --name X --email not-an-email")
    assert bad_email.exit_code == 1
    assert "customer c-9 not saved" in bad_email.stderr
    assert "email" in bad_email.stderr and "'not-an-email'" in bad_email.stderr

    bad_zone = crm("customer add --id c-9 --name X --timezone Mars/Olympus")
    assert bad_zone.exit_code == 1
    assert "timezone" in bad_zone.stderr and "'Mars/Olympus'" in bad_zone.stderr

    no_owner = crm("customer add --id c-9 --name X --owner nobody")
    assert no_owner.exit_code == 1
    assert "owner 'nobody' is not staff" in no_owner.stderr

    assert crm("customer list").stdout.strip() == "no customers"


# -- lead, without Temporal -------------------------------------------------------------

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


# -- lead, on the time-skipping server --------------------------------------------------


async def _status_json(entity_id: str, *, stage: str, group: str = "lead") -> dict[str, Any]:
    """`crm {group} status --json` once the journey reaches `stage` (activities run
    in real time, so intake and assignment take a moment)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        result = await crm_in_thread(f"{group} status {entity_id} --json")
        assert result.exit_code == 0, result.output
        latest: dict[str, Any] = json.loads(result.stdout)
        if latest["stage"] == stage:
            return latest
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{entity_id} never reached {stage}; last {latest}")
        await asyncio.sleep(0.1)


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

            pooled = await _status_json("CLI1", stage="pooled")
            assert pooled["owner_id"] is None

            claimed = await crm_in_thread("lead claim CLI1 rep-a")
            assert claimed.exit_code == 0, claimed.output
            assert "accepted: rep-a owns lead CLI1" in claimed.stdout

            assigned = await _status_json("CLI1", stage="assigned")
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


# -- course, without Temporal -----------------------------------------------------------


def test_course_input_is_checked_before_any_journey_starts(store_url: str) -> None:
    naive = crm(
        "course enroll --id E1 --customer cust-1 --course py101 --advisor adv-1 "
        "--ends-at 2026-03-01T18:00"
    )
    assert naive.exit_code == 1
    assert "--ends-at '2026-03-01T18:00' needs a UTC offset" in naive.stderr

    outcome = crm("course callback E1 adv-1 --outcome maybe")
    assert outcome.exit_code == 1
    assert "--outcome 'maybe' is not one of: renewal_intent, no_interest, unreachable" in (
        outcome.stderr
    )

    unreachable = crm("course status E1")
    assert unreachable.exit_code == 1
    assert f"cannot reach Temporal at {UNREACHABLE}" in unreachable.stderr


# -- course, on the time-skipping server ------------------------------------------------


def _point_cli_at(
    env: WorkflowEnvironment, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", env.client.namespace)
    monkeypatch.setenv("CRM_TASK_QUEUE", task_queue)


async def _terminate(env: WorkflowEnvironment, workflow_id: str) -> None:
    try:
        await env.client.get_workflow_handle(workflow_id).terminate("test over")
    except Exception:  # noqa: BLE001 - never started, or already over
        pass


async def test_course_enroll_end_and_callback_through_the_cli(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    seed_staff(sqlite_store)  # advisors adv-1, adv-2; customers cust-1, cust-2
    now = await env.get_current_time()
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        _point_cli_at(env, h.task_queue, monkeypatch)
        try:
            ends_at = (now + timedelta(days=30)).isoformat()
            enrolled = await crm_in_thread(
                "course enroll --id CE1 --customer cust-1 --course py101 --advisor adv-1 "
                f"--ends-at {ends_at}"
            )
            assert enrolled.exit_code == 0, enrolled.output
            assert enrolled.stdout.splitlines()[0] == "enrollment-CE1"
            assert "crm course status CE1" in enrolled.stdout

            status = await _status_json("CE1", stage="enrolled", group="course")
            assert status["customer_id"] == "cust-1" and status["advisor_id"] == "adv-1"

            # The update's validator refuses a callback before the course has ended.
            early = await crm_in_thread("course callback CE1 adv-1 --outcome renewal_intent")
            assert early.exit_code == 1
            assert "rejected: no callback is due yet" in early.stderr

            # The course ended four days ago: the 72 hours are already over.
            ended_at = (now - timedelta(days=4)).isoformat()
            ended = await crm_in_thread(f"course end CE1 --at {ended_at}")
            assert ended.exit_code == 0, ended.output
            assert "course end sent to enrollment-CE1" in ended.stdout

            due = await _status_json("CE1", stage="awaiting_callback", group="course")
            assert due["callback_due_at"] is not None

            table = await crm_in_thread("course status CE1")
            assert table.exit_code == 0, table.output
            assert "awaiting_callback" in table.stdout and "the callback by adv-1" in table.stdout

            stranger = await crm_in_thread("course callback CE1 adv-2 --outcome no_interest")
            assert stranger.exit_code == 1
            assert "rejected: adv-2 is not this student's advisor (adv-1)" in stranger.stderr

            called = await crm_in_thread(
                "course callback CE1 adv-1 --outcome renewal_intent --note 'wants the next level'"
            )
            assert called.exit_code == 0, called.output
            assert "accepted: adv-1 logged renewal_intent for enrolment CE1" in called.stdout

            # Finished: the status is the journey's result, no query needed.
            done = await _status_json("CE1", stage="completed", group="course")
            assert done["outcome"] == "renewal_intent"

            duplicate = await crm_in_thread(
                "course enroll --id CE1 --customer cust-1 --course py101 --advisor adv-1 "
                f"--ends-at {ends_at}"
            )
            assert duplicate.exit_code == 1
            assert "enrolment CE1 already has a journey (enrollment-CE1" in duplicate.stderr

            missing = await crm_in_thread("course status NOPE")
            assert missing.exit_code == 1
            assert "no running journey enrollment-NOPE for enrolment NOPE" in missing.stderr
        finally:
            await _terminate(env, "enrollment-CE1")


async def test_a_failed_enrolment_says_why_in_course_status(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    seed_staff(sqlite_store)
    now = await env.get_current_time()
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        _point_cli_at(env, h.task_queue, monkeypatch)
        try:
            # Starting succeeds: the journey, not the CLI, checks the customer.
            enrolled = await crm_in_thread(
                "course enroll --id CE3 --customer nobody --course py101 --advisor adv-1 "
                f"--ends-at {(now + timedelta(days=30)).isoformat()}"
            )
            assert enrolled.exit_code == 0, enrolled.output
            assert enrolled.stdout.splitlines()[0] == "enrollment-CE3"

            deadline = asyncio.get_running_loop().time() + 20
            while True:
                status = await crm_in_thread("course status CE3")
                if status.exit_code != 0:
                    break
                assert asyncio.get_running_loop().time() < deadline, status.output
                await asyncio.sleep(0.1)
            assert status.exit_code == 1
            assert "enrollment-CE3 failed at" in status.stderr
            assert "unknown customer 'nobody'" in status.stderr

            as_json = await crm_in_thread("course status CE3 --json")
            assert as_json.exit_code == 1 and as_json.stdout == ""
            assert "unknown customer 'nobody'" in as_json.stderr

            # A signal to the failed journey is refused by the server.
            end = await crm_in_thread("course end CE3")
            assert end.exit_code == 1
            assert "enrollment-CE3" in end.stderr
        finally:
            await _terminate(env, "enrollment-CE3")


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
        _point_cli_at(env, h.task_queue, monkeypatch)
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


# -- crm up -----------------------------------------------------------------------------


def test_dev_server_command_line_registers_every_search_attribute(tmp_path: Path) -> None:
    options = devstack.DevStackOptions(
        port=17233, ui_port=18233, http_port=17243, db_file=tmp_path / "t.db"
    )
    args = devstack.dev_server_args("/bin/temporal", options, namespace="default")

    assert args[:3] == ["/bin/temporal", "server", "start-dev"]

    def value(flag: str) -> str:
        return args[args.index(flag) + 1]

    assert value("--ip") == "127.0.0.1"
    assert value("--port") == "17233"
    assert value("--ui-port") == "18233"
    assert value("--http-port") == "17243"
    assert value("--db-filename") == str(tmp_path / "t.db")
    assert value("--namespace") == "default"
    registered = dict(
        args[i + 1].split("=", 1) for i, arg in enumerate(args) if arg == "--search-attribute"
    )
    assert set(registered) == {key.name for key in SEARCH_ATTRIBUTES}
    # The public contract's attributes, with the types the dev server expects.
    assert (
        registered.items()
        >= {
            "CrmJourney": "Keyword",
            "CrmStage": "Keyword",
            "CrmCustomerId": "Keyword",
            "CrmOwnerId": "Keyword",
            "CrmTier": "Keyword",
            "CrmSlaDeadline": "Datetime",
        }.items()
    )
    assert options.ui_url == "http://127.0.0.1:18233"


def test_crm_up_suggests_the_readme_s_walkthrough_and_run_sh_the_path() -> None:
    readme = (REPO / "README.md").read_text().replace("\\\n    ", "")
    for command in cli_up.WALKTHROUGH:
        assert f".venv/bin/crm {command}\n" in readme, command
    run_sh = (REPO / "run.sh").read_text()
    assert 'export PATH=\\"$PWD/.venv/bin:\\$PATH\\"' in run_sh
    assert run_sh.index("export PATH") < run_sh.index("exec .venv/bin/crm up")
    # Where the README itself types bare `crm` and `temporal`, it says how.
    assert "puts `.venv/bin` on your `PATH`" in readme


def test_the_temporal_binary_is_found() -> None:
    assert Path(devstack.temporal_binary()).exists()


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


async def _connect_within(address: str, seconds: float) -> Client:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            return await Client.connect(address, data_converter=data_converter())
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


def _hold_ports(*ports: int) -> list[socket.socket]:
    held = []
    for port in ports:
        s = socket.socket()
        try:
            s.bind(("0.0.0.0", port))
            s.listen()
        except OSError:
            s.close()
            continue
        held.append(s)
    return held


def _read_url(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


@dataclass
class Stack:
    process: subprocess.Popen[str]
    port: int
    ui_port: int
    metrics_port: int
    log: Path


@pytest.fixture
def crm_up(tmp_path: Path) -> Iterator[Stack]:
    """`python -m starter up` on free ports, as a person would run it: the
    worker's two metrics endpoints too, so a stack already running on this
    machine (on the default ports) does not make the test fail."""
    port, ui_port, http_port, metrics_port, temporal_metrics_port = _free_ports(5)
    log = tmp_path / "up.err"
    env = {
        **os.environ,
        "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}",
        "CRM_OUTBOX_PATH": str(tmp_path / "outbox.log"),
        "CRM_METRICS_PORT": str(metrics_port),
        "CRM_TEMPORAL_METRICS_PORT": str(temporal_metrics_port),
    }
    env.pop("TEMPORAL_ADDRESS", None)
    command = (
        f"up --port {port} --ui-port {ui_port} --http-port {http_port} "
        f"--db-file {tmp_path / 'temporal.db'}"
    )
    # A stack already running on this machine holds the default metrics ports
    # (held here if free; taken already is the same case).
    defaults = _hold_ports(*(Settings.model_fields[name].default
                             for name in ("metrics_port", "temporal_metrics_port")))
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "starter", *shlex.split(command)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    try:
        yield Stack(process=process, port=port, ui_port=ui_port, metrics_port=metrics_port,
                    log=log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for held in defaults:
            held.close()


@pytest.mark.devserver
@pytest.mark.timeout(60)
async def test_crm_up_runs_the_stack_and_stops_it(crm_up: Stack) -> None:
    process = crm_up.process
    address = f"127.0.0.1:{crm_up.port}"
    client = await _connect_within(address, 30)

    attributes = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    assert attributes.custom_attributes["CrmStage"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert (
        attributes.custom_attributes["CrmSlaDeadline"]
        == IndexedValueType.INDEXED_VALUE_TYPE_DATETIME
    )

    # The in-process worker polls the public task queue.
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(namespace="default", task_queue=TaskQueue(name=TASK_QUEUE))
        )
        if described.pollers:
            break
        assert asyncio.get_running_loop().time() < deadline, "the worker never polled"
        await asyncio.sleep(0.2)

    # The engine's metrics are served on the port the settings name.
    metrics = await asyncio.to_thread(_read_url, f"http://127.0.0.1:{crm_up.metrics_port}/metrics")
    assert "crm_touches_total" in metrics

    process.send_signal(signal.SIGINT)  # Ctrl-C
    stdout, _ = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 0, stdout + crm_up.log.read_text()
    assert f"Temporal UI: http://127.0.0.1:{crm_up.ui_port}" in stdout
    # The README's walkthrough, with its ids, ready to paste.
    for command in cli_up.WALKTHROUGH:
        assert f"  crm {command}\n" in stdout
    assert stdout.rstrip().endswith("stopped")
    with pytest.raises(RuntimeError):  # the dev server went with it
        await Client.connect(address)


@pytest.mark.devserver
async def test_crm_up_reuses_a_running_temporal(
    dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.db'}")
    port = dev_env.client.service_client.config.target_host.rsplit(":", 1)[1]
    result = await crm_in_thread(f"up --no-worker --port {port}")
    assert result.exit_code == 0, result.output
    assert "reusing it" in result.stdout
    assert (tmp_path / "crm.db").exists()  # the store was migrated all the same
    assert not (tmp_path / "var" / "temporal.db").exists()  # no second server
