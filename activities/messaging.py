"""The one send path: every message, to a customer or to staff, goes through
`send_message`, which records the touch, decides (consent, quiet hours, cap)
and delivers, returning `sent`, `suppressed(reason)`, `deferred(until)` or
`unconfirmed(reason)`.

What a message says is fixed when the journey first asks for it: the record
it is about is read once, kept with the touch (its journey event), and every
later attempt or deferred re-ask renders from that copy.

A touch is committed as `sending` before its hand-off to the channel. An
attempt that finds it still `sending` cannot know whether the message went:
on a channel whose receiver drops a repeat by the touch key (e-mail by its
Message-ID, webhooks by `X-Crm-Touch-Key`, the outbox) it is sent again under
the same key; on any other channel it is recorded `unconfirmed` and raised to
staff as an open `delivery_check` task, never recorded as sent.

A customer or lead erased on request (`activities.store.erasure`) is refused
with the reason `erased`, before any other rule.

The record loaders, recipient details, frozen copies and touch outcomes it
uses are in `activities.message_records`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.delivery import DeliveryFailed, Message, RenderError, TemplateRenderer
from activities.journal import record_event
from activities.logs import activity_logger
from activities.message_records import (
    ENTITY_LOADERS,
    BrokenRecord,
    RecipientInfo,
    consents,
    endpoints,
    freeze,
    outcome_of,
    responsible_staff,
    settle,
    thaw,
    utc,
)
from activities.metrics import count_touch
from activities.store import Store
from activities.store.erasure import is_erased
from domain import schema
from domain.messaging import (
    FrequencyCap,
    MessageClass,
    SendOutcome,
    SendRequest,
    cap_allows_at,
    decide_send,
)
from domain.policy import MessagingPolicy

log = activity_logger("crm.messaging")

class Deliverer:
    """What `MessagingActivities` needs of delivery (apprise in production)."""

    def deliver(self, message: Message) -> None:  # pragma: no cover - protocol
        raise NotImplementedError

    def drops_repeats(self, channel: str) -> bool:
        """Whether the channel's receiver drops a message sent twice under one key."""
        return False


# Errors of a record loaded for a template that no retry can mend.
_BROKEN_RECORD = (TypeError, ValueError, AttributeError, LookupError, ArithmeticError)


