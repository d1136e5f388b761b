"""Importing staff: managers before the people who report to them."""

from __future__ import annotations

from datetime import datetime

from activities.store import Store
from activities.store.staff import StaffMember
from domain import schema
from starter.imports.rows import (
    ImportReport,
    Outcome,
    Row,
    Status,
    Tick,
    parse_row,
)


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
        member = parse_row(row, StaffMember)
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
