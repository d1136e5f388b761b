"""The lead activities' reads and writes of the store: the lead row, checks
of an incoming lead, duplicates, rep loads, the tasks a lead opens, and what a
retried step answered the first time. Also the lead as a message template sees it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError

from activities.message_records import entity_loader
from domain import schema
from domain.assignment import RepLoad
from domain.contact import InvalidContact, company_key, normalise_email, normalise_phone
from domain.journeys import Decision
from domain.leads import OPEN_STAGES, AssignResult, LeadInput


def checked_contacts(lead_in: LeadInput) -> tuple[str | None, str | None, str | None]:
    """The lead's normalised phone, e-mail address and company key; a lead
    missing a required field or any way to reach it is refused for good."""
    problems = [
        f"{name} is required"
        for name in ("lead_id", "name", "region", "product_line", "source")
        if not str(getattr(lead_in, name) or "").strip()
    ]
    phone = email = None
    try:
        phone = normalise_phone(lead_in.phone) if lead_in.phone else None
    except InvalidContact as exc:
        problems.append(str(exc))
    try:
        email = normalise_email(lead_in.email) if lead_in.email else None
    except InvalidContact as exc:
        problems.append(str(exc))
    company = company_key(lead_in.company) if lead_in.company else None
    if not (phone or email or company):
        problems.append("a lead needs a phone, an e-mail address or a company")
    if problems:
        raise ApplicationError(
            f"lead {lead_in.lead_id!r} rejected: " + "; ".join(problems),
            type="InvalidLead",
            non_retryable=True,
        )
    return phone, email, company


def open_duplicate(session: Session, phone: str | None, email: str | None,
                   company: str | None) -> schema.Lead | None:
    """The oldest open lead sharing a phone, an e-mail address or a company."""
    keys = [(schema.Lead.phone, phone), (schema.Lead.email, email),
            (schema.Lead.company_key, company)]
    return session.scalar(
        select(schema.Lead)
        .where(
            schema.Lead.stage.in_([s.value for s in OPEN_STAGES]),
            or_(*[column == value for column, value in keys if value]),
        )
        .order_by(schema.Lead.received_at, schema.Lead.id)
        .limit(1)
    )


def matching_customer(session: Session, phone: str | None, email: str | None,
                      company: str | None) -> schema.Customer | None:
    """The oldest customer sharing a phone, an e-mail address or a company."""
    keys = [(schema.Customer.phone, phone), (schema.Customer.email, email),
            (schema.Customer.company_key, company)]
    return session.scalar(
        select(schema.Customer)
        .where(or_(*[column == value for column, value in keys if value]))
        .order_by(schema.Customer.created_at, schema.Customer.id)
        .limit(1)
    )


def customer_from_lead(session: Session, lead: schema.Lead, now: datetime) -> str:
    """Creates the customer account a converted lead becomes; its id."""
    customer = schema.Customer(
        id=f"c-{lead.id}",
        name=lead.company or lead.name,
        locale=lead.locale or "zh-CN",
        timezone=lead.timezone or "Asia/Shanghai",
        phone=lead.phone,
        email=lead.email,
        company=lead.company,
        company_key=lead.company_key,
        owner_id=lead.owner_id,
        created_at=now,
    )
    session.add(customer)
    session.flush()
    return customer.id


def get_lead(session: Session, lead_id: str) -> schema.Lead:
    lead = session.get(schema.Lead, lead_id)
    if lead is None:
        raise ApplicationError(f"unknown lead {lead_id!r}", type="UnknownLead", non_retryable=True)
    return lead


def recorded_assignment(session: Session, done: schema.JourneyEvent, lead: schema.Lead,
                        workflow_id: str, n: int) -> AssignResult:
    """What the committed assignment or claim `done` answered: its kept result,
    else (recorded before results were kept) its owner and first-touch deadline
    from the task it opened, which later steps do not change as they change
    the lead."""
    detail = done.detail or {}
    if "result" in detail:
        return AssignResult.model_validate(detail["result"])
    if done.step == "pooled":
        return AssignResult(owner_id=None, pool_manager_id=detail.get("pool_manager_id"))
    task = session.scalar(select(schema.Task).where(
        schema.Task.key == f"{workflow_id}:first_touch:{n}"))
    if task is not None:
        return AssignResult(owner_id=task.assignee_id, due_at=task.due_at)
    return AssignResult(owner_id=lead.owner_id,
                        due_at=lead.first_touch_due if lead.owner_id else None)


def recorded_contact(session: Session, done: schema.Interaction, workflow_id: str,
                     n: int) -> Decision:
    """What the committed contact `done` answered: its kept result, else (recorded
    before results were kept) this contact's time and the follow-up it set."""
    detail = session.scalar(select(schema.JourneyEvent.detail)
                            .where(schema.JourneyEvent.key == done.key)) or {}
    if "result" in detail:
        return Decision.model_validate(detail["result"])
    task = session.scalar(select(schema.Task).where(
        schema.Task.key == f"{workflow_id}:follow_up:{n}"))
    return Decision(accepted=True, due_at=task.due_at if task else None, at=done.at)


