"""`crm loyalty`: join the programme (the membership journey), report refunds,
behaviour, grants and redemptions to it, and read a member's balance, ledger
and level, and the programme's figures. Orders reach a member's journey with
`crm customer purchase`, as they reach the customer's lifecycle."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer

from starter.cli.common import (
    CliError,
    aware,
    console,
    load_settings,
    open_store,
    reports_errors,
    say,
    when,
)
from starter.cli.journey import Subject, journey_status, status_table, with_journeys

if TYPE_CHECKING:
    from starter.client import Journeys

# Its help is its registry entry's (domain/registry.py): `crm --help` lists it
# without importing this module.
loyalty_app = typer.Typer(no_args_is_help=True)


def member_subject(customer_id: str) -> Subject:
    return Subject(noun="member", entity_id=customer_id,
                   workflow_id=f"membership-{customer_id}",
                   status_command=f"crm loyalty level {customer_id}",
                   pending="A refund, grant or redemption",
                   hint="a customer joins with `crm loyalty join`")


@loyalty_app.command("join")
@reports_errors
def loyalty_join(
    customer_id: Annotated[str, typer.Argument(help="The customer who joins.")],
    birth_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD: the birthday month's "
                                                        "gift and triple points.")] = None,
    referral_code: Annotated[str | None, typer.Option(
        help="The code of the member who brought them.")] = None,
    joined_at: Annotated[str | None, typer.Option(
        help="When they joined, ISO-8601 with offset (default: now); the yearly cycle "
             "runs from then.")] = None,
) -> None:
    """Start the customer's membership journey (membership-{id})."""
    from starter.loyalty import join

    settings = load_settings()
    try:
        born = date.fromisoformat(birth_date) if birth_date else None
    except ValueError as exc:
        raise CliError(f"--birth-date {birth_date!r} is not YYYY-MM-DD") from exc
    joined = aware(joined_at, "--joined-at")

    async def start(journeys: Journeys) -> None:
        await join(journeys.client, settings.task_queue, customer_id, birth_date=born,
                   referral_code=referral_code, joined_at=joined)

    subject = member_subject(customer_id)
    with_journeys(settings, subject, start)
    subject.say_started("MembershipJourney", settings.task_queue)


def _signal(customer_id: str, name: str, payload: Any, what: str) -> None:
    from starter.loyalty import tell_membership

    settings = load_settings()
    subject = member_subject(customer_id)

    async def send(journeys: Journeys) -> CliError | None:
        if not await tell_membership(journeys.client, customer_id, name, payload):
            return CliError(f"{customer_id} is not a member: {subject.hint}")
        return None

    with_journeys(settings, subject, send)
    subject.say_sent(what)


def _ask(customer_id: str, update: str, payload: Any, done: str) -> None:
    from starter.loyalty import ask

    settings = load_settings()
    decision = with_journeys(settings, member_subject(customer_id),
                             lambda journeys: ask(journeys.client, customer_id, update, payload))
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"accepted: {done}" + (f" ({decision.reason})" if decision.reason else ""))


@loyalty_app.command("refund")
@reports_errors
def loyalty_refund(
    customer_id: Annotated[str, typer.Argument(help="The member.")],
    order: Annotated[str, typer.Option(help="The refunded order: what it earned is reversed.")],
    reason: Annotated[str, typer.Option(help="Why.")] = "refund",
) -> None:
    """Reverse the points an order earned (signal)."""
    from domain.loyalty import Refund

    _signal(customer_id, "refund", Refund(order_id=order, reason=reason), f"refund of {order}")


@loyalty_app.command("behaviour")
@reports_errors
def loyalty_behaviour(
    customer_id: Annotated[str, typer.Argument(help="The member.")],
    kind: Annotated[str, typer.Option(help="share, check_in or survey.")],
    ref: Annotated[str, typer.Option(help="The share, check-in or survey id (earns once).")],
) -> None:
    """Behaviour points: a share, a check-in, a survey (signal)."""
    from domain.loyalty import Behaviour

    _signal(customer_id, "behaviour", Behaviour(kind=kind, ref=ref), f"{kind} {ref}")


