"""`crm contract`: sign a contract (its payment journey), record the customer's
acceptance and the payments, cancel it, and show its milestones."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from starter.cli.common import (
    CliError,
    aware,
    console,
    currency_code,
    decimal,
    load_settings,
    money,
    reports_errors,
    say,
    when,
)
from starter.cli.journey import Subject, journey_status, status_table, with_journeys

if TYPE_CHECKING:
    from rich.table import Table

    from domain.payments import ContractStatus, MilestoneRule
    from starter.client import Journeys

# Its help is its registry entry's (domain/registry.py): `crm --help` lists it
# without importing this module.
contract_app = typer.Typer(no_args_is_help=True)

RELATIVE_TO = ("signing", "acceptance")


def _plan(value: str, amount: Decimal, currency: str) -> list[MilestoneRule]:
    """`percent:days:signing|acceptance[:name]`, comma-separated, e.g. the default
    plan "30:7:signing,70:30:acceptance"; the percentages must add up to 100."""
    from domain.payments import MilestoneRule, PlanError, split_amounts

    rules = []
    for n, part in enumerate(value.split(","), 1):
        fields = [f.strip() for f in part.split(":")]
        if len(fields) not in (3, 4):
            raise CliError(
                f"--plan milestone {n} {part.strip()!r} is not percent:days:signing|acceptance"
            )
        percent = decimal(fields[0], f"--plan milestone {n}: percent", positive=True)
        try:
            days = int(fields[1])
        except ValueError as exc:
            raise CliError(
                f"--plan milestone {n}: days {fields[1]!r} is not a whole number"
            ) from exc
        if days < 0:
            raise CliError(f"--plan milestone {n}: days {days} must not be negative")
        if fields[2] not in RELATIVE_TO:
            raise CliError(
                f"--plan milestone {n}: {fields[2]!r} is not one of: {', '.join(RELATIVE_TO)}"
            )
        name = fields[3] if len(fields) == 4 and fields[3] else None
        rules.append(
            MilestoneRule.model_validate(
                {"percent": percent, "due_days": days, "relative_to": fields[2], "name": name}
            )
        )
    try:  # the journey's own rule: positive shares adding up to 100
        split_amounts(amount, [rule.percent for rule in rules], currency)
    except PlanError as exc:
        raise CliError(f"--plan {value!r}: {exc}") from exc
    return rules


@contract_app.command("sign")
@reports_errors
def contract_sign(
    contract_id: Annotated[
        str, typer.Option("--id", help="The contract id (journey: contract-{id}).")
    ],
    customer: Annotated[str, typer.Option(help="The customer's id.")],
    owner: Annotated[str, typer.Option(help="The owning rep's staff id.")],
    amount: Annotated[str, typer.Option(help="The contract amount, e.g. 120000.00.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "CNY",
    signed_at: Annotated[
        str | None, typer.Option(help="When it was signed, ISO-8601 with offset (default: now).")
    ] = None,
    plan: Annotated[
        str | None,
        typer.Option(
            help="Milestones as percent:days:signing|acceptance[:name], comma-separated, "
            "e.g. '30:7:signing,70:30:acceptance' (default: the payment policy's plan)."
        ),
    ] = None,
) -> None:
    """Sign a contract: start its payment journey (milestones, reminders, overdue escalation)
    and its onboarding (service group, first delivery within 3 days)."""
    from domain.payments import ContractInput

    settings = load_settings()
    code = currency_code(currency)
    value = money(amount, code)
    signed = aware(signed_at, "--signed-at") or datetime.now(UTC)
    # The journey checks the customer and the owner against the store; an
    # unknown one fails the journey, which `crm contract status` then says.
    contract = ContractInput(
        contract_id=contract_id,
        customer_id=customer,
        owner_id=owner,
        amount=value,
        currency=code,
        signed_at=signed,
        milestones=_plan(plan, value, code) if plan is not None else None,
    )

    async def start(journeys: Journeys) -> None:
        from activities.onboarding import start_onboarding_journey
        from domain.onboarding import OnboardingInput

        await journeys.sign_contract(contract)
        # On signing, the customer's onboarding (service group, first delivery).
        await start_onboarding_journey(journeys.client, task_queue=journeys.task_queue,
                                       onboarding=OnboardingInput(
                                           contract_id=contract_id, customer_id=customer,
                                           owner_id=owner, signed_at=signed))

    subject = Subject.contract(contract_id)
    with_journeys(settings, subject, start)
    subject.say_started("PaymentJourney", settings.task_queue)
    say(f"onboarding-{contract_id}: started OnboardingJourney", style="dim")


@contract_app.command("accept")
@reports_errors
def contract_accept(
    contract_id: Annotated[str, typer.Argument(help="The contract accepted by the customer.")],
    at: Annotated[
        str | None, typer.Option(help="When, ISO-8601 with offset (default: now).")
    ] = None,
) -> None:
    """Record the customer's acceptance (signal): the acceptance milestones get their dates."""
    from domain.payments import Accept

    settings = load_settings()
    accept = Accept(accepted_at=aware(at, "--at"))
    subject = Subject.contract(contract_id)
    with_journeys(settings, subject, lambda journeys: journeys.accept_contract(contract_id, accept))
    subject.say_sent("acceptance")


