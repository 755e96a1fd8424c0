"""The one question every removal asks (gc of a part or of a queue worktree, forgetting
a batch's leftover refs): is any of this work not in main?

Join brings files, not commits, so "in main" is a content comparison: every path
the work changed since its base has the same content at main's tip.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hf_fanout.core.records import Batch
from hf_fanout.core.workspace import Workspace
from hf_fanout.paths import RepoPath
from hf_fanout.worktrees.zparse import Entry, under_any


def target_of(ws: Workspace, batch: Batch) -> str:
    """The commit a batch's work is compared with: its target branch's tip."""
    return ws.main.rev_parse(batch.target_ref) or ws.main.head() or batch.base


def unintegrated_work(ws: Workspace, worktree: Path | None, tip: str | None, base: str,
                      target: str, *, exclude: list[str] | None = None,
                      joined: str | None = None, head: str | None = None) -> list[str]:
    """The paths the work changed since `base` whose content is not what `target`
    has, nor what the commit `joined` (the part's result a join took) has; and the
    paths that join took which the work has put back as they were at `base` (a
    revert after the join: main still has what was joined). The work is a
    worktree's files as `git add -A` sees them, else, when it is gone (`worktree`
    None or not a directory), the commit `tip`. `head`: the worktree's HEAD when
    the caller has read it."""
    repo = ws.repo
    if head is None and worktree is not None and worktree.is_dir():
        head = repo.worktree(worktree).rev_parse("HEAD")
    since: str | None = base  # what the work may have put back is what changed since
    branch_only = None
    if worktree is not None and head is not None:
        # read, not written: a check before a removal leaves no objects behind
        changes = repo.worktree(worktree).changes_since(base, head, exclude=exclude or [])
    elif tip is not None:
        changes = {c.path: c.new for c in repo.diff_trees(base, tip)}
        # only the branch is left: what its commits after the join changed (the
        # uncommitted work the join took is in `joined`, not on the branch)
        since = repo.merge_base(tip, joined) if joined is not None else None
        if since == tip:
            # the join's result descends from the branch (its uncommitted work on
            # top): every change of the branch was there when the join took it
            return []
        branch_only = tip
    else:
        return []
    if joined is not None and since is not None:
        changes.update(_put_back(ws, base, joined, since, branch_only, changes,
                                 exclude or []))
    if not changes:
        return []
    have = repo.entries_at(target, changes)
    pending = {path: new for path, new in changes.items() if have.get(path) != new}
    if pending and joined is not None:
        took = repo.entries_at(joined, pending)
        pending = {path: new for path, new in pending.items() if took.get(path) != new}
    return sorted(pending)


def _put_back(ws: Workspace, base: str, joined: str, since: str, tip: str | None,
              changes: Mapping[RepoPath, Entry | None],
              exclude: list[str]) -> dict[RepoPath, Entry | None]:
    """The paths the join took (`joined` against `base`) that the work no longer
    changes, with their entries at `base`: what the work has there now. With
    `tip` (the branch alone), only those its commits from `since` changed."""
    skip = {RepoPath(p.rstrip("/")) for p in exclude}
    took = [c.path for c in ws.repo.diff_trees(base, joined)
            if c.path not in changes and not under_any(c.path, skip)]
    if took and tip is not None:
        touched = {c.path for c in ws.repo.diff_trees(since, tip)}
        took = [path for path in took if path in touched]
    if not took:
        return {}
    at_base = ws.repo.entries_at(base, took)
    return {path: at_base.get(path) for path in took}