class MessagingActivities:
    def __init__(
        self,
        *,
        store: Store,
        renderer: TemplateRenderer,
        deliverer: Any,
        policy: MessagingPolicy,
        after_delivery: Callable[[SendRequest], None] | None = None,
        before_delivery: Callable[[SendRequest], None] | None = None,
    ) -> None:
        self.store = store
        self.renderer = renderer
        self.deliverer = deliverer
        self.policy = policy
        # Called after the touch is committed as sending, before the hand-off,
        # and between delivery and recording it as sent: the windows where a
        # crash leaves the outcome unknown (used to test exactly those).
        self._before_delivery = before_delivery
        self._after_delivery = after_delivery

    @activity.defn
    def send_message(self, request: SendRequest) -> SendOutcome:
        try:
            outcome = self._send(request)
        except ApplicationError as exc:
            count_touch(journey=request.journey, message_class=request.message_class.value,
                        channel=request.channel, outcome="failed")
            raise exc
        count_touch(journey=request.journey, message_class=request.message_class.value,
                    channel=outcome.channel, outcome=outcome.status)
        return outcome

    def _send(self, request: SendRequest) -> SendOutcome:
        now = request.now
        with self.store.unit_of_work() as session:
            touch = session.scalar(select(schema.Touch).where(schema.Touch.key == request.key))
            if touch is not None and touch.status in ("sent", "suppressed", "failed",
                                                       "unconfirmed"):
                return outcome_of(touch)
            if request.withdrawn is not None and touch is not None and touch.status != "sending":
                log.info("touch %s withdrawn: %s", request.key, request.withdrawn)
                return settle(touch, now, "suppressed", f"withdrawn: {request.withdrawn}")
            if touch is not None and touch.status == "sending":
                # An earlier attempt was cut short between recording the touch
                # as sending and hearing back from the channel.
                assert touch.channel is not None
                if not self._drops_repeats(touch.channel):
                    return self._unconfirmed(session, touch, request)
                log.warning("touch %s: an earlier attempt may not have delivered it; sent "
                            "again under the same key on %s", request.key, touch.channel)
            if touch is None:
                touch = self._new_touch(session, request)
                if touch is None:  # lost a race with a concurrent attempt
                    raise ApplicationError(f"touch {request.key} is being recorded concurrently")
                entity = self._snapshot(session, touch, request)
            else:
                entity = self._snapshot_of(session, request)

            recipient = self._recipient(session, request)
            if recipient is None:
                return settle(touch, now, "suppressed", f"unknown {request.recipient.kind} "
                              f"{request.recipient.id!r}")
            if recipient.erased:
                return settle(touch, now, "suppressed", "erased")
            if recipient.inactive:
                return settle(touch, now, "suppressed", f"{request.recipient.kind} "
                              f"{request.recipient.id} is inactive")
            channel = self._channel(request, recipient)
            if channel is None:
                return settle(touch, now, "suppressed", "no contact endpoint on any channel")
            touch.channel = channel
            decided = decide_send(
                message_class=request.message_class,
                channel=channel,
                now=now,
                timezone=recipient.timezone,
                quiet=self.policy.quiet_hours,
                consents=recipient.consents,
                cap_allows_at=self.frequency_cap(session, request, now),
                when_capped=request.when_capped,
            )
            if decided is not None:
                touch.status = decided.status
                touch.reason = decided.reason
                touch.deferred_until = decided.until
                touch.updated_at = now
                log.info("touch %s %s: %s", request.key, decided.status, decided.reason)
                return decided
            try:
                rendered = self.renderer.render(
                    f"{request.journey}/{request.template}",
                    channel=channel,
                    locale=recipient.locale,
                    context=self._context(request, recipient, entity),
                )
            except RenderError as exc:
                # Recorded before raising: a touch whose template is broken stays failed.
                touch.status, touch.reason, touch.updated_at = "failed", str(exc), now
                session.commit()
                raise ApplicationError(str(exc), type="TemplateError", non_retryable=True) from exc
            touch.status = "sending"
            touch.attempts += 1
            touch.updated_at = now
            to = recipient.endpoints[channel]

        message = Message(channel=channel, to=to, title=rendered.title, body=rendered.body,
                          key=request.key)
        if self._before_delivery is not None:
            self._before_delivery(request)
        try:
            self.deliverer.deliver(message)
        except DeliveryFailed as exc:
            with self.store.unit_of_work() as session:
                touch = session.scalar(select(schema.Touch).where(schema.Touch.key == request.key))
                assert touch is not None
                touch.status = "pending"
                touch.reason = str(exc)
                touch.updated_at = now
            raise ApplicationError(str(exc), type="DeliveryFailed") from exc
        if self._after_delivery is not None:
            self._after_delivery(request)
        with self.store.unit_of_work() as session:
            touch = session.scalar(select(schema.Touch).where(schema.Touch.key == request.key))
            assert touch is not None
            outcome = settle(touch, now, "sent", None)
            touch.sent_at = now
        log.info("touch %s sent on %s", request.key, channel)
        return outcome

    def _drops_repeats(self, channel: str) -> bool:
        drops_repeats = getattr(self.deliverer, "drops_repeats", None)
        return bool(drops_repeats is not None and drops_repeats(channel))

    def _unconfirmed(self, session: Session, touch: schema.Touch,
                     request: SendRequest) -> SendOutcome:
        """A touch that may or may not have gone on a channel that cannot drop a
        repeat: neither sent again nor called sent; staff get a task to check."""
        now = request.now
        reason = (f"unconfirmed: an attempt was interrupted while handing the message to "
                  f"{touch.channel}, which cannot drop a repeat; not sent again")
        outcome = settle(touch, now, "unconfirmed", reason)
        session.add(schema.Task(
            key=f"{touch.key}:delivery_check", kind="delivery_check",
            entity_kind=request.entity_kind or touch.recipient_kind,
            entity_id=request.entity_id or touch.recipient_id,
            assignee_id=responsible_staff(session, touch), due_at=now, status="open",
            created_at=now))
        record_event(session, key=f"touch:{touch.key}:unconfirmed", journey=touch.journey,
                     entity_id=request.entity_id or touch.recipient_id,
                     step="delivery_unconfirmed", at=now,
                     detail={"touch": touch.key, "channel": touch.channel})
        log.error("touch %s: delivery on %s unconfirmed; raised to staff to check",
                  touch.key, touch.channel)
        return outcome

    def frequency_cap(self, session: Session, request: SendRequest,
                      now: datetime) -> datetime | None:
        """The earliest time the marketing cap allows this touch (None: allowed now).

        Counted over every journey's marketing touches to the same recipient
        that were sent or are being sent. On PostgreSQL the recipient's row is
        locked first so two journeys deciding at once are serialised; SQLite
        already holds its write lock (the touch was just inserted).
        """
        if request.message_class is not MessageClass.marketing:
            return None
        kind = request.recipient.kind
        model: type[schema.Customer] | type[schema.Lead] | None = (
            schema.Customer if kind == "customer" else schema.Lead if kind == "lead" else None)
        if model is not None and session.bind is not None \
                and session.get_bind().dialect.name == "postgresql":
            session.execute(select(model.id).where(model.id == request.recipient.id)
                            .with_for_update())
        recent = session.scalars(
            select(func.coalesce(schema.Touch.sent_at, schema.Touch.updated_at)).where(
                schema.Touch.recipient_kind == request.recipient.kind,
                schema.Touch.recipient_id == request.recipient.id,
                schema.Touch.message_class == MessageClass.marketing.value,
                # A touch that may have gone counts against the cap.
                schema.Touch.status.in_(("sending", "sent", "unconfirmed")),
                schema.Touch.key != request.key,
                func.coalesce(schema.Touch.sent_at, schema.Touch.updated_at)
                > now - timedelta(days=7),
            )
        ).all()
        cap = FrequencyCap(per_day=self.policy.marketing_per_day,
                           per_week=self.policy.marketing_per_week)
        return cap_allows_at([utc(t) for t in recent], now=now, cap=cap)

    # -- helpers -----------------------------------------------------------

    def _new_touch(self, session: Session, request: SendRequest) -> schema.Touch | None:
        now = request.now
        touch = schema.Touch(
            key=request.key,
            workflow_id=request.key.split(":", 1)[0],
            journey=request.journey,
            step=request.step,
            message_class=request.message_class.value,
            channel=request.channel,
            recipient_kind=request.recipient.kind,
            recipient_id=request.recipient.id,
            template=request.template,
            status="pending",
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(touch)
        except IntegrityError:
            return None
        return touch

    def _recipient(self, session: Session, request: SendRequest) -> RecipientInfo | None:
        kind, rid = request.recipient.kind, request.recipient.id
        default_tz, default_locale = self.policy.default_timezone, self.policy.default_locale
        if kind == "staff":
            staff = session.get(schema.Staff, rid)
            if staff is None:
                return None
            return RecipientInfo(
                name=staff.name,
                locale=staff.locale or default_locale,
                timezone=staff.timezone or default_tz,
                endpoints=endpoints(chat=staff.chat, email=staff.email, sms=staff.phone),
                inactive=not staff.active,
            )
        if kind == "customer":
            customer = session.get(schema.Customer, rid)
            if customer is None:
                return None
            return RecipientInfo(
                name=customer.name,
                locale=customer.locale or default_locale,
                timezone=customer.timezone or default_tz,
                endpoints=endpoints(email=customer.email, sms=customer.phone),
                consents=consents(session, [("customer", customer.id)]),
                erased=is_erased(session, "customer", customer.id),
            )
        lead = session.get(schema.Lead, rid)
        if lead is None:
            return None
        subjects = [("lead", lead.id)]
        customer = session.get(schema.Customer, lead.customer_id) if lead.customer_id else None
        if customer is not None:
            subjects.append(("customer", customer.id))
        return RecipientInfo(
            name=lead.name,
            locale=lead.locale or (customer.locale if customer else None) or default_locale,
            timezone=lead.timezone or (customer.timezone if customer else None) or default_tz,
            endpoints=endpoints(email=lead.email, sms=lead.phone),
            consents=consents(session, subjects),
            erased=any(is_erased(session, kind, sid) for kind, sid in subjects),
        )

    def _channel(self, request: SendRequest, recipient: RecipientInfo) -> str | None:
        if request.channel:
            return request.channel if request.channel in recipient.endpoints else None
        order = (
            self.policy.staff_channels
            if request.message_class is MessageClass.staff
            else self.policy.customer_channels
        )
        return next((c for c in order if c in recipient.endpoints), None)

    def _load_entity(self, session: Session, request: SendRequest) -> Any:
        """The record the message is about, as its loader gives it (None when
        the record is gone); a loader that cannot read it fails the touch."""
        loader = ENTITY_LOADERS.get(request.entity_kind or "")
        if loader is None or not request.entity_id:
            return None
        try:
            return loader(session, request.entity_id)
        except _BROKEN_RECORD as exc:
            raise BrokenRecord(f"{request.entity_kind} {request.entity_id} cannot be read "
                               f"for a message: {exc!r}") from exc

    def _snapshot(self, session: Session, touch: schema.Touch, request: SendRequest) -> Any:
        """Reads the record for a new touch and keeps it with the touch."""
        try:
            entity = self._load_entity(session, request)
        except BrokenRecord as exc:
            touch.status, touch.reason, touch.updated_at = "failed", str(exc), request.now
            session.commit()
            raise ApplicationError(str(exc), type="TemplateError", non_retryable=True) from exc
        record_event(
            session,
            key=f"touch:{request.key}",
            journey=request.journey,
            entity_id=request.entity_id or request.recipient.id,
            # Not a step the journey reached: named apart, so funnels and
            # reports that count steps never count a message's copy.
            step="touch_recorded",
            at=request.now,
            detail={"entity": freeze(entity)} if request.entity_kind else None,
        )
        return entity

    def _snapshot_of(self, session: Session, request: SendRequest) -> Any:
        """The record as the touch's first attempt read it (read now for a touch
        recorded before copies were kept)."""
        detail = session.scalar(select(schema.JourneyEvent.detail)
                                .where(schema.JourneyEvent.key == f"touch:{request.key}"))
        if isinstance(detail, dict) and "entity" in detail:
            return thaw(detail["entity"])
        try:
            return self._load_entity(session, request)
        except BrokenRecord as exc:
            raise ApplicationError(str(exc), type="TemplateError", non_retryable=True) from exc

    def _context(self, request: SendRequest, recipient: RecipientInfo,
                 entity: Any) -> dict[str, Any]:
        context: dict[str, Any] = dict(request.facts)
        context["recipient"] = recipient.as_context()
        context["now"] = request.now
        if request.entity_kind and request.entity_id and request.entity_kind in ENTITY_LOADERS:
            context[request.entity_kind] = entity
        return context
