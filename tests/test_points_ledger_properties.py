"""The points ledger's invariants over generated operations (hypothesis):
the balance is the sum of the rows, never negative, every debit takes only
from credits that gave it, what the credits have left is the balance; a key
written twice changes nothing; a redemption beyond the balance is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.points import PointsBook, PointsKind, PointsRefused

T0 = datetime(2026, 1, 1, tzinfo=UTC)

credit_op = st.tuples(st.just("credit"), st.integers(0, 30), st.integers(1, 10_000),
                      st.integers(1, 800))
debit_op = st.tuples(st.sampled_from(["redeem", "reverse"]), st.integers(0, 30),
                     st.integers(1, 15_000), st.integers(1, 800))
expire_op = st.tuples(st.just("expire"), st.integers(0, 30), st.just(0), st.integers(1, 900))
operations = st.lists(st.one_of(credit_op, debit_op, expire_op), max_size=60)


def play(ops: list[tuple[str, int, int, int]], book: PointsBook | None = None
         ) -> tuple[PointsBook, int]:
    book, refused, now = book or PointsBook(), 0, T0
    for op, key, points, day in ops:
        now = max(now, T0 + timedelta(days=day))
        try:
            if op == "credit":
                book.credit(key=f"order:{key}", kind=PointsKind.earned, points=points, at=now,
                            expires_at=now + timedelta(days=365))
            elif op == "expire":
                book.expire(now)
            else:
                first = f"order:{key}" if op == "reverse" else None
                kind = PointsKind.reversed if op == "reverse" else PointsKind.redeemed
                book.debit(key=f"{op}:{key}", kind=kind, points=points, at=now, first=first)
        except PointsRefused:
            refused += 1
    return book, refused


@settings(max_examples=300, deadline=None)
@given(operations)
def test_the_ledger_stays_sound_whatever_is_asked_of_it(
        ops: list[tuple[str, int, int, int]]) -> None:
    book, _ = play(ops)
    assert book.problems() == []
    assert book.balance() == sum(r.points for r in book.rows) >= 0
    assert all(r.balance_after >= 0 for r in book.rows)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_a_key_written_twice_changes_nothing(ops: list[tuple[str, int, int, int]]) -> None:
    book, _ = play(ops)
    written = [(r.key, r.points) for r in book.rows]
    play(ops, book)  # every operation again, on the same ledger
    # What was written stands as it was, once; only what was refused before
    # (a redemption the balance now covers) may be written now.
    assert [(r.key, r.points) for r in book.rows][:len(written)] == written
    assert len({r.key for r in book.rows}) == len(book.rows)
    assert all(r.key.startswith(("redeem", "reverse")) for r in book.rows[len(written):])
    assert book.problems() == []


@given(st.integers(1, 10_000), st.integers(1, 10_000))
def test_a_redemption_beyond_the_balance_is_refused_and_writes_nothing(
        balance: int, asked: int) -> None:
    book = PointsBook()
    book.credit(key="order:1", kind=PointsKind.earned, points=balance, at=T0,
                expires_at=T0 + timedelta(days=365))
    try:
        book.debit(key="redeem:1", kind=PointsKind.redeemed, points=asked, at=T0)
    except PointsRefused:
        assert asked > balance and len(book.rows) == 1 and book.balance() == balance
    else:
        assert asked <= balance and book.balance() == balance - asked


def test_expired_points_leave_at_their_instant_not_before() -> None:
    book = PointsBook()
    expiry = T0 + timedelta(days=365)
    book.credit(key="order:1", kind=PointsKind.earned, points=100, at=T0, expires_at=expiry)
    book.debit(key="redeem:1", kind=PointsKind.redeemed, points=30, at=T0)
    assert book.expire(expiry - timedelta(seconds=1)) == []
    [row] = book.expire(expiry)
    assert (row.points, row.at, book.balance()) == (-70, expiry, 0)
    assert book.problems() == []
