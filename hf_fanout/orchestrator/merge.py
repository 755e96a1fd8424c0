"""The three-way merge of a join when main moved since the split: per changed path,
base / main / part; whole branches are never merged, only owned paths travel."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import (
    MergeConflict,
)
from hf_fanout.paths import RepoPath
from hf_fanout.worktrees.commits import is_binary
from hf_fanout.worktrees.zparse import Change, Entry

# What `git merge-file` is asked to do per value of the `merge` attribute
# (`git check-attr`'s words): the built-in text merge, or its union variant.
_TEXT_MERGE = ("unspecified", "set", "text")
_UNION_MERGE = "union"


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
    conflicts: list[dict[str, Any]] = []
    pending: list[tuple[Change, Entry, Entry, int]] = []
    for c in changes:
        mine = ours.get(c.path)
        if mine == c.old:  # main did not touch it
            entries[c.path] = c.new
        elif mine != c.new:  # changed on both sides, differently
            shape = _merge_shape(c, mine)
            if isinstance(shape, str):
                conflicts.append(_conflict(c.path, owner[c.path], shape))
            else:
                pending.append((c, *shape))
    merged: list[RepoPath] = []
    drivers = _merge_drivers(ws, [c.path for c, *_rest in pending])
    for c, mine, theirs, mode in pending:
        result = _merge_contents(ws, c, mine, theirs, mode, drivers[c.path], scratch,
                                 owner[c.path])
        if isinstance(result, dict):
            conflicts.append(result)
        else:
            merged.append(c.path)
            if result != mine:
                entries[c.path] = result
    conflicts += _shape_conflicts(ws, head, {**ours_changed(changes, ours), **entries}, owner)
    if conflicts:
        order = {c.path: i for i, c in enumerate(changes)}
        _refuse(sorted(conflicts, key=lambda found: order[found["path"]]))
    return entries, merged


def ours_changed(changes: list[Change], ours: dict[RepoPath, Entry]) -> dict[RepoPath,
                                                                          Entry | None]:
    """The changed paths as main has them (what the join leaves of them unless it
    writes them)."""
    return {c.path: ours.get(c.path) for c in changes}


def _shape_conflicts(ws: Workspace, head: str, result: dict[RepoPath, Entry | None],
                     owner: dict[RepoPath, str]) -> list[dict[str, Any]]:
    """A file the join writes where main now has a folder with files the join keeps,
    or below a path main made a file: the tree would hold a file and a folder of
    one name (git cannot record it; the write would take main's files away)."""
    written = sorted(p for p, entry in result.items() if entry is not None)
    gone = {p for p, entry in result.items() if entry is None}
    found = []
    for folder, files in ws.repo.files_below(head, written).items():
        kept = [f for f in files if f not in gone]
        if kept:
            more = f" and {len(kept) - 3} more" if kept[3:] else ""
            found.append(_conflict(folder, owner[folder], "written as a file, where main has "
                                   f"a folder with files: {', '.join(kept[:3])}{more}"))
    above = {p: [RepoPath(p.rsplit("/", n)[0]) for n in range(1, p.count("/") + 1)]
             for p in written}
    as_files = ws.repo.entries_at(head, {a for ancestors in above.values() for a in ancestors})
    for path, ancestors in above.items():
        blocking = next((a for a in ancestors if a in as_files and a not in gone), None)
        if blocking is not None:
            found.append(_conflict(path, owner[path], f"main made {blocking} a file; this path "
                                   "is written in that folder"))
    return found


def _refuse(conflicts: list[dict[str, Any]]) -> None:
    """Raise the join's conflict report: every conflicting file, and every part of
    them named in the way out (`hf sync` brings each onto main, where git merges)."""
    names = ", ".join(f"{c['path']} ({c['part']})" for c in conflicts)
    parts = list(dict.fromkeys(c["part"] for c in conflicts))
    which = (f"part {parts[0]}" if len(parts) == 1 else
             "parts " + ", ".join(parts[:-1]) + f" and {parts[-1]}")
    raise MergeConflict(
        f"main moved since the split and {len(conflicts)} file(s) conflict: {names}",
        f"bring {which} onto main (`hf sync` in {'its' if len(parts) == 1 else 'each'} "
        "worktree) and resolve the files there, or undo the change on main, then join "
        "again",
        details={"conflicts": conflicts},
    )


def _conflict(path: RepoPath, part: str, reason: str, hunks: str = "") -> dict[str, Any]:
    """One conflicting file as the report lists it."""
    return {"path": path, "part": part, "reason": reason, "hunks": hunks}


def _merge_shape(c: Change, mine: Entry | None) -> tuple[Entry, Entry, int] | str:
    """What a path changed on both sides is before its contents are looked at:
    (main's entry, the part's, the merged mode), or why it conflicts whatever the
    contents (a delete against a change, modes or symlinks that differ)."""
    base, theirs = c.old, c.new
    if mine is None:
        return "deleted on main, changed by the part"
    if theirs is None:
        return "changed on main, deleted by the part"
    # both added: merged against an empty base
    base_mode = base.mode if base else theirs.mode
    # modes: take the side that changed it
    if mine.mode == base_mode:
        mode = theirs.mode
    elif theirs.mode in (base_mode, mine.mode):
        mode = mine.mode
    else:
        return "mode changed differently on both sides"
    if 0o120000 in (mine.mode, theirs.mode) and mine.oid != theirs.oid:
        return "symlink changed on both sides"
    return mine, theirs, mode


def _merge_drivers(ws: Workspace, paths: list[RepoPath]) -> dict[RepoPath, str]:
    """Each path's `merge` attribute as `git check-attr` words it (`unspecified`,
    `set`, `unset` or the value), read from the main tree as a `git merge` there
    would: one git process for all the paths, none when there are none."""
    if not paths:
        return {}
    listed = ws.repo.git(["check-attr", "-z", "--stdin", "merge"],
                         stdin=b"".join(os.fsencode(p) + b"\0" for p in paths))
    words = listed.split(b"\0")
    return {RepoPath(os.fsdecode(words[i])): os.fsdecode(words[i + 2])
            for i in range(0, len(words) - 2, 3)}


def _driver_refusal(driver: str) -> str:
    """Why hf does not merge a file whose `merge` attribute is `driver` ('' when it
    does: the text merge, or the union). A file git keeps unmerged, or one a merge
    driver of the configuration would merge, is a conflict for the part's `hf sync`
    (git's own merge) to settle."""
    if driver in _TEXT_MERGE or driver == _UNION_MERGE:
        return ""
    if driver in ("unset", "binary"):
        return "binary or -merge (.gitattributes): git would not merge it either"
    return f"merge driver {driver!r} (.gitattributes) is not run by hf"


def _merge_contents(ws: Workspace, c: Change, mine: Entry, theirs: Entry, mode: int,
                    driver: str, scratch: Path, part: str) -> Entry | dict[str, Any]:
    """The merged entry of a path both sides changed (`git merge-file`, union when
    the `merge` attribute says so), or its conflict: hunks that clash, a binary
    file, a `merge` attribute hf does not merge by."""
    refusal = _driver_refusal(driver)
    if refusal:
        return _conflict(c.path, part, refusal)
    repo = ws.repo
    sides = (repo.read_blob(c.old.oid) if c.old else b"", repo.read_blob(mine.oid),
             repo.read_blob(theirs.oid))
    if any(is_binary(data) for data in sides):
        return _conflict(c.path, part, "binary file changed on both sides: git would not "
                         "merge it either")
    base, ours, other = sides
    merged_data, nconflicts = repo.merge_file(
        base, ours, other, scratch, ("main", "base", f"part {part}"),
        union=driver == _UNION_MERGE)
    if nconflicts:
        return _conflict(c.path, part, f"{nconflicts} conflicting hunk(s)",
                         _conflict_hunks(merged_data))
    return Entry(mode, repo.write_blob(merged_data))


def _conflict_hunks(data: bytes, limit: int = 60) -> str:
    """The conflicting hunks of a merge, markers included (at most `limit` lines)."""
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
