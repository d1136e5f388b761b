"""An import file's rows: reading a CSV file into rows checked against the
model of its kind, and the outcome of each row."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from activities.store.customers import CustomerRecord
from activities.store.staff import StaffMember
from domain.leads import LeadInput

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


def parse_row(row: Row, model: type[M]) -> M | str:
    """The row as `model`, or why it is not one."""
    if row.problem:
        return row.problem
    try:
        return model.model_validate(_fields(row))
    except ValidationError as exc:
        return validation_problems(exc)
