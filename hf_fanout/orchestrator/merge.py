"""The three-way merge of a join when main moved since the split: per changed path,
base / main / part; whole branches are never merged, only owned paths travel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import (
    MergeConflict,
)
from hf_fanout.paths import RepoPath
from hf_fanout.worktrees.zparse import Change, Entry


def combine(ws: Workspace, on_head: bool, head: str, owned: list[tuple[str, Change]],
            scratch: Path) -> tuple[dict[RepoPath, Entry | None], list[RepoPath]]:
    """The entries to write: each part's changes (`owned`: the part's name and one
    change), merged three-way when main moved since the base (`on_head`: every
    part's base is `head`)."""
    repo = ws.repo
    changes = [c for _name, c in owned]
    owner = {c.path: name for name, c in owned}
    if on_head:
        return {c.path: c.new for c in changes}, []
    ours = repo.entries_at(head, [c.path for c in changes])
    entries: dict[RepoPath, Entry | None] = {}
    merged: list[RepoPath] = []
    conflicts: list[dict[str, Any]] = []
    for c in changes:
        mine = ours.get(c.path)
        if mine == c.old:  # main did not touch it
            entries[c.path] = c.new
        elif mine == c.new:  # both made the same change
            continue
        else:
            result = _merge_one(ws, c, mine, scratch, owner[c.path])
            if isinstance(result, dict):
                conflicts.append(result)
            else:
                merged.append(c.path)
                if result != mine:
                    entries[c.path] = result
    if conflicts:
        names = ", ".join(f"{c['path']} ({c['part']})" for c in conflicts)
        raise MergeConflict(
            f"main moved since the split and {len(conflicts)} file(s) conflict: {names}",
            f"bring part {conflicts[0]['part']} onto main (`hf sync` in its worktree) and "
            "resolve the files there, or undo the change on main, then join again",
            details={"conflicts": conflicts},
        )
    return entries, merged


def _merge_one(ws: Workspace, c: Change, mine: Entry | None, scratch: Path,
               part: str) -> Entry | dict[str, Any] | None:
    base, theirs = c.old, c.new
    conflict = {"path": c.path, "part": part}
    if mine is None or theirs is None or base is None:
        why = ("deleted on main, changed by the part" if mine is None else
               "changed on main, deleted by the part" if theirs is None else
               "added on main and by the part with different content")
        if base is None and mine is not None and theirs is not None:
            pass  # both added: try a merge against an empty base
        else:
            return {**conflict, "reason": why, "hunks": ""}
    # modes: take the side that changed it
    base_mode = base.mode if base else (theirs.mode if theirs else 0o100644)
    assert mine is not None and theirs is not None
    if mine.mode == base_mode:
        mode = theirs.mode
    elif theirs.mode in (base_mode, mine.mode):
        mode = mine.mode
    else:
        return {**conflict, "reason": "mode changed differently on both sides", "hunks": ""}
    if 0o120000 in (mine.mode, theirs.mode) and mine.oid != theirs.oid:
        return {**conflict, "reason": "symlink changed on both sides", "hunks": ""}
    repo = ws.repo
    merged_data, nconflicts = repo.merge_file(
        repo.read_blob(base.oid) if base else b"",
        repo.read_blob(mine.oid),
        repo.read_blob(theirs.oid),
        scratch,
        ("main", "base", f"part {part}"),
    )
    if nconflicts:
        return {**conflict, "reason": f"{nconflicts} conflicting hunk(s)",
                "hunks": _conflict_hunks(merged_data)}
    return Entry(mode, repo.write_blob(merged_data))


def _conflict_hunks(data: bytes, limit: int = 60) -> str:
    lines = data.decode("utf-8", "replace").splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("<<<<<<< "):
            inside = True
        if inside:
            out.append(line)
        if line.startswith(">>>>>>> "):
            inside = False
    return "\n".join(out[:limit])
