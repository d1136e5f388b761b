"""Recordings of the lead journey: a full run (lead-R1) and every signal,
valid and not (lead-R5).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from domain.leads import Convert, LeadInput, LeadStage, LeadStatus, LogContact
from domain.policy import MessagingPolicy
from starter.client import Journeys
from tests.harness import (
    eventually,
    local_window_around,
    make_settings,
    refused,
    running_worker,
    seed_staff,
)
from tests.recorders.common import ZONE, _malformed, _rejected, _when, _worker, fresh, signal_all


async def record_lead_full(env: WorkflowEnvironment, workdir: Path,
                           lead_id: str = "R1") -> str:
    """Assignment, reminder, escalation and reassignment, a contact, two missed
    follow-ups with reminders, a second contact, a rejected signal, conversion."""
    url = f"sqlite:///{workdir / 'crm.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        handle = await h.journeys.start_lead(LeadInput(
            lead_id=lead_id, name="王芳", phone="+8613700137000", email="wang.fang@example.com",
            company="星辰科技有限公司", region="east", product_line="erp", source="trade_show",
            need="需要ERP系统支持三个工厂的生产排程",
        ))
        await env.sleep(timedelta(hours=24, minutes=1))
        await eventually(lambda: h.rows_escalated(lead_id))
        answer = await h.journeys.log_contact(lead_id, LogContact(owner_id="rep-b",
                                                                  channel="phone"))
        assert answer.accepted
        await handle.signal("log_contact", LogContact(owner_id="rep-c", channel="phone"))
        await env.sleep(timedelta(days=6, minutes=2))
        answer = await h.journeys.log_contact(lead_id, LogContact(owner_id="rep-b",
                                                                  channel="visit",
                                                                  note="demo done"))
        assert answer.accepted
        await handle.signal("convert", Convert(opportunity_name="三工厂ERP",
                                               amount=Decimal("560000")))
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_lead_every_signal(env: WorkflowEnvironment, workdir: Path,
                                   lead_id: str = "R5") -> str:
    """A lead nobody covers: pooled, every signal refused in every shape, a
    claim, the owner deactivated (back to the pool), a second claim, a contact,
    a duplicate merged, conversion while the welcome waits for the morning,
    then an update and a signal refused while it waits."""
    store, settings = fresh(workdir, "crm-lead-every.db")
    task_queue = "record-lead-r5"
    now = await env.get_current_time()
    quiet = MessagingPolicy(quiet_hours=local_window_around(now, ZONE, before_min=10,
                                                            after_min=180))
    async with _worker(env, store, settings, task_queue, messaging_policy=quiet):
        journeys = Journeys(env.client, task_queue=task_queue)
        handle = await journeys.start_lead(LeadInput(
            lead_id=lead_id, name="赵敏", phone="+8613600136555", email="zhao.min@example.com",
            region="north", product_line="erp", source="referral", timezone=ZONE))
        status = lambda: journeys.lead_status(lead_id)  # noqa: E731
        await _when(status, lambda s: s.stage is LeadStage.pooled, "pooled")
        await signal_all(handle, [
            ("log_contact", [{"owner_id": "rep-a", "channel": "phone"}]),  # nobody owns it
            ("claim", [{}]),                                               # no owner_id
            ("log_contact", [{"owner_id": 42, "channel": "phone"}]),       # malformed
            ("discard", [{"reason": " "}]),                                # no reason
            ("merge", [{"lead_id": ""}]),                                  # no lead id
            ("convert", [{"amount": "-5"}]),                               # negative
            *_malformed("discard", not_an_object="no budget"),
        ])
        await _rejected(handle, LeadStatus, 12)
        assert (await journeys.claim_lead(lead_id, "rep-a")).accepted
        await refused(journeys.log_contact(lead_id, LogContact(owner_id="rep-c", channel="phone")))
        await signal_all(handle, [
            ("claim", [{"owner_id": "rep-b"}]),                            # not in the pool
            ("log_contact", [{"owner_id": "rep-b", "channel": "phone"}]),  # not the owner
            ("merge", [{"lead_id": f"{lead_id}-dup"}]),
            ("staff_deactivated", [{"staff_id": "rep-a"}]),                # back to the pool
            ("claim", [{"owner_id": "rep-b"}]),
        ])
        await _when(status, lambda s: s.owner_id == "rep-b", "claimed by rep-b")
        # A value the store cannot keep (a NUL byte) is refused, not retried.
        await handle.signal("log_contact", args=[{"owner_id": "rep-b", "channel": "phone",
                                                  "note": "call\x00back"}])
        assert (await journeys.log_contact(lead_id, LogContact(owner_id="rep-b",
                                                            channel="visit"))).accepted
        await handle.signal("convert", Convert(opportunity_name="北方ERP",
                                               amount=Decimal("80000")))
        await _when(status, lambda s: s.stage is LeadStage.converted, "converted")
        # The welcome still waits: the journey answers until it completes.
        await refused(journeys.log_contact(lead_id, LogContact(owner_id="rep-b", channel="phone")))
        await handle.signal("discard", args=[{"reason": "too late"}])
        await _rejected(handle, LeadStatus, 17)
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


# The histories this journey's recorders write, by file name (the workflow id).
# The C recordings: the same journeys started since cost-per-journey (one
# patch marker for the changes before it); the F recordings: since
# folded-store-calls (intake with assignment, conversion with the
# opportunity's start).
RECORDINGS = {"lead-R1": record_lead_full, "lead-R5": record_lead_every_signal,
              "lead-C1": partial(record_lead_full, lead_id="C1"),
              "lead-C5": partial(record_lead_every_signal, lead_id="C5"),
              "lead-F1": partial(record_lead_full, lead_id="F1"),
              "lead-F5": partial(record_lead_every_signal, lead_id="F5")}
