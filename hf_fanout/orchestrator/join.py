"""`hf join`: bring every part's owned files back into the main tree as one commit.

Planning (join_plan.py) reads the parts and the object database only; the
main tree is then written (join_write.py) under the commit lock, with a
journal, for the affected paths only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError
from hf_fanout.orchestrator.join_plan import JoinPlan, plan_join
from hf_fanout.orchestrator.join_write import execute_join
from hf_fanout.orchestrator.joined_parts import AfterJoin, commits_after_join, join_left_history
from hf_fanout.orchestrator.publish import (
    Published,
    PublishOptions,
    PushFailed,
    RequestFailed,
    destination,
    publish,
)

if TYPE_CHECKING:
    from hf_fanout.orchestrator.remote_parts import Fetched


@dataclass
class JoinOutcome:
    """What `join_batch` did: the plan (what each part brings) and the commit made
    (None for a dry run, or when nothing was committed)."""

    plan: JoinPlan
    commit: str | None
    dry_run: bool
    published: Published | None = None
    # remote parts left out with --partial: their remote could not be reached
    remote_left_out: list[str] = field(default_factory=list)
    # remote part -> the tip fetched from its remote (a dry run: objects only)
    remote_fetched: dict[str, str] = field(default_factory=dict)
    # parts an earlier join took whose branches got commits after it: not in this join
    after_join: list[AfterJoin] = field(default_factory=list)
    # joined before, but that join commit is no longer in the target branch's history
    join_left_history: bool = False
    # the main tree is a sparse checkout and git would not apply its patterns again
    sparse_left: str | None = None

    @property
    def nothing_to_bring(self) -> bool:
        return not self.plan.noop and not self.plan.entries and not self.dry_run

    def to_data(self) -> dict[str, Any]:
        return {**self.plan.to_data(), "commit": self.commit, "dry_run": self.dry_run,
                "published": self.published.to_data() if self.published else None,
                "remote_left_out": self.remote_left_out,
                "remote_fetched": self.remote_fetched,
                "after_join": [asdict(a) for a in self.after_join],
                "join_left_history": self.join_left_history, "sparse_left": self.sparse_left}


def join_batch(ws: Workspace, batch_id: str, *, partial: bool = False, wait: float = 30.0,
               dry_run: bool = False, allow_outside_links: bool = False,
               on_wait: Callable[[str], None] | None = None,
               push: PublishOptions | None = None,
               keep_history: bool | None = None) -> JoinOutcome:
    """`hf join` and the sweep's automatic join: plan, then (unless `dry_run`, or
    the batch is joined already) write under the locks. The objects the join
    makes are held in memory and written once, as one pack. With `push`
    (`hf join --push`), the joined commit is published after (`publish.publish`).
    `keep_history` (None: `keep_history` of the settings, else no) makes the commit a
    merge of main and the parts' results."""
    from hf_fanout.orchestrator.boundary import refuse_inside_part
    from hf_fanout.orchestrator.inbox import apply_all

    started = time.time()
    if not dry_run:
        refuse_inside_part(f"hf join {batch_id}")
        apply_all(ws)  # a sandboxed part's `hf done` not applied yet
    if keep_history is None:
        keep_history = ws.settings.flag("keep_history", False)
    if push is not None:  # a push that cannot go anywhere is refused before the join
        destination(ws, ws.store.load_batch(batch_id), push)
    fetched = _fetch_remote_parts(ws, batch_id, partial=partial, dry_run=dry_run)
    outcome = _join(ws, batch_id, partial=partial, wait=wait, dry_run=dry_run,
                    allow_outside_links=allow_outside_links, on_wait=on_wait,
                    keep_history=keep_history, started=started,
                    fetched=fetched.tips if dry_run else {})
    outcome.remote_left_out = fetched.left_out
    outcome.remote_fetched = fetched.tips
    outcome.after_join = _joined_before_then_committed(ws, outcome.plan)
    outcome.join_left_history = outcome.plan.noop and join_left_history(ws, outcome.plan.batch)
    if push is None or dry_run or outcome.nothing_to_bring:
        return outcome
    try:
        outcome.published = publish(ws, batch_id, push)
    except HfError as exc:
        joined = f"joined as {(outcome.commit or '')[:12]}" + (
            "; " if isinstance(exc, RequestFailed) else ", but not published: ")
        raise PushFailed(joined + exc.message, exc.hint, details=exc.details) from None
    return outcome


def _joined_before_then_committed(ws: Workspace, plan: JoinPlan) -> list[AfterJoin]:
    """The batch's parts an earlier join took (not this one) whose branches have
    commits since: a joined part is never joined again, so this join leaves them
    out, and says so."""
    now = {p.name for p in plan.parts}
    found = (commits_after_join(ws, p) for p in ws.store.load_parts(plan.batch)
             if p.name not in now)
    return [a for a in found if a is not None]


def _fetch_remote_parts(ws: Workspace, batch_id: str, *, partial: bool,
                        dry_run: bool) -> Fetched:
    """The parts worked on other machines, fetched (a batch without any: nothing to do;
    one `hf take` brought here: refused, it joins where it was split; a dry run
    fetches objects only, and moves nothing here)."""
    from hf_fanout.core.records import RUNNING
    from hf_fanout.orchestrator import remote_parts

    batch = ws.store.load_batch(batch_id)
    remote_parts.refuse_taken(batch)
    if batch.state != RUNNING:
        return remote_parts.Fetched({}, [])
    if not dry_run:  # (parts an earlier join took, worked on there since: said in a note)
        remote_parts.bring_after_join(ws, ws.store.load_parts(batch))
    return remote_parts.fetch_for_join(ws, batch, partial=partial, dry_run=dry_run)


def _join(ws: Workspace, batch_id: str, *, partial: bool, wait: float, dry_run: bool,
          allow_outside_links: bool, on_wait: Callable[[str], None] | None,
          keep_history: bool, started: float, fetched: dict[str, str]) -> JoinOutcome:
    from hf_fanout.guard import mainhook

    with ws.repo.holding_objects():
        # a real join checks the main tree for edits under the commit lock (execute_join)
        plan = plan_join(ws, batch_id, partial=partial, check_main=dry_run,
                         allow_outside_links=allow_outside_links, keep_history=keep_history,
                         fetched=fetched)
        if plan.noop:
            return JoinOutcome(plan, plan.batch.joined_commit, dry_run)
        if dry_run:
            return JoinOutcome(plan, None, True)
        commit = execute_join(ws, plan, wait=wait, on_wait=on_wait, started=started)
    # a sparse main tree keeps its shape: what the join wrote outside its patterns goes
    sparse_left = ws.main.reapply_sparse() if plan.entries else None
    if keep_history and not plan.noop:
        from hf_fanout.orchestrator.join_history import commit_on_branches

        plan.branches = commit_on_branches(ws, plan)
    from hf_fanout.orchestrator import notify

    notify.transition(ws.repo.common_dir, batch_id, "", "joined",
                      f"commit {(commit or '')[:12]}", settings=ws.settings)
    mainhook.settle(ws)  # the last running batch joined: the main tree's hook goes
    return JoinOutcome(plan, commit if plan.entries or plan.noop else None, False,
                       sparse_left=sparse_left)
