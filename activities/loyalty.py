"""Loyalty activities: joining, the points ledger (orders, refunds, behaviour,
grants, gifts, redemption, expiry), the retention check, the level at each
anniversary and referral rewards (their reads and writes of the store are in
`activities.loyalty_records`).

Every write is idempotent by its ledger key, so a retried activity changes
nothing twice; earning rules are the policy's (`domain.loyalty`), applied in
the customer's time zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.journal import record_event
from activities.loyalty_records import (
    load_book,
    new_referral_code,
    referral_problem,
    save_book,
    trailing_year,
)
from activities.parts import ActivityParts
from activities.store import Store, refuse_invalid
from domain import limits, schema
from domain.loyalty import (
    CURRENCY,
    JOURNEY,
    LoyaltyPolicy,
    anniversary,
    level_for,
    next_birthday_greeting,
    order_points,
    points_expire_at,
    rank,
)
from domain.loyalty_requests import (
    DatesRequest,
    Enrolment,
    EnrolRequest,
    ExpiryRequest,
    LevelRequest,
    LevelResult,
    MembershipDates,
    OrderPoints,
    PointsChange,
    PointsResult,
    ReferralResult,
    ReferralReward,
    RefundRequest,
    RetentionRequest,
    RetentionResult,
)
from domain.money import minor_digits, to_minor
from domain.points import PointsBook, PointsKind, PointsRefused


class LoyaltyActivities:
    @classmethod
    def from_parts(cls, parts: ActivityParts, policy: LoyaltyPolicy) -> LoyaltyActivities:
        return cls(store=parts.store, policy=policy, zone=parts.settings.default_timezone)

    def __init__(self, *, store: Store, policy: LoyaltyPolicy, zone: str = "Asia/Shanghai"
                 ) -> None:
        self.store = store
        self.policy = policy
        self.zone = zone

    @activity.defn
    def load_loyalty_policy(self) -> LoyaltyPolicy:
        return self.policy

    def _zone(self, customer: schema.Customer | None) -> str:
        return customer.timezone if customer is not None and customer.timezone else self.zone

    @activity.defn
    def enrol_member(self, request: EnrolRequest) -> Enrolment:
        """The member once (the customer too, if the CRM has not met them):
        their own referral code, and the referrer their sign-up names, or why
        that referral is refused (the membership stands without it)."""
        refuse_invalid({"referral_code": limits.text_problem(request.referral_code, 32)})
        with self.store.unit_of_work() as session:
            customer = session.get(schema.Customer, request.customer_id)
            if customer is None:
                session.add(schema.Customer(id=request.customer_id, name=request.customer_id,
                                            created_at=request.now))
            member = session.get(schema.LoyaltyMember, request.customer_id)
            if member is not None:
                return Enrolment(referral_code=member.referral_code,
                                 referrer_id=member.referred_by)
            referrer_id, refused = (referral_problem(session, request.customer_id,
                                                     request.referral_code)
                                    if request.referral_code else (None, None))
            lowest = self.policy.ordered_levels()[0]
            session.add(schema.LoyaltyMember(
                customer_id=request.customer_id, joined_at=request.joined_at,
                birth_date=request.birth_date, level=lowest.name,
                discount_percent=lowest.discount_percent, level_since=request.joined_at,
                referral_code=new_referral_code(), referred_by=referrer_id,
                updated_at=request.now))
            record_event(session, key=f"{request.workflow_id}:joined", journey=JOURNEY,
                         entity_id=request.customer_id, step="joined", at=request.now,
                         detail={"referrer": referrer_id} if referrer_id else None)
        with self.store.unit_of_work() as session:
            member = session.get(schema.LoyaltyMember, request.customer_id)
            assert member is not None
            return Enrolment(referral_code=member.referral_code, referrer_id=referrer_id,
                             referral_refused=refused)

    @activity.defn
    def membership_dates(self, request: DatesRequest) -> MembershipDates:
        """This membership year's anniversary, the next birthday greeting (in
        the customer's zone) and when points next expire."""
        with self.store.unit_of_work() as session:
            customer = session.get(schema.Customer, request.customer_id)
            member = session.get(schema.LoyaltyMember, request.customer_id)
            book, _ = load_book(session, request.customer_id)
            birthday = next_birthday_greeting(
                member.birth_date if member else None, self._zone(customer), request.now,
                request.birthday_years, self.policy)
            zone = ZoneInfo(self._zone(customer))
            return MembershipDates(anniversary_at=anniversary(request.joined_at, request.cycle),
                                   birthday_at=birthday,
                                   birthday_year=birthday.astimezone(zone).year if birthday
                                   else None,
                                   next_expiry_at=book.next_expiry())

    @activity.defn
    def earn_for_order(self, request: OrderPoints) -> PointsResult:
        """An order's points once, by the policy's rules on the customer-local
        day it was paid; its spend counts towards the level."""
        p = request.purchase
        refuse_invalid({"order_id": limits.text_problem(p.order_id, limits.ID),
                        "amount": limits.amount_problem(p.amount, CURRENCY),
                        "at": limits.moment_problem(p.at)})
        try:
            amount_minor = to_minor(p.amount, CURRENCY)
        except (ValueError, ArithmeticError) as exc:
            raise ApplicationError(f"order {p.order_id}: {exc}", type="InvalidAmount",
                                   non_retryable=True) from exc
        at = p.at or request.now
        with self.store.unit_of_work() as session:
            customer = session.get(schema.Customer, request.customer_id)
            member = session.get(schema.LoyaltyMember, request.customer_id)
            zone = self._zone(customer)
            earning = order_points(amount_minor, minor_digits(CURRENCY),
                                   at.astimezone(ZoneInfo(zone)).date(),
                                   birth_date=member.birth_date if member else None,
                                   policy=self.policy)
            book, stored = load_book(session, request.customer_id)
            key = f"order:{p.order_id}"
            first = not any(r.kind is PointsKind.earned for r in book.rows)
            if key in stored:
                return self._result(book, duplicate=True, points=stored[key].points)
            if earning.points <= 0:
                # Nothing to credit, but the spend counts: a zero-point row keeps it.
                session.add(schema.LoyaltyPoints(
                    key=f"{request.customer_id}:{key}", customer_id=request.customer_id,
                    kind=PointsKind.earned.value,
                    reason="order", source=p.order_id, points=0,
                    balance_after=book.balance(), remaining=0, spend_minor=amount_minor,
                    takes={}, at=at))
                return self._result(book, first_paid_order=first)
            book.credit(key=key, kind=PointsKind.earned, points=earning.points, at=at,
                        expires_at=points_expire_at(at, zone, self.policy),
                        source=p.order_id, reason=", ".join(earning.reasons) or "order")
            save_book(session, request.customer_id, book, stored, spend={key: amount_minor})
            return self._result(book, points=earning.points, multiplier=earning.multiplier,
                                reasons=earning.reasons, first_paid_order=first)

    @activity.defn
    def reverse_order(self, request: RefundRequest) -> PointsResult:
        """A refund takes back what the order earned, once, first from that
        order's own points; its spend no longer counts. Points of the order
        already redeemed come off the rest of the balance, as far as it goes."""
        order_id = request.refund.order_id
        refuse_invalid({"order_id": limits.text_problem(order_id, limits.ID)})
        with self.store.unit_of_work() as session:
            book, stored = load_book(session, request.customer_id)
            earned = stored.get(f"order:{order_id}")
            if earned is None:
                return PointsResult(refused=f"order {order_id} earned no points here")
            key = f"refund:{order_id}"
            if key in stored:
                return self._result(book, duplicate=True, points=stored[key].points)
            # Points that ran out before the refund are gone already: written
            # off first, so the refund takes back only what is left.
            book.expire(request.now)
            points = min(earned.points, book.balance())
            if points > 0:
                book.debit(key=key, kind=PointsKind.reversed, points=points,
                           at=request.now, source=order_id, first=earned.key,
                           reason=request.refund.reason or "refund")
                save_book(session, request.customer_id, book, stored,
                          spend={key: -earned.spend_minor})
            else:
                save_book(session, request.customer_id, book, stored)
                session.add(schema.LoyaltyPoints(
                    key=f"{request.customer_id}:{key}", customer_id=request.customer_id,
                    kind=PointsKind.reversed.value,
                    reason=request.refund.reason or "refund", source=order_id, points=0,
                    balance_after=book.balance(), remaining=0, spend_minor=-earned.spend_minor,
                    takes={}, at=request.now))
            return self._result(book, points=-points)

    @activity.defn
    def change_points(self, request: PointsChange) -> PointsResult:
        """A credit (behaviour, grant, gift, referral) or a redemption under its
        key, once. A redemption beyond the balance is refused and writes nothing;
        an accepted one answers its receipt (the ledger row's key). A grant's
        `source` is the staff member granting it, who must be active."""
        kind = PointsKind(request.kind)
        refuse_invalid({"points": limits.range_problem(request.points, 1, limits.MAX_MINOR),
                        "reason": limits.text_problem(request.reason, limits.TEXT),
                        "source": limits.text_problem(request.source, 300),
                        "key": limits.text_problem(request.key, 300)})
        with self.store.unit_of_work() as session:
            customer = session.get(schema.Customer, request.customer_id)
            book, stored = load_book(session, request.customer_id)
            if request.key in stored:
                row = stored[request.key]
                return self._result(book, duplicate=True, points=row.points,
                                    receipt=request.key)
            if kind is PointsKind.granted:
                # Compensation is granted by someone who answers for it.
                staff = session.get(schema.Staff, request.source)
                if staff is None or not staff.active:
                    return self._result(book, refused=f"{request.source or 'nobody'} is not "
                                        "an active staff member: only staff grant points")
            try:
                if kind is PointsKind.redeemed:
                    book.expire(request.now)  # expired points are not there to redeem
                    book.debit(key=request.key, kind=kind, points=request.points,
                               at=request.now, source=request.source, reason=request.reason)
                    signed = -request.points
                else:
                    book.credit(key=request.key, kind=kind, points=request.points,
                                at=request.now, source=request.source, reason=request.reason,
                                expires_at=points_expire_at(request.now, self._zone(customer),
                                                            self.policy))
                    signed = request.points
            except PointsRefused as exc:
                return self._result(book, refused=str(exc))
            save_book(session, request.customer_id, book, stored)
            return self._result(book, points=signed, receipt=request.key)

    @activity.defn
    def expire_points(self, request: ExpiryRequest) -> PointsResult:
        """Every credit whose points ran out by now: an `expired` row each."""
        with self.store.unit_of_work() as session:
            book, stored = load_book(session, request.customer_id)
            expired = book.expire(request.now)
            save_book(session, request.customer_id, book, stored)
            return self._result(book, points=sum(r.points for r in expired))

    @activity.defn
    def check_retention(self, request: RetentionRequest) -> RetentionResult:
        """保级: whether the spend so far (the year to the anniversary) would
        drop the member a level, and what they still need to spend to keep it."""
        with self.store.unit_of_work() as session:
            spend, orders = trailing_year(session, request.customer_id, request.now)
        current = self.policy.level(request.level)
        reached = level_for(spend, orders, self.policy)
        if rank(reached.name, self.policy) >= rank(current.name, self.policy):
            return RetentionResult(would_drop=False, spend_minor=spend)
        return RetentionResult(would_drop=True, spend_minor=spend,
                               needed_minor=current.min_spend_minor - spend,
                               keeps=current.name, drops_to=reached.name)

    @activity.defn
    def set_level(self, request: LevelRequest) -> LevelResult:
        """The level for the next membership year, from the trailing year; the
        store's copy (and its discount) is what other services read."""
        with self.store.unit_of_work() as session:
            spend, orders = trailing_year(session, request.customer_id, request.now)
            rule = level_for(spend, orders, self.policy)
            member = session.get(schema.LoyaltyMember, request.customer_id)
            if member is None:
                raise ApplicationError(f"{request.customer_id} is not a member",
                                       type="UnknownMember", non_retryable=True)
            previous = request.level
            changed = rule.name != previous
            kept = request.offered and rank(rule.name, self.policy) >= rank(previous, self.policy)
            if member.level != rule.name or member.discount_percent != rule.discount_percent:
                member.level, member.discount_percent = rule.name, rule.discount_percent
                member.level_since = request.now
            member.updated_at = request.now
            step = "level_changed" if changed else "level_kept"
            record_event(session, key=f"{request.workflow_id}:level:{request.cycle}",
                         journey=JOURNEY, entity_id=request.customer_id, step=step,
                         at=request.now, detail={"from": previous, "to": rule.name,
                                                 "spend_minor": spend})
            if kept:
                record_event(session, key=f"{request.workflow_id}:retained:{request.cycle}",
                             journey=JOURNEY, entity_id=request.customer_id,
                             step="retention_kept", at=request.now)
            return LevelResult(level=rule.name, previous=previous,
                               discount_percent=rule.discount_percent, spend_minor=spend,
                               changed=changed, kept_after_offer=kept)

    @activity.defn
    def record_retention_offer(self, request: RetentionRequest) -> None:
        with self.store.unit_of_work() as session:
            record_event(session, key=f"{request.workflow_id}:retention:{request.cycle}",
                         journey=JOURNEY, entity_id=request.customer_id,
                         step="retention_offered", at=request.now,
                         detail={"level": request.level})

    @activity.defn
    def reward_referral(self, request: ReferralReward) -> ReferralResult:
        """The referee's first paid order rewards both, once."""
        with self.store.unit_of_work() as session:
            referee = session.get(schema.LoyaltyMember, request.referee_id)
            if referee is None or referee.referred_by != request.referrer_id:
                return ReferralResult(rewarded=False)
            if referee.referral_rewarded_at is not None:
                return ReferralResult(rewarded=False)
            referee.referral_rewarded_at = request.now
            for customer_id, points in ((request.referrer_id, self.policy.referrer_points),
                                        (request.referee_id, self.policy.referee_points)):
                if points <= 0:
                    continue
                customer = session.get(schema.Customer, customer_id)
                book, stored = load_book(session, customer_id)
                book.credit(key=f"referral:{request.referee_id}:{customer_id}",
                            kind=PointsKind.referral, points=points, at=request.now,
                            source=request.order_id, reason=f"referral of {request.referee_id}",
                            expires_at=points_expire_at(request.now, self._zone(customer),
                                                        self.policy))
                save_book(session, customer_id, book, stored)
            record_event(session, key=f"{request.workflow_id}:referral", journey=JOURNEY,
                         entity_id=request.referee_id, step="referral_converted",
                         at=request.now, detail={"referrer": request.referrer_id})
        return ReferralResult(rewarded=True, referrer_points=self.policy.referrer_points,
                              referee_points=self.policy.referee_points)

    @staticmethod
    def _result(book: PointsBook, **values: object) -> PointsResult:
        nxt = book.next_expiry()
        return PointsResult(balance=book.balance(), next_expiry_at=nxt,
                            expiring_points=book.expiring_at(nxt) if nxt else 0,
                            **values)  # type: ignore[arg-type]
