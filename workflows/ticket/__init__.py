"""TicketJourney: a ticket's first response, resolution on an SLA clock,
escalations and the customer's rating (`journey`); its plan and state
(`plan`), its timed steps (`clock`), the signals it acts on (`signals`) and
what they share (`base`)."""

from workflows.ticket.journey import TicketJourney
from workflows.ticket.plan import plan

__all__ = ["TicketJourney", "plan"]
