"""Settings from the environment (prefix ``CRM_``, and ``TEMPORAL_*``).

Read once at a composition root (`worker.py`, `starter/`) and handed down;
workflows never import this module.
"""

from __future__ import annotations

from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.courses import CoursePolicy
from domain.lifecycle import LifecyclePolicy
from domain.payments import PaymentPolicy
from domain.policy import LeadPolicy, MessagingPolicy, QuietHours
from domain.tickets import TicketPolicy

TASK_QUEUE = "crm-journeys"
P = TypeVar("P", bound=BaseModel)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", env_file=".env", extra="ignore")

    temporal_address: str = Field(
        "localhost:7233", validation_alias=AliasChoices("TEMPORAL_ADDRESS", "CRM_TEMPORAL_ADDRESS")
    )
    temporal_namespace: str = Field(
        "default",
        validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "CRM_TEMPORAL_NAMESPACE"),
    )
    task_queue: str = TASK_QUEUE

    database_url: str = "sqlite:///var/crm.db"

    # The payload codec (starter/codec.py): key id -> base64 AES-256 key as a
    # JSON object; the first encrypts, all decrypt. Without it, the key file:
    # `codec_key_file`, by default `codec-keys.json` beside a SQLite store
    # (`crm up` creates it on its first run). The codec server's bearer token,
    # port and the Web UI origins it answers.
    codec_keys: dict[str, str] | None = None
    codec_key_file: Path | None = None
    codec_token: str | None = None
    codec_port: int = 8234
    codec_cors_origins: list[str] = ["http://127.0.0.1:8233", "http://localhost:8233"]

    # Delivery: one apprise URL per channel. `{to}` is replaced by the
    # recipient's address (URL-quoted) and `{key}` by the touch's idempotency
    # key. The default writes every message to a local outbox file.
    outbox_path: Path = Path("var/outbox.log")
    email_url: str | None = None
    sms_url: str | None = None
    chat_url: str | None = None

    quiet_hours_enabled: bool = True
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(9, 0)
    default_timezone: str = "Asia/Shanghai"
    default_locale: str = "zh-CN"

    # Lead policy overrides (defaults are the domain's).
    lead_first_touch_hours: float | None = None
    lead_reminder_before_hours: float | None = None
    lead_max_reassignments: int | None = None
    lead_follow_up_days: float | None = None
    lead_max_missed_follow_ups: int | None = None

    # Course policy overrides.
    course_callback_after_hours: float | None = None
    course_callback_window_hours: float | None = None
    course_learning_path_url: str | None = None
    course_community_url: str | None = None

    # Lifecycle: days without a purchase before the dormancy check.
    lifecycle_dormant_days: float | None = None
    rfm_schedule_hour: int = 2

    # Ticket policy overrides (minutes, days; complaint words as a JSON list).
    ticket_first_response_minutes: float | None = None
    ticket_warning_before_minutes: float | None = None
    ticket_manager_after_minutes: float | None = None
    ticket_survey_after_days: float | None = None
    ticket_close_after_survey_days: float | None = None
    ticket_complaint_words: list[str] | None = None
    ticket_senior_seniority: int | None = None
    ticket_reassign_to_supervisor: bool | None = None

    # Payment policy: the customer-local time of day for reminders and escalations.
    payment_notice_time: time = time(10, 0)

    # Divides every journey duration: 8640 turns a day into ten seconds.
    time_scale: float = 1.0

    # Prometheus: the engine's counters, and the Temporal runtime's metrics
    # (0 turns either off).
    metrics_port: int = 9464
    temporal_metrics_port: int = 9465

    templates_dir: Path = Path(__file__).resolve().parent.parent / "templates"
    log_level: str = "INFO"
    # Journeys a worker keeps in memory between their workflow tasks (the SDK's
    # sticky cache). 0: replay every task from its history. Under repeated
    # worker kills, a journey kept in memory could be taken up again on a
    # worker whose copy disagreed with its history, and then failed every task
    # with a non-determinism error; replaying each task from the history
    # cannot disagree with it. A deployment that never kills its workers can
    # trade that for less CPU with a cache.
    workflow_cache_size: int = 0

    # Any journey's policy as JSON, by journey name: `{"lead": {"first_touch":
    # "PT12H"}}`. A journey with settings of its own (above) reads those; a
    # journey without reads only this, so a new journey needs no new setting.
    journey_policies: dict[str, dict[str, Any]] = {}

    def policy_for(self, journey: str, model: type[P]) -> P:
        """A journey's policy: its own settings where it has them, else its
        entry in `journey_policies` over the domain's defaults."""
        own = getattr(self, f"{journey}_policy", None)
        if isinstance(own, model):
            return own
        policy = model.model_validate(self.journey_policies.get(journey, {}))
        scaled = getattr(policy, "scaled", None)
        return scaled(self.time_scale) if callable(scaled) else policy

    @property
    def codec_key_path(self) -> Path | None:
        """The codec's key file: as configured, else beside a SQLite store's file."""
        if self.codec_key_file is not None:
            return self.codec_key_file
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and ":memory:" not in self.database_url:
            return Path(self.database_url[len(prefix):].split("?", 1)[0]).parent / \
                "codec-keys.json"
        return None

    def channel_url(self, channel: str) -> str:
        configured = {"email": self.email_url, "sms": self.sms_url, "chat": self.chat_url}
        url = configured.get(channel)
        return url or f"outbox://localhost{self.outbox_path.resolve()}?channel={channel}&to={{to}}"

    @cached_property
    def messaging_policy(self) -> MessagingPolicy:
        return MessagingPolicy(
            quiet_hours=QuietHours(
                enabled=self.quiet_hours_enabled,
                start=self.quiet_hours_start,
                end=self.quiet_hours_end,
            ),
            default_timezone=self.default_timezone,
            default_locale=self.default_locale,
        )

    @cached_property
    def lead_policy(self) -> LeadPolicy:
        from datetime import timedelta

        overrides: dict[str, object] = {}
        if self.lead_first_touch_hours is not None:
            overrides["first_touch"] = timedelta(hours=self.lead_first_touch_hours)
        if self.lead_reminder_before_hours is not None:
            overrides["reminder_before"] = timedelta(hours=self.lead_reminder_before_hours)
        if self.lead_max_reassignments is not None:
            overrides["max_reassignments"] = self.lead_max_reassignments
        if self.lead_follow_up_days is not None:
            overrides["follow_up_interval"] = timedelta(days=self.lead_follow_up_days)
        if self.lead_max_missed_follow_ups is not None:
            overrides["max_missed_follow_ups"] = self.lead_max_missed_follow_ups
        return LeadPolicy.model_validate(overrides).scaled(self.time_scale)

    @cached_property
    def course_policy(self) -> CoursePolicy:
        from datetime import timedelta

        overrides: dict[str, object] = {}
        if self.course_callback_after_hours is not None:
            overrides["callback_after"] = timedelta(hours=self.course_callback_after_hours)
        if self.course_callback_window_hours is not None:
            overrides["callback_window"] = timedelta(hours=self.course_callback_window_hours)
        if self.course_learning_path_url:
            overrides["learning_path_url"] = self.course_learning_path_url
        if self.course_community_url:
            overrides["community_url"] = self.course_community_url
        return CoursePolicy.model_validate(overrides).scaled(self.time_scale)

    @cached_property
    def payment_policy(self) -> PaymentPolicy:
        # Payment dates are calendar dates: the time scale does not apply.
        return PaymentPolicy(notice_time=self.payment_notice_time)

    @cached_property
    def lifecycle_policy(self) -> LifecyclePolicy:
        from datetime import timedelta

        overrides: dict[str, object] = {}
        if self.lifecycle_dormant_days is not None:
            overrides["dormant_after"] = timedelta(days=self.lifecycle_dormant_days)
        return LifecyclePolicy.model_validate(overrides).scaled(self.time_scale)

    @cached_property
    def ticket_policy(self) -> TicketPolicy:
        from datetime import timedelta

        overrides: dict[str, object] = {}
        if self.ticket_first_response_minutes is not None:
            overrides["first_response"] = timedelta(minutes=self.ticket_first_response_minutes)
        if self.ticket_warning_before_minutes is not None:
            overrides["warning_before"] = timedelta(minutes=self.ticket_warning_before_minutes)
        if self.ticket_manager_after_minutes is not None:
            overrides["manager_after"] = timedelta(minutes=self.ticket_manager_after_minutes)
        if self.ticket_survey_after_days is not None:
            overrides["survey_after"] = timedelta(days=self.ticket_survey_after_days)
        if self.ticket_close_after_survey_days is not None:
            overrides["close_after_survey"] = timedelta(days=self.ticket_close_after_survey_days)
        if self.ticket_complaint_words is not None:
            overrides["complaint_words"] = self.ticket_complaint_words
        if self.ticket_senior_seniority is not None:
            overrides["senior_seniority"] = self.ticket_senior_seniority
        if self.ticket_reassign_to_supervisor is not None:
            overrides["reassign_to_supervisor"] = self.ticket_reassign_to_supervisor
        return TicketPolicy.model_validate(overrides).scaled(self.time_scale)
