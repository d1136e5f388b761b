"""A lead's conversion in the store: the customer account and the
opportunity. Shared by the lead's `convert_lead` and by the opportunity's
`convert_lead_and_start_opportunity`, which also starts the opportunity's
journey."""

from __future__ import annotations

from decimal import Decimal

from activities.journal import record_event
from activities.lead_records import close_tasks, customer_from_lead, get_lead
from activities.store import Store, refuse_invalid
from domain import limits, schema
from domain.leads import JOURNEY, ConvertRequest, LeadStage
from domain.money import to_minor


def convert(store: Store, request: ConvertRequest) -> str:
    """A lead's conversion: the customer account and the opportunity (stage
    "needs analysis"), once; the opportunity's id."""
    currency_problem = limits.currency_problem(request.currency)
    refuse_invalid({
        "opportunity_name": limits.text_problem(request.opportunity_name, limits.NAME),
        "currency": currency_problem,
        "amount": None if currency_problem else limits.amount_problem(request.amount,
                                                                      request.currency),
    })
    opportunity_id = f"opp-{request.lead_id}"
    with store.unit_of_work() as session:
        lead = get_lead(session, request.lead_id)
        if session.get(schema.Opportunity, opportunity_id) is not None:
            return opportunity_id
        amount_minor = None
        if request.amount is not None:
            amount_minor = to_minor(Decimal(request.amount), request.currency)
        if lead.customer_id is None:
            lead.customer_id = customer_from_lead(session, lead, request.now)
        session.add(
            schema.Opportunity(
                id=opportunity_id,
                lead_id=lead.id,
                customer_id=lead.customer_id,
                name=(request.opportunity_name
                      or f"{lead.company or lead.name} {lead.product_line}"),
                stage="needs_analysis",
                owner_id=request.owner_id,
                amount_minor=amount_minor,
                currency=request.currency.upper(),
                created_at=request.now,
            )
        )
        lead.stage = LeadStage.converted.value
        lead.closed_at = request.now
        close_tasks(session, lead.id, request.now, status="done")
        record_event(session, key=f"{request.workflow_id}:converted", journey=JOURNEY,
                     entity_id=lead.id, step="converted", at=request.now,
                     detail={"opportunity_id": opportunity_id})
        return opportunity_id