def rep_loads(session: Session) -> list[RepLoad]:
    open_counts = dict(
        session.execute(
            select(schema.Lead.owner_id, func.count())
            .where(
                schema.Lead.owner_id.is_not(None),
                schema.Lead.stage.in_([s.value for s in OPEN_STAGES]),
            )
            .group_by(schema.Lead.owner_id)
        ).all()
    )
    return [
        RepLoad(
            staff_id=rep.id,
            regions=frozenset(rep.regions or ()),
            product_lines=frozenset(rep.product_lines or ()),
            open_leads=open_counts.get(rep.id, 0),
            capacity=rep.capacity,
            seniority=rep.seniority,
            active=rep.active,
        )
        for rep in session.scalars(select(schema.Staff).where(schema.Staff.role == "rep"))
    ]


def pool_manager(session: Session, lead: schema.Lead) -> str | None:
    """The active manager covering the lead's region (then any active manager)."""
    managers = list(
        session.scalars(
            select(schema.Staff)
            .where(schema.Staff.role == "manager", schema.Staff.active.is_(True))
            .order_by(schema.Staff.id)
        )
    )
    for manager in managers:
        if lead.region in (manager.regions or ()):
            return manager.id
    return managers[0].id if managers else None


def take_ownership(
    session: Session, lead: schema.Lead, owner: str, now: datetime, due: datetime,
    workflow_id: str, n: int,
) -> None:
    lead.owner_id = owner
    lead.assigned_at = now
    lead.first_touch_due = due
    session.add(
        schema.Task(
            key=f"{workflow_id}:first_touch:{n}",
            kind="first_touch",
            entity_kind="lead",
            entity_id=lead.id,
            assignee_id=owner,
            due_at=due,
            status="open",
            created_at=now,
        )
    )


def open_follow_up(session: Session, key: str, lead_id: str, assignee_id: str | None,
                   due: datetime, now: datetime) -> None:
    session.add(
        schema.Task(
            key=key,
            kind="follow_up",
            entity_kind="lead",
            entity_id=lead_id,
            assignee_id=assignee_id,
            due_at=due,
            status="open",
            created_at=now,
        )
    )


def close_tasks(session: Session, lead_id: str, now: datetime, *, status: str) -> None:
    session.execute(
        update(schema.Task)
        .where(
            schema.Task.entity_kind == "lead",
            schema.Task.entity_id == lead_id,
            schema.Task.status == "open",
        )
        .values(status=status, closed_at=now)
        .execution_options(synchronize_session=False)
    )


@entity_loader("lead")
def _lead_for_message(session: Session, lead_id: str) -> dict[str, Any] | None:
    lead = session.get(schema.Lead, lead_id)
    if lead is None:
        return None
    owner = session.get(schema.Staff, lead.owner_id) if lead.owner_id else None
    return {
        "id": lead.id,
        "name": lead.name,
        "company": lead.company,
        "region": lead.region,
        "product_line": lead.product_line,
        "source": lead.source,
        "score": lead.score,
        "stage": lead.stage,
        "owner": {"id": owner.id, "name": owner.name} if owner else None,
        "first_touch_due": lead.first_touch_due,
        "follow_up_due": lead.follow_up_due,
    }


def open_roles(session: Session, staff_id: str) -> list[str]:
    """The open leads the staff member owns."""
    return sorted(session.scalars(select(schema.Lead.id).where(
        schema.Lead.owner_id == staff_id,
        schema.Lead.stage.in_([s.value for s in OPEN_STAGES]))))
