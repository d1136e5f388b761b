"""OpportunityJourney: a deal from needs analysis through proposal and
negotiation to won or lost (`journey`); its plan and state (`plan`), its
timed steps (`clock`), the signals it acts on (`signals`) and what they share
(`base`)."""

from workflows.opportunity.journey import OpportunityJourney
from workflows.opportunity.plan import plan

__all__ = ["OpportunityJourney", "plan"]
