"""How a journey talks to the rest of the engine: its search attributes, the
store and send activities (by name, with their timeouts and retries), the one
shape of a refusal, and the decoding of start inputs and signals that turns a
bad payload into a clear reason instead of a failing workflow task.

The patch names of every change to what a running journey does live here,
each asked where the change is made, so that journeys started on older code
replay as they ran."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, overload

from temporalio import workflow
from temporalio.common import (
    Priority,
    RawValue,
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributeUpdate,
)
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from domain.journeys import Decision
    from domain.limits import WITHOUT_LIMITS
    from domain.messaging import SendOutcome, SendRequest

CRM_JOURNEY = SearchAttributeKey.for_keyword("CrmJourney")
CRM_STAGE = SearchAttributeKey.for_keyword("CrmStage")
CRM_CUSTOMER_ID = SearchAttributeKey.for_keyword("CrmCustomerId")
CRM_OWNER_ID = SearchAttributeKey.for_keyword("CrmOwnerId")
CRM_TIER = SearchAttributeKey.for_keyword("CrmTier")
CRM_SLA_DEADLINE = SearchAttributeKey.for_datetime("CrmSlaDeadline")
# Where a journey stands: the wait it is in (its agenda's next step, or its
# stage with nothing timed ahead), the version of its declaration, and an
# incident (a touch that failed for good) until a later touch goes through.
CRM_STEP = SearchAttributeKey.for_keyword("CrmStep")
CRM_VERSION = SearchAttributeKey.for_keyword("CrmVersion")
CRM_INCIDENT = SearchAttributeKey.for_keyword("CrmIncident")
SEARCH_ATTRIBUTES = (CRM_JOURNEY, CRM_STAGE, CRM_CUSTOMER_ID, CRM_OWNER_ID, CRM_TIER,
                     CRM_SLA_DEADLINE, CRM_STEP, CRM_VERSION, CRM_INCIDENT)

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
INCIDENT_ATTRIBUTE = "incident-attribute"

# Campaigns: customers who enter a segment are enrolled in its on_entry
# campaigns by the refresh that records them; a reply is a campaign event
# (the `replied` signal); a run issues its own coupon code.
CAMPAIGN_ON_ENTRY = "campaign-on-entry"
CAMPAIGN_REPLIES = "campaign-replies"
CAMPAIGN_COUPONS = "campaign-coupons"

# Journeys started since this change take every change made before it (the
# patches below) without asking each: every patch asked costs two history
# events, its marker and an upsert of TemporalChangeVersion. Those of them
# that opt in (`Journey.store_calls_local`, none today) also run their store
# calls as local activities. Asked once per run, at its first patch question
# or store call.
COST_PER_JOURNEY = "cost-per-journey"
BEFORE_COST_PER_JOURNEY = frozenset({
    SIGNALS_IN_TIME_ORDER, UNKNOWN_SIGNALS_REFUSED, STORE_REFUSAL_REJECTS,
    ANSWER_UNTIL_COMPLETE, REFUSED_UPDATES_FAIL, STAFF_ID_REQUIRED, WITHDRAW_UNWANTED_TOUCHES,
    STORE_LIMITS, INCIDENT_ATTRIBUTE,
    # the journeys' own, as they stood then
    "contact-checked", "convert-starts-opportunity", "adopt-recorded-payment",
    "serve-during-handover", "low-rating-notice", "ticket-transfer", "ticket-step-published",
})
# The next such change: store calls that follow one another fold into one
# activity (three history events and a workflow task each). The lead takes
# its intake with its first assignment and its conversion with the
# opportunity's start; a ticket's closing rating closes it in the same
# activity. And a ticket's escalation is an urgent activity, not a local one
# (`call_urgent`). A run started since takes every change above as well,
# still for one marker.
FOLDED_STORE_CALLS = "folded-store-calls"
# Oldest first: a run started since one of them takes it and all before it.
EPOCHS = (COST_PER_JOURNEY, FOLDED_STORE_CALLS)
# Runs that asked their epoch in their constructor, before the workflow
# instance that keeps the answer exists; taken over by the instance after.
_ASKED_BEFORE_INSTANCE: dict[str, int] = {}


def patched(change: str) -> bool:
    """`workflow.patched(change)`, except that a journey started since
    COST_PER_JOURNEY takes a change made before it without asking."""
    if change in BEFORE_COST_PER_JOURNEY and since(COST_PER_JOURNEY):
        return True
    return workflow.patched(change)


def since(epoch: str) -> bool:
    """Whether this run started on code with `epoch` (one of EPOCHS) or a
    later one."""
    return journey_epoch() > EPOCHS.index(epoch)


def since_cost_per_journey() -> bool:
    return since(COST_PER_JOURNEY)


def journey_epoch() -> int:
    """How many of EPOCHS this run started with (or reached at its first
    patch question or store call): asked once per run, newest first, so that
    the answer is the same at every later point and on every replay, and a
    new run records one marker."""
    holder = workflow.instance()
    run_id = workflow.info().run_id
    if holder is None:  # the journey's constructor
        if run_id not in _ASKED_BEFORE_INSTANCE:
            _ASKED_BEFORE_INSTANCE[run_id] = _ask_epoch()
        return _ASKED_BEFORE_INSTANCE[run_id]
    answer: int | None = getattr(holder, "_journey_epoch", None)
    if answer is None:
        answer = _ASKED_BEFORE_INSTANCE.pop(run_id, None)
        if answer is None:
            answer = _ask_epoch()
        holder._journey_epoch = answer
    return answer


def _ask_epoch() -> int:
    for reached in range(len(EPOCHS), 0, -1):
        if workflow.patched(EPOCHS[reached - 1]):
            return reached
    return 0


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
               and patched(STORE_LIMITS))
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
    """Runs a store activity by name (workflows never import activity code):
    as a local activity in a journey that takes its store calls so (with the
    same timeout and retries: a store outage is retried in the worker, then
    on timers), else as an activity."""
    args = [] if arg is None else [arg]
    if getattr(workflow.instance(), "store_calls_local", False) and since_cost_per_journey():
        try:
            if result_type is None:
                return await workflow.execute_local_activity(
                    activity, args=args, start_to_close_timeout=STORE_TIMEOUT,
                    retry_policy=STORE_RETRY, summary=summary_of(activity))
            return await workflow.execute_local_activity(
                activity, args=args, result_type=result_type,
                start_to_close_timeout=STORE_TIMEOUT, retry_policy=STORE_RETRY,
                summary=summary_of(activity))
        except ApplicationError as err:
            # A local activity's failure reaches the workflow as the activity's
            # own error; journeys read a store call's refusal as an
            # ActivityError's cause, whichever way the call ran.
            raise ActivityError(f"local activity {activity} failed", scheduled_event_id=0,
                                started_event_id=0, identity="", activity_type=activity,
                                activity_id="", retry_state=None) from err
    # The options are spelled out, not spread from a dict, so that the
    # SDK's typed overloads check them.
    if result_type is None:
        return await workflow.execute_activity(
            activity, args=args, start_to_close_timeout=STORE_TIMEOUT, retry_policy=STORE_RETRY,
            summary=summary_of(activity))
    return await workflow.execute_activity(
        activity, args=args, result_type=result_type,
        start_to_close_timeout=STORE_TIMEOUT, retry_policy=STORE_RETRY,
        summary=summary_of(activity))


def summary_of(activity: str) -> str:
    """The words the Temporal UI shows on an activity: what it does, with ids
    only (summaries are stored as they are, so no personal data goes in)."""
    return f"store: {activity.replace('_', ' ')}"


# Ahead of everything else queued: priority keys run from 1 (first) to 5,
# and a call without one takes 3.
URGENT = Priority(priority_key=1)


async def call_urgent(activity: str, arg: Any, result_type: type[T]) -> T:
    """Runs a store activity by name ahead of what is queued (a ticket's SLA
    escalation must not wait behind a backlog of notices): an activity with
    the highest priority, so the server hands it to the next free slot of any
    worker, with a store call's timeout and retries.

    Not a local activity: with no workflow cache (the default) a local
    activity still under way is cancelled whenever its journey is evicted to
    make room for another's workflow task, and with many deadlines at once
    its write comes late or not at all."""
    result: T = await workflow.execute_activity(
        activity, arg, result_type=result_type,
        start_to_close_timeout=STORE_TIMEOUT, retry_policy=STORE_RETRY, priority=URGENT,
        summary=summary_of(activity))
    return result


async def call_local(activity: str, arg: Any, result_type: type[T]) -> T:
    """Runs a store activity by name as a local activity, with a store call's
    timeout and retries: the ticket's SLA escalation in journeys started
    before `folded-store-calls` (later ones use `call_urgent`)."""
    result: T = await workflow.execute_local_activity(
        activity, arg, result_type=result_type,
        start_to_close_timeout=STORE_TIMEOUT, retry_policy=STORE_RETRY,
        summary=summary_of(activity))
    return result


async def send_message(request: SendRequest) -> SendOutcome:
    """Runs the send activity for one touch, retried through a channel outage."""
    outcome: SendOutcome = await workflow.execute_activity(
        "send_message", request, result_type=SendOutcome,
        start_to_close_timeout=SEND_TIMEOUT, retry_policy=SEND_RETRY,
        summary=f"send {request.step} to {request.recipient.kind} {request.recipient.id}")
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


def until(deadline: datetime | None) -> timedelta | None:
    if deadline is None:
        return None
    return max(deadline - workflow.now(), timedelta(0))


def answering(signal: str, model: type[BaseModel], rule: str | None = None) -> Any:
    """The update `<signal>_now`: the signal with an answer — the decision when
    accepted; refused, the one refusal shape. `rule` names the journey's
    method that says what is wrong with a payload (or None): it runs as the
    update's validator, so an update refused up front leaves no trace in
    history, and the same rule is applied again when the journey acts."""

    async def update(self: Any, payload: Any) -> Decision:
        return await self._answer(signal, payload)

    update.__name__ = update.__qualname__ = f"{signal}_now"
    update.__doc__ = f"`{signal}` with an answer: accepted, or why not."
    # The payload's type decodes the update's argument.
    update.__annotations__ = {"payload": model, "return": Decision}
    handler = workflow.update(name=f"{signal}_now")(update)
    if rule is not None:
        def validate(self: Any, payload: Any) -> None:
            if problem := getattr(self, rule)(payload):
                raise refusal(problem)

        validate.__annotations__ = {"payload": model, "return": None}
        handler.validator(validate)
    return handler
