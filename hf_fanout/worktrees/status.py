"""What differs in a worktree: `git status` asked so that it never writes (no index
refresh behind an agent's back), parsed, and kept cheap on big trees.

Functions of a worktree's path; `Worktree` (worktree.py) calls them. Git
processes only: safe in threads.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from hf_fanout.paths import RepoPath, from_git
from hf_fanout.worktrees.process import index_env, out
from hf_fanout.worktrees.zparse import (
    MODE_SYMLINK,
    Entry,
    Listed,
    chunks,
    nul_split,
    parse_status_v2,
    status_items,
    stdin_path,
    under_any,
)

# Up to this many paths a status takes them as a pathspec; beyond, git's
# pathspec matching (every index entry against every path) costs more than a
# status of the whole tree.
FEW_PATHS = 32

# A status that writes nothing (`--no-optional-locks`: no refresh of the index
# behind an agent's back) and lists every path once, by its own name. It runs no
# fsmonitor: a repository an agent made inside a part (staged as a gitlink) is
# looked into by the status, and its own config could name one, which would run
# as the person, outside any sandbox (`-c` reaches the status git runs in it).
_STATUS = ["-c", "core.fsmonitor=false", "--no-optional-locks", "--literal-pathspecs",
           "status", "--porcelain=v1", "-z",
           "--no-renames", "--ignore-submodules=none"]

# `_changed`'s status: porcelain v2 also gives each tracked path's worktree mode
# as git computes it for `git add` (core.fileMode, core.symlinks applied).
_STATUS_V2 = ["--porcelain=v2" if a == "--porcelain=v1" else a for a in _STATUS]


def status_paths(worktree: Path, paths: Iterable[RepoPath] | None, *,
                 in_head: Mapping[RepoPath, Entry],
                 exclude: Sequence[str] = ()) -> list[RepoPath]:
    """Paths of `worktree` with any uncommitted difference (staged, unstaged,
    untracked): all of them, or those of `paths` (`in_head`: their entries in
    HEAD), with, for `paths`, what is in the way of writing them (`in_the_way`).
    Paths in `exclude`, or below one of them, are left out."""
    if paths is None:
        found = changed_paths(worktree)
    else:
        wanted = set(paths)
        found = (_status_of_many(worktree, wanted, in_head) if len(wanted) > FEW_PATHS
                 else status_items(_status_limited(wanted, worktree)))
        found += [p for p in in_the_way(worktree, wanted) if p not in found]
    if not exclude:
        return found
    skip = {RepoPath(p.rstrip("/")) for p in exclude}
    return [p for p in found if not under_any(p, skip)]


def in_the_way(worktree: Path, wanted: set[RepoPath]) -> list[RepoPath]:
    """The folders above paths of `wanted` that `worktree` has as something else
    than a folder (an untracked file, a symbolic link), which a write of the path
    would replace: `git status` of the path itself does not list them. A folder
    that is itself in `wanted` is left to the status of that path."""
    kinds: dict[str, bool] = {}  # a folder above a wanted path: is it a folder on disk
    found: list[RepoPath] = []
    for path in sorted(wanted):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            above = "/".join(parts[:depth])
            if above in wanted:
                continue
            if above not in kinds:
                try:
                    mode = os.lstat(worktree / above).st_mode
                except OSError:  # (nothing there: nothing below it either)
                    kinds[above] = False
                    break
                kinds[above] = stat.S_ISDIR(mode)
                if not kinds[above]:
                    found.append(RepoPath(above))
            if not kinds[above]:
                break
    return found


def hidden_edits(worktree: Path, wanted: set[RepoPath] | None) -> list[RepoPath]:
    """The paths (of `wanted`, or all) that the index marks assume-unchanged or
    skip-worktree (`git update-index`) and whose file differs from its index
    entry: edits `git status` does not show, which a write of the path would
    lose and a scan of the worktree would miss. A file gone counts for a path
    marked assume-unchanged (a deletion), not for one marked skip-worktree (a
    path outside a sparse checkout has no file)."""
    if wanted is None or len(wanted) > FEW_PATHS:  # (cheaper than a long pathspec)
        data = out(["ls-files", "-v", "-s", "-z"], worktree)
    else:
        specs = [os.fsencode(p).decode("utf-8", "surrogateescape") for p in sorted(wanted)]
        data = out(["--literal-pathspecs", "ls-files", "-v", "-s", "-z", "--", *specs],
                   worktree)
    marked: dict[RepoPath, tuple[int, str, bool]] = {}  # mode, blob, skip-worktree
    for record in nul_split(data):
        tag = record[:1]
        if tag != b"S" and not tag.islower():  # (`S` skip-worktree, lowercase assumed)
            continue
        meta, _, raw = record[2:].partition(b"\t")
        path = from_git(raw)
        if wanted is None or path in wanted:
            mode_field, oid_field, _stage = meta.split(b" ")
            marked[path] = (int(mode_field, 8), oid_field.decode(), tag in (b"S", b"s"))
    edited: list[RepoPath] = []
    files: list[RepoPath] = []
    for path, (mode, oid, sparse) in sorted(marked.items()):
        try:
            on_disk = os.lstat(worktree / path).st_mode
        except OSError:
            if not sparse:
                edited.append(path)
            continue
        if stat.S_ISREG(on_disk) and mode in (0o100644, 0o100755):
            files.append(path)
        elif stat.S_ISLNK(on_disk) and mode == MODE_SYMLINK:
            target = os.readlink(os.fsencode(worktree / path))  # noqa: PTH115 (bytes)
            if out(["hash-object", "--stdin"], worktree, stdin=target).decode().strip() != oid:
                edited.append(path)
        else:  # (another kind of file than the index records)
            edited.append(path)
    if files:
        oids = out(["hash-object", "--stdin-paths"], worktree,
                   stdin=b"".join(stdin_path(p) for p in files)).decode().split()
        edited += [p for p, now in zip(files, oids, strict=True) if now != marked[p][1]]
    return sorted(edited)


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
    (about 0.1 s at 90,000 files). An exact list also has the edited files the
    index marks assume-unchanged or skip-worktree (`hidden_edits`: git status
    does not look at them), as ` M`. A status shown to a person uses the cache
    and leaves those out."""
    cache = ["-c", "core.untrackedCache=false"] if exact else []
    items = parse_status_v2(out([*cache, *_STATUS_V2, "--untracked-files=normal"],
                                 worktree))
    if exact:  # (what git status is told not to look at: edited all the same)
        listed = {i.path for i in items}
        items += [Listed(" M", p) for p in hidden_edits(worktree, None) if p not in listed]
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


def ignored_in_the_way(worktree: Path, wanted: set[RepoPath],
                       in_head: Mapping[RepoPath, Entry]) -> list[RepoPath]:
    """Paths of `wanted` that HEAD lacks but the worktree has on disk, and that
    git's status does not list: ignored files (git takes them as expendable, and
    a write there would overwrite one, a `.env` of the person's), or an empty
    folder where a file goes. Without a git process unless one is on disk."""
    maybe = {p for p in wanted if p not in in_head and os.path.lexists(worktree / p)}
    if not maybe:
        return []
    listed = set(status_items(_status_limited(maybe, worktree)))
    return sorted(p for p in maybe if p not in listed)


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
    data = out(["diff-index", "--cached", "-z", "--name-only", "--no-renames", against, "--"],
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