@loyalty_app.command("grant")
@reports_errors
def loyalty_grant(
    customer_id: Annotated[str, typer.Argument(help="The member.")],
    points: Annotated[int, typer.Option(help="Points to grant.")],
    reason: Annotated[str, typer.Option(help="Why (e.g. late delivery).")],
    by: Annotated[str, typer.Option(help="The staff id granting them.")],
    ref: Annotated[str, typer.Option(help="The grant's id (a repeat is one grant).")] = "",
) -> None:
    """Grant compensation points; says at once whether it was accepted."""
    from domain.loyalty import Grant

    _ask(customer_id, "grant_now", Grant(points=points, reason=reason, staff_id=by, ref=ref),
         f"{points} points granted to {customer_id}")


@loyalty_app.command("redeem")
@reports_errors
def loyalty_redeem(
    customer_id: Annotated[str, typer.Argument(help="The member.")],
    points: Annotated[int, typer.Option(help="Points to redeem.")],
    for_: Annotated[str, typer.Option("--for", help="The goods, service or cash off.")],
    ref: Annotated[str, typer.Option(help="The redemption's id (a retry is one).")] = "",
) -> None:
    """Redeem points (refused beyond the balance); prints the receipt."""
    from domain.loyalty import Redeem

    _ask(customer_id, "redeem_now", Redeem(points=points, for_=for_, ref=ref),
         f"{points} points redeemed for {for_}")


@loyalty_app.command("balance")
@reports_errors
def loyalty_balance(customer_id: Annotated[str, typer.Argument(help="The member.")]) -> None:
    """The member's points balance, from the store."""
    from starter.loyalty import ledger

    with open_store(load_settings()) as store:
        rows = ledger(store, customer_id)
    say(f"{customer_id}: {rows[-1].balance_after if rows else 0} points")


@loyalty_app.command("history")
@reports_errors
def loyalty_history(customer_id: Annotated[str, typer.Argument(help="The member.")]) -> None:
    """Every credit and debit of the member's points, with the balance after each."""
    from rich.table import Table

    from starter.loyalty import ledger

    with open_store(load_settings()) as store:
        rows = ledger(store, customer_id)
    if not rows:
        say(f"{customer_id}: no points yet")
        return
    table = Table(title=f"points of {customer_id}")
    for column in ("at", "kind", "points", "balance", "source", "reason", "expires"):
        table.add_column(column)
    for r in rows:
        table.add_row(when(r.at), r.kind, f"{r.points:+d}", str(r.balance_after), r.source,
                      r.reason, when(r.expires_at) if r.points > 0 else "")
    console().print(table)


@loyalty_app.command("level")
@reports_errors
def loyalty_level(
    customer_id: Annotated[str, typer.Argument(help="The member.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """The member's level, discount, year, next dates and referral code."""
    from domain.loyalty import MembershipStatus
    from starter.loyalty import status

    settings = load_settings()
    got = journey_status(settings, member_subject(customer_id), MembershipStatus,
                         lambda journeys: status(journeys.client, customer_id))
    if as_json:
        typer.echo(got.model_dump_json(indent=2))
        return
    console().print(status_table(f"member {customer_id}", [
        ("level", f"{got.level} ({got.discount_percent}% off)"),
        ("stage", got.stage.value), ("membership year", str(got.cycle)),
        ("joined", when(got.joined_at)), ("anniversary", when(got.anniversary_at)),
        ("retention offer", when(got.retention_offer_at)),
        ("birthday gift", when(got.birthday_at)), ("points expire", when(got.next_expiry_at)),
        ("referral code", got.referral_code or "-"), ("referred by", got.referrer_id or "-"),
    ], got))


@loyalty_app.command("report")
@reports_errors
def loyalty_report(
    start: Annotated[str, typer.Option("--from", help="ISO-8601 with offset.")],
    end: Annotated[str, typer.Option("--to", help="ISO-8601 with offset (exclusive).")],
) -> None:
    """The programme's figures for a period: points issued, redeemed, expired;
    members per level; level changes; retention offers taken up; referrals."""
    import json

    from starter.loyalty import figures

    begin, finish = aware(start, "--from"), aware(end, "--to")
    assert begin is not None and finish is not None
    with open_store(load_settings()) as store:
        typer.echo(json.dumps(figures(store, begin, finish), indent=2))
