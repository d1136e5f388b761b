"""Recordings of the opportunity journey: a full run from needs analysis to won
(opportunity-R1) and every signal in every shape (opportunity-R2)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from domain.opportunities import (
    Advance,
    LogActivity,
    Lose,
    OpportunityInput,
    OpportunityStage,
    OpportunityStatus,
    SendQuote,
    UpdateForecast,
    Win,
    WinContract,
)
from starter.opportunities import Opportunities
from tests.harness import eventually, refused
from tests.recorders.common import (
    _malformed,
    _rejected,
    _touches,
    _when,
    _worker,
    fresh,
    signal_all,
)


async def record_opportunity_full(env: WorkflowEnvironment, workdir: Path) -> str:
    """Opened, an activity, proposal (the quote asked for), the quote sent and
    followed up, the owner nudged at 7 days and the manager at 14, the close
    date passed, the forecast moved, negotiation, and the win: the contract
    and its payment journey."""
    store, settings = fresh(workdir, "crm-opportunity.db")
    task_queue = "record-opportunity-r1"
    opportunities = Opportunities(env.client, task_queue=task_queue)
    status = lambda: opportunities.status("R1")  # noqa: E731
    async with _worker(env, store, settings, task_queue):
        now = await env.get_current_time()
        handle = await opportunities.start(OpportunityInput(
            opportunity_id="R1", customer_id="cust-1", owner_id="rep-a", name="三工厂ERP",
            amount=Decimal("380000"), close_date=(now + timedelta(days=20)).date()))
        await _when(status, lambda s: s.stage is OpportunityStage.needs_analysis, "opened")
        await handle.signal("log_activity", LogActivity(owner_id="rep-a", kind="visit"))
        assert (await opportunities.advance("R1", Advance(stage="proposal"))).accepted
        await handle.signal("send_quote", SendQuote(amount=Decimal("360000"),
                                                    valid_until=(now + timedelta(days=30)).date()))
        await _when(status, lambda s: s.quote_amount is not None, "quoted")
        await env.sleep(timedelta(days=14, hours=1))
        await eventually(lambda: _touches(store, "opportunity_stalled_escalated", "sent"))
        await env.sleep(timedelta(days=7))
        await handle.signal("update_forecast", UpdateForecast(
            close_date=(now + timedelta(days=40)).date()))
        assert (await opportunities.advance("R1", Advance(stage="negotiation"))).accepted
        answer = await opportunities.win("R1", Win(contract=WinContract(
            amount=Decimal("360000"), currency="CNY")))
        assert answer.accepted
        await handle.result()
        await env.client.get_workflow_handle("contract-R1").terminate("recording over")
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_opportunity_every_signal(env: WorkflowEnvironment, workdir: Path) -> str:
    """Every opportunity signal refused in every shape, then accepted ones, the
    owner deactivated (handed on), and the loss with its reason code."""
    store, settings = fresh(workdir, "crm-opportunity-every.db")
    task_queue = "record-opportunity-r2"
    opportunities = Opportunities(env.client, task_queue=task_queue)
    status = lambda: opportunities.status("R2")  # noqa: E731
    async with _worker(env, store, settings, task_queue):
        handle = await opportunities.start(OpportunityInput(
            opportunity_id="R2", customer_id="cust-2", owner_id="rep-b", name="CRM seats"))
        await _when(status, lambda s: s.stage is OpportunityStage.needs_analysis, "opened")
        await signal_all(handle, [
            ("advance", [{"stage": "negotiation"}]),                 # skips without a reason
            ("advance", [{"stage": "won"}]),                         # not a pipeline stage
            ("update_forecast", [{}]),                               # nothing to change
            ("update_forecast", [{"amount": "-5"}]),                 # negative
            ("update_forecast", [{"close_date": "soon"}]),           # malformed
            ("log_activity", [{"owner_id": "rep-a", "kind": "call"}]),  # not the owner
            ("log_activity", [{"owner_id": "rep-b", "kind": "dance"}]),  # unknown kind
            ("send_quote", [{"amount": "1000"}]),                    # not in proposal yet
            ("win", [{}]),                                           # no amount to sign
            ("win", [{"contract": {"amount": "0"}}]),                # not positive
            ("lose", [{"note": "too expensive"}]),                   # free text only
            ("lose", [{"reason_code": "too_pricey"}]),               # not a policy code
            *_malformed("lose", not_an_object="lost"),
        ])
        await _rejected(handle, OpportunityStatus, 18)
        await signal_all(handle, [
            ("update_forecast", [{"amount": "88000.00", "close_date": "2027-03-31"}]),
            ("log_activity", [{"owner_id": "rep-b", "kind": "call", "note": "needs 40 seats"}]),
            ("advance", [{"stage": "proposal", "note": "demo done"}]),
            ("send_quote", [{"amount": "86000", "valid_until": "2027-01-31",
                             "items": [{"name": "seat", "amount": "2150", "quantity": 40}]}]),
            ("staff_deactivated", [{"staff_id": "rep-b"}]),          # handed on
        ])
        await _when(status, lambda s: s.owner_id != "rep-b", "handed on")
        await refused(opportunities.advance("R2", Advance(stage="needs_analysis")))
        answer = await opportunities.lose("R2", Lose(reason_code="no_budget",
                                                     note="预算不足"))
        assert answer.accepted
        done = await handle.result()
        assert done.stage is OpportunityStage.lost
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


# The histories this journey's recorders write, by file name (the workflow id).
RECORDINGS = {"opportunity-R1": record_opportunity_full,
              "opportunity-R2": record_opportunity_every_signal}