@contract_app.command("pay")
@reports_errors
def contract_pay(
    contract_id: Annotated[str, typer.Argument(help="The contract paid.")],
    amount: Annotated[str, typer.Option(help="The amount received, e.g. 36000.00.")],
    reference: Annotated[
        str, typer.Option(help="The payment's reference (a repeat is recorded once).")
    ],
    at: Annotated[
        str | None, typer.Option(help="When it was paid, ISO-8601 with offset (default: now).")
    ] = None,
    currency: Annotated[
        str | None, typer.Option(help="ISO 4217 code (default: the contract's).")
    ] = None,
) -> None:
    """Record a payment; says at once whether it was accepted, or why not."""
    from domain.payments import ContractStatus, RecordPayment

    settings = load_settings()
    code = currency_code(currency) if currency is not None else None
    value = money(amount, code) if code else decimal(amount, "--amount", positive=True)
    if not reference.strip():
        raise CliError("--reference must name the payment")
    payment = RecordPayment(
        amount=value, reference=reference, paid_at=aware(at, "--at"), currency=code
    )
    decision = with_journeys(
        settings,
        Subject.contract(contract_id),
        lambda journeys: journeys.record_payment(contract_id, payment),
    )
    if not decision.accepted:
        raise CliError(f"rejected: {decision.reason or 'no reason given'}")
    if decision.reason:  # e.g. "already recorded": accepted, nothing changed
        say(f"accepted: payment {reference} on contract {contract_id}: {decision.reason}")
        return
    say(f"accepted: payment {reference} of {value} recorded on contract {contract_id}")
    subject = Subject.contract(contract_id)
    status = journey_status(
        settings, subject, ContractStatus, lambda journeys: journeys.contract_status(contract_id)
    )
    if status.credit > 0:
        # Paid beyond what the contract asks: held for the customer, not revenue.
        say(f"credit: {status.credit} {status.currency} paid beyond the contract's "
            f"{status.amount} {status.currency} is held as the customer's credit")
    say(f"see `crm contract status {contract_id}`", style="dim")


@contract_app.command("cancel")
@reports_errors
def contract_cancel(
    contract_id: Annotated[str, typer.Argument(help="The contract to cancel.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the contract).")],
) -> None:
    """Cancel a contract with a reason (signal): its unpaid milestones are cancelled."""
    settings = load_settings()
    if not reason.strip():
        raise CliError("--reason must say why the contract is cancelled")
    subject = Subject.contract(contract_id)
    with_journeys(settings, subject, lambda journeys: journeys.cancel_contract(contract_id, reason))
    subject.say_sent("cancel")


def _contract_table(status: ContractStatus) -> Table:
    action = status.next_action
    rows: list[tuple[str, Any]] = [
        ("stage", status.stage.value),
        ("customer", status.customer_id),
        ("owner", status.owner_id),
        ("amount", f"{status.amount} {status.currency}"),
        ("paid", f"{status.paid} {status.currency}"),
        (
            "credit",
            f"{status.credit} {status.currency}"
            + (" (paid beyond the contract; not revenue)" if status.credit > 0 else ""),
        ),
        ("accepted", when(status.accepted_at)),
        ("overdue from", when(status.next_due)),
        (
            "next action",
            f"{action.kind.value} (milestone {action.seq}) at {when(action.at)}"
            if action
            else "-",
        ),
        ("payments", ", ".join(status.references) or "-"),
        ("repeats ignored", status.ignored_duplicates),
    ]
    return status_table(f"contract {status.contract_id}", rows, status)


def _milestones_table(status: ContractStatus) -> Table:
    from rich import box
    from rich.table import Table

    from domain.payments import MilestoneState

    table = Table(title="milestones", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for column in ("#", "milestone", "share", "amount", "due", "paid", "state"):
        table.add_column(column, no_wrap=True, justify="right" if column in ("#", "share",
                         "amount", "paid") else "left")  # fmt: skip
    for m in status.milestones:
        if m.due_date is not None:
            due = m.due_date.isoformat()
        elif m.state is MilestoneState.awaiting_acceptance:
            due = f"{m.due_days} d after acceptance"
        else:
            due = "-"
        table.add_row(
            str(m.seq), m.name, f"{m.percent}%", str(m.amount), due, str(m.paid), m.state.value
        )
    return table


@contract_app.command("status")
@reports_errors
def contract_status(
    contract_id: Annotated[str, typer.Argument(help="The contract.")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query's JSON.")] = False,
) -> None:
    """Show a contract's milestones and payments; a failed journey says why (exit 1)."""
    from domain.payments import ContractStatus

    settings = load_settings()
    subject = Subject.contract(contract_id)
    status = journey_status(
        settings, subject, ContractStatus, lambda journeys: journeys.contract_status(contract_id)
    )
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
        return
    out = console()
    out.print(_contract_table(status))
    out.print(_milestones_table(status))
