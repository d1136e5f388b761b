"""What the membership journey's parts share: its state, its agenda and the
small helpers that write points and send touches."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.journeys import Decision
    from domain.loyalty import LoyaltyPolicy, MembershipCarry, MembershipInput
    from domain.loyalty_requests import DatesRequest, MembershipDates, PointsChange, PointsResult
    from domain.messaging import MessageClass, Recipient

from workflows.kit import CRM_STAGE, Agenda, Journey, call
from workflows.membership.plan import steps


class MembershipBase(Journey):
    """The state every part of the journey reads, and what they share."""

    start: MembershipInput
    customer_id: str
    policy: LoyaltyPolicy
    carry: MembershipCarry
    dates: MembershipDates | None
    referral_code: str | None

    def _agenda(self) -> Agenda:
        c, d, part = self.carry, self.dates, steps(self.policy)
        if d is None:
            return Agenda()
        entries = [*part["anniversary"].entries_at(d.anniversary_at),
                   *part["retention_offer"].entries_at(self._retention_at())]
        if d.birthday_at is not None and d.birthday_year not in c.birthday_years:
            entries += part["birthday"].entries_at(d.birthday_at, data=d.birthday_year)
        if c.next_expiry_at is not None:
            if c.expiry_reminded_for != c.next_expiry_at:
                entries += [replace(e, void_after=c.next_expiry_at) for e in
                            part["expiry_reminder"].entries_at(
                                c.next_expiry_at - self.policy.expiry_reminder_before)]
            entries += part["points_expiry"].entries_at(c.next_expiry_at)
        return Agenda.of(entries)

    def _retention_at(self) -> datetime | None:
        c, d = self.carry, self.dates
        if d is None or c.cycle in c.retention_checked_cycles:
            return None
        return d.anniversary_at - self.policy.retention_before

    async def _credit(self, key: str, kind: str, points: int, reason: str,
                      source: str = "") -> Decision:
        result: PointsResult = await call("change_points", PointsChange(
            customer_id=self.customer_id, key=key, kind=kind, points=points, reason=reason,
            source=source, now=workflow.now()), PointsResult)
        if result.refused:
            return Decision(accepted=False, reason=result.refused)
        if result.duplicate:
            return Decision(accepted=True, reason="already recorded")
        self._points_changed(result)
        return Decision(accepted=True, reason=f"{points} points")

    def _points_changed(self, result: PointsResult) -> None:
        self.carry.next_expiry_at = result.next_expiry_at
        self._publish()

    async def _refresh_dates(self) -> None:
        c = self.carry
        self.dates = await call("membership_dates", DatesRequest(
            customer_id=self.customer_id, joined_at=c.joined_at, cycle=c.cycle,
            birthday_years=c.birthday_years, now=workflow.now()), MembershipDates)
        if self.start.carry is None and c.next_expiry_at is None:
            c.next_expiry_at = self.dates.next_expiry_at

    def _history_full(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or \
            info.get_current_history_length() >= self.policy.max_history_events

    def _send(self, step: str, message_class: MessageClass, facts: dict[str, Any]) -> None:
        self.messenger.send(step=step, message_class=message_class,
                            recipient=Recipient(kind="customer", id=self.customer_id),
                            entity_kind=self.entity_kind, entity_id=self.customer_id,
                            facts=facts)

    def _stage_name(self) -> str:
        return self.carry.stage.value

    def _publish(self) -> None:
        c = self.carry
        self._upsert({CRM_STAGE: c.stage.value})
        lines = [f"**Member {self.customer_id}** — {c.level}, year {c.cycle} "
                 f"(`{c.stage.value}`)"]
        if nxt := self._agenda().next():
            lines.append(f"next: {nxt.summary}, at {nxt.at.isoformat()}")
        workflow.set_current_details("\n\n".join(lines))
