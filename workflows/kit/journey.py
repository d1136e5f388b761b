"""The journey base: the inbox through which every signal and update reaches a
journey, the one run loop that weighs them against the journey's agenda, and a
finish that answers whoever still talks to it.

A journey declares, once:
- `signals`: the signals it takes (name → payload model), each acted on by its
  method `_on_<name>` (and `staff_deactivated`, which every journey takes);
- `planned`: its plan (`workflows.kit.agenda.Plan`) built from its policy, whose
  timed steps are each performed by its method `_step_<name>`;
- `_agenda()`: what is due next, from its state, as typed `Due` entries.
A journey class that lacks a handler for a signal or a step it declares fails
when its module is imported, not when the signal or step first comes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from temporalio import workflow
from temporalio.common import RawValue, SearchAttributeKey
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from domain.journeys import Decision, Rejection, RejectionRecord, StaffDeactivated
    from domain.messaging import MessageClass, Recipient, SendRequest

from workflows.kit.agenda import Agenda, Due, Plan, StepsPerWake
from workflows.kit.calls import (
    ANSWER_UNTIL_COMPLETE,
    CRM_INCIDENT,
    CRM_STEP,
    CRM_VERSION,
    INCIDENT_ATTRIBUTE,
    REFUSED_UPDATES_FAIL,
    SIGNALS_IN_TIME_ORDER,
    STAFF_ID_REQUIRED,
    STORE_REFUSAL_REJECTS,
    UNKNOWN_SIGNALS_REFUSED,
    call,
    decode_signal,
    patched,
    refusal,
    store_refusal,
    until,
    upsert_search_attributes,
)
from workflows.kit.messenger import Messenger

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
    there until intake is done.
    """

    journey: ClassVar[str]
    entity_kind: ClassVar[str]
    signals: ClassVar[dict[str, type[BaseModel]]]
    # The journey's plan from its policy (the default policy when called bare).
    planned: ClassVar[Callable[..., Plan]]
    # Whether its store calls (`call`) run as local activities, in journeys
    # started since COST_PER_JOURNEY: one history event instead of three and no
    # workflow task of their own. Only for workers with a workflow cache: with
    # none (CRM_WORKFLOW_CACHE_SIZE=0, the default) a journey is evicted at
    # every task completion, cancelling the local activities still under way,
    # and its tasks time out (bench/README.md, "Cost per journey").
    store_calls_local: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "planned", None) is None:
            return  # a part of a journey (a mixin), checked in the journey it makes up
        missing = [f"_on_{name}" for name in [*cls.signals, "staff_deactivated"]
                   if not callable(getattr(cls, f"_on_{name}", None))]
        missing += [f"_step_{name}" for name in sorted(cls.planned().step_names())
                    if not callable(getattr(cls, f"_step_{name}", None))]
        if missing:
            raise TypeError(f"{cls.__name__} declares what it has no handler for: "
                            + ", ".join(missing))

    def _setup_journey(self, entity_id: str, counters: dict[str, int], plan: Plan) -> None:
        self.entity_id = entity_id
        self.workflow_id = workflow.info().workflow_id
        self.plan = plan
        self.inbox: list[Inbound] = []
        self.rejections: list[Rejection] = []
        self.counters = counters
        self.messenger = Messenger(journey=self.journey, counters=counters,
                                   settled=self._touch_settled)
        self._incidents: dict[str, str] = {}
        self._versioned = False
        self._in_time_order: bool | None = None
        self._stalled = False

    def _signal_models(self) -> dict[str, type[BaseModel]]:
        # Every journey hands on the part of a staff member who leaves (`crm
        # staff deactivate`); each acts on it in its `_on_staff_deactivated`.
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
            if patched(UNKNOWN_SIGNALS_REFUSED):
                known = ", ".join(sorted(self._signal_models()))
                self.inbox.append(Inbound(name=name, payload=None, received_at=workflow.now(),
                                          problem=f"unknown signal {name!r}: "
                                                  f"this journey takes {known}"))
            return
        payload, data, problem = decode_signal(args, model)
        self.inbox.append(Inbound(name=name, payload=payload, received_at=workflow.now(),
                                  raw=data, problem=problem))

    def _agenda(self) -> Agenda:
        """What the journey does on its own next, from its state."""
        raise NotImplementedError

    def _stage_name(self) -> str:
        """The journey's stage, where it waits with nothing timed ahead."""
        raise NotImplementedError

    @classmethod
    def version(cls) -> str:
        """CrmVersion: the journey's name and a digest of its declaration (its
        plan with the default policy, its signals), which changes whenever
        what the journey declares does."""
        declared = repr((cls.planned(), sorted(cls.signals)))
        return f"{cls.journey}@{hashlib.sha256(declared.encode()).hexdigest()[:10]}"

    def _position(self) -> str:
        """CrmStep: the wait of the agenda's next step, or the stage."""
        nxt = self._agenda().next()
        return nxt.wait if nxt is not None and nxt.wait else self._stage_name()

    def _upsert(self, values: dict[SearchAttributeKey[Any], Any]) -> None:
        """Upserts the journey's search attributes with where it stands
        (CrmStep), and its declaration's version with the first."""
        extra: dict[SearchAttributeKey[Any], Any] = {CRM_STEP: self._position()}
        if not self._versioned:
            extra[CRM_VERSION] = self.version()
            self._versioned = True
        upsert_search_attributes({**values, **extra})

    def _touch_settled(self, request: SendRequest, failed: bool) -> None:
        """A touch given up for good raises CrmIncident; a later touch that
        reaches the same recipient clears it. Journeys that met a failed touch
        before there was an incident attribute replay without it."""
        recipient = f"{request.recipient.kind}:{request.recipient.id}"
        if failed:
            if not patched(INCIDENT_ATTRIBUTE):
                return
            first = not self._incidents
            self._incidents[recipient] = request.step
            if first:
                upsert_search_attributes({CRM_INCIDENT: f"touch_failed:{request.step}"})
        elif self._incidents.pop(recipient, None) is not None and not self._incidents:
            upsert_search_attributes({CRM_INCIDENT: None})

    async def _answer(self, name: str, payload: Any) -> Decision:
        """An update's answer: the decision when accepted; refused, the one
        refusal shape (an update failure carrying the reason)."""
        item = Inbound(name=name, payload=payload, received_at=workflow.now(), update=True)
        self.inbox.append(item)
        await workflow.wait_condition(lambda: item.answered)
        assert item.answer is not None
        if not item.answer.accepted and patched(REFUSED_UPDATES_FAIL):
            raise refusal(item.answer.reason or "refused")
        return item.answer

    async def _serve(self, ended: Callable[[], bool]) -> None:
        """The run loop: until `ended()`, the next signal or update, or the next
        step of the agenda, whichever came first."""
        while not ended():
            item = await self._next_inbound(self._agenda().next())
            if item is not None:
                await self._act_on(item)
                continue
            before = (self._agenda().next_at(), self.inbox[0] if self.inbox else None)
            await self._on_clock()
            # A clock that found nothing to do while a signal waited would be
            # asked again at once, for ever (older journeys' rule): the signal
            # goes next. No journey ever got past that point, so none replays it.
            self._stalled = before[1] is not None and before == (
                self._agenda().next_at(), self.inbox[0] if self.inbox else None)

    async def _on_clock(self) -> None:
        """Performs the steps due now, as the plan says the journey takes them."""
        now = workflow.now()
        rule = self.plan.steps_per_wake
        if rule is StepsPerWake.all_due:
            for entry in self._agenda().due(now):
                await self._step(entry)
        elif rule is StepsPerWake.one:
            if due := self._agenda().due(now):
                await self._step(due[0])
        else:
            # One at a time, the agenda recomputed after each (a step changes
            # what is due); a signal received before the next step was due is
            # acted on first, and one received at the same instant too, so an
            # answer given in time is never escalated.
            while due := self._agenda().due(now):
                if self.inbox and self.inbox[0].received_at <= due[0].at:
                    break
                await self._step(due[0])
        self._after_clock()

    async def _step(self, entry: Due) -> None:
        await getattr(self, f"_step_{entry.step}")(entry)

    def _after_clock(self) -> None:
        """Called after the steps of one wake (a journey publishes what changed)."""

    async def _next_inbound(self, step: Due | None) -> Inbound | None:
        """The next signal or update to act on, or None when the agenda's next
        `step` comes first.

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
            self._in_time_order = patched(SIGNALS_IN_TIME_ORDER)
        if not self._in_time_order:
            return await self._next_inbound_as_before(step)
        wake = step.at if step else None
        while True:
            if self.inbox:
                if wake is not None and wake < self.inbox[0].received_at:
                    return None
                return self.inbox.pop(0)
            try:
                await workflow.wait_condition(lambda: bool(self.inbox), timeout=until(wake),
                                              timeout_summary=step.summary if step else None)
            except TimeoutError:
                if not self.inbox:
                    return None

    async def _next_inbound_as_before(self, step: Due | None) -> Inbound | None:
        """The rule of journeys started before signals were taken in time order:
        whatever woke the journey first."""
        if self._stalled:
            self._stalled = False
            return self.inbox.pop(0)
        try:
            await workflow.wait_condition(lambda: bool(self.inbox),
                                          timeout=until(step.at if step else None),
                                          timeout_summary=step.summary if step else None)
        except TimeoutError:
            return None
        return self.inbox.pop(0)

    async def _act_on(self, item: Inbound) -> None:
        if item.problem is not None:
            answer: Decision | None = Decision(accepted=False, reason=item.problem)
        else:
            try:
                answer = await getattr(self, f"_on_{item.name}")(item)
            except ActivityError as err:
                # A store that refuses a value for good (too long, out of range)
                # refuses the signal; it is recorded, and the journey goes on.
                reason = store_refusal(err)
                if reason is None or not patched(STORE_REFUSAL_REJECTS):
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
                workflow_id=self.workflow_id,
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
        if item.payload.staff_id.strip() or not patched(STAFF_ID_REQUIRED):
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
        if not patched(ANSWER_UNTIL_COMPLETE):
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
