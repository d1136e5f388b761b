"""History events per happy-path journey, by event type: what a Temporal Cloud
customer pays for (actions) and what the server spends its CPU on.

    python -m bench.events [--policy-from-worker]

Runs one happy path of each of the lead, ticket, payment and course journeys on
a local Temporal dev server, with the real worker (SQLite store in a temporary
directory, delivery to the outbox), and prints the count of each event type in
each journey's history. It asserts nothing; the exit status is 1 when a
journey did not end as its happy path does. The ticket's linger after closing
and the course's 72 hours to the callback are cut to seconds (a policy the
ticket and the course carry, or the worker's with `--policy-from-worker`):
the same events, in real time.

- lead: intake, assignment, welcome, the owner's first contact, conversion;
- ticket: opened and assigned, responded, resolved, rated 5, closed;
- payment: signed (one milestone of 100 %, due on signing), paid in full;
- course: enrolled, ended, the advisor's callback (renewal intent), completed.

By default the journeys are started as the command line starts them (each
with its policy in the start input, from the settings); `--policy-from-worker`
starts them without one, so that each loads its policy by an activity, as
journeys started by older clients do.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from bench.lead_infra import temporal_binary
from bench.quiet import stdout_to_devnull
from domain.courses import CoursePolicy, CourseStage, EnrollmentInput, LogCallback
from domain.leads import Convert, LeadInput, LeadStage, LogContact
from domain.payments import ContractInput, ContractStage, MilestoneRule, RecordPayment
from domain.tickets import TicketInput, TicketPolicy, TicketStage
from starter.client import Journeys, data_converter
from tests.harness import make_settings, running_worker, seed_staff
from workflows.kit import SEARCH_ATTRIBUTES

POLL_S = 0.05
TICKET_POLICY = TicketPolicy(linger_after_close=timedelta(seconds=1))
COURSE_POLICY = CoursePolicy(callback_after=timedelta(seconds=2))


async def until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    for _ in range(600):
        if found := await check():
            return found
        await asyncio.sleep(POLL_S)
    raise RuntimeError(f"{what} never happened")


async def lead(journeys: Journeys) -> tuple[WorkflowHandle, bool]:
    handle = await journeys.start_lead(LeadInput(
        lead_id="EV1", name="Bench Lead", phone="+8613900000001", email="lead@example.com",
        company="Bench Co., Ltd.", region="east", product_line="erp", source="web_form",
        need="wants a quote"))
    owner = await until(lambda: _owner(journeys), "assignment")
    assert (await journeys.log_contact("EV1", LogContact(owner_id=owner, channel="phone"))).accepted
    await journeys.convert_lead("EV1", Convert(amount=Decimal("12000")))
    return handle, (await handle.result()).stage is LeadStage.converted


async def _owner(journeys: Journeys) -> str | None:
    return (await journeys.lead_status("EV1")).owner_id


async def ticket(journeys: Journeys, policy: TicketPolicy | None
                 ) -> tuple[WorkflowHandle, bool]:
    handle = await journeys.open_ticket(TicketInput(
        ticket_id="EV2", customer_id="cust-1", type="technical", priority="normal",
        subject="VPN drops every hour", channel="email", policy=policy))

    async def assignee() -> str | None:
        return (await journeys.ticket_status("EV2")).assignee_id

    agent = await until(assignee, "assignment")
    assert (await journeys.respond("EV2", agent)).accepted
    assert (await journeys.resolve("EV2", agent, "Renewed the VPN certificate")).accepted
    assert (await journeys.rate("EV2", 5, "thanks")).accepted
    return handle, (await handle.result()).stage is TicketStage.closed


async def payment(journeys: Journeys) -> tuple[WorkflowHandle, bool]:
    handle = await journeys.sign_contract(ContractInput(
        contract_id="EV3", customer_id="cust-1", owner_id="rep-a", amount=Decimal("5000.00"),
        signed_at=datetime.now(UTC), milestones=[MilestoneRule(percent=Decimal(100),
                                                               due_days=0)]))
    answer = await journeys.record_payment(
        "EV3", RecordPayment(amount=Decimal("5000.00"), reference="BANK-1"))
    assert answer.accepted, answer.reason
    return handle, (await handle.result()).stage is ContractStage.paid


async def course(journeys: Journeys, policy: CoursePolicy | None
                 ) -> tuple[WorkflowHandle, bool]:
    handle = await journeys.enroll(EnrollmentInput(
        enrollment_id="EV4", customer_id="cust-1", course_id="PY-101", advisor_id="adv-1",
        ends_at=datetime.now(UTC) + timedelta(seconds=1), policy=policy))

    async def due() -> bool:
        return (await journeys.course_status("EV4")).stage is CourseStage.awaiting_callback

    await until(due, "callback due")
    answer = await journeys.log_callback(
        "EV4", LogCallback(advisor_id="adv-1", outcome="renewal_intent"))
    assert answer.accepted, answer.reason
    return handle, (await handle.result()).stage is CourseStage.completed


def event_types(history: Any) -> Counter[str]:
    return Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
                   for e in history.events)


async def main(args: argparse.Namespace) -> int:
    with stdout_to_devnull():  # the server's banner
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(), search_attributes=SEARCH_ATTRIBUTES,
            data_converter=data_converter(), dev_server_log_level="error")
    in_input = not args.policy_from_worker
    counts: dict[str, Counter[str]] = {}
    failed: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="crm-events-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'crm.db'}"
            migrate(url)
            store = Store.from_url(url)
            seed_staff(store)
            settings = make_settings(Path(tmp))
            async with running_worker(env.client, store, settings, ticket_policy=TICKET_POLICY,
                                      course_policy=COURSE_POLICY) as h:
                journeys = Journeys(env.client, task_queue=h.task_queue,
                                    settings=settings if in_input else None)
                runs: dict[str, Callable[[], Awaitable[tuple[WorkflowHandle, bool]]]] = {
                    "lead": lambda: lead(journeys),
                    "ticket": lambda: ticket(journeys, TICKET_POLICY if in_input else None),
                    "payment": lambda: payment(journeys),
                    "course": lambda: course(journeys, COURSE_POLICY if in_input else None),
                }
                for name, run in runs.items():
                    handle, ok = await run()
                    if not ok:
                        failed.append(name)
                    history = await handle.fetch_history()
                    counts[name] = event_types(history)
                    if name in args.sequence:
                        print_sequence(name, history)
            store.dispose()
    finally:
        await env.shutdown()
    print_counts(counts)
    for name in failed:
        print(f"{name}: did not end as its happy path does")
    return 1 if failed else 0


def print_sequence(name: str, history: Any) -> None:
    """A journey's events in order, one workflow task's commands to a line."""
    print(f"{name}:")
    line: list[str] = []
    for e in history.events:
        kind = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
        a = e.activity_task_scheduled_event_attributes
        what = {"ACTIVITY_TASK_SCHEDULED": a.activity_type.name,
                "MARKER_RECORDED": e.marker_recorded_event_attributes.marker_name,
                "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES": "+".join(sorted(
                    e.upsert_workflow_search_attributes_event_attributes
                    .search_attributes.indexed_fields)),
                }.get(kind)
        line.append(f"{kind}({what})" if what else kind)
        if kind in ("WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_COMPLETED"):
            continue
        if kind == "WORKFLOW_TASK_STARTED":
            print("  " + " ".join(line))
            line = []
    print("  " + " ".join(line))


def print_counts(counts: dict[str, Counter[str]]) -> None:
    names = list(counts)
    types = sorted({t for c in counts.values() for t in c},
                   key=lambda t: (-sum(c[t] for c in counts.values()), t))
    print(f"{'event type':<44}" + "".join(f"{n:>9}" for n in names))
    for t in types:
        print(f"{t:<44}" + "".join(f"{counts[n][t]:>9}" for n in names))
    print(f"{'total':<44}" + "".join(f"{sum(counts[n].values()):>9}" for n in names))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.events",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--policy-from-worker", action="store_true",
                        help="start the journeys without a policy in the input")
    parser.add_argument("--sequence", action="append", default=[], metavar="JOURNEY",
                        help="print that journey's events in order (lead, ticket, ...)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
