"""MembershipJourney: a customer's loyalty membership, one membership year per
run (`journey`); its plan (`plan`), the signals it acts on (`signals`) and
what they share (`base`)."""

from workflows.membership.journey import MembershipJourney
from workflows.membership.plan import plan

__all__ = ["MembershipJourney", "plan"]
