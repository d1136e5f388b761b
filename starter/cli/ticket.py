"""`crm ticket`: open a support ticket (its journey), record responses, the
customer's waits and replies, the resolution, reopening and rating, and show
its SLA figures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from starter.cli.common import CliError, console, load_settings, reports_errors, say, when
from starter.cli.journey import Subject, journey_status, status_table, with_journeys

if TYPE_CHECKING:
    from starter.client import Journeys

# Its help is its registry entry's (domain/registry.py): `crm --help` lists it
# without importing this module.
ticket_app = typer.Typer(no_args_is_help=True)


def _decided(decision: Any, done: str) -> None:
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"accepted: {done}" + (f" ({decision.reason})" if decision.reason else ""))


@ticket_app.command("open")
@reports_errors
def ticket_open(
    ticket_id: Annotated[str, typer.Option("--id", help="The ticket id (journey: ticket-{id}).")],
    customer: Annotated[str, typer.Option(help="The customer's id.")],
    ticket_type: Annotated[
        str, typer.Option("--type", help="technical, after_sales, complaint, order_query, other.")
    ],
    subject: Annotated[str, typer.Option(help="The ticket's subject.")],
    priority: Annotated[str, typer.Option(help="urgent, high, normal or low.")] = "normal",
    channel: Annotated[str, typer.Option(help="Where it came in (web, email, phone…).")] = "web",
    description: Annotated[str | None, typer.Option(help="The customer's words.")] = None,
) -> None:
    """Open a ticket: routed to its group, the first-response clock starts."""
    from domain.tickets import Priority, TicketInput, TicketType

    settings = load_settings()
    if ticket_type not in {t.value for t in TicketType}:
        raise CliError(f"--type {ticket_type!r} is not one of: "
                       + ", ".join(t.value for t in TicketType))
    if priority not in {p.value for p in Priority}:
        raise CliError(f"--priority {priority!r} is not one of: "
                       + ", ".join(p.value for p in Priority))
    ticket = TicketInput.model_validate({
        "ticket_id": ticket_id, "customer_id": customer, "type": ticket_type,
        "priority": priority, "subject": subject, "channel": channel,
        "description": description})

    async def start(journeys: Journeys) -> str:
        return (await journeys.open_ticket(ticket)).id

    say(with_journeys(settings, Subject.ticket(ticket_id), start))
    say(f"see `crm ticket status {ticket_id}`", style="dim")


@ticket_app.command("respond")
@reports_errors
def ticket_respond(
    ticket_id: Annotated[str, typer.Argument(help="The ticket.")],
    agent_id: Annotated[str, typer.Argument(help="The agent who answered.")],
    note: Annotated[str | None, typer.Option(help="What was said.")] = None,
) -> None:
    """Record the first (or a later) response; says at once whether it was accepted."""
    settings = load_settings()
    decision = with_journeys(settings, Subject.ticket(ticket_id),
                             lambda journeys: journeys.respond(ticket_id, agent_id, note))
    _decided(decision, f"{agent_id} responded on ticket {ticket_id}")


@ticket_app.command("wait")
@reports_errors
def ticket_wait(ticket_id: Annotated[str, typer.Argument(help="The ticket.")]) -> None:
    """The ticket waits on the customer: the SLA clock pauses (signal)."""
    settings = load_settings()
    with_journeys(settings, Subject.ticket(ticket_id),
                  lambda journeys: journeys.wait_on_customer(ticket_id))
    say(f"sent; see `crm ticket status {ticket_id}`")


@ticket_app.command("reply")
@reports_errors
def ticket_reply(ticket_id: Annotated[str, typer.Argument(help="The ticket.")]) -> None:
    """The customer replied: the SLA clock runs again (signal)."""
    settings = load_settings()
    with_journeys(settings, Subject.ticket(ticket_id),
                  lambda journeys: journeys.customer_replied(ticket_id))
    say(f"sent; see `crm ticket status {ticket_id}`")


@ticket_app.command("resolve")
@reports_errors
def ticket_resolve(
    ticket_id: Annotated[str, typer.Argument(help="The ticket.")],
    agent_id: Annotated[str, typer.Argument(help="The agent who resolved it.")],
    resolution: Annotated[str, typer.Option(help="What was done.")],
) -> None:
    """Resolve a ticket: the customer gets the notice and a rating request."""
    settings = load_settings()
    decision = with_journeys(settings, Subject.ticket(ticket_id),
                             lambda journeys: journeys.resolve(ticket_id, agent_id, resolution))
    _decided(decision, f"ticket {ticket_id} resolved by {agent_id}")


@ticket_app.command("reopen")
@reports_errors
def ticket_reopen(
    ticket_id: Annotated[str, typer.Argument(help="The ticket.")],
    reason: Annotated[str, typer.Option(help="Why the customer reopened it.")],
) -> None:
    """Reopen a resolved ticket (signal): the resolution clock goes on from the time used."""
    settings = load_settings()
    with_journeys(settings, Subject.ticket(ticket_id),
                  lambda journeys: journeys.reopen(ticket_id, reason))
    say(f"sent; see `crm ticket status {ticket_id}`")


@ticket_app.command("transfer")
@reports_errors
def ticket_transfer(
    ticket_id: Annotated[str, typer.Argument(help="The ticket.")],
    to_group: Annotated[str, typer.Option("--to", help="The group that takes it over.")],
    reason: Annotated[str, typer.Option(help="Why it goes to that team.")],
    by: Annotated[str, typer.Option(help="Who hands it over (staff id).")],
) -> None:
    """Hand the ticket to another team (signal): its least-loaded agent takes it;
    the SLA clock keeps running."""
    from domain.tickets import Transfer

    settings = load_settings()
    transfer = Transfer(to_group=to_group, reason=reason, by=by)
    with_journeys(settings, Subject.ticket(ticket_id),
                  lambda journeys: journeys.ticket(ticket_id).signal("transfer", transfer))
    say(f"sent; see `crm ticket status {ticket_id}`")


@ticket_app.command("rate")
@reports_errors
def ticket_rate(
    ticket_id: Annotated[str, typer.Argument(help="The ticket.")],
    score: Annotated[int, typer.Option(help="1 to 5; below 3 reopens and escalates.")],
    comment: Annotated[str | None, typer.Option(help="The customer's comment.")] = None,
) -> None:
    """The customer's rating; says at once whether it was accepted."""
    settings = load_settings()
    if not 1 <= score <= 5:
        raise CliError(f"--score {score} is not between 1 and 5")
    decision = with_journeys(settings, Subject.ticket(ticket_id),
                             lambda journeys: journeys.rate(ticket_id, score, comment))
    _decided(decision, f"rating {score} on ticket {ticket_id}")


@ticket_app.command("status")
@reports_errors
def ticket_status(
    ticket_id: Annotated[str, typer.Argument(help="The ticket.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """A ticket's stage, owner and SLA figures; a failed journey says why (exit 1)."""
    from domain.ticket_status import TicketStatus

    settings = load_settings()
    subject = Subject.ticket(ticket_id)
    status = journey_status(
        settings, subject, TicketStatus, lambda journeys: journeys.ticket_status(ticket_id)
    )
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
        return
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value), ("type", status.type.value),
        ("priority", status.priority.value + (" (raised)" if status.priority_raised else "")),
        ("group", status.group or "-"), ("assignee", status.assignee_id or "-"),
        ("first response due", when(status.first_response_due)),
        ("first response", when(status.first_response_at)),
        ("resolution due", when(status.resolution_due)),
        ("SLA clock", status.sla_clock or "-"), ("time used", str(status.time_used)),
        ("time paused", str(status.time_paused)), ("breaches", str(len(status.breaches))),
        ("escalations", str(len(status.escalations))), ("reopens", str(status.reopens)),
    ]
    console().print(status_table(f"ticket {status.ticket_id}", rows, status))
