"""A member's points ledger as a pure rule: credits that expire, debits that
take from the credits that expire first, each row idempotent by its key.

Every row holds its signed amount and the balance after it; a credit also
holds what is left of it (`remaining`) and when it expires; a debit names the
credits it took from (`takes`). So the balance is the sum of the rows and the
sum of what the credits have left, it is never negative, and every point a
debit takes is a point some credit gave. The store keeps these rows
(`loyalty_points`); its activities load a member's rows into a `PointsBook`,
apply one operation and write what it added and changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class PointsKind(StrEnum):
    earned = "earned"  # an order
    behaviour = "behaviour"  # a share, a check-in, a survey
    granted = "granted"  # compensation by staff, with a reason
    gift = "gift"  # birthday, retention
    referral = "referral"
    redeemed = "redeemed"
    reversed = "reversed"  # an order refunded
    expired = "expired"


DEBITS = (PointsKind.redeemed, PointsKind.reversed, PointsKind.expired)


@dataclass
class PointsRow:
    key: str
    kind: PointsKind
    points: int  # positive for a credit, negative for a debit
    balance_after: int
    at: datetime
    source: str = ""
    reason: str = ""
    expires_at: datetime | None = None  # credits
    remaining: int = 0  # credits: what is left of them
    takes: dict[str, int] = field(default_factory=dict)  # debits: credit key -> points

    @property
    def credit(self) -> bool:
        return self.points > 0


class PointsRefused(ValueError):
    """An operation the ledger does not allow (more than the balance)."""


@dataclass
class PointsBook:
    rows: list[PointsRow] = field(default_factory=list)

    def balance(self) -> int:
        return self.rows[-1].balance_after if self.rows else 0

    def row(self, key: str) -> PointsRow | None:
        return next((r for r in self.rows if r.key == key), None)

    def open_credits(self, now: datetime) -> list[PointsRow]:
        """Credits with points left that have not expired, soonest to expire first."""
        return sorted((r for r in self.rows if r.credit and r.remaining > 0
                       and (r.expires_at is None or r.expires_at > now)),
                      key=lambda r: (r.expires_at is None, r.expires_at or now,
                                     self.rows.index(r)))

    def next_expiry(self) -> datetime | None:
        """When the next points expire (a credit with points left), or None."""
        return min((r.expires_at for r in self.rows
                    if r.credit and r.remaining > 0 and r.expires_at is not None),
                   default=None)

    def expiring_at(self, at: datetime) -> int:
        return sum(r.remaining for r in self.rows
                   if r.credit and r.remaining > 0 and r.expires_at == at)

    def credit(self, *, key: str, kind: PointsKind, points: int, at: datetime,
               expires_at: datetime | None, source: str = "", reason: str = ""
               ) -> tuple[PointsRow, bool]:
        """The credit under `key`, added unless it is there already (then
        `False`: nothing changed)."""
        if (found := self.row(key)) is not None:
            return found, False
        if points <= 0:
            raise PointsRefused(f"a credit must be positive, not {points}")
        row = PointsRow(key=key, kind=kind, points=points, balance_after=self.balance() + points,
                        at=at, source=source, reason=reason, expires_at=expires_at,
                        remaining=points)
        self.rows.append(row)
        return row, True

    def debit(self, *, key: str, kind: PointsKind, points: int, at: datetime,
              source: str = "", reason: str = "", first: str | None = None
              ) -> tuple[PointsRow, bool]:
        """Takes `points` from the open credits, soonest to expire first (from
        the credit `first` before any other, for a reversal); refused beyond
        the balance. Already there under `key`: that row, `False`."""
        if (found := self.row(key)) is not None:
            return found, False
        if points <= 0:
            raise PointsRefused(f"points must be positive, not {points}")
        credits = self.open_credits(at)
        if first is not None:
            credits.sort(key=lambda r: r.key != first)
        available = sum(r.remaining for r in credits)
        if points > available:
            raise PointsRefused(f"{points} points asked, the balance is {available}")
        takes: dict[str, int] = {}
        left = points
        for credit in credits:
            if not left:
                break
            taken = min(credit.remaining, left)
            credit.remaining -= taken
            takes[credit.key] = taken
            left -= taken
        row = PointsRow(key=key, kind=kind, points=-points, balance_after=self.balance() - points,
                        at=at, source=source, reason=reason, takes=takes)
        self.rows.append(row)
        return row, True

    def expire(self, now: datetime) -> list[PointsRow]:
        """An `expired` row for each credit whose points ran out by `now`."""
        added: list[PointsRow] = []
        due = sorted((r for r in self.rows if r.credit and r.remaining > 0
                      and r.expires_at is not None and r.expires_at <= now),
                     key=lambda r: (r.expires_at, self.rows.index(r)))
        for credit in due:
            assert credit.expires_at is not None
            points, credit.remaining = credit.remaining, 0
            row = PointsRow(key=f"expire:{credit.key}", kind=PointsKind.expired, points=-points,
                            balance_after=self.balance() - points, at=credit.expires_at,
                            source=credit.key, reason="expired",
                            takes={credit.key: points})
            self.rows.append(row)
            added.append(row)
        return added

    def problems(self) -> list[str]:
        """Why the rows are not a sound ledger (empty when they are)."""
        found: list[str] = []
        running = 0
        credits = {r.key: r for r in self.rows if r.credit}
        taken: dict[str, int] = {}
        for r in self.rows:
            running += r.points
            if r.balance_after != running:
                found.append(f"{r.key}: balance {r.balance_after}, rows sum to {running}")
            if running < 0:
                found.append(f"{r.key}: balance below zero ({running})")
            if not r.credit:
                if sum(r.takes.values()) != -r.points:
                    found.append(f"{r.key}: takes {sum(r.takes.values())} for {-r.points}")
                for key, points in r.takes.items():
                    if key not in credits:
                        found.append(f"{r.key}: takes from {key}, which is no credit")
                    taken[key] = taken.get(key, 0) + points
        for key, credit in credits.items():
            if credit.points - taken.get(key, 0) != credit.remaining:
                found.append(f"{key}: {credit.remaining} left of {credit.points}, "
                             f"{taken.get(key, 0)} taken")
        if sum(c.remaining for c in credits.values()) != running:
            found.append("what the credits have left is not the balance")
        return found
