"""The Temporal Web UI in a real browser (headless Chromium, driven by
Playwright) shows a lead's decoded name through the codec server, while the
server's history holds only ciphertext.

Needs Debian's `chromium` package and Playwright (the test extras); where
either is missing the test is skipped and says which."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from domain.leads import LeadInput
from starter.client import Journeys, data_converter
from starter.codec import EncryptionCodec, KeyRing, new_key
from starter.codec_server import CodecServer
from starter.devstack import temporal_binary
from workflows.kit import SEARCH_ATTRIBUTES

pytestmark = pytest.mark.devserver
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NAME = "王芳菲"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def codec() -> EncryptionCodec:
    return EncryptionCodec(KeyRing.parse({"ui-1": new_key()}, source="test"))


@pytest_asyncio.fixture
async def ui_stack(
    codec: EncryptionCodec,
) -> AsyncIterator[tuple[WorkflowEnvironment, str, str]]:
    """A dev server whose UI decrypts through a codec server (as `crm up` sets it)."""
    ui_port = free_port()
    ui = f"http://127.0.0.1:{ui_port}"
    with CodecServer(codec, token=None, origins=[ui, f"http://localhost:{ui_port}"]) as server:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(), data_converter=data_converter(codec),
            search_attributes=SEARCH_ATTRIBUTES, ui=True, ui_port=ui_port,
            dev_server_extra_args=["--ui-codec-endpoint", server.url])
        try:
            yield env, ui, server.url
        finally:
            await env.shutdown()


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium: install Debian's "
                    "`chromium` package")
async def test_the_ui_shows_a_lead_s_name_decoded_through_the_codec_server(
    ui_stack: tuple[WorkflowEnvironment, str, str],
) -> None:
    playwright = pytest.importorskip("playwright.async_api",
                                     reason="Playwright is not installed (the test extras)")
    env, ui, codec_url = ui_stack
    lead_id = f"UI-{uuid.uuid4().hex[:6]}"
    # No worker is needed: the start input stands in the history at once.
    handle = await Journeys(env.client, task_queue=f"nobody-{lead_id}").start_lead(LeadInput(
        lead_id=lead_id, name=NAME, phone="13800138123", region="east", product_line="erp",
        source="web_form"))
    history = await handle.fetch_history()
    assert NAME not in history.to_json()  # the server holds ciphertext

    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM,
                                          args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page()
            decoded: list[str] = []
            # The UI's own decode calls (`{endpoint}/decode?…`), answered.
            page.on("response", lambda r: decoded.append(r.url) if r.status == 200
                    and r.url.split("?", 1)[0] == f"{codec_url}/decode" else None)
            await page.goto(f"{ui}/namespaces/{env.client.namespace}/workflows/{handle.id}")
            await page.get_by_text(NAME).first.wait_for(timeout=60_000)
        finally:
            await browser.close()
    assert decoded, "the page showed the name without asking the codec server"
    await handle.terminate("test over")
