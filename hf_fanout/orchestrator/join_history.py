"""After a join that keeps history: each part's branch moves onto the commit hf made
of its uncommitted work, so `git log hf/<batch>/<part>` shows it and removing the
branch loses nothing.

The part's index moves with it (only the paths that commit changed, and those
staged against the old tip), its files are not touched: `git status` in the part
then shows what it showed against the work, nothing staged in reverse.
"""

from __future__ import annotations

from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import GitFailed
from hf_fanout.orchestrator.join_plan import JoinPlan, PartResult

MOVED = "moved"


def commit_on_branches(ws: Workspace, plan: JoinPlan) -> dict[str, str]:
    """Part -> `moved`, or why its branch stayed at its tip (the work is reachable
    from the join's merge commit and `refs/hf/results/` all the same)."""
    return {r.part.name: _move_onto(ws, plan, r) for r in plan.results
            if r.result_commit != r.tip and r.part.name not in plan.late}


def _move_onto(ws: Workspace, plan: JoinPlan, result: PartResult) -> str:
    repo = ws.repo
    part = result.part
    ref = f"refs/heads/{part.branch}"
    worktree = ws.worktree(part.worktree)
    if worktree.head_ref() != ref or worktree.head() != result.tip:
        return "left at its tip: its worktree is no longer on the joined tip"
    paths = {c.path for c in repo.diff_trees(result.tip, result.result_commit)}
    try:
        paths |= worktree.staged_paths(result.tip)
        before = worktree.index_entries()
        after = repo.entries_at(result.result_commit, paths)
        worktree.update_index({p: after.get(p) for p in paths})
    except GitFailed as exc:  # (its index is locked by a git command of the agent's)
        return f"left at its tip: its index could not be written ({exc.message})"
    try:
        repo.update_ref(ref, result.result_commit, result.tip,
                        f"hf join {plan.batch.id}: uncommitted work of part {part.name}")
    except GitFailed:
        worktree.update_index({p: before.get(p) for p in paths})
        return "left: the part committed meanwhile"
    ws.store.audit("ref-move", batch=plan.batch.id, part=part.name, ref=ref, old=result.tip,
                   new=result.result_commit, by="hf join --keep-history")
    return MOVED
