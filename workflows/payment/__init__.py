"""PaymentJourney: a signed contract's payment milestones, reminded, chased and
allocated until paid or cancelled (`journey`); its plan and state (`plan`),
its timed steps (`clock`), the signals it acts on (`signals`) and what they
share (`base`)."""

from workflows.payment.journey import PaymentJourney
from workflows.payment.plan import plan

__all__ = ["PaymentJourney", "plan"]
