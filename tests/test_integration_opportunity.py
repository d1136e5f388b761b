"""Deal to cash on the real Temporal dev server: a lead converts, its
opportunity moves through proposal (the quote e-mailed to the customer) and
negotiation to won; the contract's payment journey and onboarding start, and
the deposit is paid and receipted, each touch delivered for real to local
sinks."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.leads import Convert
from domain.opportunities import Advance, OpportunityStage, SendQuote, Win, WinContract
from domain.payments import RecordPayment
from starter.opportunities import Opportunities
from tests.harness import eventually, running_worker, seed_staff
from tests.sinks import SmtpSink, WebhookSink
from tests.test_integration_lead import sink_settings, sinks  # noqa: F401 - fixture
from tests.test_lead_workflow import a_lead, started

pytestmark = pytest.mark.devserver


async def test_lead_to_first_payment_with_real_delivery(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path,
    sinks: tuple[SmtpSink, WebhookSink],  # noqa: F811
) -> None:
    smtp, webhook = sinks
    seed_staff(sqlite_store)
    lead_id = f"DC-{tmp_path.name[-6:]}"
    deal = f"opp-{lead_id}"
    async with running_worker(dev_env.client, sqlite_store,
                              sink_settings(tmp_path, smtp, webhook)) as h:
        h.journeys.started += [f"opportunity-{deal}", f"contract-{deal}", f"onboarding-{deal}"]
        lead = await started(h, a_lead(lead_id))
        owner = (await h.journeys.lead_status(lead_id)).owner_id
        await lead.signal("convert", Convert(opportunity_name="ERP", amount=Decimal("100000")))
        await lead.result()
        pipeline = Opportunities(h.client, task_queue=h.task_queue)

        async def opened() -> bool:
            try:
                return (await pipeline.status(deal)).stage is OpportunityStage.needs_analysis
            except RPCError:
                return False

        for _ in range(300):
            if await opened():
                break
            await asyncio.sleep(0.1)
        status = await pipeline.status(deal)
        assert (status.owner_id, status.amount) == (owner, Decimal("100000.00"))
        assert (await pipeline.advance(deal, Advance(stage="proposal"))).accepted
        await pipeline.send_quote(deal, SendQuote(amount=Decimal("98000")))
        assert (await pipeline.advance(deal, Advance(stage="negotiation"))).accepted
        assert (await pipeline.win(deal, Win(contract=WinContract()))).accepted
        assert (await pipeline.handle(deal).result()).contract_id == deal

        [contract] = await eventually(lambda: h.rows(schema.Contract, id=deal), timeout=30,
                                      what="the contract recorded")
        assert contract.amount_minor == 10_000_000 and contract.owner_id == owner
        await eventually(lambda: h.rows(schema.Onboarding, contract_id=deal), timeout=30,
                         what="onboarding started")
        answer = await h.journeys.record_payment(deal, RecordPayment(
            amount=Decimal("30000.00"), reference="BANK-DC1"))
        assert answer.accepted
        await eventually(lambda: h.touches(step="payment_receipt", status="sent"), timeout=30,
                         what="the receipt sent")
        quote = await eventually(lambda: h.touches(step="quote", status="sent"), timeout=30,
                                 what="the quote sent")
        asked = await eventually(lambda: h.touches(step="quote_requested", status="sent"),
                                 timeout=30, what="the owner asked for the quote")

    customer_mail = f"{lead_id.lower()}@example.com"
    keys = {quote[0].key, f"contract-{deal}:payment_receipt:1"}
    mails = [m for m in smtp.mails if m.key in keys]
    assert Counter(m.key for m in mails) == {k: 1 for k in keys}
    assert all(m.to == [customer_mail] for m in mails)
    quoted = next(m for m in mails if m.key == quote[0].key)
    assert "98,000.00" in quoted.body
    receipt = next(m for m in mails if "receipt" in (m.key or ""))
    assert "BANK-DC1" in receipt.body and "30,000.00" in receipt.body
    assert Counter(hk.path for hk in webhook.hooks if hk.key == asked[0].key) == {
        f"/chat/{owner}": 1}
