"""Bulk import from CSV: staff, customers and leads (the `crm import` commands).

A file has a header row of the models' field names (`StaffMember`,
`CustomerRecord`, `LeadInput`); list fields (`regions`, `product_lines`) hold
their items separated by ";"; an empty cell takes the model's default. Every
row is checked with the model the single-record commands use, contact details
normalised by `domain.contact`. A bad row is reported with its line number and
why, and skipped; so is a duplicate. Each good row is checked against the
store and written in one unit of work of its own, so a failure never leaves
half a row, and the rows before it stay imported.

De-duplication is lead intake's: a customer with the same id, or the same
normalised phone or e-mail or company key as a customer already in the store
(or earlier in the file), is a duplicate of that customer; a staff member or a
lead whose id exists is a duplicate. Leads are not written here at all: a
lead's journey writes it at intake (and merges it into an open lead with the
same contact), so importing leads means starting their journeys.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ValidationError
from sqlalchemy import or_, select
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.store import Store
from activities.store.customers import CustomerRecord
from activities.store.staff import StaffMember
from domain import schema
from domain.contact import InvalidContact, company_key, normalise_email, normalise_phone
from domain.leads import LeadInput, lead_workflow_id
from starter.client import Journeys

LIST_SEPARATOR = ";"
LIST_FIELDS = frozenset({"regions", "product_lines"})


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, or its header is wrong)."""


class Status(StrEnum):
    imported = "imported"  # written, or its journey started
    valid = "valid"  # passed every check; nothing written (a dry run, or leads not started)
    duplicate = "duplicate"
    bad = "bad"


@dataclass(frozen=True)
class Row:
    line: int  # where the row starts in the file (the header is line 1)
    values: dict[str, str]  # the non-empty cells, stripped, by column
    problem: str | None = None  # a row that cannot even be read as cells

    @property
    def entity_id(self) -> str | None:
        return self.values.get("id") or self.values.get("lead_id")


@dataclass(frozen=True)
class Outcome:
    line: int
    entity_id: str | None
    status: Status
    detail: str = ""


@dataclass
class ImportReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def of(self, status: Status) -> list[Outcome]:
        return sorted((o for o in self.outcomes if o.status is status), key=lambda o: o.line)

    @property
    def exit_code(self) -> int:
        """1 only when there were rows and every one was bad."""
        bad = self.of(Status.bad)
        return 1 if self.outcomes and len(bad) == len(self.outcomes) else 0


Tick = Callable[[Outcome], None]
M = TypeVar("M", bound=BaseModel)


def validation_problems(exc: ValidationError) -> str:
    """One clause per invalid field, naming the field and the value given."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "input"
        if error["type"] == "missing":
            lines.append(f"{where} is required")
            continue
        message = error["msg"].removeprefix("Value error, ")
        given = error.get("input")
        if given is not None and not isinstance(given, dict) and repr(given) not in message:
            message += f" (got {given!r})"
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


# -- reading the file ------------------------------------------------------------------


MODELS: dict[str, type[BaseModel]] = {
    "staff": StaffMember,
    "customers": CustomerRecord,
    "leads": LeadInput,
}


def _model(kind: str) -> type[BaseModel]:
    return MODELS[kind]


def columns(kind: str) -> list[str]:
    """The columns a file of `kind` may have: the model's fields (a lead's policy
    is the journey's own, not a column)."""
    return [name for name in _model(kind).model_fields if name != "policy"]


def required_columns(kind: str) -> list[str]:
    fields = _model(kind).model_fields
    return [name for name in columns(kind) if fields[name].is_required()]


