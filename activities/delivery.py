"""Delivery through apprise, and rendering with jinja2: separate from deciding.

Channel URLs come from settings. `{to}` in a URL is replaced by the
recipient's address and `{key}` by the touch's idempotency key; the key also
travels as the `X-Crm-Touch-Key` header where the channel has headers
(e-mail, JSON/form/XML webhooks), and an e-mail's Message-ID is derived from
it, so a receiver can drop a repeat. Those channels (and the local outbox,
whose lines carry the key) are the ones `drops_repeats` names: a touch whose
hand-off may have been cut short is sent again on them, under the same key.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import apprise
from apprise.decorators import notify
from babel.dates import format_datetime as babel_format_datetime
from babel.numbers import format_currency
from jinja2 import (
    ChainableUndefined,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    pass_context,
)
from jinja2.sandbox import SandboxedEnvironment

_HEADER_SCHEMES = ("mailto", "mailtos", "json", "jsons", "form", "forms", "xml", "xmls")
_outbox_lock = threading.Lock()


@notify(on="outbox", name="CRM local outbox")
def _write_outbox(body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any,
                  **kwargs: Any) -> bool:
    """The development channel: one readable block per message in a local file."""
    path = Path(meta.get("fullpath") or "var/outbox.log")
    query = meta.get("qsd", {})
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    record = {
        "channel": query.get("channel"),
        "to": query.get("to"),
        "key": query.get("+x-crm-touch-key"),
        "title": title,
        "body": body,
        "written_at": stamp,
    }
    with _outbox_lock, path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return True


class _ThreadSslContexts:
    """apprise's SMTP plugin builds a fresh default SSL context for every e-mail,
    even to a relay without TLS; loading the system's CA certificates into it
    costs about 20 ms of CPU, two thirds of sending an e-mail. This stands in
    for the `ssl` module there and keeps one context per thread (apprise sends
    from long-lived threads, one e-mail at a time per thread), handed out each
    time with verification back on, as `create_default_context` makes it: the
    plugin may turn it off for its own connection only."""

    def __init__(self, module: Any) -> None:
        self._ssl = module
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ssl, name)

    def create_default_context(self, *args: Any, **kwargs: Any) -> ssl.SSLContext:
        if args or kwargs:
            return self._ssl.create_default_context(*args, **kwargs)
        context: ssl.SSLContext | None = getattr(self._local, "context", None)
        if context is None:
            context = self._local.context = self._ssl.create_default_context()
        context.check_hostname = True  # and so verify_mode CERT_REQUIRED again
        context.verify_mode = ssl.CERT_REQUIRED
        return context


def _share_smtp_ssl_contexts() -> None:
    """Installs `_ThreadSslContexts` in apprise's SMTP plugin, where it exists."""
    try:
        from apprise.plugins.email import smtp
    except ImportError:  # another apprise layout: it keeps its own behaviour
        return
    if getattr(smtp, "ssl", None) is ssl:
        # The stand-in forwards every other name to the module it replaces.
        smtp.ssl = _ThreadSslContexts(ssl)  # type: ignore[assignment]


_share_smtp_ssl_contexts()


