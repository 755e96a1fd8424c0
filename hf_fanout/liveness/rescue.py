"""Rescue: a part's whole work (untracked files too) saved as a commit at
`refs/hf/rescue/<batch>/<part>`, read as `git add -A` would, writing nothing in
the worktree."""

from __future__ import annotations

from pathlib import Path
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

    saved = save_worktree(ws, Path(part.worktree), part.branch, rescue_ref(part),
                          why, f"hf rescue: {part.batch}/{part.name}",
                          f"Hf-Batch: {part.batch}\nHf-Part: {part.name}",
                          exclude=copied_paths(part))
    if saved["ref"] is not None:
        ws.store.audit("rescue", batch=part.batch, part=part.name, ref=saved["ref"],
                       commit=saved["commit"], uncommitted=saved["uncommitted"], why=why)
    return saved


def save_worktree(ws: Workspace, path: Path | None, branch: str, ref: str, why: str, title: str,
                  trailer: str, *, exclude: list[str] | None = None) -> dict[str, Any]:
    """A worktree's whole work at `ref`: its HEAD, or a commit on it of what is not
    committed (`trailer`: the lines naming whose it is, the HEAD's id added to the last)."""
    repo = ws.repo
    worktree = ws.worktree(path) if path is not None and path.is_dir() else None  # gone: its branch
    head = (worktree.rev_parse("HEAD") if worktree is not None else None) \
        or repo.ref_target(f"refs/heads/{branch}")
    if head is None:
        return {"ref": None, "commit": None, "uncommitted": False, "why": "no commit to rescue"}
    tree = repo.tree_of(head) if worktree is None else \
        worktree.tree(repo.tree_of(head), exclude=exclude or [])
    uncommitted = tree != repo.tree_of(head)
    commit = head
    if uncommitted:
        commit = repo.commit_tree(tree, [head], f"{title}\n\n{why}\n\n{trailer} {head}\n")
    repo.git(["update-ref", "--create-reflog", "-m", f"hf rescue: {why}", ref, commit])
    return {"ref": ref, "commit": commit, "uncommitted": uncommitted}
