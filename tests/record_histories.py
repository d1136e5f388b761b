"""Records the workflow histories that the replay tests keep replaying.

    python -m tests.record_histories

Run it only when a journey's *intended* behaviour changes, and commit the new
file beside the old ones: the recorded histories stand for journeys already
running in production, which every later version of the code must replay
without non-determinism (use `workflow.patched` for changes of shape).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from domain.leads import Convert, LeadInput, LogContact
from tests.harness import eventually, make_settings, running_worker, seed_staff

HISTORIES = Path(__file__).parent / "histories"


async def record_lead_full(env: WorkflowEnvironment, workdir: Path) -> str:
    """Assignment, reminder, escalation and reassignment, a contact, two missed
    follow-ups with reminders, a second contact, a rejected signal, conversion."""
    url = f"sqlite:///{workdir / 'crm.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        handle = await h.journeys.start_lead(LeadInput(
            lead_id="R1", name="王芳", phone="+8613700137000", email="wang.fang@example.com",
            company="星辰科技有限公司", region="east", product_line="erp", source="trade_show",
            need="需要ERP系统支持三个工厂的生产排程",
        ))
        await env.sleep(timedelta(hours=24, minutes=1))
        await eventually(lambda: h.rows_escalated("R1"))
        answer = await h.journeys.log_contact("R1", LogContact(owner_id="rep-b", channel="phone"))
        assert answer.accepted
        await handle.signal("log_contact", LogContact(owner_id="rep-c", channel="phone"))
        await env.sleep(timedelta(days=6, minutes=2))
        answer = await h.journeys.log_contact("R1", LogContact(owner_id="rep-b", channel="visit",
                                                               note="demo done"))
        assert answer.accepted
        await handle.signal("convert", Convert(opportunity_name="三工厂ERP",
                                               amount=Decimal("560000")))
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def main() -> None:
    from tests.conftest import register_search_attributes, time_skipping_binary

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_binary(),
        data_converter=__import__("starter.client", fromlist=["x"]).data_converter(),
    )
    await register_search_attributes(env.client)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            HISTORIES.mkdir(exist_ok=True)
            text = await record_lead_full(env, Path(tmp))
            (HISTORIES / "lead_full.json").write_text(text)
            print("recorded", HISTORIES / "lead_full.json")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
