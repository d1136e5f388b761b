"""`crm staff` as a person uses it: adding, listing and deactivating staff,
and the hand-over a deactivation starts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from tests import cli_support
from tests.cli_support import (
    UNREACHABLE,
    _poll,
    _terminate,
    crm,
    crm_in_thread,
    point_cli_at,
    staff_in,
)
from tests.harness import make_settings, running_worker, seed_staff

# Fixtures shared with the other modules split from the same subject.
store_url = cli_support.store_url


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


async def test_staff_deactivate_hands_on_a_contract_and_a_course_through_the_cli(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`crm staff deactivate` finds the journeys of every kind the person holds a
    role in, and each hands its part on."""
    env = time_skipping_env
    seed_staff(sqlite_store)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.db'}")  # the worker's
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        point_cli_at(env, h.task_queue, monkeypatch)
        try:
            signed = await crm_in_thread(
                "contract sign --id K7 --customer cust-1 --owner rep-a --amount 5000.00")
            assert signed.exit_code == 0, signed.output
            await _poll("contract status K7", lambda s: len(s["milestones"]) >= 1)
            enrolled = await crm_in_thread(
                "course enroll --id E7 --customer cust-1 --course PY-101 --advisor adv-1 "
                f"--ends-at {(datetime.now(UTC) + timedelta(days=30)).isoformat()}")
            assert enrolled.exit_code == 0, enrolled.output

            for staff_id, journey in (("rep-a", "contract-K7"), ("adv-1", "enrollment-E7")):
                gone = await crm_in_thread(f"staff deactivate {staff_id}")
                assert gone.exit_code == 0, gone.output
                assert f"deactivated {staff_id}" in gone.stdout
                assert f"told 1 journeys to reassign: {journey}" in gone.stdout

            contract = await _poll("contract status K7", lambda s: s["owner_id"] != "rep-a")
            assert contract["previous_owners"] == ["rep-a"]
            course = await _poll("course status E7", lambda s: s["advisor_id"] != "adv-1")
            assert course["previous_advisors"] == ["adv-1"]
            with h.store.unit_of_work() as session:
                assert session.get(schema.Staff, "rep-a").active is False
        finally:
            await _terminate(env, "contract-K7")
            await _terminate(env, "enrollment-E7")
