"""A deactivated owner's contracts: who takes them over.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment

from activities.store.staff import StaffMember, deactivate_staff
from domain import schema
from domain.payments import OwnerCandidate, RecordPayment, choose_contract_owner
from tests import payment_support
from tests.harness import Harness, eventually, seed_staff
from tests.payment_support import DAY, SHANGHAI, at_ten, contract_when, signed
from workflows.kit import CRM_OWNER_ID

# Fixtures shared with the other modules split from the same subject.
env = payment_support.env
harness = payment_support.harness


def open_contract(h: Harness, contract_id: str, owner_id: str, *,
                  finance_status: str = "unpaid") -> None:
    """A contract some other rep already carries (only its load matters here)."""
    with h.store.unit_of_work() as session:
        session.add(schema.Contract(
            id=contract_id, customer_id="cust-2", owner_id=owner_id, currency="CNY",
            amount_minor=100000, paid_minor=0, credit_minor=0, finance_status=finance_status,
            signed_at=datetime(2026, 1, 1, tzinfo=UTC), timezone="Asia/Shanghai"))


def owner_events(h: Harness, contract_id: str) -> list[schema.JourneyEvent]:
    return [e for e in h.rows(schema.JourneyEvent, entity_id=contract_id, journey="payment")
            if e.step in ("owner_changed", "owner_unassigned")]


def test_the_successor_is_the_least_loaded_active_rep_on_the_same_patch() -> None:
    east = frozenset({"east"}), frozenset({"erp"})
    reps = [OwnerCandidate("rep-b", *east, open_contracts=2),
            OwnerCandidate("rep-c", *east, open_contracts=1),
            OwnerCandidate("rep-d", *east, open_contracts=1),
            OwnerCandidate("rep-e", *east, open_contracts=0, active=False),
            OwnerCandidate("rep-west", frozenset({"west"}), frozenset({"erp"}), 0)]
    choose = choose_contract_owner
    assert choose(reps, regions=["east"], product_lines=["erp"], exclude=["rep-a"]) == "rep-c"
    assert choose(reps, regions=["east"], product_lines=["erp"], exclude=["rep-c"]) == "rep-d"
    assert choose(reps, regions=["north"], product_lines=["erp"]) == "rep-west"
    assert choose(reps[:2], regions=["north"], product_lines=["erp"]) == "rep-c"
    assert choose([reps[3]], regions=[], product_lines=[]) is None


async def test_a_deactivated_owner_hands_the_contract_to_the_least_loaded_rep(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    h = harness
    seed_staff(h.store, [
        StaffMember(id="mgr-north", name="Manager North", role="manager", chat="mgr-north"),
        StaffMember(id="rep-d", name="Rep D", role="rep", regions=["east"],
                    product_lines=["erp"], manager_id="mgr-north", chat="rep-d")])
    open_contract(h, "X-b", "rep-b")
    open_contract(h, "X-c", "rep-c")
    open_contract(h, "X-d", "rep-d", finance_status="paid")  # paid: no load
    handle, signed_at = await signed(h, env, "C20")
    pay = h.journeys.record_payment
    assert (await pay("C20", RecordPayment(amount=Decimal("500"), reference="P1"))).accepted

    ids = deactivate_staff(h.store, "rep-a", now=await env.get_current_time())
    assert ids == ["contract-C20"]
    await h.journeys.tell_staff_deactivated(ids, "rep-a")
    status = await contract_when(h, "C20", lambda s: s.owner_id != "rep-a")
    # rep-west carries nothing either, but rep-d shares rep-a's region and product line
    assert (status.owner_id, status.previous_owners, status.rejections) == ("rep-d", ["rep-a"],
                                                                           [])
    [contract] = h.rows(schema.Contract, id="C20")
    assert contract.owner_id == "rep-d"
    [event] = owner_events(h, "C20")
    assert (event.step, event.detail["owner_id"], event.detail["how"]) == (
        "owner_changed", "rep-d", "rep")
    described = await handle.describe()
    assert described.typed_search_attributes.get(CRM_OWNER_ID) == "rep-d"
    [notice] = await eventually(lambda: h.touches(step="payment_owner_changed", status="sent"))
    assert notice.recipient_id == "rep-d"
    [message] = [m for m in h.outbox_messages() if m["key"] == notice.key]
    assert message["title"] == "合同转交给您：C20" and "rep-a" in message["body"]

    # the deposit's reminders and its first escalation follow the new owner
    due = signed_at.astimezone(SHANGHAI).date() + timedelta(days=7)
    await env.sleep(at_ten(due + timedelta(days=7)) + timedelta(minutes=1) - signed_at)
    await contract_when(h, "C20", lambda s: s.next_action and s.next_action.level == 2)
    notices = h.touches(step="payment_due_notice")
    assert notices and {n.recipient_id for n in notices} == {"rep-d"}
    [escalation] = h.rows(schema.Escalation, entity_id="C20", level=1, to_staff_id="mgr-north")
    assert escalation.from_staff_id == "rep-d"
    assert not h.rows(schema.Escalation, entity_id="C20", to_staff_id="mgr-east")
    await eventually(lambda: {t.recipient_id for t in h.touches(step="payment_escalated")}
                     == {"mgr-north", "fin-1"})

    # collected money already credited stays with rep-a; later payments count for rep-d
    assert (await pay("C20", RecordPayment(amount=Decimal("1000"), reference="P2"))).accepted
    [old] = h.rows(schema.SalesFigure, staff_id="rep-a")
    [new] = h.rows(schema.SalesFigure, staff_id="rep-d")
    assert (old.collected_minor, new.collected_minor) == (50000, 100000)


async def test_a_broadcast_about_someone_else_changes_nothing(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    h = harness
    handle, _ = await signed(h, env, "C21")
    assert deactivate_staff(h.store, "rep-b", now=await env.get_current_time()) == []
    await h.journeys.tell_staff_deactivated(["contract-C21"], "rep-b")
    await handle.signal("staff_deactivated", {})
    await handle.signal("staff_deactivated", "rep-a")
    # the inbox is handled in order: once both malformed ones are rejected, so is rep-b's
    status = await contract_when(h, "C21", lambda s: len(s.rejections) == 2)
    assert [(r.signal, r.reason) for r in status.rejections] == [
        ("staff_deactivated", "staff_id is required"),
        ("staff_deactivated", "expected a JSON object, got str")]
    assert (status.owner_id, status.previous_owners) == ("rep-a", [])
    await eventually(lambda: len(h.rows(schema.SignalRejection, workflow_id="contract-C21")) == 2)
    assert h.rows(schema.Contract, id="C21")[0].owner_id == "rep-a"
    assert not owner_events(h, "C21")
    assert not h.touches(step="payment_owner_changed")


async def test_with_no_active_rep_left_the_owners_manager_takes_the_contract(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    h = harness
    _, signed_at = await signed(h, env, "C22")
    now = await env.get_current_time()
    for rep in ("rep-b", "rep-c", "rep-west"):
        assert deactivate_staff(h.store, rep, now=now) == []
    ids = deactivate_staff(h.store, "rep-a", now=now)
    await h.journeys.tell_staff_deactivated(ids, "rep-a")
    status = await contract_when(h, "C22", lambda s: s.owner_id != "rep-a")
    assert (status.owner_id, status.previous_owners) == ("mgr-east", ["rep-a"])
    assert h.rows(schema.Contract, id="C22")[0].owner_id == "mgr-east"
    [event] = owner_events(h, "C22")
    assert (event.detail["owner_id"], event.detail["how"]) == ("mgr-east", "manager")
    [notice] = await eventually(lambda: h.touches(step="payment_owner_changed", status="sent"))
    assert notice.recipient_id == "mgr-east"
    # the reminder a day before the deposit falls due goes to the manager
    due = signed_at.astimezone(SHANGHAI).date() + timedelta(days=7)
    await env.sleep(at_ten(due - DAY) + timedelta(minutes=1) - signed_at)
    await eventually(lambda: h.touches(step="payment_due_notice", recipient_id="mgr-east"))
    assert not h.touches(step="payment_due_notice", recipient_id="rep-a")


async def test_with_nobody_left_the_contract_stays_put_and_finance_is_told(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    h = harness
    await signed(h, env, "C23")
    now = await env.get_current_time()
    for staff_id in ("rep-b", "rep-c", "rep-west", "mgr-east"):
        deactivate_staff(h.store, staff_id, now=now)
    await h.journeys.tell_staff_deactivated(deactivate_staff(h.store, "rep-a", now=now), "rep-a")
    await eventually(lambda: owner_events(h, "C23"))
    [event] = owner_events(h, "C23")
    assert (event.step, event.detail["how"], event.detail["finance_ids"]) == (
        "owner_unassigned", "unassigned", ["fin-1"])
    [notice] = await eventually(lambda: h.touches(step="payment_owner_changed", status="sent"))
    assert notice.recipient_id == "fin-1"
    status = await h.journeys.contract_status("C23")
    assert (status.owner_id, status.previous_owners, status.rejections) == ("rep-a", [], [])
