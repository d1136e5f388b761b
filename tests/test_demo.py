"""`./run.sh --demo` does what the README's demo table says, lead by lead: the
demo against a real dev server and worker, with a day lasting one second."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.leads import LeadStage
from domain.policy import LeadPolicy
from starter.demo import run_demo
from tests.harness import make_settings, running_worker

pytestmark = pytest.mark.devserver

README = Path(__file__).resolve().parent.parent / "README.md"
SECONDS_PER_DAY = 2.0

# Where each demo lead ends, as its README row says.
ENDS = {
    1: LeadStage.converted,
    3: LeadStage.stale,
    4: LeadStage.merged,
    5: LeadStage.discarded,
}


def readme_rows() -> dict[int, str]:
    rows = re.findall(r"^\| `D…-(\d)` \| (.+) \|$", README.read_text(), re.MULTILINE)
    return {int(n): text for n, text in rows}


def test_the_readme_names_where_each_demo_lead_ends() -> None:
    rows = readme_rows()
    assert set(rows) == {1, 2, 3, 4, 5}
    assert "converts to an opportunity" in rows[1]
    for n in (3, 4, 5):
        assert rows[n].rstrip(")").endswith(f"`{ENDS[n].value}`"), rows[n]


@pytest.mark.timeout(300)
async def test_the_demo_leads_end_as_the_readme_says(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    policy = LeadPolicy().scaled(86400 / SECONDS_PER_DAY)
    async with running_worker(dev_env.client, sqlite_store, settings, lead_policy=policy) as h:
        console = Console(file=(tmp_path / "demo.out").open("w"), width=200)
        await run_demo(h.journeys, sqlite_store, console=console,
                       seconds_per_day=SECONDS_PER_DAY)
        console.file.close()
        out = (tmp_path / "demo.out").read_text()
        run = re.search(r"Demo run (\d+)", out)
        assert run, out
        stages = {n: (await h.journeys.lead_status(f"D{run[1]}-{n}")).stage for n in ENDS}
        assert stages == ENDS, out
        # Lead 2 was escalated and reassigned; its new owner's contact ended the
        # escalation (it may since have missed follow-ups of its own).
        escalated = await h.journeys.lead_status(f"D{run[1]}-2")
        assert escalated.reassignments == 1 and escalated.previous_owners, out
        assert escalated.stage in (LeadStage.following_up, LeadStage.stale), out
        assert f"D{run[1]}-5: claimed by rep-zhao -> accepted" in out
        # Lead 1's opportunity went on to a won deal and its first payment.
        deal = f"opp-D{run[1]}-1"
        h.journeys.started += [f"opportunity-{deal}", f"contract-{deal}", f"onboarding-{deal}"]
        assert f"contract-{deal}: first payment 108000.00 received" in out, out
        contract = await h.journeys.contract_status(deal)
        assert contract.milestones[0].state == "paid" and contract.accepted_at is not None, out
