"""`crm onboarding`: a signed contract's onboarding — the service group ready,
the first delivery made, and where it stands. `crm contract sign` and a won
opportunity start it; `start` starts one for a contract signed before."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from starter.cli.common import CliError, aware, console, load_settings, reports_errors, say, when
from starter.cli.journey import Subject, journey_status, status_table, with_journeys

if TYPE_CHECKING:
    from rich.table import Table

    from domain.onboarding import OnboardingStatus

# Its help is its registry entry's (domain/registry.py): `crm --help` lists it
# without importing this module.
onboarding_app = typer.Typer(no_args_is_help=True)


def _subject(contract_id: str) -> Subject:
    from domain.onboarding import onboarding_workflow_id

    return Subject(noun="onboarding", entity_id=contract_id,
                   workflow_id=onboarding_workflow_id(contract_id),
                   status_command=f"crm onboarding status {contract_id}",
                   pending="A delivery or the service group")


@onboarding_app.command("start")
@reports_errors
def onboarding_start(
    contract_id: Annotated[str, typer.Option("--contract", help="The signed contract.")],
    customer: Annotated[str, typer.Option(help="The customer's id.")],
    owner: Annotated[str, typer.Option(help="The account owner's staff id.")],
    signed_at: Annotated[str, typer.Option(help="When it was signed, ISO-8601 with offset.")],
) -> None:
    """Start the onboarding of a contract (journey onboarding-CONTRACT)."""
    from activities.onboarding import start_onboarding_journey
    from domain.onboarding import OnboardingInput

    settings = load_settings()
    signed = aware(signed_at, "--signed-at")
    assert signed is not None
    onboarding = OnboardingInput(contract_id=contract_id, customer_id=customer, owner_id=owner,
                                 signed_at=signed)
    subject = _subject(contract_id)
    with_journeys(settings, subject, lambda j: start_onboarding_journey(
        j.client, task_queue=j.task_queue, onboarding=onboarding))
    subject.say_started("OnboardingJourney", settings.task_queue)


@onboarding_app.command("group-ready")
@reports_errors
def onboarding_group_ready(
    contract_id: Annotated[str, typer.Argument(help="The contract onboarded.")],
    link: Annotated[str, typer.Argument(help="How the customer joins the service group.")],
) -> None:
    """The service group is ready: the customer is welcomed with its contact (signal)."""
    from domain.onboarding import GroupReady

    settings = load_settings()
    subject = _subject(contract_id)
    with_journeys(settings, subject, lambda j: j.client.get_workflow_handle(
        subject.workflow_id).signal("group_ready", GroupReady(link=link)))
    subject.say_sent("group ready")


@onboarding_app.command("delivered")
@reports_errors
def onboarding_delivered(
    contract_id: Annotated[str, typer.Argument(help="The contract onboarded.")],
    by: Annotated[str, typer.Argument(help="Who delivered (staff id).")],
    note: Annotated[str | None, typer.Option(help="What was delivered.")] = None,
) -> None:
    """The first delivery is made; says at once whether it was accepted."""
    from domain.journeys import Decision
    from domain.onboarding import Delivered

    settings = load_settings()
    subject = _subject(contract_id)
    decision = with_journeys(settings, subject, lambda j: j.client.get_workflow_handle(
        subject.workflow_id).execute_update("delivered_now", Delivered(by=by, note=note),
                                            result_type=Decision))
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    say(f"accepted: first delivery of contract {contract_id} by {by}")


def _table(status: OnboardingStatus) -> Table:
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value),
        ("customer", status.customer_id),
        ("service lead", status.service_lead_id or "-"),
        ("service group", status.group_link or "-"),
        ("delivery due", when(status.delivery_due_at)),
        ("delivered", when(status.delivered_at)),
        ("on time", "-" if status.on_time is None else ("yes" if status.on_time else "no")),
        ("escalated to", status.escalated_to or "-"),
        ("next step", when(status.deadline)),
    ]
    return status_table(f"onboarding of {status.contract_id}", rows, status)


@onboarding_app.command("status")
@reports_errors
def onboarding_status(
    contract_id: Annotated[str, typer.Argument(help="The contract onboarded.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show where a contract's onboarding stands."""
    from domain.onboarding import OnboardingStatus

    settings = load_settings()
    subject = _subject(contract_id)
    status = journey_status(settings, subject, OnboardingStatus,
                            lambda j: j.client.get_workflow_handle(subject.workflow_id).query(
                                "status", result_type=OnboardingStatus))
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
    else:
        console().print(_table(status))
