"""`crm opportunity`: open an opportunity (its pipeline journey), move it
forward, keep its forecast, log activities, send the quote, win it (the
contract and its payment journey) or lose it with a reason code, and show
where it stands."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer

from starter.cli.common import (
    CliError,
    aware,
    console,
    currency_code,
    load_settings,
    money,
    reports_errors,
    say,
    when,
)
from starter.cli.journey import Subject, journey_status, status_table, with_journeys

if TYPE_CHECKING:
    from rich.table import Table

    from domain.journeys import Decision
    from domain.opportunities import OpportunityStatus
    from starter.client import Journeys

# Its help is its registry entry's (domain/registry.py): `crm --help` lists it
# without importing this module.
opportunity_app = typer.Typer(no_args_is_help=True)


def _subject(opportunity_id: str) -> Subject:
    from domain.opportunities import opportunity_workflow_id

    return Subject(noun="opportunity", entity_id=opportunity_id,
                   workflow_id=opportunity_workflow_id(opportunity_id),
                   status_command=f"crm opportunity status {opportunity_id}",
                   pending="A stage move, win or loss")


def _opportunities(journeys: Journeys) -> Any:
    from starter.opportunities import Opportunities

    return Opportunities(journeys.client, task_queue=journeys.task_queue)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CliError(f"{option} {value!r} is not an ISO date such as 2026-03-31") from exc


def _answered(decision: Decision, what: str) -> None:
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"accepted: {what}")


@opportunity_app.command("start")
@reports_errors
def opportunity_start(
    opportunity_id: Annotated[str, typer.Option("--id", help="Journey: opportunity-{id}.")],
    customer: Annotated[str, typer.Option(help="The customer's id.")],
    owner: Annotated[str, typer.Option(help="The owning rep's staff id.")],
    name: Annotated[str | None, typer.Option(help="The opportunity's name.")] = None,
    amount: Annotated[str | None, typer.Option(help="Expected amount.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency.")] = "CNY",
    close_date: Annotated[str | None, typer.Option(help="Expected close date, ISO.")] = None,
) -> None:
    """Open an opportunity in needs analysis: start its pipeline journey."""
    from domain.opportunities import OpportunityInput

    settings = load_settings()
    code = currency_code(currency)
    opportunity = OpportunityInput(
        opportunity_id=opportunity_id, customer_id=customer, owner_id=owner, name=name,
        amount=money(amount, code) if amount is not None else None, currency=code,
        close_date=_day(close_date, "--close-date"))

    async def start(journeys: Journeys) -> None:
        await _opportunities(journeys).start(opportunity)

    subject = _subject(opportunity_id)
    with_journeys(settings, subject, start)
    subject.say_started("OpportunityJourney", settings.task_queue)


@opportunity_app.command("advance")
@reports_errors
def opportunity_advance(
    opportunity_id: Annotated[str, typer.Argument(help="The opportunity.")],
    stage: Annotated[str, typer.Argument(help="proposal or negotiation (forward only).")],
    note: Annotated[str | None, typer.Option(help="What moved it.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why a stage is skipped.")] = None,
) -> None:
    """Move the opportunity to a later stage; says at once whether it was accepted."""
    from domain.opportunities import Advance

    settings = load_settings()
    advance = Advance(stage=stage, note=note, reason=reason)
    decision = with_journeys(settings, _subject(opportunity_id),
                             lambda j: _opportunities(j).advance(opportunity_id, advance))
    _answered(decision, f"{opportunity_id} is in {stage}")


@opportunity_app.command("forecast")
@reports_errors
def opportunity_forecast(
    opportunity_id: Annotated[str, typer.Argument(help="The opportunity.")],
    amount: Annotated[str | None, typer.Option(help="New expected amount.")] = None,
    close_date: Annotated[str | None, typer.Option(help="New expected close date.")] = None,
) -> None:
    """Change the expected amount or close date (signal)."""
    from decimal import Decimal

    from domain.opportunities import UpdateForecast

    settings = load_settings()
    if amount is None and close_date is None:
        raise CliError("give --amount or --close-date")
    forecast = UpdateForecast(amount=Decimal(amount) if amount else None,
                              close_date=_day(close_date, "--close-date"))
    subject = _subject(opportunity_id)
    with_journeys(settings, subject,
                  lambda j: _opportunities(j).update_forecast(opportunity_id, forecast))
    subject.say_sent("forecast")


@opportunity_app.command("activity")
@reports_errors
def opportunity_activity(
    opportunity_id: Annotated[str, typer.Argument(help="The opportunity.")],
    owner_id: Annotated[str, typer.Argument(help="The owner who did it.")],
    kind: Annotated[str, typer.Option(help="call, visit, meeting, email, chat, demo.")],
    note: Annotated[str | None, typer.Option(help="What happened.")] = None,
) -> None:
    """Log an activity on the opportunity (signal): the stall clock starts over."""
    from domain.opportunities import LogActivity

    settings = load_settings()
    logged = LogActivity(owner_id=owner_id, kind=kind, note=note)
    subject = _subject(opportunity_id)
    with_journeys(settings, subject,
                  lambda j: _opportunities(j).log_activity(opportunity_id, logged))
    subject.say_sent("activity")


@opportunity_app.command("quote")
@reports_errors
def opportunity_quote(
    opportunity_id: Annotated[str, typer.Argument(help="The opportunity.")],
    amount: Annotated[str, typer.Option(help="The quoted amount.")],
    valid_until: Annotated[str | None, typer.Option(help="Valid until, ISO date.")] = None,
) -> None:
    """Send the customer the quote (signal); followed up when unanswered."""
    from decimal import Decimal

    from domain.opportunities import SendQuote

    settings = load_settings()
    quote = SendQuote(amount=Decimal(amount), valid_until=_day(valid_until, "--valid-until"))
    subject = _subject(opportunity_id)
    with_journeys(settings, subject,
                  lambda j: _opportunities(j).send_quote(opportunity_id, quote))
    subject.say_sent("quote")


@opportunity_app.command("win")
@reports_errors
def opportunity_win(
    opportunity_id: Annotated[str, typer.Argument(help="The opportunity won.")],
    amount: Annotated[str | None, typer.Option(help="Contract amount (default: expected).")]
    = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency.")] = "CNY",
    signed_at: Annotated[str | None, typer.Option(help="When signed, ISO-8601 (default now).")]
    = None,
) -> None:
    """Win the opportunity: its contract and payment journey start, once."""
    from domain.opportunities import Win, WinContract

    settings = load_settings()
    code = currency_code(currency)
    win = Win(contract=WinContract(amount=money(amount, code) if amount else None,
                                   currency=code, signed_at=aware(signed_at, "--signed-at")))
    decision = with_journeys(settings, _subject(opportunity_id),
                             lambda j: _opportunities(j).win(opportunity_id, win))
    _answered(decision, f"{opportunity_id} won; contract journey contract-{opportunity_id}")


@opportunity_app.command("lose")
@reports_errors
def opportunity_lose(
    opportunity_id: Annotated[str, typer.Argument(help="The opportunity lost.")],
    reason_code: Annotated[str, typer.Option("--reason", help="A reason code of the policy "
                                             "(competitor_cheaper, no_budget, …).")],
    note: Annotated[str | None, typer.Option(help="More about it.")] = None,
) -> None:
    """Lose the opportunity with a reason code; says at once whether it was accepted."""
    from domain.opportunities import Lose

    settings = load_settings()
    lose = Lose(reason_code=reason_code, note=note)
    decision = with_journeys(settings, _subject(opportunity_id),
                             lambda j: _opportunities(j).lose(opportunity_id, lose))
    _answered(decision, f"{opportunity_id} lost ({reason_code})")


def _table(status: OpportunityStatus) -> Table:
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value),
        ("customer", status.customer_id),
        ("owner", status.owner_id),
        ("amount", f"{status.amount} {status.currency}" if status.amount else "-"),
        ("close date", status.close_date.isoformat() if status.close_date else "-"),
        ("in stage since", when(status.stage_entered_at)),
        ("last activity", when(status.last_activity_at)),
        ("quote", f"{status.quote_amount} {status.currency}" if status.quote_amount else "-"),
        ("contract", status.contract_id or "-"),
        ("lost reason", status.lost_reason or "-"),
        ("waiting for", status.waiting_for or "-"),
        ("next step", when(status.deadline)),
    ]
    return status_table(f"opportunity {status.opportunity_id}", rows, status)


@opportunity_app.command("status")
@reports_errors
def opportunity_status(
    opportunity_id: Annotated[str, typer.Argument(help="The opportunity.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show where an opportunity's journey stands; a failed journey says why (exit 1)."""
    from domain.opportunities import OpportunityStatus

    settings = load_settings()
    status = journey_status(settings, _subject(opportunity_id), OpportunityStatus,
                            lambda j: _opportunities(j).status(opportunity_id))
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
    else:
        console().print(_table(status))
