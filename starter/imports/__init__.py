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

Reading a file is in `rows`; each kind is imported by its own module (`staff`,
`customers`, `leads`).
"""

from starter.imports.customers import import_customers
from starter.imports.leads import check_leads, leads_not_started, start_lead_journeys
from starter.imports.rows import (
    LIST_FIELDS,
    LIST_SEPARATOR,
    MODELS,
    ImportFileError,
    ImportReport,
    Outcome,
    Row,
    Status,
    Tick,
    columns,
    read_rows,
    required_columns,
    validation_problems,
)
from starter.imports.staff import import_staff

__all__ = [
    "ImportFileError",
    "ImportReport",
    "LIST_FIELDS",
    "LIST_SEPARATOR",
    "MODELS",
    "Outcome",
    "Row",
    "Status",
    "Tick",
    "check_leads",
    "columns",
    "import_customers",
    "import_staff",
    "leads_not_started",
    "read_rows",
    "required_columns",
    "start_lead_journeys",
    "validation_problems",
]
