"""`crm import` as a person uses it: staff, customers and leads from CSV, dry
runs and exit codes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.leads import LeadInput
from tests import cli_support
from tests.cli_support import _rows, _terminate, crm, crm_in_thread, point_cli_at, staff_in
from tests.harness import eventually, make_settings, running_worker, seed_staff

# Fixtures shared with the other modules split from the same subject.
store_url = cli_support.store_url


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
        point_cli_at(env, h.task_queue, monkeypatch)
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
