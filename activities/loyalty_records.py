"""The loyalty activities' reads and writes of the store: a member's points
ledger loaded into the pure `PointsBook` and written back, referral codes and
chains, a trailing year's spend. Also the member as a message template sees it."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.message_records import entity_loader
from activities.store.erasure import Held, Person
from domain import schema
from domain.points import PointsBook, PointsKind, PointsRow

REFERRAL_CODE_BYTES = 10  # 80 random bits: 16 base32 characters after the "R"


def new_referral_code() -> str:
    """Unguessable: drawn from the operating system's random source, kept once
    per member (so stable), never derived from the customer's id."""
    return "R" + base64.b32encode(secrets.token_bytes(REFERRAL_CODE_BYTES)).decode()


def load_book(session: Session, customer_id: str
              ) -> tuple[PointsBook, dict[str, schema.LoyaltyPoints]]:
    """The member's ledger in the order it was written, and its stored rows by
    the ledger's key. The store's key is the member's id before the ledger's,
    so two members' `share:S1` or `birthday:2026` are two rows."""
    stored = list(session.scalars(select(schema.LoyaltyPoints)
                                  .where(schema.LoyaltyPoints.customer_id == customer_id)
                                  .order_by(schema.LoyaltyPoints.id)))
    prefix = f"{customer_id}:"
    book = PointsBook([PointsRow(key=r.key.removeprefix(prefix), kind=PointsKind(r.kind),
                                 points=r.points, balance_after=r.balance_after, at=r.at,
                                 source=r.source, reason=r.reason, expires_at=r.expires_at,
                                 remaining=r.remaining,
                                 takes=dict(r.takes or {})) for r in stored])
    return book, {r.key.removeprefix(prefix): r for r in stored}


def save_book(session: Session, customer_id: str, book: PointsBook,
              stored: dict[str, schema.LoyaltyPoints], *, spend: dict[str, int] | None = None
              ) -> None:
    """Writes the rows the book added and what is left of every credit it changed."""
    for row in book.rows:
        kept = stored.get(row.key)
        if kept is not None:
            if kept.remaining != row.remaining:
                kept.remaining = row.remaining
            continue
        session.add(schema.LoyaltyPoints(
            key=f"{customer_id}:{row.key}", customer_id=customer_id, kind=row.kind.value,
            reason=row.reason, source=row.source, points=row.points,
            balance_after=row.balance_after, expires_at=row.expires_at, remaining=row.remaining,
            spend_minor=(spend or {}).get(row.key, 0), takes=dict(row.takes), at=row.at))
    session.flush()


def trailing_year(session: Session, customer_id: str, now: datetime) -> tuple[int, int]:
    """Spend (minor units, refunds taken off) and paid orders in the year before `now`."""
    since = now - timedelta(days=365)
    spend, orders = session.execute(
        select(func.coalesce(func.sum(schema.LoyaltyPoints.spend_minor), 0),
               func.count().filter(schema.LoyaltyPoints.kind == PointsKind.earned.value))
        .where(schema.LoyaltyPoints.customer_id == customer_id,
               schema.LoyaltyPoints.at > since, schema.LoyaltyPoints.at <= now)).one()
    return int(spend), int(orders)


def referral_problem(session: Session, customer_id: str, code: str
                     ) -> tuple[str | None, str | None]:
    """The referrer the code names, or the reason the referral is refused:
    an unknown code, the member's own, or a circle (the referrer was brought,
    directly or down a chain, by this customer)."""
    referrer = session.scalar(select(schema.LoyaltyMember)
                              .where(schema.LoyaltyMember.referral_code == code.strip()))
    if referrer is None:
        return None, f"unknown referral code {code.strip()[:40]!r}"
    if referrer.customer_id == customer_id:
        return None, "a member cannot refer themselves"
    seen: set[str] = set()
    link: schema.LoyaltyMember | None = referrer
    while link is not None and link.referred_by is not None and link.customer_id not in seen:
        if link.referred_by == customer_id:
            return None, (f"circular referral: {referrer.customer_id} was referred "
                          f"by {customer_id}")
        seen.add(link.customer_id)
        link = session.get(schema.LoyaltyMember, link.referred_by)
    return referrer.customer_id, None


@entity_loader("member")
def _member_for_message(session: Session, customer_id: str) -> dict[str, Any] | None:
    member = session.get(schema.LoyaltyMember, customer_id)
    customer = session.get(schema.Customer, customer_id)
    if member is None or customer is None:
        return None
    balance = session.scalar(select(schema.LoyaltyPoints.balance_after)
                             .where(schema.LoyaltyPoints.customer_id == customer_id)
                             .order_by(schema.LoyaltyPoints.id.desc()).limit(1))
    return {"id": customer_id, "name": customer.name, "level": member.level,
            "discount_percent": member.discount_percent,
            "referral_code": member.referral_code, "balance": balance or 0}


def open_roles(session: Session, staff_id: str) -> list[str]:
    """Staff hold no role in a membership: nothing to hand on."""
    return []


def personal_data(session: Session, person: Person) -> Held:
    """The person's membership, for erasure: the birth date goes; points and
    levels stay."""
    member = (session.get(schema.LoyaltyMember, person.customer_id)
              if person.customer_id is not None else None)
    if member is None:
        return Held()
    member.birth_date = None
    return Held(ids=[member.customer_id], rows={"loyalty_members": 1})
