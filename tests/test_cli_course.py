"""`crm course` as a person uses it: input checks and an enrolment driven on
the time-skipping server.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from tests import cli_support
from tests.cli_support import UNREACHABLE, _terminate, crm, crm_in_thread, point_cli_at, status_json
from tests.harness import make_settings, running_worker, seed_staff

# Fixtures shared with the other modules split from the same subject.
store_url = cli_support.store_url


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
        point_cli_at(env, h.task_queue, monkeypatch)
        try:
            ends_at = (now + timedelta(days=30)).isoformat()
            enrolled = await crm_in_thread(
                "course enroll --id CE1 --customer cust-1 --course py101 --advisor adv-1 "
                f"--ends-at {ends_at}"
            )
            assert enrolled.exit_code == 0, enrolled.output
            assert enrolled.stdout.splitlines()[0] == "enrollment-CE1"
            assert "crm course status CE1" in enrolled.stdout

            status = await status_json("CE1", stage="enrolled", group="course")
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

            due = await status_json("CE1", stage="awaiting_callback", group="course")
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
            done = await status_json("CE1", stage="completed", group="course")
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
        point_cli_at(env, h.task_queue, monkeypatch)
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
