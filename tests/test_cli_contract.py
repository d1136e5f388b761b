"""`crm contract` as a person uses it: input checks, an unreachable Temporal,
and contracts signed, paid, accepted and cancelled on the time-skipping server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from tests import cli_support
from tests.cli_support import (
    UNREACHABLE,
    _poll,
    _table,
    _terminate,
    crm,
    crm_in_thread,
    point_cli_at,
)
from tests.harness import make_settings, running_worker, seed_staff

# Fixtures shared with the other modules split from the same subject.
store_url = cli_support.store_url
SIGN = "contract sign --id K9 --customer cust-1 --owner rep-a"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (f"{SIGN} --amount 10000 --plan 30:7:signing,60:30:acceptance",
         "milestone percentages add up to 90, not 100"),
        (f"{SIGN} --amount 10000 --plan 30:7:later,70:30:acceptance",
         "--plan milestone 1: 'later' is not one of: signing, acceptance"),
        (f"{SIGN} --amount 10000 --plan 100:soon:signing",
         "--plan milestone 1: days 'soon' is not a whole number"),
        (f"{SIGN} --amount 10000 --plan 100", "--plan milestone 1 '100' is not percent:days"),
        (f"{SIGN} --amount 100.001", "--amount '100.001': 100.001 has more than 2 decimal"),
        (f"{SIGN} --amount -5", "--amount '-5' must be positive"),
        (f"{SIGN} --amount 5 --currency yuan", "--currency 'yuan' is not an ISO 4217 code"),
        (f"{SIGN} --amount 5 --signed-at 2026-01-05T10:00", "needs a UTC offset"),
        ("contract pay K9 --amount 5 --reference ' '", "--reference must name the payment"),
        ("contract pay K9 --amount zero --reference R1", "--amount 'zero' is not a decimal"),
        ("contract cancel K9 --reason ''", "--reason must say why"),
        ("customer purchase cust-1 --order O1 --amount 0 --category tea",
         "--amount '0' must be positive"),
        ("customer purchase cust-1 --order O1 --amount 9.999 --category tea",
         "has more than 2 decimal places for CNY"),
        ("customer opt-out cust-1 --channel fax", "--channel 'fax' is not one of: email, sms"),
    ],
)  # fmt: skip
def test_contract_and_customer_input_is_checked_before_temporal(
    store_url: str, command: str, message: str
) -> None:
    result = crm(command)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "cannot reach Temporal" not in result.stderr


def test_contract_and_customer_commands_say_when_temporal_is_unreachable(
    store_url: str,
) -> None:
    for command in ("contract status K9", "customer status cust-1", "contract accept K9"):
        result = crm(command)
        assert result.exit_code == 1
        assert f"cannot reach Temporal at {UNREACHABLE}" in result.stderr


async def test_contract_sign_pay_accept_and_status_through_the_cli(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    seed_staff(sqlite_store)  # customer cust-1, rep rep-a
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        point_cli_at(env, h.task_queue, monkeypatch)
        try:
            signed = await crm_in_thread(
                "contract sign --id K1 --customer cust-1 --owner rep-a --amount 10000.00 "
                "--plan '30:7:signing:deposit,70:30:acceptance:balance'"
            )
            assert signed.exit_code == 0, signed.output
            assert signed.stdout.splitlines()[0] == "contract-K1"
            assert "crm contract status K1" in signed.stdout

            status = await _poll("contract status K1", lambda s: len(s["milestones"]) == 2)
            deposit, balance = status["milestones"]
            assert (deposit["name"], deposit["amount"]) == ("deposit", "3000.00")
            assert deposit["due_date"] is not None and deposit["state"] == "scheduled"
            assert (balance["amount"], balance["due_date"]) == ("7000.00", None)

            table = await crm_in_thread("contract status K1")
            assert table.exit_code == 0, table.output
            milestones = _table(table.stdout, "milestones")
            assert milestones["1"][:3] == ["deposit", "30%", "3000.00"]
            assert milestones["1"][-2:] == ["0.00", "scheduled"]
            assert "30 d after acceptance" in table.stdout
            assert milestones["2"][-1] == "awaiting_acceptance"

            # The update's validator refuses at once; nothing is recorded.
            wrong = await crm_in_thread("contract pay K1 --amount 100 --reference X --currency USD")
            assert wrong.exit_code == 1
            assert "rejected: currency USD does not match the contract's CNY" in wrong.stderr

            paid = await crm_in_thread("contract pay K1 --amount 3000 --reference BANK-1")
            assert paid.exit_code == 0, paid.output
            assert "accepted: payment BANK-1 of 3000 recorded on contract K1" in paid.stdout
            again = await crm_in_thread("contract pay K1 --amount 3000 --reference BANK-1")
            assert again.exit_code == 0, again.output
            assert "already recorded" in again.stdout

            status = await _poll("contract status K1", lambda s: s["paid"] == "3000.00")
            assert status["milestones"][0]["state"] == "paid"
            assert status["references"] == ["BANK-1"] and status["ignored_duplicates"] == 1

            accepted = await crm_in_thread("contract accept K1")
            assert accepted.exit_code == 0, accepted.output
            assert "acceptance sent to contract-K1" in accepted.stdout
            status = await _poll(
                "contract status K1", lambda s: s["milestones"][1]["due_date"] is not None
            )
            assert status["accepted_at"] is not None

            rest = await crm_in_thread("contract pay K1 --amount 7000 --reference BANK-2")
            assert rest.exit_code == 0, rest.output

            # Paid in full, the journey is over: its status is its result.
            done = await _poll("contract status K1", lambda s: s["stage"] == "paid")
            assert [m["state"] for m in done["milestones"]] == ["paid", "paid"]
            closed = await crm_in_thread("contract status K1")
            assert closed.exit_code == 0, closed.output
            assert _table(closed.stdout, "milestones")["2"][-2:] == ["7000.00", "paid"]

            late = await crm_in_thread("contract pay K1 --amount 1 --reference BANK-3")
            assert late.exit_code == 1
            assert "contract-K1" in late.stderr

            duplicate = await crm_in_thread(
                "contract sign --id K1 --customer cust-1 --owner rep-a --amount 1"
            )
            assert duplicate.exit_code == 1
            assert "contract K1 already has a journey (contract-K1" in duplicate.stderr

            missing = await crm_in_thread("contract status NOPE")
            assert missing.exit_code == 1
            assert "no running journey contract-NOPE for contract NOPE" in missing.stderr
        finally:
            await _terminate(env, "contract-K1")


async def test_an_overpayment_is_answered_and_shown_as_credit(
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
            signed = await crm_in_thread(
                "contract sign --id K7 --customer cust-1 --owner rep-a --amount 1000.00 "
                "--plan 100:7:signing"
            )
            assert signed.exit_code == 0, signed.output
            await _poll("contract status K7", lambda s: len(s["milestones"]) == 1)

            paid = await crm_in_thread("contract pay K7 --amount 10000.00 --reference BANK-X")
            assert paid.exit_code == 0, paid.output
            assert "accepted: payment BANK-X of 10000.00 recorded on contract K7" in paid.stdout
            assert ("credit: 9000.00 CNY paid beyond the contract's 1000.00 CNY is held as "
                    "the customer's credit") in paid.stdout

            table = await crm_in_thread("contract status K7")
            assert table.exit_code == 0, table.output
            assert "9000.00 CNY (paid beyond the contract; not revenue)" in table.stdout
        finally:
            await _terminate(env, "contract-K7")


async def test_contract_cancel_and_a_failed_signing_through_the_cli(
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
            signed = await crm_in_thread(
                "contract sign --id K2 --customer cust-1 --owner rep-a --amount 500"
            )
            assert signed.exit_code == 0, signed.output
            await _poll("contract status K2", lambda s: len(s["milestones"]) == 2)  # default plan
            cancel = await crm_in_thread("contract cancel K2 --reason 'customer withdrew'")
            assert cancel.exit_code == 0, cancel.output
            assert "cancel sent to contract-K2" in cancel.stdout
            cancelled = await _poll("contract status K2", lambda s: s["stage"] == "cancelled")
            assert {m["state"] for m in cancelled["milestones"]} == {"cancelled"}

            # Starting succeeds: the journey, not the CLI, checks the customer.
            bad = await crm_in_thread(
                "contract sign --id K3 --customer nobody --owner rep-a --amount 500"
            )
            assert bad.exit_code == 0, bad.output
            deadline = asyncio.get_running_loop().time() + 20
            while (status := await crm_in_thread("contract status K3")).exit_code == 0:
                assert asyncio.get_running_loop().time() < deadline, status.output
                await asyncio.sleep(0.1)
            assert status.exit_code == 1
            assert "contract-K3 failed at" in status.stderr
            assert "unknown customer 'nobody'" in status.stderr
        finally:
            await _terminate(env, "contract-K2")
            await _terminate(env, "contract-K3")
