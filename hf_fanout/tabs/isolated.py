"""The worktrees of queue entries (`hf next --isolated`): `<worktree root>/queue/<id>`
on branch `hf/queue/<id>`. git's own branches and worktree list say which exist,
so one made by a taker that died before it wrote its ack is found too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hf_fanout.core.workspace import Workspace, worktree_root

BRANCH_PREFIX = "hf/queue/"


def branch_of(entry_id: str) -> str:
    return f"{BRANCH_PREFIX}{entry_id}"


def path_of(ws: Workspace, entry_id: str) -> Path:
    """Where a new worktree of `entry_id` goes."""
    return worktree_root(ws, "queue", None) / entry_id


def rescue_ref(entry_id: str) -> str:
    """Where `hf gc --force` saves an entry worktree's work before removing it
    (entry ids have capitals, part names never: no clash with a batch's refs)."""
    return f"refs/hf/rescue/queue/{entry_id}"


@dataclass
class Isolated:
    entry: str  # the queue entry's id
    branch: str
    tip: str  # the branch's commit
    worktree: Path | None  # None: the branch is left, its worktree is not


def found(ws: Workspace) -> list[Isolated]:
    """Every entry branch and its worktree, oldest entry first. Costs nothing in a
    repository whose queue was never used."""
    from hf_fanout.tabs import queue

    if not queue.queue_dir(ws).is_dir():
        return []
    branches = ws.repo.branches(BRANCH_PREFIX)
    if not branches:
        return []
    paths = ws.repo.worktree_branches()
    return [Isolated(name.removeprefix(BRANCH_PREFIX), name, tip, paths.get(name))
            for name, tip in sorted(branches.items())]
