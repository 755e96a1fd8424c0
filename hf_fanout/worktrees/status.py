"""What differs in a worktree: `git status` asked so that it never writes (no index
refresh behind an agent's back), parsed, and kept cheap on big trees.

Functions of a worktree's path; `Worktree` (worktree.py) calls them. Git
processes only: safe in threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from hf_fanout.paths import RepoPath, from_git
from hf_fanout.worktrees.process import index_env, out
from hf_fanout.worktrees.zparse import (
    Entry,
    Listed,
    chunks,
    nul_split,
    parse_status_v2,
    status_items,
    under_any,
)

# Up to this many paths a status takes them as a pathspec; beyond, git's
# pathspec matching (every index entry against every path) costs more than a
# status of the whole tree.
FEW_PATHS = 32

# A status that writes nothing (`--no-optional-locks`: no refresh of the index
# behind an agent's back) and lists every path once, by its own name.
_STATUS = ["--no-optional-locks", "--literal-pathspecs", "status", "--porcelain=v1", "-z",
           "--no-renames", "--ignore-submodules=none"]

# `_changed`'s status: porcelain v2 also gives each tracked path's worktree mode
# as git computes it for `git add` (core.fileMode, core.symlinks applied).
_STATUS_V2 = ["--porcelain=v2" if a == "--porcelain=v1" else a for a in _STATUS]


def status_paths(worktree: Path, paths: Iterable[RepoPath] | None, *,
                 in_head: Mapping[RepoPath, Entry],
                 exclude: Sequence[str] = ()) -> list[RepoPath]:
    """Paths of `worktree` with any uncommitted difference (staged, unstaged,
    untracked): all of them, or those of `paths` (`in_head`: their entries in
    HEAD). Paths in `exclude`, or below one of them, are left out."""
    if paths is None:
        found = changed_paths(worktree)
    else:
        wanted = set(paths)
        found = (_status_of_many(worktree, wanted, in_head) if len(wanted) > FEW_PATHS
                 else status_items(_status_limited(wanted, worktree)))
    if not exclude:
        return found
    skip = {RepoPath(p.rstrip("/")) for p in exclude}
    return [p for p in found if not under_any(p, skip)]


def changed_paths(worktree: Path) -> list[RepoPath]:
    """Every path of `worktree` that differs from its HEAD: staged, unstaged,
    untracked (each untracked file by name; an untracked nested repository
    as `sub/`), ignored files left out; nothing is written.

    `git status` in its default untracked mode, which git's untracked cache
    serves when the worktree's index has one (`prime_status_caches`), then
    the files of the untracked directories it reports, if any, from `git
    ls-files --others`: the same list as `--untracked-files=all`, without
    walking every directory of the worktree each time.
    """
    return [listed.path for listed in changed(worktree, exact=False)]


def changed(worktree: Path, *, exact: bool) -> list[Listed]:
    """`changed_paths` with each path's status code and worktree mode (`??` for
    the untracked files found inside untracked directories).

    `exact` (what the join and a rescue record): without git's untracked
    cache. The cache trusts a directory whose mtime, in whole seconds, did not
    move; a file made in the second the cache looked at its directory, with
    the index written in a later second (by any git command), is missed for
    good. Without it git reads every directory: exact, at the cost of a walk
    (about 0.1 s at 90,000 files). A status shown to a person uses it."""
    cache = ["-c", "core.untrackedCache=false"] if exact else []
    items = parse_status_v2(out([*cache, *_STATUS_V2, "--untracked-files=normal"],
                                 worktree))
    # an untracked directory is listed as `dir/`; a tracked file that is now a
    # directory is listed only as deleted (its files are untracked too): only a
    # path git sees no file at (worktree mode 0) or a gitlink is looked at on disk
    dirs = [i.path for i in items if i.path.endswith("/") or (
        i.code != "??" and i.mode in (0, 0o160000)
        and (worktree / i.path).is_dir() and not (worktree / i.path).is_symlink())]
    if not dirs:
        return items
    specs = [":(literal)" + os.fsencode(d.rstrip("/")).decode("utf-8", "surrogateescape")
             + "/" for d in dirs]
    inside = [Listed("??", from_git(p)) for chunk in chunks(specs) for p in nul_split(
        out([*cache, "ls-files", "-z", "--others", "--exclude-standard", "--", *chunk],
            worktree))]
    return [i for i in items if not i.path.endswith("/")] + inside


def _status_limited(paths: set[RepoPath], cwd: Path) -> bytes:
    specs = [os.fsencode(p).decode("utf-8", "surrogateescape") for p in sorted(paths)]
    return b"".join(out([*_STATUS, "--untracked-files=all", "--", *chunk], cwd)
                    for chunk in chunks(specs))


def _status_of_many(cwd: Path, wanted: set[RepoPath],
                    in_head: Mapping[RepoPath, Entry]) -> list[RepoPath]:
    """`status_paths(wanted)` for many paths, without a pathspec per path.

    git matches every index entry against every pathspec item, so a status
    limited to a thousand paths costs seconds in a big repository. Instead:
    the tracked side is one status of the whole index (stat cache: cheap),
    filtered here; the untracked side is asked only for the wanted paths
    that are on disk but neither in HEAD nor listed by that status (a path
    of HEAD missing from the index is listed as a staged deletion; one
    that is in the index but not in HEAD, as a staged addition), usually
    none. A literal pathspec also matches what lies below it, and so does
    the filter.
    """
    tracked = status_items(out([*_STATUS, "--untracked-files=no"], cwd))
    found = [p for p in tracked if under_any(p, wanted)]
    listed = set(found)
    maybe_untracked = {p for p in wanted if p not in in_head and p not in listed
                       and os.path.lexists(cwd / p)}
    if maybe_untracked:
        untracked = status_items(_status_limited(maybe_untracked, cwd))
        found += [p for p in untracked if p not in listed]
    return found


def staged_paths(worktree: Path, against: str, *, index: Path | None = None) -> set[RepoPath]:
    """Paths whose entry in the index (or the index file `index`) differs from
    `against`."""
    data = out(["diff-index", "--cached", "-z", "--name-only", "--no-renames", against],
               worktree, env=index_env(index))
    return {from_git(p) for p in nul_split(data)}


def _dir_mtime_tracks_entries(directory: Path) -> bool:
    """Adding and removing an entry each change `directory`'s mtime (as seen
    with nanosecond timestamps): what git's untracked cache relies on."""
    probe = directory / f".hf-mtime-probe-{os.getpid()}"
    try:
        before = directory.stat().st_mtime_ns
        probe.mkdir()
        try:
            added = directory.stat().st_mtime_ns
        finally:
            probe.rmdir()
        removed = directory.stat().st_mtime_ns
    except OSError:
        return False
    return before != added != removed


def prime_status_caches(worktree: Path) -> None:
    """Give a new worktree's index an untracked cache and fresh stat data, so
    every later `git status` there (the agent's, hf's) skips directories
    and files that did not change. Only where a directory's mtime moves
    when an entry is added or removed (git's condition for the cache; the
    check is made here without sleeping, on nanosecond timestamps)."""
    if not _dir_mtime_tracks_entries(worktree):
        return
    # the one status hf lets write the index (all others run without optional locks)
    out(["-c", "core.untrackedCache=true", "status", "--porcelain",
         "--untracked-files=normal"], worktree, env={"GIT_OPTIONAL_LOCKS": "1"})
