"""Recordings of the ticket journey: a full run (ticket-R3), every signal
(ticket-R9) and transfers across teams (ticket-R10).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from functools import partial
from pathlib import Path

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from domain import schema
from domain.policy import MessagingPolicy
from domain.ticket_status import TicketStatus
from domain.tickets import (
    CustomerReplied,
    Rate,
    TicketInput,
    TicketPolicy,
    TicketReassigned,
    TicketReassignment,
    TicketStage,
    Transfer,
    WaitOnCustomer,
)
from starter.client import Journeys
from tests.harness import (
    eventually,
    local_window_around,
    make_settings,
    refused,
    running_worker,
    seed_staff,
)
from tests.recorders.common import (
    ZONE,
    _malformed,
    _rejected,
    _touches,
    _when,
    _worker,
    activity_name,
    fresh,
    signal_all,
)
from worker import build_activities


async def record_ticket_full(env: WorkflowEnvironment, workdir: Path,
                             ticket_id: str = "R3") -> str:
    """A complaint raised to high and routed to a senior agent, the warning, the
    supervisor escalation, a late answer, a pause, a rejected rating, the
    resolution, a low rating that reopens and escalates, a second resolution,
    the survey on day 7, the auto-close 3 days later."""
    url = f"sqlite:///{workdir / 'crm-ticket.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        handle = await h.journeys.open_ticket(TicketInput(
            ticket_id=ticket_id, customer_id="cust-1", type="technical", priority="normal",
            subject="打印机三天没修好，我要投诉", channel="email"))
        await env.sleep(timedelta(minutes=16))
        await eventually(lambda: h.rows(schema.Escalation, entity_id=ticket_id))
        assert (await h.journeys.respond(ticket_id, "tech-2")).accepted
        await handle.signal("wait_on_customer", WaitOnCustomer())
        await handle.signal("rate", Rate(score=9))
        await env.sleep(timedelta(hours=1))
        await handle.signal("customer_replied", CustomerReplied())
        assert (await h.journeys.resolve(ticket_id, "tech-2", "更换了定影器")).accepted
        assert (await h.journeys.rate(ticket_id, 2, "还是卡纸")).accepted
        await eventually(lambda: len(h.rows(schema.Escalation, entity_id=ticket_id)) == 2)
        assert (await h.journeys.resolve(ticket_id, "tech-2", "更换了进纸轮")).accepted
        await env.sleep(timedelta(days=7, minutes=1))
        await eventually(lambda: h.touches(step="satisfaction_survey", status="sent"))
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_ticket_every_signal(env: WorkflowEnvironment, workdir: Path,
                                     ticket_id: str = "R9") -> str:
    """Every ticket signal refused in every shape; the assignee deactivated
    while the store is down, an answer received before the first-response
    deadline and handled after it (taken first: no escalation); a pause and a
    reply, a resolution by update, a reopen, a second resolution, the rating
    while the survey waits out quiet hours, a late signal while the closed
    ticket lingers, then an update and a signal refused while the survey waits."""
    store, settings = fresh(workdir, "crm-ticket-every.db")
    task_queue = "record-ticket-r9"
    # A closed ticket lingers a short while here, so that the survey (held by
    # quiet hours around the seventh day after the resolution, about 80
    # minutes from now) still waits when the linger is over.
    policy = TicketPolicy(linger_after_close=timedelta(minutes=30))
    now = await env.get_current_time()
    quiet = MessagingPolicy(quiet_hours=local_window_around(
        now + policy.survey_after + timedelta(minutes=80), ZONE, before_min=60, after_min=180))
    outage = threading.Event()
    stand_in = build_activities(settings, store, env.client, task_queue)
    reassign = next(fn for fn in stand_in if activity_name(fn) == "reassign_ticket")

    @activity.defn(name="reassign_ticket")
    def reassign_ticket(request: TicketReassignment) -> TicketReassigned:
        if outage.is_set():
            raise RuntimeError("the store is unavailable")
        return reassign(request)

    async with _worker(env, store, settings, task_queue, messaging_policy=quiet,
                       ticket_policy=policy, replace=(reassign_ticket,)):
        journeys = Journeys(env.client, task_queue=task_queue)
        handle = await journeys.open_ticket(TicketInput(
            ticket_id=ticket_id, customer_id="cust-1", type="technical", priority="normal",
            subject="扫描仪无法连接", channel="email"))
        status = lambda: journeys.ticket_status(ticket_id)  # noqa: E731
        opened = await _when(status, lambda s: s.stage is TicketStage.awaiting_response,
                             "opened")
        await signal_all(handle, [
            ("wait_on_customer", [{}]),                          # no first response yet
            ("customer_replied", [{}]),                          # not waiting
            ("resolve", [{"agent_id": "tech-2", "resolution": " "}]),  # no resolution
            ("reopen", [{"reason": "x"}]),                       # not resolved
            ("rate", [{"score": 9}]),                            # out of range
            ("rate", [{"score": "five"}]),                       # malformed
            ("respond", [{"agent_id": ""}]),                     # nobody
            *_malformed("respond", not_an_object="on it"),
        ])
        await _rejected(handle, TicketStatus, 13)
        # The store goes down while the assignee's tickets are handed on; the
        # answer arrives a minute later, and the store is back only after the
        # first-response deadline.
        outage.set()
        await handle.signal("staff_deactivated", args=[{"staff_id": opened.assignee_id}])
        await env.sleep(timedelta(minutes=1))
        await handle.signal("respond", args=[{"agent_id": "tech-3", "note": "rebooted"}])
        await env.sleep(timedelta(minutes=16))
        outage.clear()
        await env.sleep(timedelta(minutes=2))
        answered = await _when(status, lambda s: s.first_response_at is not None, "answered")
        assert answered.first_response_at < opened.first_response_due
        assert not answered.escalations, answered.escalations
        await signal_all(handle, [
            ("wait_on_customer", [{}]),
            ("wait_on_customer", [{}]),                          # already waiting
        ])
        await _rejected(handle, TicketStatus, 14)
        await env.sleep(timedelta(hours=1))
        await journeys.customer_replied(ticket_id)
        assert (await journeys.resolve(ticket_id, "tech-3", "重装了驱动")).accepted
        await signal_all(handle, [
            ("respond", [{"agent_id": "tech-3"}]),               # resolved: reopen first
            ("reopen", [{"reason": " "}]),                       # no reason
            ("reopen", [{"reason": "still offline"}]),
            ("resolve", [{"agent_id": "tech-3", "resolution": "换了网卡"}]),
        ])
        resolved = await _when(status, lambda s: s.stage is TicketStage.resolved
                               and s.reopens == 1, "resolved again")
        assert resolved.survey_due is not None
        await env.sleep(resolved.survey_due - await env.get_current_time()
                        + timedelta(minutes=1))
        await eventually(lambda: _touches(store, "satisfaction_survey", "deferred"))
        assert (await journeys.rate(ticket_id, 5, "好了")).accepted
        await handle.signal("reopen", args=[{"reason": "again"}])  # closed: lingering
        closed = await _rejected(handle, TicketStatus, 17)
        assert closed.closed_at is not None
        await env.sleep(closed.closed_at + policy.linger_after_close
                        - await env.get_current_time() + timedelta(minutes=1))
        # The survey still waits: the journey answers until it completes.
        await refused(journeys.respond(ticket_id, "tech-3"))
        await handle.signal("rate", args=[{"score": 1}])
        await _rejected(handle, TicketStatus, 18)
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_ticket_transfer(env: WorkflowEnvironment, workdir: Path) -> str:
    """A ticket handed across teams: refused transfers in every shape, then
    technical → after-sales → technical → after-sales (the supervisor alerted
    at the third), the SLA escalation on its original clock, the resolution,
    a rating, closed."""
    store, settings = fresh(workdir, "crm-ticket-transfer.db")
    task_queue = "record-ticket-r10"
    journeys = Journeys(env.client, task_queue=task_queue)
    status = lambda: journeys.ticket_status("R10")  # noqa: E731
    async with _worker(env, store, settings, task_queue):
        handle = await journeys.open_ticket(TicketInput(
            ticket_id="R10", customer_id="cust-1", type="technical", priority="normal",
            subject="Invoice shows the wrong model", channel="web"))
        await _when(status, lambda s: s.stage is TicketStage.awaiting_response, "opened")
        await signal_all(handle, [
            ("transfer", [{"to_group": "legal", "reason": "r", "by": "tech-1"}]),
            ("transfer", [{"to_group": "technical", "reason": "r", "by": "tech-1"}]),
            ("transfer", [{"to_group": "after_sales", "reason": "", "by": "tech-1"}]),
            ("transfer", [{"to_group": "after_sales", "reason": "billing"}]),
            *_malformed("transfer", not_an_object="after_sales"),
        ])
        await _rejected(handle, TicketStatus, 10)
        for group in ("after_sales", "technical", "after_sales"):
            await handle.signal("transfer", Transfer(to_group=group, reason="billing or device?",
                                                     by="tech-1"))
        await _when(status, lambda s: s.transfers == 3, "transferred three times")
        await env.sleep(timedelta(minutes=16))
        await _when(status, lambda s: s.stage is TicketStage.escalated_supervisor, "escalated")
        assert (await journeys.respond("R10", "as-1")).accepted
        assert (await journeys.resolve("R10", "as-1", "invoice reissued")).accepted
        assert (await journeys.rate("R10", 5)).accepted
        await env.sleep(timedelta(days=1, minutes=1))
        done = await handle.result()
        assert done.stage is TicketStage.closed
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


# The histories this journey's recorders write, by file name (the workflow id).
# The C recordings: the same journeys started since cost-per-journey (one
# patch marker for the changes before it).
RECORDINGS = {"ticket-R3": record_ticket_full, "ticket-R9": record_ticket_every_signal,
              "ticket-R10": record_ticket_transfer,
              "ticket-C3": partial(record_ticket_full, ticket_id="C3"),
              "ticket-C9": partial(record_ticket_every_signal, ticket_id="C9"),
              # since folded-store-calls: a rating that closes closes in its activity
              "ticket-F3": partial(record_ticket_full, ticket_id="F3"),
              "ticket-F9": partial(record_ticket_every_signal, ticket_id="F9")}
