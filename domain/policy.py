"""Policies: the numbers operations staff tune, as data.

A journey keeps the policy it started with in its own state (and carries it
across continue-as-new), so changing a default never changes a running journey.
"""

from __future__ import annotations

from datetime import time, timedelta

from pydantic import BaseModel, ConfigDict, Field

from domain.limits import Duration


class LeadPolicy(BaseModel):
    """Lead first touch and re-follow (docs/design.md, journey 1)."""

    model_config = ConfigDict(extra="ignore")

    first_touch: Duration = timedelta(hours=24)
    reminder_before: Duration = timedelta(hours=4)
    max_reassignments: int = 2
    follow_up_interval: Duration = timedelta(days=3)
    max_missed_follow_ups: int = 5

    def scaled(self, factor: float) -> LeadPolicy:
        """Every duration divided by `factor` (a demo runs a day in seconds)."""
        if factor == 1:
            return self
        return self.model_copy(
            update={
                "first_touch": self.first_touch / factor,
                "reminder_before": self.reminder_before / factor,
                "follow_up_interval": self.follow_up_interval / factor,
            }
        )


class QuietHours(BaseModel):
    """Customer-local hours in which reminder and marketing messages wait.

    `start` may be later than `end`: the window then spans midnight
    (the default 21:00-09:00).
    """

    model_config = ConfigDict(extra="ignore")

    enabled: bool = True
    start: time = time(21, 0)
    end: time = time(9, 0)


class MessagingPolicy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    default_timezone: str = "Asia/Shanghai"
    default_locale: str = "zh-CN"
    # Channel preference for customers and leads; the first one the recipient
    # has an endpoint for is used.
    customer_channels: list[str] = Field(default_factory=lambda: ["email", "sms"])
    staff_channels: list[str] = Field(default_factory=lambda: ["chat", "email", "sms"])
    marketing_per_day: int = 1
    marketing_per_week: int = 3
