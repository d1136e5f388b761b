"""`crm lead`: start a lead's journey, claim it, log contacts, convert or
discard it, and show where it stands."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from domain.vocabulary import CONTACT_CHANNELS
from starter.cli.common import (
    CliError,
    aware,
    console,
    decimal,
    load_settings,
    reports_errors,
    say,
    when,
)
from starter.cli.journey import Subject, journey_status, status_table, with_journeys

if TYPE_CHECKING:
    from rich.table import Table

    from domain.leads import LeadStatus
    from starter.client import Journeys

# The channels a contact may name: an enum the command line checks `--channel`
# against, from the word list the journeys read too.
Channel = StrEnum("Channel", {c: c for c in CONTACT_CHANNELS})

# Its help is its registry entry's (domain/registry.py): `crm --help` lists it
# without importing this module.
lead_app = typer.Typer(no_args_is_help=True)


@lead_app.command("new")
@reports_errors
def lead_new(
    lead_id: Annotated[str, typer.Option("--id", help="The CRM lead id (journey: lead-{id}).")],
    name: Annotated[str, typer.Option(help="The contact's name.")],
    region: Annotated[str, typer.Option(help="Sales region, for assignment.")],
    product_line: Annotated[str, typer.Option(help="Product line, for assignment.")],
    source: Annotated[str, typer.Option(help="web_form, mini_program, ecommerce, ...")],
    phone: Annotated[str | None, typer.Option(help="Phone; bare numbers are read as +86.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    company: Annotated[str | None, typer.Option(help="Company name.")] = None,
    need: Annotated[str | None, typer.Option(help="What the lead asked for.")] = None,
    locale: Annotated[str | None, typer.Option(help="zh-CN or en (default: configured).")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone, e.g. Asia/Shanghai.")] = None,
) -> None:
    """Start a lead's journey (intake, de-duplication, scoring, assignment)."""
    from domain.contact import InvalidContact, normalise_email, normalise_phone
    from domain.leads import LeadInput

    settings = load_settings()
    # The journey normalises contact details itself; checking here too means a
    # typo is a message now rather than a failed journey later.
    try:
        if phone:
            normalise_phone(phone)
        if email:
            normalise_email(email)
    except InvalidContact as exc:
        raise CliError(str(exc)) from exc
    if not (phone or email or company):
        raise CliError("a lead needs --phone, --email or --company")
    lead = LeadInput(
        lead_id=lead_id,
        name=name,
        phone=phone,
        email=email,
        company=company,
        region=region,
        product_line=product_line,
        source=source,
        need=need,
        locale=locale,
        timezone=timezone,
    )

    async def start(journeys: Journeys) -> None:
        await journeys.start_lead(lead)

    subject = Subject.lead(lead_id)
    with_journeys(settings, subject, start)
    subject.say_started("LeadJourney", settings.task_queue)


@lead_app.command("claim")
@reports_errors
def lead_claim(
    lead_id: Annotated[str, typer.Argument(help="The lead to claim from the pool.")],
    owner_id: Annotated[str, typer.Argument(help="The rep who takes it.")],
) -> None:
    """Claim a pooled lead for a rep; says at once whether it was accepted."""
    settings = load_settings()
    decision = with_journeys(
        settings, Subject.lead(lead_id), lambda journeys: journeys.claim_lead(lead_id, owner_id)
    )
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"accepted: {owner_id} owns lead {lead_id}; first touch due {when(decision.due_at)}")


@lead_app.command("contact")
@reports_errors
def lead_contact(
    lead_id: Annotated[str, typer.Argument(help="The lead contacted.")],
    owner_id: Annotated[str, typer.Argument(help="The owner who made the contact.")],
    channel: Annotated[Channel, typer.Option(help="How the lead was reached.")],
    note: Annotated[str | None, typer.Option(help="What was said.")] = None,
    at: Annotated[
        str | None, typer.Option(help="When, ISO-8601 with offset (default: now).")
    ] = None,
) -> None:
    """Log a contact with a lead; prints when the next follow-up is due."""
    from domain.leads import LogContact

    settings = load_settings()
    contact = LogContact(
        owner_id=owner_id, channel=channel, note=note, at=aware(at, "--at")
    )
    decision = with_journeys(
        settings, Subject.lead(lead_id), lambda journeys: journeys.log_contact(lead_id, contact)
    )
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"logged; next follow-up due {when(decision.due_at)}")


@lead_app.command("convert")
@reports_errors
def lead_convert(
    lead_id: Annotated[str, typer.Argument(help="The lead that became an opportunity.")],
    name: Annotated[str | None, typer.Option(help="Opportunity name.")] = None,
    amount: Annotated[str | None, typer.Option(help="Expected amount, e.g. 120000.00.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "CNY",
) -> None:
    """Convert a lead into an opportunity (signal); the journey ends."""
    from domain.leads import Convert

    settings = load_settings()
    value = decimal(amount, "--amount") if amount is not None else None
    convert = Convert(opportunity_name=name, amount=value, currency=currency.upper())
    subject = Subject.lead(lead_id)
    with_journeys(settings, subject, lambda journeys: journeys.convert_lead(lead_id, convert))
    say(f"convert sent to {subject.workflow_id}; see `crm lead status {lead_id}`")


@lead_app.command("discard")
@reports_errors
def lead_discard(
    lead_id: Annotated[str, typer.Argument(help="The lead to drop.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the lead).")],
) -> None:
    """Discard a lead with a reason (signal); the journey ends."""
    settings = load_settings()
    if not reason.strip():
        raise CliError("--reason must say why the lead is discarded")
    subject = Subject.lead(lead_id)
    with_journeys(settings, subject, lambda journeys: journeys.discard_lead(lead_id, reason))
    say(f"discard sent to {subject.workflow_id}; see `crm lead status {lead_id}`")


def _status_table(status: LeadStatus) -> Table:
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value),
        ("owner", status.owner_id or "-"),
        ("score", status.score if status.score is not None else "-"),
        ("waiting for", status.waiting_for or "-"),
        ("deadline", when(status.deadline)),
        ("contacts", status.contacts),
        ("missed follow-ups", status.missed_follow_ups),
        ("reassignments", status.reassignments),
        ("previous owners", ", ".join(status.previous_owners) or "-"),
        ("merged leads", ", ".join(status.merged_leads) or "-"),
        ("opportunity", status.opportunity_id or "-"),
    ]
    return status_table(f"lead {status.lead_id}", rows, status)


@lead_app.command("status")
@reports_errors
def lead_status(
    lead_id: Annotated[str, typer.Argument(help="The lead.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show where a lead's journey stands; a failed journey says why (exit 1)."""
    from domain.leads import LeadStatus

    settings = load_settings()
    status = journey_status(
        settings, Subject.lead(lead_id), LeadStatus, lambda journeys: journeys.lead_status(lead_id)
    )
    if as_json:
        # Plain print: JSON must not be wrapped or styled.
        typer.echo(status.model_dump_json(indent=2))
    else:
        console().print(_status_table(status))


@lead_app.command("erase")
@reports_errors
def lead_erase(
    lead_id: Annotated[str, typer.Argument(help="The lead to erase.")],
    reason: Annotated[str, typer.Option(help="Why (the request it honours; kept with the "
                                        "record of the erasure).")],
    by: Annotated[str | None, typer.Option(help="Who asks (default: your login name).")] = None,
) -> None:
    """Erase a lead on request: personal fields tombstoned in the store, consent
    removed, its journey terminated; prints which histories still hold encrypted copies."""
    from starter.cli.erasure import erase

    erase("lead", lead_id, reason=reason, by=by)
