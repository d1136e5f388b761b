"""`crm customer` as a person uses it: add, list, purchase, opt-out and status.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from tests import cli_support
from tests.cli_support import ZONE, _poll, _terminate, crm, crm_in_thread, point_cli_at
from tests.harness import eventually, make_settings, running_worker, seed_staff

# Fixtures shared with the other modules split from the same subject.
store_url = cli_support.store_url


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
        point_cli_at(env, h.task_queue, monkeypatch)
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
        point_cli_at(env, h.task_queue, monkeypatch)
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
