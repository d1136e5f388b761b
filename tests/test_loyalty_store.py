"""The loyalty activities on the store (SQLite and PostgreSQL): an order's
points once, a refund reversing exactly them, redemption refused beyond the
balance with nothing written, expiry rows, the stored ledger sound after all
of it (and after generated sequences of every write, hypothesis); referral
codes unguessable and stable, self- and circular referrals refused; the
level and its discount written for other services."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activities.loyalty import LoyaltyActivities
from activities.loyalty_records import load_book
from activities.store import Store
from domain import schema
from domain.loyalty import (
    LoyaltyPolicy,
    MemberPurchase,
    Refund,
)
from domain.loyalty_requests import (
    EnrolRequest,
    ExpiryRequest,
    LevelRequest,
    OrderPoints,
    PointsChange,
    RefundRequest,
    RetentionRequest,
)
from tests.store_support import rows

THURSDAY = datetime(2026, 3, 5, 4, 0, tzinfo=UTC)  # noon in Shanghai
POLICY = LoyaltyPolicy(member_weekdays=[])


def member(store: Store, customer_id: str, code: str | None = None,
           birth: date | None = None) -> tuple[LoyaltyActivities, str, str | None]:
    acts = LoyaltyActivities(store=store, policy=POLICY)
    joined = acts.enrol_member(EnrolRequest(
        customer_id=customer_id, workflow_id=f"membership-{customer_id}", joined_at=THURSDAY,
        birth_date=birth, referral_code=code, now=THURSDAY))
    return acts, joined.referral_code, joined.referral_refused


def order(acts: LoyaltyActivities, customer_id: str, order_id: str, amount: str,
          at: datetime = THURSDAY) -> int:
    result = acts.earn_for_order(OrderPoints(
        customer_id=customer_id, workflow_id=f"membership-{customer_id}",
        purchase=MemberPurchase(order_id=order_id, amount=Decimal(amount), at=at), now=at))
    return -1 if result.duplicate else result.points


def sound(store: Store, customer_id: str) -> int:
    with store.unit_of_work() as session:
        book, _ = load_book(session, customer_id)
        assert book.problems() == []
        return book.balance()


def test_an_order_earns_once_and_a_refund_reverses_exactly_it(store: Store) -> None:
    acts, _, _ = member(store, "m1", birth=date(1990, 3, 9))
    assert order(acts, "m1", "O1", "100.99") == 300  # birthday month: triple
    assert order(acts, "m1", "O1", "100.99") == -1
    assert order(acts, "m1", "O2", "50") == 150
    assert sound(store, "m1") == 450
    reversed_ = acts.reverse_order(RefundRequest(customer_id="m1", refund=Refund(
        order_id="O1", reason="returned"), now=THURSDAY + timedelta(days=1)))
    assert reversed_.points == -300 and reversed_.balance == 150
    again = acts.reverse_order(RefundRequest(customer_id="m1", refund=Refund(order_id="O1"),
                                             now=THURSDAY + timedelta(days=2)))
    assert again.duplicate and again.balance == 150
    unknown = acts.reverse_order(RefundRequest(customer_id="m1", refund=Refund(order_id="O9"),
                                               now=THURSDAY))
    assert unknown.refused == "order O9 earned no points here"
    assert sound(store, "m1") == 150
    [refund] = rows(store, schema.LoyaltyPoints, key="m1:refund:O1")
    assert refund.takes == {"order:O1": 300} and refund.spend_minor == -10_099


def test_redemption_beyond_the_balance_is_refused_and_writes_nothing(store: Store) -> None:
    acts, _, _ = member(store, "m2")
    order(acts, "m2", "O1", "80")

    def redeem(points: int, ref: str) -> tuple[str | None, str | None]:
        result = acts.change_points(PointsChange(customer_id="m2", key=f"redeem:{ref}",
                                                 kind="redeemed", points=points,
                                                 reason="cash off", now=THURSDAY))
        return result.refused, result.receipt

    assert redeem(81, "R1") == ("81 points asked, the balance is 80", None)
    assert rows(store, schema.LoyaltyPoints, key="m2:redeem:R1") == []
    assert redeem(30, "R2") == (None, "redeem:R2")
    assert redeem(30, "R2") == (None, "redeem:R2")  # a retry: one redemption
    assert sound(store, "m2") == 50


def test_points_expire_at_the_end_of_the_next_year(store: Store) -> None:
    acts, _, _ = member(store, "m3")
    order(acts, "m3", "O1", "20")
    expiry = datetime(2027, 12, 31, 16, 0, tzinfo=UTC)
    [credit] = rows(store, schema.LoyaltyPoints, key="m3:order:O1")
    assert credit.expires_at == expiry
    early = acts.expire_points(ExpiryRequest(customer_id="m3", workflow_id="w",
                                             now=expiry - timedelta(seconds=1)))
    assert early.points == 0 and early.balance == 20 and early.next_expiry_at == expiry
    late = acts.expire_points(ExpiryRequest(customer_id="m3", workflow_id="w", now=expiry))
    assert late.points == -20 and late.balance == 0 and late.next_expiry_at is None
    assert sound(store, "m3") == 0


def test_referral_codes_and_refused_referrals(store: Store) -> None:
    _, code_a, _ = member(store, "ref-a")
    _, code_b, refused = member(store, "ref-b", code=code_a)
    assert refused is None and code_a != code_b and len(code_a) == 17
    assert rows(store, schema.LoyaltyMember, customer_id="ref-b")[0].referred_by == "ref-a"
    # Stable: joining again answers the same code.
    assert member(store, "ref-a")[1] == code_a
    _, _, unknown = member(store, "ref-c", code="RNOPE")
    assert unknown == "unknown referral code 'RNOPE'"
    # ref-a was brought by nobody, ref-b by ref-a: ref-a naming ref-b's code is
    # circular (checked on a member joining anew under a fresh id is impossible,
    # so the chain is checked directly).
    from activities.loyalty_records import referral_problem

    with store.unit_of_work() as session:
        assert referral_problem(session, "ref-a", code_b) == (
            None, "circular referral: ref-b was referred by ref-a")
        assert referral_problem(session, "ref-a", code_a) == (
            None, "a member cannot refer themselves")


def test_the_level_and_its_discount_for_other_services(store: Store) -> None:
    acts, _, _ = member(store, "m4")
    order(acts, "m4", "O1", "3500")
    check = acts.check_retention(RetentionRequest(
        customer_id="m4", workflow_id="w", level="gold", cycle=1,
        anniversary_at=THURSDAY + timedelta(days=30), now=THURSDAY + timedelta(days=1)))
    assert check.would_drop and check.needed_minor == 650_000 and check.drops_to == "silver"
    result = acts.set_level(LevelRequest(customer_id="m4", workflow_id="w", level="bronze",
                                         cycle=1, offered=False, now=THURSDAY + timedelta(days=1)))
    assert (result.level, result.changed, result.discount_percent) == ("silver", True, 10)
    [stored] = rows(store, schema.LoyaltyMember, customer_id="m4")
    assert (stored.level, stored.discount_percent) == ("silver", 10)


_members = iter(range(10**6))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["order", "redeem", "refund", "share", "expire"]),
                          st.integers(0, 5), st.integers(1, 3000), st.integers(0, 900)),
                max_size=25))
def test_the_stored_ledger_stays_sound_whatever_the_activities_are_asked(
        store: Store, ops: list[tuple[str, int, int, int]]) -> None:
    customer_id = f"p{next(_members)}"
    acts, _, _ = member(store, customer_id)
    for op, ref, amount, day in ops:
        at = THURSDAY + timedelta(days=day)
        if op == "order":
            order(acts, customer_id, f"{customer_id}-O{ref}", str(amount), at)
        elif op == "refund":
            acts.reverse_order(RefundRequest(customer_id=customer_id, refund=Refund(
                order_id=f"{customer_id}-O{ref}"), now=at))
        elif op == "expire":
            acts.expire_points(ExpiryRequest(customer_id=customer_id, workflow_id="w", now=at))
        else:
            kind = "redeemed" if op == "redeem" else "behaviour"
            acts.change_points(PointsChange(customer_id=customer_id, key=f"{op}:{ref}",
                                            kind=kind, points=amount, now=at))
    balance = sound(store, customer_id)
    stored = rows(store, schema.LoyaltyPoints, customer_id=customer_id)
    assert balance == sum(r.points for r in stored) >= 0
    assert all(r.balance_after >= 0 for r in stored)


def test_a_refund_after_the_order_s_points_expired_takes_back_nothing_more(
        store: Store) -> None:
    acts, _, _ = member(store, "m5")
    order(acts, "m5", "O1", "9")
    after = datetime(2028, 1, 2, tzinfo=UTC)  # the points ran out at the end of 2027
    refund = acts.reverse_order(RefundRequest(customer_id="m5", refund=Refund(order_id="O1"),
                                              now=after))
    assert (refund.points, refund.balance) == (0, 0)
    written = sorted(rows(store, schema.LoyaltyPoints, customer_id="m5"), key=lambda r: r.id)
    assert [(r.kind, r.points) for r in written] == [("earned", 9), ("expired", -9),
                                                     ("reversed", 0)]
    assert sound(store, "m5") == 0
