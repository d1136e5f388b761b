"""One contract on the real Temporal dev server: a reminder on the due day,
then full payment and its receipt, delivered for real to local sinks."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.payments import (
    ContractInput,
    ContractStage,
    MilestoneRule,
    PaymentPolicy,
    RecordPayment,
)
from tests.harness import eventually, running_worker, seed_staff
from tests.sinks import SmtpSink, WebhookSink
from tests.test_integration_lead import sink_settings, sinks  # noqa: F401 - fixture

pytestmark = pytest.mark.devserver


async def test_contract_reminded_paid_and_receipted_with_real_delivery(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path,
    sinks: tuple[SmtpSink, WebhookSink],  # noqa: F811
) -> None:
    smtp, webhook = sinks
    seed_staff(sqlite_store)
    zone = ZoneInfo("Asia/Shanghai")
    now = datetime.now(UTC)
    if (now + timedelta(seconds=10)).astimezone(zone).date() != now.astimezone(zone).date():
        await asyncio.sleep(12)  # do not straddle local midnight
        now = datetime.now(UTC)
    # The customer-local notice time a few seconds from now: the due-day
    # reminder of a milestone due today fires almost at once.
    policy = PaymentPolicy(notice_time=(now + timedelta(seconds=4)).astimezone(zone).time()
                           .replace(microsecond=0))
    contract_id = f"IT-{tmp_path.name[-6:]}"
    async with running_worker(dev_env.client, sqlite_store,
                              sink_settings(tmp_path, smtp, webhook)) as h:
        handle = await h.journeys.sign_contract(ContractInput(
            contract_id=contract_id, customer_id="cust-1", owner_id="rep-a",
            amount=Decimal("5000.00"), signed_at=now, policy=policy,
            milestones=[MilestoneRule(percent=Decimal(100), due_days=0)]))
        await eventually(lambda: h.touches(step="payment_reminder", status="sent"), timeout=30,
                         what="due-day reminder")
        answer = await h.journeys.record_payment(
            contract_id, RecordPayment(amount=Decimal("5000.00"), reference="BANK-77"))
        assert answer.accepted
        result = await handle.result()
        assert result.stage is ContractStage.paid
        touches = await eventually(
            lambda: (t := h.touches(workflow_id=handle.id)) and len(t) == 3
            and all(x.status == "sent" for x in t) and t, timeout=30, what="touches sent")

    keys = {t.key for t in touches}
    mails = [m for m in smtp.mails if m.key in keys]
    assert Counter(m.key for m in mails) == {f"{handle.id}:payment_reminder:1": 1,
                                             f"{handle.id}:payment_receipt:1": 1}
    assert all(m.to == ["zhou.jie@example.com"] for m in mails)
    receipt = next(m for m in mails if "receipt" in (m.key or ""))
    assert "BANK-77" in receipt.body and "5,000.00" in receipt.body
    assert Counter(hk.path for hk in webhook.hooks if hk.key in keys) == {"/chat/rep-a": 1}
