"""The `crm` command tree: the root app with its sub-apps, in the order the
help lists them."""

from __future__ import annotations

import typer

from starter.cli.contract import contract_app
from starter.cli.course import course_app
from starter.cli.customer import customer_app
from starter.cli.db import db_app
from starter.cli.importing import import_app
from starter.cli.lead import lead_app
from starter.cli.report import report
from starter.cli.rfm import rfm_app
from starter.cli.staff import staff_app
from starter.cli.ticket import ticket_app
from starter.cli.up import up

# Tracebacks stay short and without locals: locals hold settings, whose
# database URL may carry a password.
app = typer.Typer(
    name="crm",
    help="CRM customer journeys on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command("up")(up)
app.command("report")(report)
app.add_typer(lead_app, name="lead")
app.add_typer(course_app, name="course")
app.add_typer(contract_app, name="contract")
app.add_typer(staff_app, name="staff")
app.add_typer(customer_app, name="customer")
app.add_typer(ticket_app, name="ticket")
app.add_typer(rfm_app, name="rfm")
app.add_typer(import_app, name="import")
app.add_typer(db_app, name="db")
