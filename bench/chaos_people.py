"""The journeys of `bench.chaos` and the people who play them.

`Play` is one journey, what the people did to it and what should come of it;
`People` plays everyone's part, one coroutine per journey (a rep, a customer,
an agent, an advisor, a buyer, and now and then a service sending a malformed
signal); `make_plays` lays out the N journeys, the five kinds in turn; `seed`
puts the staff and customers they need into the store. The policies here scale
every duration down so a journey's whole life fits in a few minutes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.store import Store
from activities.store.customers import CustomerRecord, add_customer
from activities.store.staff import StaffMember, add_staff
from domain.courses import CoursePolicy, CourseStatus, EndCourse, EnrollmentInput, LogCallback
from domain.journeys import Decision
from domain.leads import Claim, Convert, LeadInput, LeadStatus, LogContact
from domain.lifecycle import LifecycleInput, LifecyclePolicy, Purchase
from domain.payments import Accept, ContractInput, RecordPayment
from domain.policy import LeadPolicy
from domain.settings import TASK_QUEUE
from domain.ticket_status import TicketStatus
from domain.tickets import Rate, Resolve, Respond, TicketInput, TicketPolicy

KINDS = ("lead", "payment", "ticket", "course", "lifecycle")
RPC = timedelta(seconds=15)
UPDATE_RPC = timedelta(seconds=50)
T = TypeVar("T")

# Durations scaled so that a journey's whole life fits in a few minutes. Each
# start input carries its policy, so the workers need no settings for it.
LEAD_POLICY = LeadPolicy(first_touch=timedelta(seconds=60), reminder_before=timedelta(seconds=20),
                         max_reassignments=1, follow_up_interval=timedelta(seconds=20),
                         max_missed_follow_ups=2)
TICKET_POLICY = TicketPolicy(
    first_response=timedelta(seconds=40), warning_before=timedelta(seconds=10),
    manager_after=timedelta(seconds=20),
    resolution_targets={p: timedelta(seconds=120) for p in ("urgent", "high", "normal", "low")},
    survey_after=timedelta(seconds=20), close_after_survey=timedelta(seconds=15),
    linger_after_close=timedelta(seconds=10))
COURSE_POLICY = CoursePolicy(callback_after=timedelta(seconds=15),
                             callback_window=timedelta(seconds=30))
LIFECYCLE_POLICY = LifecyclePolicy(dormant_after=timedelta(seconds=40),
                                   second_touch_after=timedelta(seconds=15),
                                   lost_after=timedelta(seconds=20),
                                   coupon_valid_for=timedelta(seconds=60))
MALFORMED_SHAPES = ("wrong fields", "not an object", "no payload", "two payloads")
CONTRACT_AMOUNT = Decimal("10000.00")
PAYMENTS = (Decimal("3000.00"), Decimal("7000.00"))


@dataclass
class Play:
    """A journey, what the people did to it and what should come of it."""

    kind: str
    workflow_id: str
    entity_id: str
    customer_id: str | None = None
    ends: bool = True  # lifecycle journeys run for the customer's life
    expected_stage: str | None = None
    actions: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # actions the journey or Temporal refused
    malformed_sent: int = 0
    malformed_shapes: list[str] = field(default_factory=list)
    told_twice: bool = False  # a payment signalled again with the same reference
    paid: list[tuple[str, Decimal]] = field(default_factory=list)  # (reference, amount)
    paid_unanswered: list[tuple[str, Decimal]] = field(default_factory=list)
    orders: int = 0
    done: bool = False
    error: str | None = None


@dataclass
class People:
    """Plays everyone's part: one coroutine per journey, RPCs bounded in number."""

    client: Client
    rng: random.Random
    run: str
    malformed: float
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(100))

    async def rpc(self, what: str, call: Callable[[], Awaitable[T]], attempts: int = 6) -> T:
        """An RPC retried, as a person tries again, while the worker it needs is
        being killed or the store is down (a journey answers an update only once
        the store has recorded it): about five minutes in all. Updates carry an
        id, so a retried one is the same update to the server, not a second one."""
        last: BaseException | None = None
        for attempt in range(attempts):
            try:
                async with self.gate, asyncio.timeout(60):
                    return await call()
            except WorkflowUpdateFailedError:
                raise
            except (RPCError, TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
                last = exc
                await asyncio.sleep(2 + 3 * attempt)
        raise RuntimeError(f"{what}: no answer after {attempts} attempts: {last!r}")

    def handle(self, play: Play) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(play.workflow_id)

    async def pause(self, low: float, high: float) -> None:
        await asyncio.sleep(self.rng.uniform(low, high))

    async def update(self, play: Play, name: str, arg: Any, key: str) -> Decision | None:
        play.actions.append(name)
        try:
            return await self.rpc(name, lambda: self.handle(play).execute_update(
                name, arg, id=f"{play.workflow_id}:{key}", result_type=Decision,
                rpc_timeout=UPDATE_RPC))
        except WorkflowUpdateFailedError as exc:
            play.refused.append(f"{name}: {exc.cause}")
            return None

    async def signal(self, play: Play, name: str, arg: Any) -> None:
        play.actions.append(name)
        await self.rpc(name, lambda: self.handle(play).signal(name, arg, rpc_timeout=RPC))

    async def status(self, play: Play, result_type: type[T]) -> T:
        return await self.rpc("status", lambda: self.handle(play).query(
            "status", result_type=result_type, rpc_timeout=RPC))

    async def until(self, play: Play, result_type: type[T], ready: Callable[[T], bool],
                    give_up: float = 240.0) -> T:
        """Polls the journey's status as a person glances at the CRM now and then."""
        deadline = time.monotonic() + give_up
        while True:
            status = await self.status(play, result_type)
            if ready(status) or time.monotonic() > deadline:
                return status
            await self.pause(2, 4)

    async def maybe_malformed(self, play: Play, name: str, payload: dict[str, Any]) -> None:
        """A service that sends a broken signal: fields of the wrong type, a JSON
        value that is not an object, no payload at all, or two payloads. The
        journey must reject it, record the rejection, and go on."""
        if self.rng.random() >= self.malformed:
            return
        shape = self.rng.choice(MALFORMED_SHAPES)
        args: list[Any] = {"wrong fields": [payload], "not an object": [["not", "an object"]],
                           "no payload": [], "two payloads": [payload, payload]}[shape]
        play.malformed_sent += 1
        play.malformed_shapes.append(shape)
        play.actions.append(f"{name} (malformed: {shape})")
        await self.rpc(name, lambda: self.handle(play).signal(name, args=args, rpc_timeout=RPC))

    async def start(self, play: Play, workflow: str, arg: Any) -> None:
        try:
            await self.rpc("start", lambda: self.client.start_workflow(
                workflow, arg, id=play.workflow_id, task_queue=TASK_QUEUE,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                task_timeout=timedelta(seconds=10), rpc_timeout=RPC))
        except WorkflowAlreadyStartedError:
            pass  # an attempt whose answer was lost did start it

    # -- the five journeys --------------------------------------------------------------

    async def lead(self, play: Play, i: int) -> None:
        """A rep contacts the lead and converts it, or contacts it once and lets it go stale."""
        stale = i % 3 == 0
        play.expected_stage = "stale" if stale else "converted"
        await self.start(play, "LeadJourney", LeadInput(
            lead_id=play.entity_id, name=f"Chaos Lead {i}",
            email=f"lead{i}.{self.run}@example.com", company=f"Chaos {self.run} {i} Ltd",
            region="east", product_line="erp", source="web_form", need="a quote",
            policy=LEAD_POLICY))
        for attempt in range(3):
            status = await self.until(play, LeadStatus,
                                      lambda s: s.owner_id is not None or s.stage == "pooled")
            owner = status.owner_id
            if status.stage == "pooled":
                owner = "rep-01"
                await self.update(play, "claim_now", Claim(owner_id=owner), f"claim-{attempt}")
            if owner is None:
                continue
            await self.maybe_malformed(play, "log_contact", {"owner_id": ["x"], "channel": 5})
            decision = await self.update(play, "log_contact_now",
                                         LogContact(owner_id=owner, channel="phone"),
                                         f"contact-{attempt}")
            if decision is not None and decision.accepted:
                break
            if decision is not None:  # refused refusals are already listed by `update`
                play.refused.append(f"log_contact_now: {decision.reason}")
        if stale:
            return
        await self.pause(3, 20)
        await self.signal(play, "convert", Convert(amount=Decimal("12000")))

    async def payment(self, play: Play, i: int) -> None:
        """Signed, accepted, paid 30% then 70%; now and then the bank tells the
        first payment twice (same reference), which must change nothing."""
        play.expected_stage = "paid"
        await self.start(play, "PaymentJourney", ContractInput(
            contract_id=play.entity_id, customer_id=play.customer_id or "",
            owner_id=f"rep-{i % 4 + 1:02d}", amount=CONTRACT_AMOUNT,
            signed_at=datetime.now(UTC) - timedelta(minutes=1)))
        await self.pause(2, 10)
        await self.signal(play, "accept", Accept())
        for n, amount in enumerate(PAYMENTS, start=1):
            await self.pause(3, 15)
            reference = f"{play.entity_id}-P{n}"
            try:
                decision = await self.update(play, "record_payment_now",
                                             RecordPayment(amount=amount, reference=reference),
                                             f"pay-{n}")
            except RuntimeError:
                play.paid_unanswered.append((reference, amount))  # taken or not: unknown
                raise
            if decision is not None and decision.accepted:
                play.paid.append((reference, amount))
            if n == 1:
                await self.maybe_malformed(play, "record_payment",
                                           {"amount": "lots", "reference": 7})
                if i % 3 == 1:
                    await self.pause(1, 5)
                    await self.signal(play, "record_payment",
                                      RecordPayment(amount=amount, reference=reference))
                    play.told_twice = True

    async def ticket(self, play: Play, i: int) -> None:
        """An agent responds (some after the first-response deadline, so the
        ticket escalates), resolves, and the customer rates it 4-5, or never
        rates and the survey closes it."""
        play.expected_stage = "closed"
        await self.start(play, "TicketJourney", TicketInput(
            ticket_id=play.entity_id, customer_id=play.customer_id or "",
            type="technical", subject=f"Chaos ticket {i}", policy=TICKET_POLICY))
        await self.pause(3, 55)
        status = await self.until(play, TicketStatus, lambda s: s.assignee_id is not None)
        agent = status.assignee_id or "agent-01"
        await self.maybe_malformed(play, "rate", {"score": "five"})
        await self.update(play, "respond_now", Respond(agent_id=agent), "respond")
        await self.pause(3, 15)
        await self.update(play, "resolve_now", Resolve(agent_id=agent, resolution="fixed"),
                          "resolve")
        if i % 5 < 3:
            await self.pause(2, 10)
            await self.update(play, "rate_now", Rate(score=4 + i % 2), "rate")

    async def course(self, play: Play, i: int) -> None:
        """The course ends (some are told it ended early), the callback falls
        due, the advisor logs it."""
        play.expected_stage = "completed"
        await self.start(play, "CourseJourney", EnrollmentInput(
            enrollment_id=play.entity_id, customer_id=play.customer_id or "",
            course_id="CRS-CHAOS", advisor_id=f"adv-{i % 3 + 1:02d}",
            ends_at=datetime.now(UTC) + timedelta(seconds=self.rng.uniform(10, 30)),
            policy=COURSE_POLICY))
        if i % 3 == 0:
            await self.pause(2, 6)
            await self.signal(play, "end_course", EndCourse(ended_at=datetime.now(UTC)))
        await self.maybe_malformed(play, "log_callback", {"advisor_id": 7, "outcome": None})
        outcome = ("renewal_intent", "no_interest", "unreachable")[i % 3]
        for attempt in range(3):
            # The advisor calls once the CRM shows the callback due, and tries
            # again if the journey says it is not due yet.
            status = await self.until(play, CourseStatus,
                                      lambda s: s.stage in ("awaiting_callback", "escalated"))
            decision = await self.update(
                play, "log_callback_now",
                LogCallback(advisor_id=status.advisor_id, outcome=outcome), f"callback-{attempt}")
            if decision is not None:
                return
            await self.pause(3, 6)

    async def lifecycle(self, play: Play, i: int) -> None:
        """One to four purchases, some far enough apart for the win-back to begin."""
        play.ends = False
        purchases = 1 + i % 4
        for n in range(1, purchases + 1):
            order = Purchase(order_id=f"{play.entity_id}-O{n}", amount=Decimal(80 + 40 * n),
                             category="books")
            play.actions.append("purchase")
            await self.rpc("purchase", lambda order=order: self.client.start_workflow(
                "CustomerLifecycle",
                LifecycleInput(customer_id=play.entity_id, policy=LIFECYCLE_POLICY),
                id=play.workflow_id, task_queue=TASK_QUEUE, start_signal="purchase",
                start_signal_args=[order], rpc_timeout=RPC))
            play.orders += 1
            if n == 1:
                await self.maybe_malformed(play, "purchase", {"order_id": "x", "amount": "abc"})
            await self.pause(3, 50)

    async def play(self, play: Play, i: int, start_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        script = getattr(self, play.kind)
        try:
            await script(play, i)
        except Exception as exc:  # noqa: BLE001 - reported with the journey
            play.error = f"{type(exc).__name__}: {exc}"
        play.done = True


def make_plays(n: int, run: str) -> list[Play]:
    plays = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        entity = f"X{run}-{i:05d}"
        prefix = {"lead": "lead", "payment": "contract", "ticket": "ticket",
                  "course": "enrollment", "lifecycle": "customer"}[kind]
        customer = entity if kind == "lifecycle" else f"cust-{run}-{i:05d}"
        plays.append(Play(kind=kind, workflow_id=f"{prefix}-{entity}", entity_id=entity,
                          customer_id=customer))
    return plays


# -- seeding the store ------------------------------------------------------------------


def seed(store: Store, plays: list[Play]) -> None:
    """Staff for every journey (all reachable on chat, so their notices go to
    the webhook sink) and a customer with an e-mail address for each journey."""
    now = datetime.now(UTC)

    def staff(**fields: Any) -> None:
        add_staff(store, StaffMember(chat=fields["id"], capacity=100_000, **fields), now=now)

    staff(id="mgr-01", name="Manager", role="manager", regions=["east"])
    staff(id="sup-01", name="Supervisor", role="supervisor", group="technical",
          manager_id="mgr-01")
    staff(id="fin-01", name="Finance", role="finance")
    for k in range(1, 5):
        staff(id=f"rep-{k:02d}", name=f"Rep {k}", role="rep", regions=["east"],
              product_lines=["erp"], manager_id="mgr-01")
    for k in range(1, 5):
        staff(id=f"agent-{k:02d}", name=f"Agent {k}", role="agent", group="technical",
              seniority=3, manager_id="sup-01")
    for k in range(1, 4):
        staff(id=f"adv-{k:02d}", name=f"Advisor {k}", role="advisor", group="advisors",
              manager_id="mgr-01")
    for play in plays:
        if play.kind != "lead" and play.customer_id:
            add_customer(store, CustomerRecord(
                id=play.customer_id, name=f"Customer {play.entity_id}",
                email=f"{play.customer_id.lower()}@example.com"), now=now)

