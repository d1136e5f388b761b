"""What every journey shares: search attributes, activity options, the send
helper, and the inbox through which every signal and update reaches a journey."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar, overload

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from domain.journeys import Decision, Rejection, RejectionRecord, StaffDeactivated
    from domain.limits import WITHOUT_LIMITS
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
STORE_TIMEOUT = timedelta(seconds=30)
STORE_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# A channel outage is retried for about a day, then the touch is given up
# (recorded) and the journey goes on.
SEND_TIMEOUT = timedelta(minutes=2)
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=30),
    maximum_attempts=60,
)

T = TypeVar("T", bound=BaseModel)

# Changes to what a running journey does, each behind its patch so that
# journeys started on older code replay as they ran.
SIGNALS_IN_TIME_ORDER = "signals-in-time-order"
UNKNOWN_SIGNALS_REFUSED = "unknown-signals-refused"
STORE_REFUSAL_REJECTS = "store-refusal-rejects"
ANSWER_UNTIL_COMPLETE = "answer-until-complete"
REFUSED_UPDATES_FAIL = "refused-updates-fail"
STAFF_ID_REQUIRED = "staff-id-required"
WITHDRAW_UNWANTED_TOUCHES = "withdraw-unwanted-touches"
STORE_LIMITS = "store-limits"


def refusal(reason: str) -> ApplicationError:
    """The one shape of a refused update: an update failure whose message is
    the reason. A validator raises it before the update is accepted (no trace
    in history); a handler raises it when acting finds the rule broken (then
    recorded as a rejection, like a refused signal's)."""
    return ApplicationError(reason, type="Refused", non_retryable=True)


def start_input(args: Sequence[Any], model: type[T]) -> T:
    """A journey's start input as its model, or a workflow failure saying what
    was wrong: a start with no input, several inputs, null or a payload that is
    not a JSON object fails at once instead of retrying its first task."""
    if len(args) != 1:
        raise ApplicationError(
            f"expected one input, a JSON object of {model.__name__}; got {len(args)}",
            type="InvalidInput", non_retryable=True)
    value = args[0]
    if isinstance(value, model):
        return value
    if not isinstance(value, dict):
        kind = "null" if value is None else type(value).__name__
        raise ApplicationError(f"expected a JSON object of {model.__name__}; got {kind}",
                               type="InvalidInput", non_retryable=True)
    # A ValidationError fails the workflow (each journey lists it among its
    # failure exception types) with the fields that were wrong. The store's
    # limits hold for journeys started since they came: one started before
    # with a value the store happened to keep replays, and a run continued as
    # new was checked when its first run started.
    checked = (workflow.info().continued_run_id is None
               and workflow.patched(STORE_LIMITS))
    return model.model_validate(value, context=None if checked else WITHOUT_LIMITS)


def store_refusal(err: ActivityError) -> str | None:
    """The reason an activity refused for good (a non-retryable failure: a value
    the store cannot hold, a business rule), or None for any other failure."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause.message
    return None


@overload
async def call(activity: str, arg: Any = None) -> Any: ...


@overload
async def call(activity: str, arg: Any, result_type: type[T]) -> T: ...


@overload
async def call(activity: str, *, result_type: type[T]) -> T: ...


async def call(activity: str, arg: Any = None, result_type: type[T] | None = None) -> Any:
    """Runs a store activity by name (workflows never import activity code)."""
    args = [] if arg is None else [arg]
    # The options are spelled out, not spread from a dict, so that the
    # SDK's typed overloads check them.
    if result_type is None:
        return await workflow.execute_activity(
            activity, args=args, start_to_close_timeout=STORE_TIMEOUT, retry_policy=STORE_RETRY)
    return await workflow.execute_activity(
        activity, args=args, result_type=result_type,
        start_to_close_timeout=STORE_TIMEOUT, retry_policy=STORE_RETRY)


async def call_local(activity: str, arg: Any, result_type: type[T]) -> T:
    """Runs a store activity by name as a local activity, with a store call's
    timeout and retries: for a write that must be on time even when the task
    queue is backed up (a ticket's SLA escalation)."""
    result: T = await workflow.execute_local_activity(
        activity, arg, result_type=result_type,
        start_to_close_timeout=STORE_TIMEOUT, retry_policy=STORE_RETRY)
    return result


async def send_message(request: SendRequest) -> SendOutcome:
    """Runs the send activity for one touch, retried through a channel outage."""
    outcome: SendOutcome = await workflow.execute_activity(
        "send_message", request, result_type=SendOutcome,
        start_to_close_timeout=SEND_TIMEOUT, retry_policy=SEND_RETRY)
    return outcome


def decode_signal(args: Sequence[RawValue], model: type[T]
                  ) -> tuple[T | None, dict[str, Any], str | None]:
    """A signal's arguments as its model, or the reason they are malformed.

    Signals arrive raw, however many arguments they carry, so that a malformed
    one is recorded as a rejection with its reason; the SDK would otherwise
    drop it with a log line, or fail the workflow task on every retry when the
    number of arguments is wrong. No argument reads as an empty object.
    """
    if len(args) > 1:
        return None, {}, f"expected one argument, a JSON object; got {len(args)}"
    if not args:
        data: Any = {}
    else:
        try:
            data = workflow.payload_converter().from_payload(args[0].payload)
        except Exception as exc:  # noqa: BLE001 - any undecodable payload is a rejection
            why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            return None, {}, f"payload is not JSON: {why[:200]}"
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
        unwanted: Callable[[], str | None] | None = None,
    ) -> asyncio.Task[SendOutcome | None]:
        """`unwanted`: asked before a deferred touch is asked again; the reason
        the journey no longer wants it (the milestone paid, the ticket closed),
        or None to send it."""
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
        task = asyncio.create_task(self._deliver(request, unwanted))
        self.pending.append(task)
        return task

    async def _deliver(self, request: SendRequest,
                       unwanted: Callable[[], str | None] | None) -> SendOutcome | None:
        withdrawable = False
        while True:
            request = request.model_copy(update={"now": workflow.now()})
            if withdrawable and unwanted is not None and (reason := unwanted()) is not None:
                request = request.model_copy(update={"withdrawn": reason})
            try:
                outcome = await send_message(request)
            except ActivityError as err:
                # The touch is recorded as failed in the store; the journey goes on.
                workflow.logger.warning("touch %s not sent: %s", request.key, err.cause or err)
                self.outcomes[request.key] = "failed"
                return None
            self.outcomes[request.key] = outcome.status
            if outcome.status != "deferred" or outcome.until is None:
                return outcome
            # A touch that waits out quiet hours may lose its point meanwhile;
            # older journeys sent it anyway, and replay so.
            withdrawable = withdrawable or (unwanted is not None
                                            and workflow.patched(WITHDRAW_UNWANTED_TOUCHES))
            await workflow.sleep(max(outcome.until - workflow.now(), timedelta(seconds=1)))

    async def drain(self) -> None:
        """Waits for every touch still on its way (a deferred welcome, say)."""
        while self.pending:
            batch, self.pending = self.pending, []
            await asyncio.gather(*batch)

    def settled(self) -> bool:
        """Whether every touch has gone, been suppressed or failed for good."""
        return all(task.done() for task in self.pending)


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
    update: bool = False  # an update, whose caller waits for the answer


class Journey:
    """What every journey workflow shares: an inbox of signals and updates that
    the journey acts on one at a time between the steps of its agenda,
    rejections recorded with their reason, occurrence counters, staff notices
    and a finish that answers whoever still talks to it.

    Every signal reaches the one raw handler below, which only appends to the
    inbox and never raises; a signal that arrives with signal-with-start waits
    there until intake is done. A journey declares the signals it takes in
    `signals` (name → payload model) and acts on them in `_handlers()`.
    """

    journey: ClassVar[str]
    entity_kind: ClassVar[str]
    signals: ClassVar[dict[str, type[BaseModel]]]

    def _setup_journey(self, entity_id: str, counters: dict[str, int]) -> None:
        self.entity_id = entity_id
        self.inbox: list[Inbound] = []
        self.rejections: list[Rejection] = []
        self.counters = counters
        self.messenger = Messenger(journey=self.journey, counters=counters)
        self._in_time_order: bool | None = None
        self._stalled = False

    def _signal_models(self) -> dict[str, type[BaseModel]]:
        # Every journey hands on the part of a staff member who leaves (`crm
        # staff deactivate`); each acts on it in its `staff_deactivated` handler.
        return {**self.signals, "staff_deactivated": StaffDeactivated}

    @workflow.signal(dynamic=True)
    def _on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        # Never raises: a malformed payload, an unknown name or a wrong number of
        # arguments, like a broken rule, becomes a recorded rejection when the
        # journey reaches it in the inbox.
        model = self._signal_models().get(name)
        if model is None:
            # Older code left an unknown signal unhandled; journeys that got
            # one then keep ignoring it on replay.
            if workflow.patched(UNKNOWN_SIGNALS_REFUSED):
                known = ", ".join(sorted(self._signal_models()))
                self.inbox.append(Inbound(name=name, payload=None, received_at=workflow.now(),
                                          problem=f"unknown signal {name!r}: "
                                                  f"this journey takes {known}"))
            return
        payload, data, problem = decode_signal(args, model)
        self.inbox.append(Inbound(name=name, payload=payload, received_at=workflow.now(),
                                  raw=data, problem=problem))

    def _handlers(self) -> dict[str, Callable[[Inbound], Awaitable[Decision | None]]]:
        raise NotImplementedError

    async def _answer(self, name: str, payload: Any) -> Decision:
        """An update's answer: the decision when accepted; refused, the one
        refusal shape (an update failure carrying the reason)."""
        item = Inbound(name=name, payload=payload, received_at=workflow.now(), update=True)
        self.inbox.append(item)
        await workflow.wait_condition(lambda: item.answered)
        assert item.answer is not None
        if not item.answer.accepted and workflow.patched(REFUSED_UPDATES_FAIL):
            raise refusal(item.answer.reason or "refused")
        return item.answer

    async def _serve(self, ended: Callable[[], bool], wake: Callable[[], datetime | None],
                     on_clock: Callable[[], Awaitable[None]]) -> None:
        """The run loop: until `ended()`, the next signal or update, or the next
        step of the agenda (due at `wake()`), whichever came first."""
        while not ended():
            item = await self._next_inbound(wake())
            if item is not None:
                await self._act_on(item)
                continue
            before = (wake(), self.inbox[0] if self.inbox else None)
            await on_clock()
            # A clock that found nothing to do while a signal waited would be
            # asked again at once, for ever (older journeys' rule): the signal
            # goes next. No journey ever got past that point, so none replays it.
            self._stalled = before[1] is not None and before == (
                wake(), self.inbox[0] if self.inbox else None)

    async def _next_inbound(self, wake: datetime | None) -> Inbound | None:
        """The next signal or update to act on, or None when the agenda's step
        due at `wake` comes first.

        Signals and steps are taken in the order they happened: a step due
        before a signal was received goes first, even when a worker that was
        down or behind handles both late. A signal received at the very instant
        a step falls due goes first, so an answer given in time is never
        escalated. The choice is made from what the journey holds (the inbox,
        the receive times, the agenda), never from which of a timer and a
        signal that came in one workflow task woke the journey first, which a
        replay need not repeat.
        """
        if self._in_time_order is None:
            # Decided once per run, at its first wait: journeys started on older
            # code keep its rule, and replay as they ran.
            self._in_time_order = workflow.patched(SIGNALS_IN_TIME_ORDER)
        if not self._in_time_order:
            return await self._next_inbound_as_before(wake)
        while True:
            if self.inbox:
                if wake is not None and wake < self.inbox[0].received_at:
                    return None
                return self.inbox.pop(0)
            try:
                await workflow.wait_condition(lambda: bool(self.inbox), timeout=until(wake))
            except TimeoutError:
                if not self.inbox:
                    return None

    async def _next_inbound_as_before(self, wake: datetime | None) -> Inbound | None:
        """The rule of journeys started before signals were taken in time order:
        whatever woke the journey first."""
        if self._stalled:
            self._stalled = False
            return self.inbox.pop(0)
        try:
            await workflow.wait_condition(lambda: bool(self.inbox), timeout=until(wake))
        except TimeoutError:
            return None
        return self.inbox.pop(0)

    async def _act_on(self, item: Inbound) -> None:
        if item.problem is not None:
            answer: Decision | None = Decision(accepted=False, reason=item.problem)
        else:
            try:
                answer = await self._handlers()[item.name](item)
            except ActivityError as err:
                # A store that refuses a value for good (too long, out of range)
                # refuses the signal; it is recorded, and the journey goes on.
                reason = store_refusal(err)
                if reason is None or not workflow.patched(STORE_REFUSAL_REJECTS):
                    raise
                answer = Decision(accepted=False, reason=reason)
        if answer is not None and not answer.accepted:
            await self._reject(item, answer.reason or "rejected")
        item.answer = answer or Decision(accepted=True)
        item.answered = True

    async def _refuse(self, item: Inbound, reason: str) -> None:
        """Answers a signal or update the journey can no longer act on."""
        await self._reject(item, item.problem or reason)
        item.answer = Decision(accepted=False, reason=item.problem or reason)
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

    @staticmethod
    def _nobody_named(item: Inbound) -> Decision | None:
        """The rejection of a `staff_deactivated` that names nobody, or None.
        Journeys that ignored one on older code keep doing so on replay."""
        if item.payload.staff_id.strip() or not workflow.patched(STAFF_ID_REQUIRED):
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

    def _ended_reason(self) -> str:
        """Why a journey whose run has ended refuses what still arrives."""
        return f"the {self.entity_kind}'s journey has ended"

    async def _drain(self) -> None:
        """Before the journey completes: touches still on their way (a welcome
        deferred by quiet hours, say). Until it completes the journey answers:
        a signal or update that arrives meanwhile is refused with the reason
        and recorded, never left waiting."""
        if not workflow.patched(ANSWER_UNTIL_COMPLETE):
            # Older journeys left signals in the inbox, and replay so; an update
            # left there kept its caller and the journey waiting for ever, so
            # no history goes past answering it.
            await self.messenger.drain()
            for item in [i for i in self.inbox if i.update]:
                self.inbox.remove(item)
                await self._refuse(item, self._ended_reason())
            await workflow.wait_condition(workflow.all_handlers_finished)
            return
        while True:
            await workflow.wait_condition(
                lambda: bool(self.inbox) or self.messenger.settled())
            if not self.inbox:
                break
            await self._refuse(self.inbox.pop(0), self._ended_reason())
        await self.messenger.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
