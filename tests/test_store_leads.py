"""The lead activities against the store: intake, duplicates, assignment and
contacts, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities.leads import LeadActivities
from activities.store import Store
from domain import schema
from domain.leads import LeadStage, StageChange
from tests import store_support
from tests.store_support import HOUR, NOW, a_lead, assign, contact, count, intake, rows

# Fixtures shared with the other modules split from the same subject.
staffed = store_support.staffed
leads = store_support.leads


def test_a_new_lead_is_recorded_with_its_score(leads: LeadActivities, staffed: Store) -> None:
    result = intake(leads, a_lead("L1", 1, phone="138 0013 8000", email="Zhang@Example.COM"))
    assert result.lead_id == "L1" and result.duplicate_of is None
    [lead] = rows(staffed, schema.Lead)
    assert (lead.phone, lead.email, lead.company_key) == (
        "+8613800138000", "zhang@example.com", "l1trading")
    assert lead.stage == "new"
    assert lead.score == result.score > 0
    assert [e.step for e in rows(staffed, schema.JourneyEvent, entity_id="L1")] == ["received"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"phone": "138 0013 8000"}, {"phone": "+86 138-0013-8000"}),
        ({"email": "Zhang.Wei@Example.com"}, {"email": "zhang.wei@example.COM"}),
        ({"company": "ACME Co., Ltd."}, {"company": "acme"}),
    ],
    ids=["phone", "email", "company"],
)
def test_the_same_person_twice_is_a_duplicate_of_the_open_lead(
    leads: LeadActivities, staffed: Store, first: dict[str, str], second: dict[str, str]
) -> None:
    intake(leads, a_lead("L1", 1, **first))
    result = intake(leads, a_lead("L2", 2, **second), now=NOW + HOUR)
    assert result.duplicate_of == "L1"
    [duplicate] = rows(staffed, schema.Lead, id="L2")
    assert (duplicate.stage, duplicate.merged_into) == ("merged", "L1")
    assert duplicate.closed_at == NOW + HOUR
    assert {e.step for e in rows(staffed, schema.JourneyEvent, entity_id="L2")} == {
        "received", "merged"}


def test_a_discarded_lead_does_not_swallow_a_new_one(
    leads: LeadActivities, staffed: Store
) -> None:
    intake(leads, a_lead("L1", 1, phone="138 0013 8000"))
    leads.change_lead_stage(StageChange(lead_id="L1", workflow_id="lead-L1",
                                        stage=LeadStage.discarded, now=NOW, step="discarded",
                                        reason="wrong number"))
    result = intake(leads, a_lead("L2", 2, phone="+86 138 0013 8000"), now=NOW + HOUR)
    assert result.duplicate_of is None
    assert rows(staffed, schema.Lead, id="L2")[0].stage == "new"


def test_a_lead_with_an_invalid_phone_is_refused_for_good(
    leads: LeadActivities, staffed: Store
) -> None:
    with pytest.raises(ApplicationError) as refused:
        intake(leads, a_lead("L1", 1, phone="12345"))
    assert refused.value.non_retryable is True
    assert refused.value.type == "InvalidLead"
    assert "'12345'" in refused.value.message
    assert count(staffed, schema.Lead) == 0
    assert count(staffed, schema.JourneyEvent) == 0


def test_intake_twice_records_the_lead_once(leads: LeadActivities, staffed: Store) -> None:
    lead = a_lead("L1", 1)
    first = intake(leads, lead)
    again = intake(leads, lead)
    assert again == first
    assert count(staffed, schema.Lead) == 1
    assert len(rows(staffed, schema.JourneyEvent, entity_id="L1")) == 1


def test_a_lead_goes_to_the_least_loaded_rep_with_a_first_touch_task(
    leads: LeadActivities, staffed: Store
) -> None:
    for n, lead_id in enumerate(["L1", "L2", "L3"], start=1):
        intake(leads, a_lead(lead_id, n))
    # All three reps are free: the most senior (rep-a) first, then rep-b.
    assert assign(leads, "L1").owner_id == "rep-a"
    assert assign(leads, "L2").owner_id == "rep-b"

    result = assign(leads, "L3")

    assert result.owner_id == "rep-c"
    assert result.due_at == NOW + timedelta(hours=24)
    [task] = rows(staffed, schema.Task, entity_id="L3")
    assert (task.key, task.kind, task.assignee_id, task.status) == (
        "lead-L3:first_touch:1", "first_touch", "rep-c", "open")
    assert task.due_at == NOW + timedelta(hours=24)
    [event] = rows(staffed, schema.JourneyEvent, key="lead-L3:assign:1")
    assert event.step == "assigned"
    # the answer is kept with the step, for a retry to give the same one again
    assert event.detail == {"owner_id": "rep-c", "reason": "intake",
                            "result": result.model_dump(mode="json")}
    lead = rows(staffed, schema.Lead, id="L3")[0]
    assert (lead.stage, lead.owner_id, lead.assigned_at) == ("assigned", "rep-c", NOW)


def test_a_retried_assignment_keeps_its_owner_and_its_one_task(
    leads: LeadActivities, staffed: Store
) -> None:
    intake(leads, a_lead("L1", 1))
    first = assign(leads, "L1")
    # Meanwhile rep-a takes more leads; the retry must not move L1.
    for n, lead_id in enumerate(["L2", "L3"], start=2):
        intake(leads, a_lead(lead_id, n))
        assign(leads, lead_id)

    again = assign(leads, "L1", now=NOW + timedelta(minutes=1))

    assert again.owner_id == first.owner_id == "rep-a"
    assert again.due_at == first.due_at
    assert len(rows(staffed, schema.Task, entity_id="L1")) == 1
    assert len(rows(staffed, schema.JourneyEvent, key="lead-L1:assign:1")) == 1


def test_a_contact_before_the_assignment_is_rejected(
    leads: LeadActivities, staffed: Store
) -> None:
    intake(leads, a_lead("L1", 1))
    assign(leads, "L1")

    before = contact(leads, at=NOW - HOUR, now=NOW + 5 * HOUR, n=1)
    in_future = contact(leads, at=NOW + 6 * HOUR, now=NOW + 5 * HOUR, n=2)

    assert before.accepted is False and "not between" in (before.reason or "")
    assert in_future.accepted is False
    assert count(staffed, schema.Interaction) == 0
    assert [t.kind for t in rows(staffed, schema.Task, entity_id="L1")] == ["first_touch"]
    assert rows(staffed, schema.Lead, id="L1")[0].stage == "assigned"


def test_a_contact_is_recorded_and_the_follow_up_falls_due_three_days_later(
    leads: LeadActivities, staffed: Store
) -> None:
    intake(leads, a_lead("L1", 1))
    assign(leads, "L1")
    called_at = NOW + 2 * HOUR

    decision = contact(leads, at=called_at, now=NOW + 5 * HOUR, n=1)

    assert decision.accepted is True
    assert decision.due_at == called_at + timedelta(days=3)
    [interaction] = rows(staffed, schema.Interaction)
    assert (interaction.lead_id, interaction.staff_id, interaction.at) == ("L1", "rep-a",
                                                                          called_at)
    tasks = {t.kind: t for t in rows(staffed, schema.Task, entity_id="L1")}
    assert tasks["first_touch"].status == "done"
    assert tasks["follow_up"].status == "open"
    assert tasks["follow_up"].due_at == called_at + timedelta(days=3)
    lead = rows(staffed, schema.Lead, id="L1")[0]
    assert (lead.stage, lead.first_contact_at) == ("following_up", called_at)
    # The same contact again (a retried activity) changes nothing.
    assert contact(leads, at=called_at, now=NOW + 5 * HOUR, n=1) == decision
    assert count(staffed, schema.Interaction) == 1


def test_concurrent_intakes_of_the_same_person_merge(store: Store) -> None:
    """Two intakes with the same phone at the same moment: one of them is a duplicate."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime

    from activities.leads import LeadActivities
    from domain.leads import IntakeRequest, LeadInput
    from domain.policy import LeadPolicy

    leads = LeadActivities(store=store, policy=LeadPolicy())
    now = datetime.now(UTC)

    def intake(n: int) -> object:
        return leads.intake_lead(IntakeRequest(
            lead=LeadInput(lead_id=f"race-{n}", name="Wu", phone="+8613800001111",
                           region="east", product_line="erp", source="ads"),
            workflow_id=f"lead-race-{n}", now=now))

    for _ in range(5):
        with ThreadPoolExecutor(max_workers=2) as pool:
            first, second = pool.map(intake, (0, 1))
        duplicates = [r.duplicate_of for r in (first, second)]  # type: ignore[attr-defined]
        assert duplicates.count(None) == 1, duplicates
        with store.unit_of_work() as session:
            from sqlalchemy import delete

            session.execute(delete(schema.JourneyEvent))
            session.execute(delete(schema.Lead).where(schema.Lead.merged_into.is_not(None)))
            session.execute(delete(schema.Lead))
