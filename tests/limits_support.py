"""Valid start inputs and staff and customer records the limits tests vary,
and reading a model's problems.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

SIGNED = "2026-03-02T09:00:00+08:00"
LEAD = {"lead_id": "L1", "name": "王芳", "phone": "13800138000", "region": "east",
        "product_line": "erp", "source": "web_form"}


CONTRACT = {"contract_id": "K1", "customer_id": "cust-1", "owner_id": "rep-a",
            "amount": "10000.00", "currency": "CNY", "signed_at": SIGNED}


TICKET = {"ticket_id": "T1", "customer_id": "cust-1", "type": "technical", "subject": "Printer"}
ENROLLMENT = {"enrollment_id": "E1", "customer_id": "cust-1", "course_id": "erp-101",
              "advisor_id": "adv-1", "ends_at": SIGNED}


STAFF = {"id": "rep-a", "name": "Rep A", "role": "rep"}


def problems(model: type[BaseModel], values: dict[str, Any]) -> dict[str, str]:
    """Each refused field (dotted) and pydantic's message about it."""
    with pytest.raises(ValidationError) as refused:
        model.model_validate(values)
    return {".".join(str(p) for p in e["loc"]) or "(input)": e["msg"]
            for e in refused.value.errors()}
