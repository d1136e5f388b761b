"""Importing leads: checking the rows, and starting a journey for each lead
not started yet (the journey writes the lead at intake)."""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.store import Store
from domain import schema
from domain.contact import InvalidContact, normalise_email, normalise_phone
from domain.leads import LeadInput, lead_workflow_id
from starter.client import Journeys
from starter.imports.rows import (
    ImportReport,
    Outcome,
    Row,
    Status,
    Tick,
    parse_row,
)


def _lead(row: Row) -> LeadInput | str:
    """Intake's checks, made before a journey starts: the required fields, the
    contact details, at least one way to reach the lead, a known time zone."""
    if row.problem:
        return row.problem
    lead = parse_row(row, LeadInput)
    if isinstance(lead, str):
        return lead
    problems = []
    try:
        phone = normalise_phone(lead.phone) if lead.phone else None
    except InvalidContact as exc:
        problems.append(str(exc))
        phone = None
    try:
        email = normalise_email(lead.email) if lead.email else None
    except InvalidContact as exc:
        problems.append(str(exc))
        email = None
    if not (lead.phone or lead.email or lead.company):
        problems.append("a lead needs a phone, an email or a company")
    if lead.timezone:
        try:
            ZoneInfo(lead.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"unknown time zone {lead.timezone!r}")
    if problems:
        return "; ".join(problems)
    return lead.model_copy(update={"phone": phone, "email": email})


def check_leads(
    store: Store, rows: list[Row], *, tick: Tick
) -> tuple[ImportReport, list[tuple[Row, LeadInput]]]:
    """The report on the rows that cannot be imported, and the leads that can."""
    report = ImportReport()
    good: list[tuple[Row, LeadInput]] = []
    lines: dict[str, int] = {}  # lead id -> its first good line
    for row in rows:
        lead = _lead(row)
        outcome = None
        if isinstance(lead, str):
            outcome = Outcome(row.line, row.entity_id, Status.bad, lead)
        elif lead.lead_id in lines:
            outcome = Outcome(
                row.line,
                lead.lead_id,
                Status.duplicate,
                f"duplicate of {lead.lead_id} (line {lines[lead.lead_id]}; same id)",
            )
        else:
            with store.unit_of_work() as session:
                existing = session.get(schema.Lead, lead.lead_id)
                if existing is not None:
                    outcome = Outcome(
                        row.line,
                        lead.lead_id,
                        Status.duplicate,
                        f"duplicate of {lead.lead_id} (same id; it is {existing.stage})",
                    )
        if outcome is None:
            assert not isinstance(lead, str)
            lines[lead.lead_id] = row.line
            good.append((row, lead))
        else:
            report.outcomes.append(outcome)
            tick(outcome)
    return report, good


def leads_not_started(
    good: Iterable[tuple[Row, LeadInput]], report: ImportReport, *, tick: Tick
) -> None:
    """Good leads when no journey is started (a dry run, or no --start-journeys)."""
    for row, lead in good:
        outcome = Outcome(row.line, lead.lead_id, Status.valid)
        report.outcomes.append(outcome)
        tick(outcome)


async def start_lead_journeys(
    journeys: Journeys, good: list[tuple[Row, LeadInput]], report: ImportReport, *, tick: Tick
) -> None:
    """One LeadJourney per good lead; its intake writes the lead (and merges it
    into an open lead with the same contact)."""
    for row, lead in good:
        try:
            handle = await journeys.start_lead(lead)
        except WorkflowAlreadyStartedError:
            outcome = Outcome(
                row.line,
                lead.lead_id,
                Status.duplicate,
                f"duplicate of {lead.lead_id} (its journey "
                f"{lead_workflow_id(lead.lead_id)} exists)",
            )
        except RPCError as exc:
            outcome = Outcome(
                row.line,
                lead.lead_id,
                Status.bad,
                f"journey not started: Temporal said {exc.status.name}: {exc.message}",
            )
        else:
            outcome = Outcome(row.line, lead.lead_id, Status.imported, f"started {handle.id}")
        report.outcomes.append(outcome)
        tick(outcome)
