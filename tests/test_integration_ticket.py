"""One ticket on the real Temporal dev server, delivering for real through
apprise to a local SMTP server and a local webhook receiver: assignment,
warning, escalation to the supervisor (listed by its search attributes),
the answer, the resolution notice with its rating request, a good rating."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.tickets import TicketInput, TicketPolicy, TicketStage
from tests.harness import eventually, running_worker, seed_staff
from tests.sinks import SmtpSink, WebhookSink
from tests.test_integration_lead import sink_settings, sinks, visible  # noqa: F401 - fixture

pytestmark = pytest.mark.devserver

SECOND = timedelta(seconds=1)


async def test_ticket_escalated_answered_resolved_and_rated_with_real_delivery(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path,
    sinks: tuple[SmtpSink, WebhookSink],  # noqa: F811
) -> None:
    smtp, webhook = sinks
    seed_staff(sqlite_store)
    ticket_id = f"IT-{tmp_path.name[-6:]}"
    policy = TicketPolicy(first_response=3 * SECOND, warning_before=SECOND,
                          manager_after=30 * SECOND, linger_after_close=SECOND)
    async with running_worker(dev_env.client, sqlite_store,
                              sink_settings(tmp_path, smtp, webhook)) as h:
        handle = await h.journeys.open_ticket(TicketInput(
            ticket_id=ticket_id, customer_id="cust-1", type="technical", priority="normal",
            subject="VPN drops every hour", channel="email", policy=policy))

        for _ in range(300):
            status = await h.journeys.ticket_status(ticket_id)
            if status.stage is TicketStage.escalated_supervisor:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the ticket was never escalated")
        [escalation] = h.rows(schema.Escalation, entity_id=ticket_id)
        assert escalation.to_staff_id == "sup-technical"
        # on the dev server too, not before the deadline and within a second of it
        assert timedelta(0) <= escalation.at - status.first_response_due < SECOND
        query = "CrmJourney='ticket' AND CrmStage='escalated_supervisor' AND CrmOwnerId='tech-2'"
        for _ in range(100):
            if await visible(dev_env, query, handle.id):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"ticket not listed by {query!r}")

        assert (await h.journeys.respond(ticket_id, "tech-2")).accepted
        answer = await h.journeys.resolve(ticket_id, "tech-2", "Renewed the VPN certificate")
        assert answer.accepted
        assert (await h.journeys.rate(ticket_id, 5, "thanks")).accepted
        result = await handle.result()
        assert result.stage is TicketStage.closed and result.rating == 5
        assert [b.sla for b in result.breaches] == ["first_response"]

        expected = {"ticket_assigned", "first_response_warning", "first_response_escalated",
                    "resolution_notice"}
        touches = await eventually(
            lambda: (t := h.touches(workflow_id=handle.id))
            and {x.step for x in t} == expected and all(x.status == "sent" for x in t) and t,
            timeout=30, what="every touch sent")

    keys = {t.key for t in touches}
    mails = Counter(m.key for m in smtp.mails if m.key in keys)
    hooks = Counter(hk.key for hk in webhook.hooks if hk.key in keys)
    assert set(mails.values()) == {1} and set(hooks.values()) == {1}
    assert len(mails) + len(hooks) == len(expected)
    [notice] = [m for m in smtp.mails if m.key in keys]
    assert notice.to == ["zhou.jie@example.com"]
    assert "Renewed the VPN certificate" in notice.body and "rate?score=5" in notice.body
    assert Counter(hk.path for hk in webhook.hooks if hk.key in keys) == {
        "/chat/tech-2": 2, "/chat/sup-technical": 1}
