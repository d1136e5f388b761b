"""The one send path: every message, to a customer or to staff, goes through
`send_message`, which records the touch, decides (consent, quiet hours, cap)
and delivers, returning `sent`, `suppressed(reason)` or `deferred(until)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.delivery import DeliveryFailed, Message, RenderError, TemplateRenderer
from activities.journal import record_event
from activities.logs import activity_logger
from activities.metrics import count_touch
from activities.store import Store
from domain import schema
from domain.messaging import (
    Consent,
    ConsentScope,
    FrequencyCap,
    MessageClass,
    SendOutcome,
    SendRequest,
    cap_allows_at,
    decide_send,
)
from domain.policy import MessagingPolicy

log = activity_logger("crm.messaging")

# Loaders of the record a message is about, by entity kind; journeys add theirs.
EntityLoader = Callable[[Session, str], dict[str, Any] | None]
ENTITY_LOADERS: dict[str, EntityLoader] = {}


def entity_loader(kind: str) -> Callable[[EntityLoader], EntityLoader]:
    def register(fn: EntityLoader) -> EntityLoader:
        ENTITY_LOADERS[kind] = fn
        return fn

    return register


@dataclass
class RecipientInfo:
    name: str
    locale: str
    timezone: str
    endpoints: dict[str, str]
    consents: list[Consent] = field(default_factory=list)
    inactive: bool = False

    def as_context(self) -> dict[str, Any]:
        return {"name": self.name, "locale": self.locale, "timezone": self.timezone}


class Deliverer:
    """What `MessagingActivities` needs of delivery (apprise in production)."""

    def deliver(self, message: Message) -> None:  # pragma: no cover - protocol
        raise NotImplementedError


class MessagingActivities:
    def __init__(
        self,
        *,
        store: Store,
        renderer: TemplateRenderer,
        deliverer: Any,
        policy: MessagingPolicy,
        after_delivery: Callable[[SendRequest], None] | None = None,
    ) -> None:
        self.store = store
        self.renderer = renderer
        self.deliverer = deliverer
        self.policy = policy
        # Called between delivery and recording it as sent: the one window
        # where a crash leaves the outcome unknown (used to test exactly that).
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
            if touch is not None and touch.status in ("sent", "suppressed", "failed"):
                return _outcome_of(touch)
            if touch is not None and touch.status == "sending":
                # A previous attempt was interrupted after handing the message
                # to the channel: sending again could deliver it twice, so the
                # touch is recorded as sent, unconfirmed.
                touch.status = "sent"
                touch.reason = "unconfirmed: an earlier attempt was interrupted during delivery"
                touch.sent_at = now
                touch.updated_at = now
                log.warning("touch %s: delivery outcome unknown, not resent", request.key)
                return _outcome_of(touch)
            if touch is None:
                touch = self._new_touch(session, request)
                if touch is None:  # lost a race with a concurrent attempt
                    raise ApplicationError(f"touch {request.key} is being recorded concurrently")

            recipient = self._recipient(session, request)
            if recipient is None:
                return _settle(touch, now, "suppressed", f"unknown {request.recipient.kind} "
                               f"{request.recipient.id!r}")
            if recipient.inactive:
                return _settle(touch, now, "suppressed", f"{request.recipient.kind} "
                               f"{request.recipient.id} is inactive")
            channel = self._channel(request, recipient)
            if channel is None:
                return _settle(touch, now, "suppressed", "no contact endpoint on any channel")
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
                    context=self._context(session, request, recipient),
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
            outcome = _settle(touch, now, "sent", None)
            touch.sent_at = now
        log.info("touch %s sent on %s", request.key, channel)
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
        model = {"customer": schema.Customer, "lead": schema.Lead}.get(request.recipient.kind)
        if model is not None and session.bind is not None \
                and session.get_bind().dialect.name == "postgresql":
            session.execute(select(model.id).where(model.id == request.recipient.id)
                            .with_for_update())
        recent = session.scalars(
            select(func.coalesce(schema.Touch.sent_at, schema.Touch.updated_at)).where(
                schema.Touch.recipient_kind == request.recipient.kind,
                schema.Touch.recipient_id == request.recipient.id,
                schema.Touch.message_class == MessageClass.marketing.value,
                schema.Touch.status.in_(("sending", "sent")),
                schema.Touch.key != request.key,
                func.coalesce(schema.Touch.sent_at, schema.Touch.updated_at)
                > now - timedelta(days=7),
            )
        ).all()
        cap = FrequencyCap(per_day=self.policy.marketing_per_day,
                           per_week=self.policy.marketing_per_week)
        return cap_allows_at([_utc(t) for t in recent], now=now, cap=cap)

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
        record_event(
            session,
            key=f"touch:{request.key}",
            journey=request.journey,
            entity_id=request.entity_id or request.recipient.id,
            step=request.step,
            at=now,
        )
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
                endpoints=_endpoints(chat=staff.chat, email=staff.email, sms=staff.phone),
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
                endpoints=_endpoints(email=customer.email, sms=customer.phone),
                consents=_consents(session, [("customer", customer.id)]),
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
            endpoints=_endpoints(email=lead.email, sms=lead.phone),
            consents=_consents(session, subjects),
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

    def _context(
        self, session: Session, request: SendRequest, recipient: RecipientInfo
    ) -> dict[str, Any]:
        context: dict[str, Any] = dict(request.facts)
        context["recipient"] = recipient.as_context()
        context["now"] = request.now
        if request.entity_kind and request.entity_id:
            loader = ENTITY_LOADERS.get(request.entity_kind)
            if loader is not None:
                context[request.entity_kind] = loader(session, request.entity_id) or {}
        return context


def _endpoints(**channels: str | None) -> dict[str, str]:
    return {channel: address for channel, address in channels.items() if address}


def _consents(session: Session, subjects: list[tuple[str, str]]) -> list[Consent]:
    rows: list[Consent] = []
    for kind, sid in subjects:
        for row in session.scalars(
            select(schema.Consent).where(
                schema.Consent.subject_kind == kind, schema.Consent.subject_id == sid
            )
        ):
            rows.append(Consent(channel=row.channel, scope=ConsentScope(row.scope)))
    return rows


def _settle(touch: schema.Touch, now: datetime, status: str, reason: str | None) -> SendOutcome:
    touch.status = status
    touch.reason = reason
    touch.updated_at = now
    if status != "sent":
        log.info("touch %s %s: %s", touch.key, status, reason)
    return _outcome_of(touch)


def _outcome_of(touch: schema.Touch) -> SendOutcome:
    if touch.status == "failed":
        # A touch that failed for good (a template error) stays failed.
        raise ApplicationError(
            f"touch {touch.key} failed: {touch.reason}", type="TemplateError", non_retryable=True
        )
    status = "suppressed" if touch.status == "suppressed" else "sent"
    return SendOutcome(status=status, reason=touch.reason, channel=touch.channel)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
