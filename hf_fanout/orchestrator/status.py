"""`hf status`: what every part of every batch has done so far.

Cheap by design: committed work is a tree diff against the base (it grows
with the change); uncommitted work is `git status` of the worktree, which
trusts the index's stat cache and re-hashes nothing that did not change.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hf_fanout import timefmt
from hf_fanout.core import pauses
from hf_fanout.core.ownership import Ownership
from hf_fanout.core.records import DROPPED, JOINED, Batch, Part, copied_paths
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import GitFailed, StateCorrupt
from hf_fanout.liveness import heartbeat, judge
from hf_fanout.paths import RepoPath


@dataclass
class PartStatus:
    name: str
    state: str
    branch: str
    worktree: str
    changed: int
    outside: int
    outside_paths: list[str]
    last_activity: str
    note: str | None
    reason: str | None


@dataclass
class BatchStatus:
    id: str
    state: str
    base: str
    created: str
    parts: list[PartStatus]
    error: str | None = None
    paused: str | None = None  # the pause in force over it (`hf pause`), described

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


def part_status(ws: Workspace, batch: Batch, part: Part,
                committed: list[RepoPath]) -> PartStatus:
    """`part`'s status, given the paths its branch changed since the base: what it
    changed (committed and not), what of that it does not own, its state as
    liveness judges it (idle, orphan, missing beside the recorded ones), its
    last activity (files, heartbeats)."""
    worktree = Path(part.worktree)
    changed: set[RepoPath] = set()
    last = timefmt.parse_iso(part.updated) or 0.0
    state = part.state
    if part.state not in (JOINED, DROPPED):
        changed.update(committed)
        if worktree.is_dir():
            with contextlib.suppress(GitFailed):
                changed.update(ws.worktree(worktree).status_paths(exclude=copied_paths(part)))
            for path in changed:
                try:
                    last = max(last, os.lstat(worktree / path).st_mtime)
                except OSError:
                    continue
        verdict = judge.classify(ws, part)
        if verdict.state in (judge.IDLE, judge.ORPHAN, judge.MISSING):
            state = verdict.state
        last = max(last, heartbeat.last_activity(ws.store, part) or 0.0)
    ownership = Ownership.parse(part.owns)
    outside: list[str] = sorted(p for p in changed if not ownership.owns(p))
    return PartStatus(part.name, state, part.branch, part.worktree, len(changed), len(outside),
                      outside[:20], timefmt.iso(last), part.note, part.reason)


def batch_status(ws: Workspace, batch_id: str) -> BatchStatus:
    batch = ws.store.load_batch(batch_id)
    parts = ws.store.load_parts(batch)
    # what each live part committed: its branch read from git's ref files, and
    # one `diff-tree` for all of them
    tips = {p.name: ws.repo.ref_target(f"refs/heads/{p.branch}")
            for p in parts if p.state != JOINED}
    diffs = ws.repo.diff_commits(batch.base, [
        tip for tip in tips.values() if tip is not None and tip != batch.base])

    def committed(part: Part) -> list[RepoPath]:
        tip = tips.get(part.name)
        return [c.path for c in diffs.get(tip, [])] if tip else []

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda p: part_status(ws, batch, p, committed(p)), parts))
    pause = next(iter(pauses.in_force(ws, batch.id)), None)
    return BatchStatus(batch.id, batch.state, batch.base, batch.created, statuses,
                       paused=pause.describe() if pause else None)


def all_status(ws: Workspace, batch_id: str | None) -> list[BatchStatus]:
    if batch_id:
        return [batch_status(ws, batch_id)]
    result = []
    for b in ws.store.batch_ids():
        try:
            result.append(batch_status(ws, b))
        except StateCorrupt as exc:  # one damaged batch must not hide the others
            result.append(BatchStatus(b, "damaged", "", "", [], error=exc.message))
    return result
