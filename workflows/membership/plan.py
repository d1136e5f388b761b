"""The membership journey's plan: its timed steps and how its stages move."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.loyalty import JOURNEY, LoyaltyPolicy, MembershipStage

from workflows.kit import Plan, WaitUntil, moves, span


def steps(policy: LoyaltyPolicy) -> dict[str, WaitUntil]:
    return {
        "retention_offer": WaitUntil(
            "retention_offer", "保级 retention offer to a member who would drop a level",
            fact=f"{span(policy.retention_before)} before the anniversary"),
        "anniversary": WaitUntil("anniversary", "level set for the next year",
                                 fact="the membership anniversary"),
        "birthday": WaitUntil("birthday", "birthday greeting and gift, once a year",
                              fact="the birthday month's first day", local_time=True),
        "expiry_reminder": WaitUntil(
            "expiry_reminder", "points expiry reminder",
            fact=f"{span(policy.expiry_reminder_before)} before points expire"),
        "points_expiry": WaitUntil("points_expiry", "points expire",
                                   fact="the end of the year after they were earned",
                                   local_time=True),
    }


def plan(policy: LoyaltyPolicy | None = None) -> Plan:
    """Points earned, redeemed and expiring; 30 days before the anniversary the
    保级 offer to a member who would drop a level; the level set at the
    anniversary; the birthday gift once a year."""
    policy = policy or LoyaltyPolicy()
    stage = MembershipStage
    return Plan(
        journey=JOURNEY,
        parts=tuple(steps(policy).values()),
        start=stage.member,
        transitions=moves(
            (stage.member, "retention_offer", stage.retention_offered),
            ((stage.member, stage.retention_offered), "anniversary", stage.member),
        ),
        notes=("one membership year per run, continuing as new at the anniversary",),
    )
