"""Recordings of the payment journey: a full run (contract-R4) and every
signal (contract-R7).
"""

from __future__ import annotations

import asyncio
from datetime import time, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from domain import schema
from domain.payments import Accept, ContractInput, ContractStage, ContractStatus, RecordPayment
from domain.policy import MessagingPolicy, QuietHours
from starter.client import Journeys
from tests.harness import eventually, make_settings, refused, running_worker, seed_staff
from tests.recorders.common import (
    _malformed,
    _rejected,
    _touches,
    _when,
    _worker,
    fresh,
    signal_all,
)


async def record_contract_full(env: WorkflowEnvironment, workdir: Path,
                               contract_id: str = "R4") -> str:
    """Signing, reminders, a partial payment, acceptance, the deposit overdue and
    escalated, a duplicate reference, a wrong currency, payment in full."""
    url = f"sqlite:///{workdir / 'crm-payment.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        now = await env.get_current_time()
        handle = await h.journeys.sign_contract(ContractInput(
            contract_id=contract_id, customer_id="cust-1", owner_id="rep-a",
            amount=Decimal("999.99"), signed_at=now))
        await asyncio.sleep(1)
        assert (await h.journeys.record_payment(
            contract_id, RecordPayment(amount=Decimal("100"), reference="B1"))).accepted
        await handle.signal("accept", Accept())
        await env.sleep(timedelta(days=15))
        await eventually(lambda: h.rows(schema.Escalation, entity_id=contract_id))
        await handle.signal("record_payment", RecordPayment(amount=Decimal("100"),
                                                            reference="B1"))
        await handle.signal("record_payment", RecordPayment(amount=Decimal("5"),
                                                            reference="B2", currency="USD"))
        assert (await h.journeys.record_payment(
            contract_id, RecordPayment(amount=Decimal("899.99"), reference="B3"))).accepted
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_contract_every_signal(env: WorkflowEnvironment, workdir: Path,
                                       contract_id: str = "R7") -> str:
    """Every payment signal refused in every shape, a partial payment and its
    duplicate, acceptance (and a second one), the owner deactivated, a payment
    by update, then cancellation while a reminder waits out quiet hours, and an
    update and signals refused while it waits."""
    store, settings = fresh(workdir, "crm-payment-every.db")
    task_queue = "record-contract-r7"
    # Reminders go out at 10:00 customer-local; quiet hours 09:00-12:00 hold them.
    quiet = MessagingPolicy(quiet_hours=QuietHours(enabled=True, start=time(9, 0),
                                                   end=time(12, 0)))
    async with _worker(env, store, settings, task_queue, messaging_policy=quiet):
        journeys = Journeys(env.client, task_queue=task_queue)
        now = await env.get_current_time()
        handle = await journeys.sign_contract(ContractInput(
            contract_id=contract_id, customer_id="cust-1", owner_id="rep-a",
            amount=Decimal("1000"), signed_at=now))
        status = lambda: journeys.contract_status(contract_id)  # noqa: E731
        await _when(status, lambda s: s.milestones, "signed")
        await signal_all(handle, [
            ("record_payment", [{"amount": "0", "reference": "P0"}]),       # not positive
            ("record_payment", [{"amount": "10", "reference": " "}]),       # no reference
            ("record_payment", [{"amount": "10", "reference": "P1", "currency": "USD"}]),
            ("record_payment", [{"amount": "lots", "reference": "P2"}]),    # malformed
            ("accept", [{"accepted_at": (now - timedelta(days=1)).isoformat()}]),  # too early
            ("cancel", [{"reason": ""}]),                                   # no reason
            *_malformed("cancel", not_an_object="customer withdrew"),
        ])
        await _rejected(handle, ContractStatus, 12)
        await signal_all(handle, [
            ("record_payment", [{"amount": "100", "reference": "P3"}]),
            ("record_payment", [{"amount": "100", "reference": "P3"}]),    # told twice
            ("accept", [{}]),
            ("accept", [{}]),                                               # accepted already
            ("staff_deactivated", [{"staff_id": "rep-a"}]),                 # handed over
        ])
        await _rejected(handle, ContractStatus, 13)
        await _when(status, lambda s: s.owner_id != "rep-a", "handed over")
        assert (await journeys.record_payment(contract_id, RecordPayment(amount=Decimal("50"),
                                                                  reference="P4"))).accepted
        await refused(journeys.record_payment(contract_id, RecordPayment(amount=Decimal("-1"),
                                                                  reference="P5")))
        waiting = await status()
        assert waiting.next_action is not None
        await env.sleep(waiting.next_action.at - await env.get_current_time()
                        + timedelta(minutes=1))
        await eventually(lambda: _touches(store, "payment_reminder", "deferred"))
        await journeys.cancel_contract(contract_id, "customer withdrew")
        await _when(status, lambda s: s.stage is ContractStage.cancelled, "cancelled")
        # The reminder still waits: the journey answers until it completes.
        await refused(journeys.record_payment(contract_id, RecordPayment(amount=Decimal("10"),
                                                                  reference="P6")))
        await signal_all(handle, [("record_payment", [{"amount": "10", "reference": "P7"}]),
                                   ("accept", [{}])])
        await _rejected(handle, ContractStatus, 15)
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


# The histories this journey's recorders write, by file name (the workflow id).
# The C recordings: the same journeys started since cost-per-journey (one
# patch marker for the changes before it).
RECORDINGS = {"contract-R4": record_contract_full, "contract-R7": record_contract_every_signal,
              "contract-C4": partial(record_contract_full, contract_id="C4"),
              "contract-C7": partial(record_contract_every_signal, contract_id="C7")}
