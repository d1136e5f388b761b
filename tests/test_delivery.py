"""Delivery through apprise to a real local SMTP server, and the SSL contexts
its SMTP plugin is handed (one per thread, verification on each time)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator

import pytest
from apprise.plugins.email import smtp

from activities.delivery import AppriseDeliverer, Message, _ThreadSslContexts
from tests.sinks import SmtpSink


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink()
    s.start()
    yield s
    s.stop()


def test_apprise_s_smtp_plugin_gets_one_context_per_thread() -> None:
    assert isinstance(smtp.ssl, _ThreadSslContexts)
    first, again = smtp.ssl.create_default_context(), smtp.ssl.create_default_context()
    assert first is again
    other: list[ssl.SSLContext] = []
    thread = threading.Thread(target=lambda: other.append(smtp.ssl.create_default_context()))
    thread.start()
    thread.join()
    assert other[0] is not first
    # Everything else is the ssl module's own.
    assert smtp.ssl.CERT_NONE is ssl.CERT_NONE and smtp.ssl.SSLContext is ssl.SSLContext


def test_a_context_turned_unverified_for_one_connection_comes_back_verified() -> None:
    context = smtp.ssl.create_default_context()
    # What the plugin does for a relay configured with verify=no.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    again = smtp.ssl.create_default_context()
    assert again is context
    assert again.check_hostname is True and again.verify_mode == ssl.CERT_REQUIRED
    # And it trusts the system's certificates, as a fresh default context does.
    assert again.cert_store_stats() == ssl.create_default_context().cert_store_stats()


def test_e_mails_reach_the_smtp_server_each_once(sink: SmtpSink) -> None:
    deliverer = AppriseDeliverer(lambda channel: (
        f"mailto://127.0.0.1:{sink.port}?from=crm@example.com&to={{to}}&mode=insecure"))
    for n in range(3):
        deliverer.deliver(Message(channel="email", to=f"c{n}@example.com", title=f"Hello {n}",
                                  body=f"Body {n}", key=f"wf:step:{n}"))
    assert sorted((m.to[0], m.subject, m.key) for m in sink.mails) == [
        (f"c{n}@example.com", f"Hello {n}", f"wf:step:{n}") for n in range(3)]
