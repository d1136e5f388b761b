"""The `crm contract`, `crm customer purchase|opt-out|status`, `crm rfm sweep` and
`crm import` commands as a person uses them: output and exit codes.

Same tiers as tests/test_cli.py: store-only commands on a tmp SQLite store with
Temporal pointed at a closed port; journey commands on the time-skipping
server, the CLI in a thread while the test's loop runs the worker.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.leads import LeadInput
from tests.harness import eventually, make_settings, running_worker, seed_staff
from tests.test_cli import (
    UNREACHABLE,
    _point_cli_at,
    _terminate,
    crm,
    crm_in_thread,
    staff_in,
)


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
    return url


def _rows(store_url: str, model: type[Any]) -> list[Any]:
    store = Store.from_url(store_url)
    try:
        with store.unit_of_work() as session:
            return list(session.scalars(select(model)))
    finally:
        store.dispose()


def _table(stdout: str, title: str, n: int | None = None) -> dict[str, list[str]]:
    """The first `n` rows (or up to a blank line) of the borderless table under
    `title`, by first cell."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    rows: dict[str, list[str]] = {}
    for line in lines[start + 3 :][:n]:  # title, header, rule
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells[1:]
    return rows


async def _poll(command: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """`crm <command> --json` until `ready` says yes (activities run in real time)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        result = await crm_in_thread(f"{command} --json")
        assert result.exit_code == 0, result.output
        latest: dict[str, Any] = json.loads(result.stdout)
        if ready(latest):
            return latest
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"`{command}` never got there; last {latest}")
        await asyncio.sleep(0.1)


# -- contract and customer journeys, without Temporal ----------------------------------

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


# -- contract, on the time-skipping server -------------------------------------------


async def test_contract_sign_pay_accept_and_status_through_the_cli(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    seed_staff(sqlite_store)  # customer cust-1, rep rep-a
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        _point_cli_at(env, h.task_queue, monkeypatch)
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
        _point_cli_at(env, h.task_queue, monkeypatch)
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
        _point_cli_at(env, h.task_queue, monkeypatch)
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


# -- customer lifecycle, on the time-skipping server ---------------------------------


async def test_customer_purchase_opt_out_and_status_through_the_cli(
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
            never = await crm_in_thread("customer status cust-1")
            assert never.exit_code == 1
            assert "no running journey customer-cust-1 for customer cust-1" in never.stderr
            assert "starts with their first reported purchase" in never.stderr

            bought = await crm_in_thread(
                "customer purchase cust-1 --order O-1 --amount 268.00 --category tea "
                f"--at {(now - timedelta(hours=1)).isoformat()}"
            )
            assert bought.exit_code == 0, bought.output
            assert "purchase O-1 sent to customer-cust-1" in bought.stdout

            active = await _poll("customer status cust-1", lambda s: s["orders"] == 1)
            assert active["stage"] == "active"
            assert active["last_purchase_at"] is not None and active["dormant_at"] is not None

            # The same order again is recorded once; a purchase in the future is refused.
            repeat = "customer purchase cust-1 --order O-1 --amount 268 --category tea"
            assert (await crm_in_thread(repeat)).exit_code == 0
            future = (now + timedelta(days=2)).isoformat()
            sent = await crm_in_thread(
                f"customer purchase cust-1 --order O-2 --amount 10 --category tea --at {future}"
            )
            assert sent.exit_code == 0, sent.output  # a signal: the refusal shows in the status
            refused = await _poll("customer status cust-1", lambda s: bool(s["rejections"]))
            assert refused["orders"] == 1
            assert "is in the future" in refused["rejections"][0]["reason"]

            table = await crm_in_thread("customer status cust-1")
            assert table.exit_code == 0, table.output
            assert "active" in table.stdout and "rejected" in table.stdout

            opted = await crm_in_thread("customer opt-out cust-1 --channel email")
            assert opted.exit_code == 0, opted.output
            assert "opt-out of marketing on email sent to customer-cust-1" in opted.stdout
            everywhere = await crm_in_thread("customer opt-out cust-1")
            assert everywhere.exit_code == 0, everywhere.output
            assert "on every channel" in everywhere.stdout

            def consents() -> set[str]:
                return {c.channel for c in h.rows(schema.Consent, subject_id="cust-1")}

            assert await eventually(lambda: consents() == {"email", "all"}, what="opt-outs")
            with sqlite_store.unit_of_work() as session:
                orders = session.scalars(
                    select(schema.Order.id).where(schema.Order.customer_id == "cust-1")
                ).all()
            assert orders == ["O-1"]
        finally:
            await _terminate(env, "customer-cust-1")


# -- rfm sweep -----------------------------------------------------------------------

DAY = date(2026, 6, 30)
ZONE = "Asia/Shanghai"


def _at(days_before: int) -> datetime:
    local = datetime.combine(DAY - timedelta(days=days_before), time(12), ZoneInfo(ZONE))
    return local.astimezone(UTC)


# customer -> orders as (days before DAY, amount); the tier on DAY by the tier table
RFM_CUSTOMERS: dict[str, list[tuple[int, str]]] = {
    "core-1": [(10, "100")] * 5,
    "core-2": [(3, "150")] * 5,
    "potential": [(60, "100")] * 3,
    "new": [(5, "10")],
    "dormant": [(200, "100")],
    "lost": [(200, "50")],
    "regular": [(100, "100")],
    "never": [],
}


def _seed_orders(store_url: str) -> None:
    store = Store.from_url(store_url)
    try:
        with store.unit_of_work() as session:
            for customer_id, orders in RFM_CUSTOMERS.items():
                times = [_at(days) for days, _ in orders]
                session.add(
                    schema.Customer(
                        id=customer_id, name=customer_id, created_at=_at(500),
                        first_purchase_at=min(times, default=None),
                        last_purchase_at=max(times, default=None), order_count=len(orders),
                    )
                )  # fmt: skip
            session.flush()
            for customer_id, orders in RFM_CUSTOMERS.items():
                for n, (days, amount) in enumerate(orders):
                    session.add(
                        schema.Order(
                            id=f"{customer_id}-{n}", customer_id=customer_id,
                            amount_minor=int(Decimal(amount) * 100), currency="CNY",
                            category="tea", at=_at(days), recorded_at=_at(days),
                        )
                    )  # fmt: skip
    finally:
        store.dispose()


def test_rfm_sweep_prints_what_changed_and_the_tiers(store_url: str) -> None:
    _seed_orders(store_url)

    result = crm(f"rfm sweep --day {DAY.isoformat()} --full")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"RFM sweep of {DAY.isoformat()} ({ZONE})" in out
    assert "│ mode                    │ full" in out
    assert "│ tiers changed           │ 7 " in out
    assert "│ strategy changes queued │ 3 " in out  # core x2, potential
    tiers = _table(out, "customers by tier", n=7)
    assert {tier: int(cells[0]) for tier, cells in tiers.items()} == {
        "core": 2, "potential": 1, "new": 1, "dormant": 1, "lost": 1, "regular": 1, "none": 1,
    }  # fmt: skip
    assert "3 queued for the next dispatch" in out
    assert "RfmSweep workflow of the daily schedule" in out
    assert {c.id: c.tier for c in _rows(store_url, schema.Customer)}["core-2"] == "core"

    # The next day, incrementally: nothing new to queue, the old three still wait.
    nxt = crm(f"rfm sweep --day {(DAY + timedelta(days=1)).isoformat()}")
    assert nxt.exit_code == 0, nxt.output
    assert "│ mode                    │ incremental" in nxt.stdout
    assert "│ strategy changes queued │ 0 " in nxt.stdout
    assert "3 queued for the next dispatch" in nxt.stdout


def test_rfm_sweep_refuses_a_bad_day(store_url: str) -> None:
    result = crm("rfm sweep --day 30/06/2026")
    assert result.exit_code == 1
    assert "--day '30/06/2026' is not a date (YYYY-MM-DD)" in result.stderr


# -- import --------------------------------------------------------------------------


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _summary(stdout: str, title: str) -> dict[str, int]:
    """The import summary: outcome -> rows."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    counts = {}
    for line in lines[start + 3 : start + 6]:  # title, header, rule, then three outcomes
        found = re.match(r"\s*(.+?)\s{2,}(\d+)\s", line)
        assert found, line
        counts[found[1]] = int(found[2])
    return counts


STAFF_CSV = """\
id,name,role,regions,product_lines,manager_id,seniority,email,phone
rep-a,Rep A,rep,east;north,erp;crm,mgr-east,3,rep.a@example.com,138 0013 8000
mgr-east,Manager East,manager,east,,,,Mgr.East@Example.com,
rep-x,Rep X,chef,,,,,,
rep-a,Rep A again,rep,,,,,,
"""


def test_import_staff_managers_first_with_lists_bad_rows_and_duplicates(
    store_url: str, tmp_path: Path
) -> None:
    path = _csv(tmp_path, "staff.csv", STAFF_CSV)

    result = crm(f"import staff {path}")

    assert result.exit_code == 0, result.output
    assert _summary(result.stdout, "import staff from staff.csv") == {
        "imported": 2, "duplicates": 1, "bad rows": 1,
    }  # fmt: skip
    assert "staff.csv line 4 (rep-x): bad row skipped: role:" in result.stderr
    assert "line 5: rep-a: skipped, duplicate of rep-a (line 2; same id)" in result.stdout
    staff = staff_in(store_url)
    assert set(staff) == {"rep-a", "mgr-east"}
    # The rep's manager stood later in the file; the first row for rep-a won.
    rep = staff["rep-a"]
    assert (rep.name, rep.manager_id, rep.seniority) == ("Rep A", "mgr-east", 3)
    assert rep.regions == ["east", "north"] and rep.product_lines == ["erp", "crm"]
    assert rep.phone == "+8613800138000"
    assert staff["mgr-east"].email == "mgr.east@example.com"

    # Again: everyone is there already; duplicates are not errors.
    again = crm(f"import staff {path}")
    assert again.exit_code == 0, again.output
    assert _summary(again.stdout, "import staff from staff.csv") == {
        "imported": 0, "duplicates": 3, "bad rows": 1,
    }  # fmt: skip


CUSTOMERS_CSV = """\
id,name,email,phone,company,owner_id,timezone
c-1,周杰,Zhou.Jie@Example.com,136 0013 6000,星辰制造有限公司,rep-a,
c-2,Bad Phone,bad@example.com,123,,,
c-3,Old Friend,OLD@example.com,,,,
c-4,Same Company,,,"星辰制造 Co., Ltd.",,
c-5,"Two
Lines",two@example.com,,,,Europe/London
c-6,No Owner,six@example.com,,,nobody,
"""


def test_import_customers_reports_bad_rows_by_line_and_skips_duplicates(
    store_url: str, tmp_path: Path
) -> None:
    assert crm("staff add --id rep-a --name 'Rep A' --role rep").exit_code == 0
    assert crm("customer add --id old-1 --name Old --email old@example.com").exit_code == 0
    path = _csv(tmp_path, "customers.csv", CUSTOMERS_CSV)

    result = crm(f"import customers {path}")

    assert result.exit_code == 0, result.output
    assert _summary(result.stdout, "import customers from customers.csv") == {
        "imported": 2, "duplicates": 2, "bad rows": 2,
    }  # fmt: skip
    assert "customers.csv line 3 (c-2): bad row skipped: phone: phone '123' is not a valid" in (
        result.stderr
    )
    assert "customers.csv line 8 (c-6): bad row skipped: owner 'nobody' is not staff" in (
        result.stderr
    )  # the quoted two-line row before it (lines 6-7) counts as two lines
    assert "line 4: c-3: skipped, duplicate of old-1 (same email old@example.com)" in result.stdout
    assert "line 5: c-4: skipped, duplicate of c-1 (line 2; same company 星辰制造)" in result.stdout
    customers = {c.id: c for c in _rows(store_url, schema.Customer)}
    assert set(customers) == {"old-1", "c-1", "c-5"}
    assert customers["c-1"].phone == "+8613600136000"
    assert customers["c-1"].company_key == "星辰制造" and customers["c-1"].owner_id == "rep-a"
    assert customers["c-5"].name == "Two\nLines" and customers["c-5"].timezone == "Europe/London"


def test_import_dry_run_writes_nothing(store_url: str, tmp_path: Path) -> None:
    staff = _csv(tmp_path, "staff.csv", STAFF_CSV)
    customers = _csv(tmp_path, "customers.csv", CUSTOMERS_CSV.replace(",rep-a,", ",,"))

    dry_staff = crm(f"import staff {staff} --dry-run")
    dry_customers = crm(f"import customers {customers} --dry-run")

    assert dry_staff.exit_code == 0, dry_staff.output
    assert _summary(dry_staff.stdout, "import staff from staff.csv")["would import"] == 2
    assert dry_customers.exit_code == 0, dry_customers.output
    summary = _summary(dry_customers.stdout, "import customers from customers.csv")
    assert summary == {"would import": 3, "duplicates": 1, "bad rows": 2}
    assert "dry run: nothing was written" in dry_customers.stdout
    assert _rows(store_url, schema.Staff) == []
    assert _rows(store_url, schema.Customer) == []


EMPTY = "id,name\n"
ALL_BAD = "id,name,phone\nx,X,12\n,Y,\n"
UNKNOWN_COLUMN = "id,name,colour\nx,X,red\n"
LACKING_COLUMNS = "lead_id,name\nL1,X\n"


def test_import_exit_codes_empty_all_bad_and_a_bad_header(store_url: str, tmp_path: Path) -> None:
    empty = crm(f"import customers {_csv(tmp_path, 'empty.csv', EMPTY)}")
    assert empty.exit_code == 0, empty.output
    assert "has no rows: nothing to import" in empty.stdout

    all_bad = crm(f"import customers {_csv(tmp_path, 'bad.csv', ALL_BAD)}")
    assert all_bad.exit_code == 1
    assert "bad.csv line 2 (x): bad row skipped: phone: phone '12'" in all_bad.stderr
    assert "bad.csv line 3: bad row skipped: id is required" in all_bad.stderr
    assert "every row of" in all_bad.stderr

    header = crm(f"import staff {_csv(tmp_path, 'h.csv', UNKNOWN_COLUMN)}")
    assert header.exit_code == 1
    assert "unknown column(s) 'colour'" in header.stderr and "role" in header.stderr
    lacking = crm(f"import leads {_csv(tmp_path, 'l.csv', LACKING_COLUMNS)}")
    assert lacking.exit_code == 1
    assert "lacks the required column(s) region, product_line, source" in lacking.stderr

    missing = crm(f"import staff {tmp_path / 'nope.csv'}")
    assert missing.exit_code == 1
    assert "cannot read" in missing.stderr
    assert _rows(store_url, schema.Customer) == []


LEADS_CSV = """\
lead_id,name,phone,email,company,region,product_line,source,need
IL1,张伟,139 0000 1111,,星辰制造,east,erp,web_form,ERP for 200 staff
IL2,Bad Phone,12,,,east,erp,web_form,
IL3,Same Phone,+86 139 0000 2222,,,east,erp,import,
OLD,Known Id,,known@example.com,,east,erp,import,
"""


def test_import_leads_without_start_journeys_only_checks(store_url: str, tmp_path: Path) -> None:
    path = _csv(tmp_path, "leads.csv", LEADS_CSV)
    result = crm(f"import leads {path}")
    assert result.exit_code == 0, result.output
    assert _summary(result.stdout, "import leads from leads.csv") == {
        "valid, not started": 3, "duplicates": 0, "bad rows": 1,
    }  # fmt: skip
    assert "leads.csv line 3 (IL2): bad row skipped: phone '12' is not a valid number" in (
        result.stderr
    )
    assert "only checked" in result.stdout and "--start-journeys" in result.stdout
    assert _rows(store_url, schema.Lead) == []


async def test_import_leads_starts_their_journeys(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    seed_staff(sqlite_store)
    with sqlite_store.unit_of_work() as session:
        session.add(
            schema.Lead(
                id="OLD", name="Known", region="east", product_line="erp", source="web_form",
                stage="discarded", received_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.db'}")  # the worker's
    path = _csv(tmp_path, "leads.csv", LEADS_CSV)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        _point_cli_at(env, h.task_queue, monkeypatch)
        # An open lead with its journey running, for an imported lead to merge into.
        await h.journeys.start_lead(LeadInput(
            lead_id="OPEN1", name="Open", phone="+8613900002222", region="east",
            product_line="erp", source="web_form"))
        await eventually(lambda: h.rows(schema.Lead, id="OPEN1"), what="OPEN1's intake")
        try:
            dry = await crm_in_thread(f"import leads {path} --start-journeys --dry-run")
            assert dry.exit_code == 0, dry.output
            assert _summary(dry.stdout, "import leads from leads.csv")["would start"] == 2

            result = await crm_in_thread(f"import leads {path} --start-journeys")
            assert result.exit_code == 0, result.output
            assert _summary(result.stdout, "import leads from leads.csv") == {
                "journeys started": 2, "duplicates": 1, "bad rows": 1,
            }  # fmt: skip
            assert "line 5: OLD: skipped, duplicate of OLD (same id; it is discarded)" in (
                result.stdout
            )
            assert "leads.csv line 3 (IL2)" in result.stderr

            # Intake de-duplicates against open leads: IL3 has OPEN1's phone.
            def intake_done() -> dict[str, schema.Lead] | None:
                leads = {lead.id: lead for lead in h.rows(schema.Lead)}
                return leads if {"IL1", "IL3"} <= set(leads) else None

            leads = await eventually(intake_done, what="the imported leads' intake")
            assert leads is not None
            assert (leads["IL3"].stage, leads["IL3"].merged_into) == ("merged", "OPEN1")
            assert leads["IL1"].merged_into is None
            assert leads["IL1"].phone == "+8613900001111"

            # Once more: the journeys exist, so every good row is a duplicate now.
            again = await crm_in_thread(f"import leads {path} --start-journeys")
            assert again.exit_code == 0, again.output
            assert _summary(again.stdout, "import leads from leads.csv")["duplicates"] == 3
        finally:
            for lead_id in ("IL1", "IL3"):
                await _terminate(env, f"lead-{lead_id}")


async def test_ticket_open_respond_resolve_rate_through_the_cli(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        _point_cli_at(env, h.task_queue, monkeypatch)
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


# -- staff deactivation across journeys, on the time-skipping server -----------------


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
        _point_cli_at(env, h.task_queue, monkeypatch)
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


async def test_customer_status_shows_the_store_s_tier_for_every_tier(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sweep writes every tier to the store; the journey hears only of core
    and potential. `customer status` shows the store's, with the day it was set."""
    from domain.lifecycle import business_day

    env = time_skipping_env
    seed_staff(sqlite_store)
    now = await env.get_current_time()
    today = business_day(now, ZONE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.db'}")
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        _point_cli_at(env, h.task_queue, monkeypatch)
        try:
            hour_ago = (now - timedelta(hours=1)).isoformat()
            for customer_id, amount in (("tier-a", "268.00"), ("tier-b", "50.00")):
                bought = await crm_in_thread(
                    f"customer purchase {customer_id} --order {customer_id}-1 "
                    f"--amount {amount} --category tea --at {hour_ago}"
                )
                assert bought.exit_code == 0, bought.output
                await _poll(f"customer status {customer_id}", lambda s: s["orders"] == 1)

            swept = await crm_in_thread(f"rfm sweep --day {today.isoformat()} --full")
            assert swept.exit_code == 0, swept.output
            new = await crm_in_thread("customer status tier-a --json")
            assert new.exit_code == 0, new.output
            assert json.loads(new.stdout)["tier"] == "new"
            assert json.loads(new.stdout)["tier_changed_on"] == today.isoformat()

            later = today + timedelta(days=200)
            swept = await crm_in_thread(f"rfm sweep --day {later.isoformat()} --full")
            assert swept.exit_code == 0, swept.output
            for customer_id, tier in (("tier-a", "dormant"), ("tier-b", "lost")):
                shown = await crm_in_thread(f"customer status {customer_id} --json")
                assert shown.exit_code == 0, shown.output
                assert (json.loads(shown.stdout)["tier"],
                        json.loads(shown.stdout)["tier_changed_on"]) == (tier, later.isoformat())
                table = await crm_in_thread(f"customer status {customer_id}")
                assert table.exit_code == 0, table.output
                assert f"{tier} (since {later.isoformat()})" in table.stdout
        finally:
            await _terminate(env, "customer-tier-a")
            await _terminate(env, "customer-tier-b")
