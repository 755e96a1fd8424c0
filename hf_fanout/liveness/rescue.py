"""Rescue: a part's whole work (untracked files too) saved as a commit at
`refs/hf/rescue/<batch>/<part>`, read as `git add -A` would, writing nothing in
the worktree."""

from __future__ import annotations

from typing import Any

from hf_fanout.core.records import Part, copied_paths
from hf_fanout.core.workspace import Workspace


def rescue_ref(part: Part) -> str:
    return f"refs/hf/rescue/{part.batch}/{part.name}"


def rescue(ws: Workspace, part: Part, why: str) -> dict[str, Any]:
    """Save the worktree's full state (untracked files too) as a commit at the rescue ref.

    Reads the worktree as `git add -A` would record it: the worktree and its
    own index are never written. With nothing uncommitted the ref points at the branch tip, so
    a rescue ref always holds the part's whole work.
    """

    repo = ws.repo
    worktree = ws.worktree(part.worktree)
    head = worktree.rev_parse("HEAD") or repo.ref_target(f"refs/heads/{part.branch}")
    if head is None:
        return {"ref": None, "commit": None, "uncommitted": False, "why": "no commit to rescue"}
    tree = worktree.tree(repo.tree_of(head), exclude=copied_paths(part))
    uncommitted = tree != repo.tree_of(head)
    commit = head
    if uncommitted:
        message = (f"hf rescue: {part.batch}/{part.name}\n\n{why}\n\n"
                   f"Hf-Batch: {part.batch}\nHf-Part: {part.name} {head}\n")
        commit = repo.commit_tree(tree, [head], message)
    ref = rescue_ref(part)
    repo.git(["update-ref", "--create-reflog", "-m", f"hf rescue: {why}", ref, commit])
    ws.store.audit("rescue", batch=part.batch, part=part.name, ref=ref, commit=commit,
                   uncommitted=uncommitted, why=why)
    return {"ref": ref, "commit": commit, "uncommitted": uncommitted}