def touch_message_id(key: str) -> str:
    """The Message-ID of every e-mail sent for the touch `key`: the same on
    every attempt, so a mail server or client can drop a repeat."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}.touch@crm-journeys>"


_MESSAGE_ID_LINE = re.compile(r"^Message-ID:[^\n]*(?:\n[ \t][^\n]*)*", re.MULTILINE | re.IGNORECASE)


def _with_message_id(mail: str, message_id: str) -> str:
    head, sep, body = mail.partition("\n\n")
    head, found = _MESSAGE_ID_LINE.subn(f"Message-ID: {message_id}", head, count=1)
    if not found:
        head += f"\nMessage-ID: {message_id}"
    return head + sep + body


def _keep_touch_message_ids() -> None:
    """apprise gives every e-mail a fresh random Message-ID; an e-mail that
    carries a touch key gets `touch_message_id(key)` instead."""
    try:
        from apprise.plugins.email.base import NotifyEmail
    except ImportError:  # another apprise layout: the key header still travels
        return
    original = NotifyEmail.prepare_emails
    if getattr(original, "keeps_touch_message_ids", False):
        return

    def prepare_emails(*args: Any, **kwargs: Any) -> Any:
        headers = kwargs.get("headers") or {}
        key = next((v for k, v in headers.items() if k.lower() == "x-crm-touch-key"), None)
        for message in original(*args, **kwargs):
            if key:
                message.body = _with_message_id(message.body, touch_message_id(key))
            yield message

    # Marked and installed in apprise's class at run time, which its types
    # do not foresee: the mark keeps a second call from wrapping it twice.
    prepare_emails.keeps_touch_message_ids = True  # type: ignore[attr-defined]
    NotifyEmail.prepare_emails = staticmethod(prepare_emails)  # type: ignore[method-assign]


_keep_touch_message_ids()


class DeliveryFailed(Exception):
    """The channel refused or could not be reached; safe to retry."""


@dataclass(frozen=True)
class Message:
    channel: str
    to: str
    title: str
    body: str
    key: str


class AppriseDeliverer:
    """Sends a rendered message through the apprise URL configured for its channel."""

    def __init__(self, channel_urls: Callable[[str], str]) -> None:
        self._channel_urls = channel_urls

    def url_for(self, message: Message) -> str:
        template = self._channel_urls(message.channel)
        url = template.replace("{to}", quote(message.to, safe="")).replace(
            "{key}", quote(message.key, safe="")
        )
        scheme = url.split("://", 1)[0].lower()
        if scheme in _HEADER_SCHEMES or scheme == "outbox":
            url += ("&" if "?" in url else "?") + "+X-Crm-Touch-Key=" + quote(message.key, safe="")
        return url

    def drops_repeats(self, channel: str) -> bool:
        """Whether the channel's receiver can recognise a repeat by the touch key
        (the key header, an e-mail's Message-ID, the outbox's key field)."""
        scheme = self._channel_urls(channel).split("://", 1)[0].lower()
        return scheme in _HEADER_SCHEMES or scheme == "outbox"

    def deliver(self, message: Message) -> None:
        notifier = apprise.Apprise()
        url = self.url_for(message)
        if not notifier.add(url):
            raise DeliveryFailed(f"channel {message.channel}: apprise does not accept its URL")
        if not notifier.notify(body=message.body, title=message.title):
            raise DeliveryFailed(f"channel {message.channel}: delivery to {message.to} failed")


class RenderError(Exception):
    """A template that cannot be rendered; names the template and what was wrong."""


@dataclass(frozen=True)
class Rendered:
    template: str
    title: str
    body: str


MISSING = "—"


class Missing(ChainableUndefined):
    """A value the record does not have (a lead back in the pool has no
    first-touch deadline, a contract may have no owner): prints as a dash, is
    false in an `if`, and so is anything read from it."""

    __slots__ = ()

    def __str__(self) -> str:
        return MISSING


class _MessageEnvironment(SandboxedEnvironment):
    """A name no template context has is a template bug (StrictUndefined); a
    field of a missing value is `Missing`, not an error."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if obj is None or isinstance(obj, Missing):
            return Missing(name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if obj is None or isinstance(obj, Missing):
            return Missing(name=str(argument))
        return super().getitem(obj, argument)


def _is_missing(value: Any) -> bool:
    return value is None or value == "" or isinstance(value, Undefined)


class TemplateRenderer:
    """Sandboxed jinja2; templates per step, channel and locale.

    `templates/{journey}/{step}.{channel}.{locale}.j2` wins over
    `templates/{journey}/{step}.{locale}.j2`; the default locale is the
    fallback. A template sets its title with `{% set title = "..." %}`. A name
    the context lacks fails the render; a missing value (None) prints as a dash.
    """

    def __init__(self, directory: Path, *, default_locale: str = "zh-CN") -> None:
        self.default_locale = default_locale
        self.env = _MessageEnvironment(
            loader=FileSystemLoader(str(directory)),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=lambda value: MISSING if value is None else value,
        )
        self.env.filters["local_time"] = _local_time
        self.env.filters["money"] = _money

    def candidates(self, template: str, channel: str, locale: str) -> list[str]:
        names = []
        for loc in dict.fromkeys([locale, self.default_locale]):
            names += [f"{template}.{channel}.{loc}.j2", f"{template}.{loc}.j2"]
        return names

    def render(self, template: str, *, channel: str, locale: str,
               context: Mapping[str, Any]) -> Rendered:
        names = self.candidates(template, channel, locale)
        try:
            compiled = self.env.select_template(names)
        except TemplateNotFound as exc:
            raise RenderError(
                f"no template for {template!r}: looked for {', '.join(names)}") from exc
        except TemplateSyntaxError as exc:
            raise RenderError(
                f"template {exc.name or template} line {exc.lineno} does not parse: {exc.message}"
            ) from exc
        try:
            module = compiled.make_module(dict(context))
            body = str(module).strip()
            title = str(getattr(module, "title", "")).strip()
        except UndefinedError as exc:
            raise RenderError(f"template {compiled.name}: {exc.message}") from exc
        except (TemplateError, TypeError, ValueError, AttributeError) as exc:
            raise RenderError(f"template {compiled.name} failed to render: {exc!r}") from exc
        return Rendered(template=compiled.name or template, title=title, body=body)


@pass_context
def _local_time(ctx: Any, value: datetime | str | None, fmt: str = "medium") -> str:
    if _is_missing(value):
        return MISSING
    if isinstance(value, str):  # facts cross the workflow boundary as JSON
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    recipient = ctx.get("recipient") or {}
    zone = ZoneInfo(recipient.get("timezone") or "Asia/Shanghai")
    locale = (recipient.get("locale") or "zh-CN").replace("-", "_")
    return babel_format_datetime(value.astimezone(zone), format=fmt, tzinfo=zone, locale=locale)


@pass_context
def _money(ctx: Any, value: Any, currency: str = "CNY") -> str:
    if _is_missing(value):
        return MISSING
    if _is_missing(currency):
        currency = "CNY"
    recipient = ctx.get("recipient") or {}
    locale = (recipient.get("locale") or "zh-CN").replace("-", "_")
    if isinstance(value, str):  # facts cross the workflow boundary as JSON
        from decimal import Decimal

        value = Decimal(value)
    return format_currency(value, currency, locale=locale)