def read_rows(path: Path, kind: str) -> list[Row]:
    """The rows of a CSV file, with their line numbers; blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM, as spreadsheets write, is dropped
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[Row] = []
    header: list[str] | None = None
    ended = 0  # the line the previous record ended on
    try:
        for cells in reader:
            line, ended = ended + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = _header(path, kind, cells)
                continue
            if len(cells) > len(header):
                rows.append(Row(line, {}, f"{len(cells)} cells, but the header has {len(header)}"))
                continue
            values = {name: cell.strip() for name, cell in zip(header, cells, strict=False)}
            rows.append(Row(line, {name: value for name, value in values.items() if value}))
    except csv.Error as exc:
        raise ImportFileError(f"{path} line {reader.line_num}: not CSV: {exc}") from exc
    return rows


def _header(path: Path, kind: str, cells: list[str]) -> list[str]:
    header = [cell.strip() for cell in cells]
    known = columns(kind)
    unknown = [name for name in header if name not in known]
    if unknown:
        raise ImportFileError(
            f"{path}: unknown column(s) {', '.join(repr(n) for n in unknown)}; "
            f"{kind} columns are: {', '.join(known)}"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ImportFileError(f"{path}: column(s) {', '.join(repeated)} appear more than once")
    missing = [name for name in required_columns(kind) if name not in header]
    if missing:
        raise ImportFileError(
            f"{path}: the header lacks the required column(s) {', '.join(missing)}"
        )
    return header


def _fields(row: Row) -> dict[str, Any]:
    return {
        name: [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]
        if name in LIST_FIELDS
        else value
        for name, value in row.values.items()
    }


def _parse(row: Row, model: type[M]) -> M | str:
    """The row as `model`, or why it is not one."""
    if row.problem:
        return row.problem
    try:
        return model.model_validate(_fields(row))
    except ValidationError as exc:
        return validation_problems(exc)


# -- staff -----------------------------------------------------------------------------


def import_staff(
    store: Store, rows: list[Row], *, now: datetime, dry_run: bool, tick: Tick
) -> ImportReport:
    """Managers are imported before the staff who report to them, wherever they
    stand in the file; a manager neither in the store nor imported makes a bad row."""
    report = ImportReport()

    def done(outcome: Outcome) -> None:
        report.outcomes.append(outcome)
        tick(outcome)

    parsed: list[tuple[Row, StaffMember]] = []
    first: dict[str, int] = {}  # staff id -> the line it first appears on
    for row in rows:
        member = _parse(row, StaffMember)
        if isinstance(member, str):
            done(Outcome(row.line, row.entity_id, Status.bad, member))
        elif member.id in first:
            detail = f"duplicate of {member.id} (line {first[member.id]}; same id)"
            done(Outcome(row.line, member.id, Status.duplicate, detail))
        else:
            first[member.id] = row.line
            parsed.append((row, member))

    imported: set[str] = set()  # staff ids imported (or that would be, in a dry run)
    for row, member in _managers_first(parsed):
        with store.unit_of_work() as session:
            if session.get(schema.Staff, member.id) is not None:
                outcome = Outcome(
                    row.line,
                    member.id,
                    Status.duplicate,
                    f"duplicate of {member.id} (same id; `crm staff add` changes it)",
                )
            elif (
                member.manager_id
                and member.manager_id not in imported
                and session.get(schema.Staff, member.manager_id) is None
            ):
                outcome = Outcome(
                    row.line, member.id, Status.bad, f"manager {member.manager_id!r} does not exist"
                )
            else:
                if not dry_run:
                    session.add(schema.Staff(**member.model_dump(), created_at=now))
                imported.add(member.id)
                outcome = Outcome(row.line, member.id, Status.valid if dry_run else Status.imported)
        done(outcome)
    return report


def _managers_first(
    parsed: list[tuple[Row, StaffMember]],
) -> list[tuple[Row, StaffMember]]:
    """File order, except that a row comes after the row of its manager."""
    by_id = {member.id: member for _, member in parsed}  # ids are unique by now

    def depth(member: StaffMember) -> int:
        seen = {member.id}
        n = 0
        while member.manager_id in by_id and member.manager_id not in seen:
            member = by_id[member.manager_id]
            seen.add(member.id)
            n += 1
        return n

    return sorted(parsed, key=lambda pair: depth(pair[1]))  # stable: file order within a level


# -- customers -------------------------------------------------------------------------


def _customer_keys(customer: CustomerRecord) -> list[tuple[str, str]]:
    keys = [
        ("id", customer.id),
        ("phone", customer.phone),
        ("email", customer.email),
        ("company", company_key(customer.company) if customer.company else None),
    ]
    return [(label, value) for label, value in keys if value]


_CUSTOMER_COLUMNS = {
    "id": schema.Customer.id,
    "phone": schema.Customer.phone,
    "email": schema.Customer.email,
    "company": schema.Customer.company_key,
}


def import_customers(
    store: Store, rows: list[Row], *, now: datetime, dry_run: bool, tick: Tick
) -> ImportReport:
    report = ImportReport()
    seen: dict[tuple[str, str], tuple[str, int]] = {}  # (key, value) -> (customer id, line)
    for row in rows:
        outcome = _import_customer(store, row, seen, now=now, dry_run=dry_run)
        report.outcomes.append(outcome)
        tick(outcome)
    return report


def _import_customer(
    store: Store,
    row: Row,
    seen: dict[tuple[str, str], tuple[str, int]],
    *,
    now: datetime,
    dry_run: bool,
) -> Outcome:
    customer = _parse(row, CustomerRecord)
    if isinstance(customer, str):
        return Outcome(row.line, row.entity_id, Status.bad, customer)
    keys = _customer_keys(customer)
    for key in keys:
        if key in seen:
            other, line = seen[key]
            return Outcome(
                row.line,
                customer.id,
                Status.duplicate,
                f"duplicate of {other} (line {line}; same {_what(key)})",
            )
    with store.unit_of_work() as session:
        if customer.owner_id and session.get(schema.Staff, customer.owner_id) is None:
            return Outcome(
                row.line, customer.id, Status.bad, f"owner {customer.owner_id!r} is not staff"
            )
        match = session.execute(
            select(schema.Customer.id, *[_CUSTOMER_COLUMNS[label] for label, _ in keys])
            .where(or_(*[_CUSTOMER_COLUMNS[label] == value for label, value in keys]))
            .order_by(schema.Customer.created_at, schema.Customer.id)
            .limit(1)
        ).first()
        if match is not None:
            same = next(key for key, found in zip(keys, match[1:], strict=True) if found == key[1])
            return Outcome(
                row.line,
                customer.id,
                Status.duplicate,
                f"duplicate of {match[0]} (same {_what(same)})",
            )
        if not dry_run:
            values = customer.model_dump()
            values["company_key"] = company_key(customer.company) if customer.company else None
            session.add(schema.Customer(**values, created_at=now))
    for key in keys:
        seen[key] = (customer.id, row.line)
    return Outcome(row.line, customer.id, Status.valid if dry_run else Status.imported)


def _what(key: tuple[str, str]) -> str:
    label, value = key
    return "id" if label == "id" else f"{label} {value}"


# -- leads -----------------------------------------------------------------------------


def _lead(row: Row) -> LeadInput | str:
    """Intake's checks, made before a journey starts: the required fields, the
    contact details, at least one way to reach the lead, a known time zone."""
    if row.problem:
        return row.problem
    lead = _parse(row, LeadInput)
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
