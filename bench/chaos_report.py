"""The report `bench.chaos` prints: faults done, journeys by kind, the people's
part, workflow tasks, touches, and a listing of every finding."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.chaos_checks import Verdict
from bench.chaos_faults import FaultLog
from bench.chaos_people import KINDS, Play


def table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    print("  " + "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                           for i, (h, w) in enumerate(zip(headers, widths, strict=True))))
    print("  " + "  ".join("-" * w for w in widths))
    for row in cells:
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def ratio(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def listing(title: str, items: list[tuple[Any, ...]], limit: int = 15) -> None:
    print(f"\n{title}: {len(items)}")
    for item in items[:limit]:
        print("  " + " | ".join(str(x) for x in item))
    if len(items) > limit:
        print(f"  ... and {len(items) - limit} more")


def report(plays: list[Play], verdict: Verdict, faults: FaultLog, settled: str) -> None:
    print("\n== faults done ==")
    table(["fault", "count"], [[k, v] for k, v in sorted(faults.kinds.items())])
    print(f"\nquiescence: {settled}")

    print("\n== journeys ==")
    rows = []
    for kind in (*KINDS, "all"):
        mine = [p for p in plays if kind in (p.kind, "all")]
        got = Counter(verdict.outcome.get(p.workflow_id, "?") for p in mine)
        ended_ok = sum(1 for p in mine if verdict.outcome.get(p.workflow_id) == "completed"
                       and (not p.expected_stage
                            or verdict.stage.get(p.workflow_id) == p.expected_stage))
        refused = sum(len(p.refused) for p in mine)
        errors = sum(1 for p in mine if p.error)
        rows.append([kind, len(mine), got["completed"], ratio(got["completed"], len(mine)),
                     ended_ok, got["running"], got["stuck"], got["failed"], refused, errors])
    table(["journey", "started", "completed", "ratio", "as meant", "running (by design)",
           "stuck", "failed", "actions refused", "script errors"], rows)

    print("\n== the people's part ==")
    actions = Counter(a for p in plays for a in p.actions)
    table(["action", "done"], [[name, n] for name, n in sorted(actions.items())])
    print(f"  malformed signals among them: {sum(p.malformed_sent for p in plays)}; payments "
          f"told twice (same reference): {sum(p.told_twice for p in plays)}")

    print("\n== workflow tasks and activities (from the histories) ==")
    with_failures = {wid for wid, _, _ in verdict.task_failures}
    table(["event", "count", "journeys"], [
        ["WorkflowTaskFailed (journey code)", len(verdict.task_failures), len(with_failures)],
        ["workflow task failing now (loop)", len(verdict.loops), len(verdict.loops)],
        ["history does not replay (and no loop yet)", len(verdict.replay_failures),
         len(verdict.replay_failures)],
        *[[name, n, "-"] for name, n in sorted(verdict.timeouts.items())],
    ])
    causes = Counter((cause, message) for _, cause, message in verdict.task_failures)
    for (cause, message), n in causes.most_common(8):
        print(f"    {n} x {cause}: {message}")

    print("\n== touches ==")
    sent = verdict.touches.get("sent", 0)
    table(["figure", "count", "ratio"], [
        *[[f"store: {status}", n, ratio(n, sum(verdict.touches.values()))]
          for status, n in sorted(verdict.touches.items())],
        ["received at the SMTP sink", verdict.received.get("smtp", 0), "-"],
        ["received at the webhook sink", verdict.received.get("webhook", 0), "-"],
        ["received without a touch key", verdict.received_no_key, "-"],
        ["duplicate deliveries (keys)", len(verdict.duplicates), ratio(len(verdict.duplicates),
                                                                       sent)],
        ["sent in the store, never received", len(verdict.lost), ratio(len(verdict.lost), sent)],
        ["received, not recorded sent", len(verdict.unrecorded), "-"],
    ])
    print("  (keys are read from the X-Crm-Touch-Key header of each e-mail and webhook call; "
          f"\n   {verdict.message_ids};\n   touches on other "
          "channels go to the outbox file and are not counted)")

    listing("stuck journeys", verdict.stuck)
    listing("failed journeys", verdict.failed)
    listing("workflow task failure loops (id, attempt, last failure)", verdict.loops)
    listing("histories that do not replay on this code (id, first failure)",
            verdict.replay_failures)
    listing("duplicate deliveries (key, journey, times received, what a receiver sees)",
            verdict.duplicates)
    listing("touches recorded sent, never received (key, channel, store reason)", verdict.lost)
    listing("store vs journey disagreements", verdict.disagreements)
    refused = [(p.workflow_id, r) for p in plays for r in p.refused]
    if refused:
        listing("people's actions the journey refused (not counted)", refused, limit=8)
    if verdict.otherwise:
        listing("ended otherwise than the bench meant (not counted as failures)",
                verdict.otherwise, limit=8)
    if verdict.unrecorded:
        listing("received, store says not sent (not counted)",
                [(u,) for u in verdict.unrecorded], limit=8)
    errors = [(p.workflow_id, p.error) for p in plays if p.error]
    if errors:
        listing("the bench's own scripts that gave up (not counted)", errors, limit=8)
    if verdict.notes:
        listing("notes", [(n,) for n in verdict.notes], limit=8)

