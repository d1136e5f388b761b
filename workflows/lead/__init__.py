"""LeadJourney: a new lead's first touch within 24 hours, then the 3-day re-
follow (`journey`); its plan and state (`plan`), its timed steps (`clock`),
the signals it acts on (`signals`) and what they share (`base`)."""

from workflows.lead.journey import LeadJourney
from workflows.lead.plan import plan

__all__ = ["LeadJourney", "plan"]
