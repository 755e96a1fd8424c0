"""`hf join`: bring every part's owned files back into the main tree as one commit.

Planning (join_plan.py) reads the parts and the object database only; the
main tree is then written (join_write.py) under the commit lock, with a
journal, for the affected paths only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hf_fanout.core.workspace import Workspace
from hf_fanout.orchestrator.join_plan import JoinPlan, plan_join
from hf_fanout.orchestrator.join_write import execute_join


@dataclass
class JoinOutcome:
    """What `join_batch` did: the plan (what each part brings) and the commit made
    (None for a dry run, or when nothing was committed)."""

    plan: JoinPlan
    commit: str | None
    dry_run: bool

    @property
    def nothing_to_bring(self) -> bool:
        return not self.plan.noop and not self.plan.entries and not self.dry_run

    def to_data(self) -> dict[str, Any]:
        return {**self.plan.to_data(), "commit": self.commit, "dry_run": self.dry_run}


def join_batch(ws: Workspace, batch_id: str, *, partial: bool = False, wait: float = 30.0,
               dry_run: bool = False, allow_outside_links: bool = False,
               on_wait: Callable[[str], None] | None = None) -> JoinOutcome:
    """`hf join` and the sweep's automatic join: plan, then (unless `dry_run`, or
    the batch is joined already) write under the locks. The objects the join
    makes are held in memory and written once, as one pack."""
    from hf_fanout.orchestrator.boundary import refuse_inside_part
    from hf_fanout.orchestrator.inbox import apply_all

    started = time.time()
    if not dry_run:
        refuse_inside_part(f"hf join {batch_id}")
        apply_all(ws)  # a sandboxed part's `hf done` not applied yet
    with ws.repo.holding_objects():
        # a real join checks the main tree for edits under the commit lock (execute_join)
        plan = plan_join(ws, batch_id, partial=partial, check_main=dry_run,
                         allow_outside_links=allow_outside_links)
        if plan.noop:
            return JoinOutcome(plan, plan.batch.joined_commit, dry_run)
        if dry_run:
            return JoinOutcome(plan, None, True)
        commit = execute_join(ws, plan, wait=wait, on_wait=on_wait, started=started)
    return JoinOutcome(plan, commit if plan.entries or plan.noop else None, False)
