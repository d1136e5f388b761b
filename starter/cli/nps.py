"""`crm nps`: the NPS programme — a period's surveys launched to the customers
active in it, one survey started by hand, an answer, a detractor's follow-up
logged, and where a survey stands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from starter.cli.common import (
    CliError,
    console,
    load_settings,
    open_store,
    reports_errors,
    say,
    when,
)
from starter.cli.journey import Subject, journey_status, status_table, with_journeys

if TYPE_CHECKING:
    from rich.table import Table

    from domain.nps import NpsStatus

# Its help is its registry entry's (domain/registry.py): `crm --help` lists it
# without importing this module.
nps_app = typer.Typer(no_args_is_help=True)


def _subject(customer_id: str, period: str) -> Subject:
    from domain.nps import nps_workflow_id

    return Subject(noun="survey", entity_id=f"{customer_id}-{period}",
                   workflow_id=nps_workflow_id(customer_id, period),
                   status_command=f"crm nps status {customer_id} {period}",
                   pending="An answer or a follow-up")


def _period(period: str) -> str:
    from domain.nps import period_problem

    if problem := period_problem(period):
        raise CliError(problem)
    return period


@nps_app.command("launch")
@reports_errors
def nps_launch(
    period: Annotated[str, typer.Argument(help="The period the customers were active in: "
                                                "2026Q2 (quarterly) or 2026H1.")],
) -> None:
    """Start a survey for every customer with a purchase or a ticket in the
    period (journeys nps-CUSTOMER-PERIOD); one already started is left as it is."""
    from activities.nps import active_customers, start_nps_journey
    from domain.nps import NpsInput

    settings = load_settings()
    period = _period(period)
    with open_store(settings) as store, store.unit_of_work() as session:
        audience = active_customers(session, period)
    if not audience:
        say(f"no customer bought or opened a ticket in {period}: no survey started")
        return

    async def start_all(journeys: Any) -> int:
        for customer_id in audience:
            await start_nps_journey(journeys.client, task_queue=journeys.task_queue,
                                    survey=NpsInput(customer_id=customer_id, period=period))
        return len(audience)

    subject = Subject(noun="survey", entity_id=period, workflow_id=f"nps-*-{period}",
                      status_command=f"crm nps status CUSTOMER {period}", pending="")
    started = with_journeys(settings, subject, start_all)
    say(f"{started} surveys for {period} started (or already running)")


@nps_app.command("start")
@reports_errors
def nps_start(
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    period: Annotated[str, typer.Argument(help="2026Q2 or 2026H1.")],
) -> None:
    """Start one customer's survey for a period (journey nps-CUSTOMER-PERIOD)."""
    from activities.nps import start_nps_journey
    from domain.nps import NpsInput

    settings = load_settings()
    subject = _subject(customer, _period(period))
    with_journeys(settings, subject, lambda j: start_nps_journey(
        j.client, task_queue=j.task_queue, survey=NpsInput(customer_id=customer, period=period)))
    subject.say_started("NpsJourney", settings.task_queue)


@nps_app.command("answer")
@reports_errors
def nps_answer(
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    period: Annotated[str, typer.Argument(help="The survey's period.")],
    score: Annotated[int, typer.Argument(help="0 to 10.")],
    reason: Annotated[str | None, typer.Option(help="Why, in the customer's words.")] = None,
) -> None:
    """The customer's answer; says at once whether it was accepted."""
    from domain.journeys import Decision
    from domain.nps import Answer

    settings = load_settings()
    subject = _subject(customer, _period(period))
    decision = with_journeys(settings, subject, lambda j: j.client.get_workflow_handle(
        subject.workflow_id).execute_update("answer_now", Answer(score=score, reason=reason),
                                            result_type=Decision))
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    follow = f"; follow-up due {when(decision.due_at)}" if decision.due_at else ""
    say(f"accepted: {customer} scored {score} for {period}{follow}")


@nps_app.command("follow-up")
@reports_errors
def nps_follow_up(
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    period: Annotated[str, typer.Argument(help="The survey's period.")],
    staff: Annotated[str, typer.Argument(help="Who followed up (the owner, or the manager "
                                              "it was escalated to).")],
    note: Annotated[str | None, typer.Option(help="What came of it.")] = None,
) -> None:
    """A detractor's follow-up done; says at once whether it was accepted."""
    from domain.journeys import Decision
    from domain.nps import LogFollowUp

    settings = load_settings()
    subject = _subject(customer, _period(period))
    decision = with_journeys(settings, subject, lambda j: j.client.get_workflow_handle(
        subject.workflow_id).execute_update("log_follow_up_now",
                                            LogFollowUp(staff_id=staff, note=note),
                                            result_type=Decision))
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"accepted: follow-up of {customer} ({period}) by {staff}")


def _table(status: NpsStatus) -> Table:
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value),
        ("owner", status.owner_id or "-"),
        ("closes", when(status.closes_at)),
        ("reminded", "yes" if status.reminded else "no"),
        ("score", "-" if status.score is None else
         f"{status.score} ({status.respondent.value if status.respondent else '-'})"),
        ("reason", status.reason or "-"),
        ("category", status.category or "-"),
        ("follow-up due", when(status.follow_up_due)),
        ("followed up", when(status.followed_up_at)),
        ("on time", "-" if status.on_time is None else ("yes" if status.on_time else "no")),
        ("escalated to", status.escalated_to or "-"),
        ("next step", when(status.deadline)),
    ]
    return status_table(f"NPS survey {status.period} of {status.customer_id}", rows, status)


@nps_app.command("status")
@reports_errors
def nps_status(
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    period: Annotated[str, typer.Argument(help="The survey's period.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show where a customer's survey stands."""
    from domain.nps import NpsStatus

    settings = load_settings()
    subject = _subject(customer, _period(period))
    status = journey_status(settings, subject, NpsStatus,
                            lambda j: j.client.get_workflow_handle(subject.workflow_id).query(
                                "status", result_type=NpsStatus))
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
    else:
        console().print(_table(status))
