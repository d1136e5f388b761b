"""PaymentJourney: a signed contract's payment milestones, reminded, chased and
allocated until it is paid in full or cancelled.

By default 30% is due 7 days after signing and 70% 30 days after acceptance.
Before each due date the customer is reminded and the owner told (7 days and
1 day before, and on the day); a milestone unpaid at the local midnight after
its due date is overdue: the customer is reminded a day later, and a week
later the owner's manager and finance are alerted, weekly while it stays
unpaid. Payments are allocated to the milestones in order; each brings a
receipt. All dates and times of day are the customer's, worked out by the
activities, so the journey only waits for moments it was given.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.payments import (
        JOURNEY,
        Accept,
        Cancel,
        ContractInput,
        ContractStatus,
        PaymentPolicy,
        RecordPayment,
        Schedule,
        SignRequest,
    )

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    CRM_OWNER_ID,
    answering,
    call,
    start_input,
)
from workflows.payment.clock import PaymentClockSteps
from workflows.payment.plan import ENDED, ContractState, plan
from workflows.payment.signals import PaymentSignals


@workflow.defn(name="PaymentJourney", failure_exception_types=[pydantic.ValidationError])
class PaymentJourney(PaymentSignals, PaymentClockSteps):
    journey = JOURNEY
    entity_kind = "contract"
    signals = {"accept": Accept, "record_payment": RecordPayment, "cancel": Cancel}
    planned = staticmethod(plan)

    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.contract = contract = start_input(args, ContractInput)
        self.state = ContractState(
            contract_id=contract.contract_id,
            customer_id=contract.customer_id,
            owner_id=contract.owner_id,
            amount=contract.amount,
            currency=contract.currency.upper(),
            signed_at=contract.signed_at,
        )
        self.policy: PaymentPolicy = contract.policy or PaymentPolicy()
        self._setup_journey(contract.contract_id, self.state.counters, plan(self.policy))

    @workflow.run
    async def run(self, *args: Any) -> ContractStatus:
        """Takes one `ContractInput`."""
        s, contract = self.state, self.contract
        if contract.policy is None:
            self.policy = await call("load_payment_policy", result_type=PaymentPolicy)
            self.plan = plan(self.policy)
        self._upsert({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: s.customer_id,
                      CRM_OWNER_ID: s.owner_id})
        self._apply(await self._sign(contract))

        await self._serve(lambda: s.stage in ENDED)
        await self._drain()
        return self.status()

    record_payment_now = answering("record_payment", RecordPayment, "_payment_problem")

    @workflow.query(name="status")
    def status(self) -> ContractStatus:
        s = self.state
        # A settled milestone's reminders and escalations are gone once it is
        # settled, not when they would have fallen due.
        open_actions = [a for a in s.agenda if self._is_open(a.seq)]
        next_action = min(open_actions, key=lambda a: a.at) if open_actions else None
        return ContractStatus(
            contract_id=s.contract_id,
            customer_id=s.customer_id,
            owner_id=s.owner_id,
            amount=s.amount,
            currency=s.currency,
            stage=s.stage,
            accepted_at=s.accepted_at,
            milestones=list(s.milestones),
            paid=sum((m.paid for m in s.milestones), Decimal(0)),
            credit=s.credit,
            next_due=self._next_due(),
            next_action=next_action,
            references=list(s.references),
            ignored_duplicates=s.ignored_duplicates,
            rejections=list(self.rejections),
            policy=self.policy,
            previous_owners=list(s.previous_owners),
        )

    def _ended_reason(self) -> str:
        return f"the contract is {self.state.stage.value}"

    async def _sign(self, contract: ContractInput) -> Schedule:
        try:
            return await call("sign_contract", SignRequest(
                contract=contract.model_copy(update={"policy": None}),
                plan=contract.milestones or self.policy.default_plan,
                policy=self.policy,
                workflow_id=self.workflow_id,
                now=workflow.now(),
            ), Schedule)
        except ActivityError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(err)
            raise ApplicationError(message, type="InvalidContract", non_retryable=True) from err
