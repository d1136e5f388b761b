"""`crm loyalty` as a person uses it: join, an order through `crm customer
purchase`, a grant, redemptions (refused beyond the balance, a receipt
otherwise), a refund, the balance, the ledger, the level and the programme's
figures; a customer outside the programme is told so."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.loyalty import LoyaltyPolicy
from tests.cli_support import _poll, _terminate, crm_in_thread, point_cli_at
from tests.harness import eventually, make_settings, running_worker, seed_staff
from tests.membership_support import balance


async def test_join_earn_grant_redeem_refund_and_read_it_back_through_the_cli(
    time_skipping_env: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = time_skipping_env
    seed_staff(sqlite_store)
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{sqlite_store.engine.url.database}")
    now = await env.get_current_time()
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path),
                              membership_policy=LoyaltyPolicy(member_weekdays=[])) as h:
        point_cli_at(env, h.task_queue, monkeypatch)
        try:
            outside = await crm_in_thread("loyalty refund cust-2 --order X")
            assert outside.exit_code == 1 and "cust-2 is not a member" in outside.stderr

            joined = await crm_in_thread("loyalty join cust-1 --birth-date 1990-13-01")
            assert joined.exit_code == 1 and "is not YYYY-MM-DD" in joined.stderr
            joined = await crm_in_thread("loyalty join cust-1")
            assert joined.exit_code == 0, joined.output
            level = await _poll("loyalty level cust-1", lambda s: bool(s["referral_code"]))
            assert (level["level"], level["discount_percent"]) == ("bronze", 0)

            bought = await crm_in_thread(
                "customer purchase cust-1 --order L-1 --amount 120.50 --category tea "
                f"--at {(now - timedelta(hours=1)).isoformat()}")
            assert bought.exit_code == 0, bought.output
            await eventually(lambda: balance(h, "cust-1") == 120, what="the order's points")

            granted = await crm_in_thread(
                "loyalty grant cust-1 --points 30 --reason 物流延迟 --by rep-a --ref late-1")
            assert granted.exit_code == 0, granted.output
            too_much = await crm_in_thread("loyalty redeem cust-1 --points 151 --for 茶具")
            assert too_much.exit_code == 1
            assert "rejected: redemption refused: 151 points asked, the balance is 150" in \
                too_much.stderr
            redeemed = await crm_in_thread(
                "loyalty redeem cust-1 --points 100 --for 'cash off' --ref R-1")
            assert redeemed.exit_code == 0, redeemed.output
            assert "receipt redeem:R-1; balance 50" in redeemed.stdout

            refund = await crm_in_thread("loyalty refund cust-1 --order L-1 --reason 退货")
            assert refund.exit_code == 0, refund.output
            await eventually(lambda: balance(h, "cust-1") == 0, what="the refund")

            shown = await crm_in_thread("loyalty balance cust-1")
            assert shown.stdout.strip() == "cust-1: 0 points"
            history = await crm_in_thread("loyalty history cust-1")
            assert history.exit_code == 0, history.output
            for kind in ("earned", "granted", "redeemed", "reversed"):
                assert kind in history.stdout
            report = await crm_in_thread(
                f"loyalty report --from {(now - timedelta(days=1)).isoformat()} "
                f"--to {(now + timedelta(days=1)).isoformat()}")
            figures = json.loads(report.stdout)
            assert (figures["points_issued"], figures["points_redeemed"],
                    figures["points_reversed"]) == (150, 100, 50)
            assert figures["members_per_level"] == {"bronze": 1}
        finally:
            await _terminate(env, "membership-cust-1")
            await _terminate(env, "customer-cust-1")
