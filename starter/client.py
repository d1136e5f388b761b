"""Client helpers: one place that configures the data converter (pydantic
payloads, encrypted by the payload codec when keys are configured), used by
the worker, the CLI and the tests; typed helpers to start and signal journeys."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

import pydantic
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.exceptions import ApplicationError, FailureError

from domain.courses import (
    CoursePolicy,
    CourseStatus,
    EndCourse,
    EnrollmentInput,
    LogCallback,
    enrollment_workflow_id,
)
from domain.journeys import Decision, StaffDeactivated
from domain.leads import (
    Claim,
    Convert,
    Discard,
    LeadInput,
    LeadStatus,
    LogContact,
    lead_workflow_id,
)
from domain.lifecycle import (
    LifecycleInput,
    LifecycleStatus,
    OptOut,
    Purchase,
    customer_workflow_id,
)
from domain.payments import (
    Accept,
    Cancel,
    ContractInput,
    ContractStatus,
    PaymentPolicy,
    RecordPayment,
    contract_workflow_id,
)
from domain.policy import LeadPolicy
from domain.settings import TASK_QUEUE, Settings
from domain.ticket_status import TicketStatus
from domain.tickets import (
    CustomerReplied,
    Rate,
    Reopen,
    Resolve,
    Respond,
    TicketInput,
    TicketPolicy,
    WaitOnCustomer,
    ticket_workflow_id,
)

S = TypeVar("S", bound=pydantic.BaseModel)


class JourneyPayloadConverter(PydanticPayloadConverter):
    """pydantic's converter, but a payload that no converter can read (an
    unknown encoding, bytes that are not what their encoding says) is an
    ApplicationError: a journey started with one fails with the reason, and an
    update carrying one is refused, instead of a workflow task retried for ever.
    A pydantic ValidationError passes as it is (a journey's failure type)."""

    def from_payloads(self, payloads: Sequence[Payload],
                      type_hints: list[type] | None = None) -> list[Any]:
        try:
            return super().from_payloads(payloads, type_hints)
        except (FailureError, pydantic.ValidationError):
            raise
        except Exception as exc:
            raise ApplicationError(f"a payload could not be decoded: {exc}"[:300],
                                   type="UndecodablePayload", non_retryable=True) from exc


DATA_CONVERTER = dataclasses.replace(pydantic_data_converter,
                                     payload_converter_class=JourneyPayloadConverter)


def data_converter(codec: PayloadCodec | None = None) -> DataConverter:
    """pydantic models in, pydantic models out, at every Temporal boundary;
    with a codec (`starter.codec`), encrypted on the way to Temporal."""
    if codec is None:
        return DATA_CONVERTER
    return dataclasses.replace(DATA_CONVERTER, payload_codec=codec)


def settings_converter(settings: Settings) -> DataConverter:
    """The data converter with the settings' codec keys (plaintext without any)."""
    from starter.codec import codec_for

    return data_converter(codec_for(settings))


async def connect(settings: Settings, runtime: Any = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=settings_converter(settings),
        runtime=runtime,
    )


class Journeys:
    """Start and signal journeys knowing only CRM ids."""

    def __init__(self, client: Client, *, task_queue: str = TASK_QUEUE,
                 settings: Settings | None = None) -> None:
        self.client = client
        self.task_queue = task_queue
        # With settings, a journey started here carries its policy from them in
        # its start input (unless the input names one), and so does not load it
        # by an activity of its own: the same policy, one activity fewer.
        self.settings = settings

    def _with_policy(self, journey: str, start: S, model: type[pydantic.BaseModel]) -> S:
        if self.settings is None or getattr(start, "policy", None) is not None:
            return start
        return start.model_copy(update={"policy": self.settings.policy_for(journey, model)})

    async def start_lead(self, lead: LeadInput) -> WorkflowHandle[Any, LeadStatus]:
        return await self.client.start_workflow(
            "LeadJourney",
            self._with_policy("lead", lead, LeadPolicy),
            id=lead_workflow_id(lead.lead_id),
            task_queue=self.task_queue,
            static_summary=f"Lead {lead.lead_id} · {lead.region or '?'}/{lead.product_line or '?'}"
                           f" · {lead.source or '?'}",
            result_type=LeadStatus,
            # A journey id is used once: a finished lead is not started again.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            execution_timeout=None,
            task_timeout=timedelta(seconds=10),
        )

    def lead(self, lead_id: str) -> WorkflowHandle[Any, LeadStatus]:
        return self.client.get_workflow_handle(lead_workflow_id(lead_id), result_type=LeadStatus)

    async def claim_lead(self, lead_id: str, owner_id: str) -> Decision:
        return await self.lead(lead_id).execute_update(
            "claim_now", Claim(owner_id=owner_id), result_type=Decision
        )

    async def log_contact(self, lead_id: str, contact: LogContact) -> Decision:
        return await self.lead(lead_id).execute_update(
            "log_contact_now", contact, result_type=Decision
        )

    async def convert_lead(self, lead_id: str, convert: Convert) -> None:
        await self.lead(lead_id).signal("convert", convert)

    async def discard_lead(self, lead_id: str, reason: str) -> None:
        await self.lead(lead_id).signal("discard", Discard(reason=reason))

    async def lead_status(self, lead_id: str) -> LeadStatus:
        return await self.lead(lead_id).query("status", result_type=LeadStatus)

    async def tell_staff_deactivated(self, workflow_ids: list[str], staff_id: str) -> None:
        """Tells each journey (by workflow id, any kind) that `staff_id` has left."""
        for workflow_id in workflow_ids:
            await self.client.get_workflow_handle(workflow_id).signal(
                "staff_deactivated", StaffDeactivated(staff_id=staff_id)
            )

    # -- courses ------------------------------------------------------------------

    async def enroll(self, enrollment: EnrollmentInput) -> WorkflowHandle[Any, CourseStatus]:
        return await self.client.start_workflow(
            "CourseJourney",
            self._with_policy("course", enrollment, CoursePolicy),
            id=enrollment_workflow_id(enrollment.enrollment_id),
            task_queue=self.task_queue,
            static_summary=f"Enrolment {enrollment.enrollment_id} · course {enrollment.course_id}"
                           f" · advisor {enrollment.advisor_id}",
            result_type=CourseStatus,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            task_timeout=timedelta(seconds=10),
        )

    def course(self, enrollment_id: str) -> WorkflowHandle[Any, CourseStatus]:
        return self.client.get_workflow_handle(
            enrollment_workflow_id(enrollment_id), result_type=CourseStatus
        )

    async def end_course(self, enrollment_id: str, end: EndCourse) -> None:
        await self.course(enrollment_id).signal("end_course", end)

    async def log_callback(self, enrollment_id: str, callback: LogCallback) -> Decision:
        return await self.course(enrollment_id).execute_update(
            "log_callback_now", callback, result_type=Decision
        )

    async def course_status(self, enrollment_id: str) -> CourseStatus:
        return await self.course(enrollment_id).query("status", result_type=CourseStatus)

    # -- payments -----------------------------------------------------------------

    async def sign_contract(self, contract: ContractInput) -> WorkflowHandle[Any, ContractStatus]:
        return await self.client.start_workflow(
            "PaymentJourney",
            self._with_policy("payment", contract, PaymentPolicy),
            id=contract_workflow_id(contract.contract_id),
            task_queue=self.task_queue,
            static_summary=f"Contract {contract.contract_id} · {contract.amount} "
                           f"{contract.currency.upper()} · owner {contract.owner_id}",
            result_type=ContractStatus,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            task_timeout=timedelta(seconds=10),
        )

    def contract(self, contract_id: str) -> WorkflowHandle[Any, ContractStatus]:
        return self.client.get_workflow_handle(
            contract_workflow_id(contract_id), result_type=ContractStatus
        )

    async def accept_contract(self, contract_id: str, accept: Accept) -> None:
        await self.contract(contract_id).signal("accept", accept)

    async def record_payment(self, contract_id: str, payment: RecordPayment) -> Decision:
        return await self.contract(contract_id).execute_update(
            "record_payment_now", payment, result_type=Decision
        )

    async def cancel_contract(self, contract_id: str, reason: str) -> None:
        await self.contract(contract_id).signal("cancel", Cancel(reason=reason))

    async def contract_status(self, contract_id: str) -> ContractStatus:
        return await self.contract(contract_id).query("status", result_type=ContractStatus)

    # -- tickets ----------------------------------------------------------------------

    async def open_ticket(self, ticket: TicketInput) -> WorkflowHandle[Any, TicketStatus]:
        return await self.client.start_workflow(
            "TicketJourney",
            self._with_policy("ticket", ticket, TicketPolicy),
            id=ticket_workflow_id(ticket.ticket_id),
            task_queue=self.task_queue,
            static_summary=f"Ticket {ticket.ticket_id} · {ticket.type.value}/"
                           f"{ticket.priority.value} · {ticket.channel}",
            result_type=TicketStatus,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            task_timeout=timedelta(seconds=10),
        )

    def ticket(self, ticket_id: str) -> WorkflowHandle[Any, TicketStatus]:
        return self.client.get_workflow_handle(ticket_workflow_id(ticket_id),
                                               result_type=TicketStatus)

    async def respond(self, ticket_id: str, agent_id: str, note: str | None = None) -> Decision:
        return await self.ticket(ticket_id).execute_update(
            "respond_now", Respond(agent_id=agent_id, note=note), result_type=Decision)

    async def wait_on_customer(self, ticket_id: str) -> None:
        await self.ticket(ticket_id).signal("wait_on_customer", WaitOnCustomer())

    async def customer_replied(self, ticket_id: str) -> None:
        await self.ticket(ticket_id).signal("customer_replied", CustomerReplied())

    async def resolve(self, ticket_id: str, agent_id: str, resolution: str) -> Decision:
        return await self.ticket(ticket_id).execute_update(
            "resolve_now", Resolve(agent_id=agent_id, resolution=resolution),
            result_type=Decision)

    async def reopen(self, ticket_id: str, reason: str) -> None:
        await self.ticket(ticket_id).signal("reopen", Reopen(reason=reason))

    async def rate(self, ticket_id: str, score: int, comment: str | None = None) -> Decision:
        return await self.ticket(ticket_id).execute_update(
            "rate_now", Rate(score=score, comment=comment), result_type=Decision)

    async def ticket_status(self, ticket_id: str) -> TicketStatus:
        return await self.ticket(ticket_id).query("status", result_type=TicketStatus)

    # -- customer lifecycle ---------------------------------------------------------

    async def report_purchase(self, customer_id: str, purchase: Purchase) -> WorkflowHandle:
        """Signal-with-start: the first purchase starts the customer's journey."""
        handle = await self.client.start_workflow(
            "CustomerLifecycle",
            LifecycleInput(customer_id=customer_id),
            id=customer_workflow_id(customer_id),
            task_queue=self.task_queue,
            start_signal="purchase",
            start_signal_args=[purchase],
        )
        from starter.loyalty import purchase_to_membership

        await purchase_to_membership(self.client, customer_id, purchase)
        return handle

    async def opt_out(self, customer_id: str, channel: str | None = None) -> WorkflowHandle:
        return await self.client.start_workflow(
            "CustomerLifecycle",
            LifecycleInput(customer_id=customer_id),
            id=customer_workflow_id(customer_id),
            task_queue=self.task_queue,
            start_signal="opt_out",
            start_signal_args=[OptOut(channel=channel)],
        )

    async def customer_status(self, customer_id: str) -> LifecycleStatus:
        return await self.client.get_workflow_handle(customer_workflow_id(customer_id)).query(
            "status", result_type=LifecycleStatus
        )
