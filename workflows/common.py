"""What every journey shares: search attributes, activity options, the send helper."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from domain.leads import Decision, Rejection, RejectionRecord, StaffDeactivated
    from domain.messaging import MessageClass, Recipient, SendOutcome, SendRequest

CRM_JOURNEY = SearchAttributeKey.for_keyword("CrmJourney")
CRM_STAGE = SearchAttributeKey.for_keyword("CrmStage")
CRM_CUSTOMER_ID = SearchAttributeKey.for_keyword("CrmCustomerId")
CRM_OWNER_ID = SearchAttributeKey.for_keyword("CrmOwnerId")
CRM_TIER = SearchAttributeKey.for_keyword("CrmTier")
CRM_SLA_DEADLINE = SearchAttributeKey.for_datetime("CrmSlaDeadline")
SEARCH_ATTRIBUTES = (CRM_JOURNEY, CRM_STAGE, CRM_CUSTOMER_ID, CRM_OWNER_ID, CRM_TIER,
                     CRM_SLA_DEADLINE)

# Store writes retry until the store is back: a journey waits rather than
# losing a fact. Business rule failures are raised non-retryable.
STORE_CALL = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1)),
}
# A channel outage is retried for about a day, then the touch is given up
# (recorded) and the journey goes on.
SEND_CALL = {
    "start_to_close_timeout": timedelta(minutes=2),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=5),
        maximum_interval=timedelta(minutes=30),
        maximum_attempts=60,
    ),
}

T = TypeVar("T", bound=BaseModel)


async def call(activity: str, arg: Any = None, result_type: type[T] | None = None) -> Any:
    """Runs a store activity by name (workflows never import activity code)."""
    args = [] if arg is None else [arg]
    if result_type is None:
        return await workflow.execute_activity(activity, args=args, **STORE_CALL)
    return await workflow.execute_activity(
        activity, args=args, result_type=result_type, **STORE_CALL
    )


def decode_signal(raw: RawValue, model: type[T]) -> tuple[T | None, dict[str, Any], str | None]:
    """A signal's payload as its model, or the reason it is malformed.

    Signals arrive raw so that a malformed one is recorded as a rejection with
    its reason (the SDK would otherwise drop it with only a log line).
    """
    try:
        data = workflow.payload_converter().from_payload(raw.payload, None)
    except Exception as exc:  # noqa: BLE001 - any undecodable payload is a rejection
        return None, {}, f"payload is not JSON: {exc}"
    if not isinstance(data, dict):
        return None, {"value": repr(data)[:200]}, (
            f"expected a JSON object, got {type(data).__name__}"
        )
    try:
        return model.model_validate(data), data, None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}"
            for error in exc.errors()
        )
        return None, data, f"malformed: {problems}"


def upsert_search_attributes(values: dict[SearchAttributeKey[Any], Any]) -> None:
    updates: list[SearchAttributeUpdate[Any]] = []
    for key, value in values.items():
        if value is None:
            updates.append(key.value_unset())
        else:
            updates.append(key.value_set(value))
    workflow.upsert_search_attributes(updates)


class Messenger:
    """Sends a journey's touches through the one send path.

    Keys are `{workflow_id}:{step}:{n}`; `counters` lives in the journey's own
    state (and is carried across continue-as-new), so a recurring step is a
    new touch and a retried one is not. Each touch runs as its own task: a
    touch deferred by quiet hours sleeps durably until the time the send path
    named and asks again, while the journey goes on.
    """

    def __init__(self, *, journey: str, counters: dict[str, int]) -> None:
        self.journey = journey
        self.counters = counters
        self.pending: list[asyncio.Task[SendOutcome | None]] = []
        self.outcomes: dict[str, str] = {}

    def send(
        self,
        *,
        step: str,
        message_class: MessageClass,
        recipient: Recipient,
        template: str | None = None,
        entity_kind: str | None = None,
        entity_id: str | None = None,
        facts: dict[str, Any] | None = None,
        channel: str | None = None,
    ) -> asyncio.Task[SendOutcome | None]:
        n = self.counters.get(step, 0) + 1
        self.counters[step] = n
        request = SendRequest(
            key=f"{workflow.info().workflow_id}:{step}:{n}",
            journey=self.journey,
            step=step,
            message_class=message_class,
            recipient=recipient,
            template=template or step,
            channel=channel,
            entity_kind=entity_kind,
            entity_id=entity_id,
            facts=facts or {},
            now=workflow.now(),
        )
        task = asyncio.create_task(self._deliver(request))
        self.pending.append(task)
        return task

    async def _deliver(self, request: SendRequest) -> SendOutcome | None:
        while True:
            request = request.model_copy(update={"now": workflow.now()})
            try:
                outcome = await workflow.execute_activity(
                    "send_message", request, result_type=SendOutcome, **SEND_CALL
                )
            except ActivityError as err:
                # The touch is recorded as failed in the store; the journey goes on.
                workflow.logger.warning("touch %s not sent: %s", request.key, err.cause or err)
                self.outcomes[request.key] = "failed"
                return None
            self.outcomes[request.key] = outcome.status
            if outcome.status != "deferred" or outcome.until is None:
                return outcome
            await workflow.sleep(max(outcome.until - workflow.now(), timedelta(seconds=1)))

    async def drain(self) -> None:
        """Waits for every touch still on its way (a deferred welcome, say)."""
        while self.pending:
            batch, self.pending = self.pending, []
            await asyncio.gather(*batch)


def until(deadline: datetime | None) -> timedelta | None:
    if deadline is None:
        return None
    return max(deadline - workflow.now(), timedelta(0))


MAX_REJECTIONS_KEPT = 50


@dataclass
class Inbound:
    """A signal or update waiting for the journey to act on it, in arrival order."""

    name: str
    payload: Any
    received_at: datetime
    answer: Decision | None = None
    answered: bool = False
    raw: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


class Journey:
    """What every journey workflow shares: an inbox of signals and updates that
    the journey acts on one at a time between its timers, rejections recorded
    with their reason, occurrence counters, staff notices and a clean finish.

    Signal handlers only append to the inbox and never raise; a signal that
    arrives with signal-with-start waits there until intake is done.
    """

    journey: ClassVar[str]
    entity_kind: ClassVar[str]

    def _setup_journey(self, entity_id: str, counters: dict[str, int]) -> None:
        self.entity_id = entity_id
        self.inbox: list[Inbound] = []
        self.rejections: list[Rejection] = []
        self.counters = counters
        self.messenger = Messenger(journey=self.journey, counters=counters)

    def _receive(self, name: str, raw: RawValue, model: type[Any]) -> None:
        # Never raises: a malformed payload, like a broken rule, becomes a
        # recorded rejection when the journey reaches it in the inbox.
        payload, data, problem = decode_signal(raw, model)
        self.inbox.append(Inbound(name=name, payload=payload, received_at=workflow.now(),
                                  raw=data, problem=problem))

    async def _answer(self, name: str, payload: Any) -> Decision:
        item = Inbound(name=name, payload=payload, received_at=workflow.now())
        self.inbox.append(item)
        await workflow.wait_condition(lambda: item.answered)
        assert item.answer is not None
        return item.answer

    async def _next_inbound(self, timeout: timedelta | None  # noqa: ASYNC109 - a workflow timer
                            ) -> Inbound | None:
        """The next signal or update, or None when `timeout` passes first."""
        try:
            await workflow.wait_condition(lambda: bool(self.inbox), timeout=timeout)
        except TimeoutError:
            return None
        return self.inbox.pop(0)

    async def _act_on(
        self, item: Inbound, handlers: dict[str, Callable[[Inbound], Awaitable[Decision | None]]]
    ) -> None:
        if item.problem is not None:
            answer: Decision | None = Decision(accepted=False, reason=item.problem)
        else:
            answer = await handlers[item.name](item)
        if answer is not None and not answer.accepted:
            await self._reject(item, answer.reason or "rejected")
        item.answer = answer or Decision(accepted=True)
        item.answered = True

    async def _reject(self, item: Inbound, reason: str) -> None:
        payload = (item.payload.model_dump(mode="json") if item.payload is not None
                   else item.raw)
        rejection = Rejection(signal=item.name, reason=reason, at=workflow.now(), payload=payload)
        self.rejections = [*self.rejections, rejection][-MAX_REJECTIONS_KEPT:]
        workflow.logger.warning("%s %s: %s rejected: %s", self.journey, self.entity_id,
                                item.name, reason)
        await call(
            "record_rejection",
            RejectionRecord(
                workflow_id=workflow.info().workflow_id,
                journey=self.journey,
                entity_id=self.entity_id,
                rejection=rejection,
                n=self._count("rejected"),
            ),
        )

    def _count(self, step: str) -> int:
        n = self.counters.get(step, 0) + 1
        self.counters[step] = n
        return n

    # Every journey hands on the part of a staff member who leaves (`crm staff
    # deactivate`); each acts on it in its `staff_deactivated` handler.
    @workflow.signal(name="staff_deactivated")
    def staff_deactivated(self, payload: RawValue) -> None:
        self._receive("staff_deactivated", payload, StaffDeactivated)

    @staticmethod
    def _nobody_named(item: Inbound) -> Decision | None:
        """The rejection of a `staff_deactivated` that names nobody, or None."""
        if item.payload.staff_id.strip():
            return None
        return Decision(accepted=False, reason="staff_id is required")

    def _notify_staff(self, staff_id: str | None, step: str, facts: dict[str, Any]) -> None:
        if not staff_id:
            return
        self.messenger.send(
            step=step,
            message_class=MessageClass.staff,
            recipient=Recipient(kind="staff", id=staff_id),
            entity_kind=self.entity_kind,
            entity_id=self.entity_id,
            facts=facts,
        )

    async def _drain(self) -> None:
        """Before the journey completes: touches still on their way, then handlers."""
        await self.messenger.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
