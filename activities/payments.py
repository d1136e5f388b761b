"""Payment activities: signing, acceptance, payments and their allocation,
overdue escalation. Time zones are looked up here, never in the journey. Their
reads and writes of the store are in `activities.payment_records`."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.journal import record_event
from activities.logs import activity_logger
from activities.parts import ActivityParts
from activities.payment_records import (
    active_finance,
    add_value,
    attempt_key,
    contract_schedule,
    get_contract,
    milestone_rows,
    milestone_states,
    owner_candidates,
    recorded_payment,
)
from activities.store import Store, refuse_invalid
from activities.store.staff import active_manager_above
from domain import limits, schema
from domain.money import minor_digits, to_minor
from domain.payments import (
    JOURNEY,
    AcceptRequest,
    ContractClosed,
    EscalationTargets,
    MilestoneState,
    NewOwner,
    OverdueEscalation,
    OwnerHandover,
    PaymentPolicy,
    PaymentRequest,
    PaymentResult,
    PlanError,
    Schedule,
    SignRequest,
    allocate,
    choose_contract_owner,
    due_date,
    overdue_from,
    split_amounts,
)

log = activity_logger("crm.payments")


class PaymentActivities:
    @classmethod
    def from_parts(cls, parts: ActivityParts, policy: PaymentPolicy) -> PaymentActivities:
        return cls(store=parts.store, policy=policy,
                   default_timezone=parts.settings.default_timezone)

    def __init__(self, *, store: Store, policy: PaymentPolicy, default_timezone: str) -> None:
        self.store = store
        self.policy = policy
        self.default_timezone = default_timezone

    @activity.defn
    def load_payment_policy(self) -> PaymentPolicy:
        return self.policy

    @activity.defn
    def sign_contract(self, request: SignRequest) -> Schedule:
        """Records the contract and its milestones; schedules the signing-relative ones."""
        c = request.contract
        with self.store.unit_of_work() as session:
            existing = session.get(schema.Contract, c.contract_id)
            if existing is not None:  # a retry of a signing that committed
                return contract_schedule(session, existing, request.policy, request.now)
            problems = []
            customer = session.get(schema.Customer, c.customer_id)
            if customer is None:
                problems.append(f"unknown customer {c.customer_id!r}")
            owner = session.get(schema.Staff, c.owner_id)
            if owner is None:
                problems.append(f"unknown owner {c.owner_id!r}")
            currency = c.currency.upper()
            try:
                minor_digits(currency)
                amount_minor = to_minor(c.amount, currency)
                if amount_minor <= 0:
                    problems.append(f"amount {c.amount} must be positive")
            except (ValueError, ArithmeticError) as exc:
                problems.append(f"amount {c.amount} {currency}: {exc}")
                amount_minor = 0
            try:
                amounts = split_amounts(c.amount, [m.percent for m in request.plan], currency)
            except PlanError as exc:
                problems.append(str(exc))
                amounts = []
            if problems:
                raise ApplicationError(
                    f"contract {c.contract_id!r} rejected: " + "; ".join(problems),
                    type="InvalidContract",
                    non_retryable=True,
                )
            assert customer is not None
            zone = customer.timezone or self.default_timezone
            contract = schema.Contract(
                id=c.contract_id, customer_id=c.customer_id, owner_id=c.owner_id,
                currency=currency, amount_minor=amount_minor, paid_minor=0, credit_minor=0,
                finance_status="unpaid", signed_at=c.signed_at, timezone=zone,
            )
            session.add(contract)
            session.flush()
            for seq, (rule, amount) in enumerate(zip(request.plan, amounts, strict=True), 1):
                due = due_date(c.signed_at, rule.due_days, zone) if rule.relative_to == "signing" \
                    else None
                session.add(schema.PaymentMilestone(
                    contract_id=contract.id, seq=seq, name=rule.name or f"milestone {seq}",
                    percent=str(rule.percent), amount_minor=to_minor(amount, currency),
                    paid_minor=0, relative_to=rule.relative_to, due_days=rule.due_days,
                    due_date=due.isoformat() if due else None,
                    overdue_at=overdue_from(due, zone) if due else None,
                    state=(MilestoneState.scheduled if due else
                           MilestoneState.awaiting_acceptance).value,
                ))
            session.flush()
            record_event(session, key=f"{request.workflow_id}:signed", journey=JOURNEY,
                         entity_id=contract.id, step="signed", at=request.now,
                         detail={"amount": str(c.amount), "currency": currency})
            log.info("contract %s signed: %s %s in %d milestones", contract.id, c.amount,
                     currency, len(amounts))
            return contract_schedule(session, contract, request.policy, request.now)

    @activity.defn
    def accept_contract(self, request: AcceptRequest) -> Schedule:
        """Acceptance dates the milestones that wait for it."""
        refuse_invalid({"accepted_at": limits.moment_problem(request.accepted_at)})
        with self.store.unit_of_work() as session:
            contract = get_contract(session, request.contract_id)
            if contract.accepted_at is None:
                contract.accepted_at = request.accepted_at
                for row in milestone_rows(session, contract.id):
                    if row.relative_to == "acceptance" and row.due_date is None:
                        due = due_date(request.accepted_at, row.due_days, contract.timezone)
                        row.due_date = due.isoformat()
                        row.overdue_at = overdue_from(due, contract.timezone)
                        if row.state == MilestoneState.awaiting_acceptance.value:
                            row.state = MilestoneState.scheduled.value
                record_event(session, key=f"{request.workflow_id}:accepted", journey=JOURNEY,
                             entity_id=contract.id, step="accepted", at=request.accepted_at)
            session.flush()
            schedule = contract_schedule(session, contract, request.policy, request.now)
            # Only the milestones that acceptance dated get new actions.
            newly = {m.seq for m in request.milestones
                     if m.state is MilestoneState.awaiting_acceptance}
            schedule.actions = [a for a in schedule.actions if a.seq in newly]
            return schedule

    @activity.defn
    def record_payment(self, request: PaymentRequest) -> PaymentResult:
        """Allocates a payment to the milestones in order and updates the contract's
        finance status, the customer's lifetime value and the owner's sales figures.

        A reference already recorded changes nothing and answers `duplicate`,
        unless it was recorded by an earlier attempt of this same call (the
        worker died before reporting it): that retry answers what the attempt
        did, or the journey would take its own payment for a duplicate."""
        currency = limits.currency_problem(request.currency)
        refuse_invalid({
            "reference": limits.text_problem(request.reference, limits.REFERENCE),
            "currency": currency,
            "amount": None if currency else limits.amount_problem(request.amount,
                                                                  request.currency),
            "paid_at": limits.moment_problem(request.paid_at),
        })
        attempt = attempt_key(request)
        event_key = f"{request.workflow_id}:payment:{request.reference}"
        with self.store.unit_of_work() as session:
            contract = get_contract(session, request.contract_id)
            duplicate = session.scalar(select(schema.Payment).where(
                schema.Payment.contract_id == contract.id,
                schema.Payment.reference == request.reference))
            if duplicate is not None:
                return recorded_payment(session, contract, event_key, attempt)
            currency = contract.currency
            try:
                amount_minor = to_minor(request.amount, currency)
            except (ValueError, ArithmeticError) as exc:
                raise ApplicationError(f"payment {request.reference}: {exc}",
                                       type="InvalidAmount", non_retryable=True) from exc
            milestones = milestone_states(session, contract)
            allocation = allocate(request.amount, milestones)
            payment = schema.Payment(
                contract_id=contract.id, reference=request.reference,
                amount_minor=amount_minor, currency=currency,
                credit_minor=to_minor(allocation.credit, currency),
                paid_at=request.paid_at, recorded_at=request.now,
            )
            try:
                with session.begin_nested():
                    session.add(payment)
            except IntegrityError:
                # Recorded meanwhile: by another call, or by an earlier attempt
                # of this one still running after it timed out.
                return recorded_payment(session, contract, event_key, attempt)
            rows = {row.seq: row for row in milestone_rows(session, contract.id)}
            for seq, applied in allocation.applied.items():
                row = rows[seq]
                row.paid_minor += to_minor(applied, currency)
                if row.paid_minor >= row.amount_minor:
                    row.state = MilestoneState.paid.value
                session.add(schema.PaymentAllocation(
                    payment_id=payment.id, contract_id=contract.id, seq=seq,
                    amount_minor=to_minor(applied, currency)))
            contract.paid_minor += amount_minor - payment.credit_minor
            contract.credit_minor += payment.credit_minor
            contract.finance_status = (
                "paid" if contract.paid_minor >= contract.amount_minor
                else "partially_paid" if contract.paid_minor > 0 else "unpaid")
            add_value(session, schema.CustomerValue, {"customer_id": contract.customer_id},
                      currency, amount_minor, request.now, "lifetime_value_minor")
            add_value(session, schema.SalesFigure, {"staff_id": contract.owner_id},
                      currency, amount_minor, request.now, "collected_minor")
            session.flush()
            result = PaymentResult(milestones=milestone_states(session, contract),
                                   applied=allocation.applied, credit=allocation.credit)
            # The answer is kept with the step, under the key of the call that
            # recorded it, for that call's retry to give again.
            record_event(session, key=event_key,
                         journey=JOURNEY, entity_id=contract.id, step="payment_received",
                         at=request.paid_at,
                         detail={"amount": str(request.amount), "reference": request.reference,
                                 "recorded_by": attempt,
                                 "result": result.model_dump(mode="json")})
            log.info("contract %s: payment %s of %s %s allocated %s, credit %s", contract.id,
                     request.reference, request.amount, currency,
                     {k: str(v) for k, v in allocation.applied.items()}, allocation.credit)
            return result

    @activity.defn
    def escalate_overdue(self, request: OverdueEscalation) -> EscalationTargets:
        """An overdue milestone goes to the owner's manager and to finance."""
        key = f"{request.workflow_id}:escalation:{request.seq}:{request.level}"
        with self.store.unit_of_work() as session:
            contract = get_contract(session, request.contract_id)
            owner = session.get(schema.Staff, contract.owner_id)
            manager = owner.manager_id if owner else None
            finance = active_finance(session)
            if session.scalar(select(schema.Escalation.id).where(schema.Escalation.key == key)):
                # A retry: the people the first attempt escalated to, not
                # whoever holds those roles now.
                done = session.scalar(select(schema.JourneyEvent.detail)
                                      .where(schema.JourneyEvent.key == key)) or {}
                if "targets" in done:
                    return EscalationTargets.model_validate(done["targets"])
                return EscalationTargets(manager_id=manager, finance_ids=finance)
            row = session.get(schema.PaymentMilestone, (contract.id, request.seq))
            if row is not None and row.state == MilestoneState.scheduled.value:
                row.state = MilestoneState.overdue.value
            targets: list[str | None] = [t for t in [manager, *finance] if t] or [None]
            for n, target in enumerate(targets):
                session.add(schema.Escalation(
                    key=key if n == 0 else f"{key}:{target}", journey=JOURNEY,
                    entity_id=contract.id, level=request.level,
                    reason=f"milestone {request.seq} overdue", from_staff_id=contract.owner_id,
                    to_staff_id=target, at=request.now))
            result = EscalationTargets(manager_id=manager, finance_ids=finance)
            record_event(session, key=key, journey=JOURNEY, entity_id=contract.id,
                         step="overdue_escalated", at=request.now,
                         detail={"seq": request.seq, "level": request.level,
                                 "targets": result.model_dump(mode="json")})
            return result

    @activity.defn
    def hand_over_contract(self, request: OwnerHandover) -> NewOwner:
        """A deactivated owner's contract goes to the active rep chosen by
        `choose_contract_owner`; with no active rep left, to the previous
        owner's nearest active manager; with none of those either, it stays
        where it is and finance is told. Sales figures already credited stay
        with the previous owner: `record_payment` credits whoever owns the
        contract when a payment arrives, so only later payments count for the
        new owner."""
        key = f"{request.workflow_id}:owner_changed:{request.n}"
        with self.store.unit_of_work() as session:
            contract = get_contract(session, request.contract_id)
            done = session.scalar(
                select(schema.JourneyEvent).where(schema.JourneyEvent.key == key))
            if done is not None:  # a retry of a handover that committed
                return NewOwner.model_validate(done.detail)
            previous = session.get(schema.Staff, request.previous_owner_id)
            owner = choose_contract_owner(
                owner_candidates(session),
                regions=previous.regions if previous else (),
                product_lines=previous.product_lines if previous else (),
                exclude=[request.previous_owner_id],
            )
            how: Literal["rep", "manager", "unassigned"] = "rep"
            if owner is None:
                manager = active_manager_above(session, previous)
                owner, how = (manager.id if manager else None), "manager"
            finance_ids: list[str] = []
            if owner is None:
                how = "unassigned"
                finance_ids = active_finance(session)
            else:
                contract.owner_id = owner
            result = NewOwner(owner_id=owner, previous_owner_id=request.previous_owner_id,
                              how=how, finance_ids=finance_ids)
            record_event(session, key=key, journey=JOURNEY, entity_id=contract.id,
                         step="owner_changed" if owner else "owner_unassigned",
                         at=request.now, detail=result.model_dump(mode="json"))
            log.info("contract %s: owner %s deactivated, handed to %s (%s)", contract.id,
                     request.previous_owner_id, owner, how)
            return result

    @activity.defn
    def mark_milestone_overdue(self, request: OverdueEscalation) -> None:
        with self.store.unit_of_work() as session:
            row = session.get(schema.PaymentMilestone, (request.contract_id, request.seq))
            if row is not None and row.state == MilestoneState.scheduled.value:
                row.state = MilestoneState.overdue.value
                record_event(session, key=f"{request.workflow_id}:overdue:{request.seq}",
                             journey=JOURNEY, entity_id=request.contract_id, step="overdue",
                             at=request.now, detail={"seq": request.seq})

    @activity.defn
    def close_contract(self, request: ContractClosed) -> None:
        refuse_invalid({"reason": limits.text_problem(request.reason, limits.TEXT)})
        with self.store.unit_of_work() as session:
            contract = get_contract(session, request.contract_id)
            contract.closed_at = contract.closed_at or request.now
            contract.close_reason = request.reason
            if request.status == "cancelled":
                contract.finance_status = "cancelled"
                for row in milestone_rows(session, contract.id):
                    if row.state != MilestoneState.paid.value:
                        row.state = MilestoneState.cancelled.value
            record_event(session, key=f"{request.workflow_id}:{request.status}",
                         journey=JOURNEY, entity_id=contract.id, step=request.status,
                         at=request.now, detail={"reason": request.reason})
