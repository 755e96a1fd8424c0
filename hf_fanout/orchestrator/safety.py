"""The one question every removal asks (gc of a part or of a queue worktree, forgetting
a batch's leftover refs): is any of this work not in main?

Join brings files, not commits, so "in main" is a content comparison: every path
the work changed since its base has the same content at main's tip.
"""

from __future__ import annotations

from pathlib import Path

from hf_fanout.core.records import Batch
from hf_fanout.core.workspace import Workspace


def target_of(ws: Workspace, batch: Batch) -> str:
    """The commit a batch's work is compared with: its target branch's tip."""
    return ws.main.rev_parse(batch.target_ref) or ws.main.head() or batch.base


def unintegrated_work(ws: Workspace, worktree: Path | None, tip: str | None, base: str,
                      target: str, *, exclude: list[str] | None = None,
                      joined: str | None = None, head: str | None = None) -> list[str]:
    """The paths the work changed since `base` whose content is not what `target`
    has, nor what the commit `joined` (the part's result a join took) has. The work
    is a worktree's files as `git add -A` sees them, else, when it is gone
    (`worktree` None or not a directory), the commit `tip`. `head`: the worktree's
    HEAD when the caller has read it."""
    repo = ws.repo
    if head is None and worktree is not None and worktree.is_dir():
        head = repo.worktree(worktree).rev_parse("HEAD")
    if worktree is not None and head is not None:
        tree = repo.worktree(worktree).tree(repo.tree_of(head), exclude=exclude or [])
    elif tip is not None:
        tree = repo.tree_of(tip)
    else:
        return []
    changes = repo.diff_trees(base, tree)
    if not changes:
        return []
    have = repo.entries_at(target, [c.path for c in changes])
    pending = [c for c in changes if have.get(c.path) != c.new]
    if pending and joined is not None:
        took = repo.entries_at(joined, [c.path for c in pending])
        pending = [c for c in pending if took.get(c.path) != c.new]
    return sorted(c.path for c in pending)
