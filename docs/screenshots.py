"""Takes the README's screenshots again: the overview page and a lead's
timeline in the Temporal Web UI (timers and activities with their summaries).

    .venv/bin/python -m docs.screenshots [--out docs/img]

Starts its own dev server (with the UI, on free ports), a worker in-process on
a throwaway SQLite store, a few demo journeys, then drives headless Chromium
(Debian's `chromium` package) with Playwright. Nothing it starts outlives it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from activities.store.customers import CustomerRecord, add_customer
from activities.store.staff import StaffMember, add_staff
from domain.leads import LeadInput
from domain.payments import ContractInput
from domain.policy import MessagingPolicy, QuietHours
from domain.settings import Settings
from starter.client import Journeys, data_converter
from starter.devstack import temporal_binary
from starter.overview import overview, render_html
from worker import build_worker
from workflows.kit import SEARCH_ATTRIBUTES


def seed(store: Store) -> None:
    now = datetime.now(UTC)
    add_staff(store, StaffMember(id="shot-mgr", name="Sales Manager", role="manager",
                                 regions=["east"], chat="shot-mgr"), now=now)
    add_staff(store, StaffMember(id="shot-rep-1", name="Sales Rep", role="rep", regions=["east"],
                                 product_lines=["erp"], manager_id="shot-mgr",
                                 chat="shot-rep-1"), now=now)
    add_staff(store, StaffMember(id="shot-fin", name="Finance", role="finance", chat="shot-fin"),
              now=now)
    add_customer(store, CustomerRecord(id="shot-cust-1", name="Sample Company",
                                       email="buyer@example.com"), now=now)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def take(out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no headless Chromium: install Debian's `chromium` package")
    from playwright.async_api import async_playwright

    ui_port = free_port()
    ui = f"http://127.0.0.1:{ui_port}"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), data_converter=data_converter(),
        search_attributes=SEARCH_ATTRIBUTES, ui=True, ui_port=ui_port)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/crm.db"
        migrate(url)
        store = Store.from_url(url)
        settings = Settings(database_url=url, outbox_path=Path(tmp) / "outbox.log")  # type: ignore[call-arg]
        seed(store)
        quiet = MessagingPolicy(quiet_hours=QuietHours(enabled=False))
        try:
            with ThreadPoolExecutor(max_workers=8) as executor:
                async with build_worker(env.client, settings, store, executor=executor,
                                        task_queue="screenshots", messaging_policy=quiet):
                    journeys = Journeys(env.client, task_queue="screenshots")
                    for n, region in enumerate(("east", "east", "north", "east"), start=1):
                        await journeys.start_lead(LeadInput(
                            lead_id=f"S{n}", name="Sample Customer", email=f"s{n}@example.com",
                            region=region, product_line="erp", source="web_form"))
                    await journeys.sign_contract(ContractInput(
                        contract_id="S-C1", customer_id="shot-cust-1", owner_id="shot-rep-1",
                        amount=Decimal("120000"), currency="CNY",
                        signed_at=datetime.now(UTC) - timedelta(days=40)))
                    await asyncio.sleep(3)  # visibility catches up
                    view = await overview(env.client, ui=ui)
                    page_file = Path(tmp) / "overview.html"
                    page_file.write_text(render_html(view), encoding="utf-8")
                    async with async_playwright() as p:
                        browser = await p.chromium.launch(executable_path=chromium,
                                                          args=["--no-sandbox", "--disable-gpu"])
                        page = await browser.new_page(viewport={"width": 1280, "height": 900})
                        await page.goto(page_file.as_uri())
                        await page.screenshot(path=str(out / "overview.png"), full_page=True)
                        await page.goto(f"{ui}/namespaces/default/workflows/lead-S1")
                        await page.get_by_text("first touch deadline").first.wait_for(
                            timeout=60_000)
                        await page.screenshot(path=str(out / "lead-timeline.png"),
                                              full_page=True)
                        await browser.close()
        finally:
            store.dispose()
            await env.shutdown()
    print(f"wrote {out / 'overview.png'} and {out / 'lead-timeline.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "img")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(take(out))


if __name__ == "__main__":
    main()
