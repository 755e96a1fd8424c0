"""What `git add -A` in a worktree would record, for the paths that differ from its
HEAD: read with git's own status and hashing, written nowhere.

Functions of a worktree's path; `Worktree.scan` calls `scan`, and
`Repository.tree_from_scan` turns the result into a tree.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hf_fanout.errors import GitFailed, HfError
from hf_fanout.gitlink import gitdir_of
from hf_fanout.paths import RepoPath, from_git, shell_word
from hf_fanout.worktrees.process import index_env, out, run
from hf_fanout.worktrees.status import changed
from hf_fanout.worktrees.submodules import gitmodules_paths
from hf_fanout.worktrees.zparse import (
    MODE_GITLINK,
    MODE_SYMLINK,
    Entry,
    nul_split,
    stdin_path,
    under_any,
)

_PACK_FILE_MAX = 32 << 20  # larger files: git streams them itself


@dataclass
class WorktreeScan:
    """A worktree's uncommitted state: the new entry (None: gone) of every path
    `git status` lists, and the targets of the symlinks among them."""

    entries: dict[RepoPath, Entry | None]
    links: dict[RepoPath, bytes]
    # the bytes of new blobs among the entries, not written yet (`tree_from_scan` does)
    blobs: dict[str, bytes] = field(default_factory=dict)
    # submodules whose checkout holds changes of its own (`git status`: "modified
    # content", "untracked content"): `git add -A` records none of it
    dirty_submodules: list[RepoPath] = field(default_factory=list)
    # submodules not checked out whose folder holds files all the same (an agent
    # filled the empty folder): `git status` shows none of them, `git add` takes none
    filled_submodules: list[RepoPath] = field(default_factory=list)


def scan(worktree: Path, *, exclude: Sequence[str] = (), keep_blobs: bool = True) -> WorktreeScan:
    """What `git add -A` in `worktree` would record, for the paths that differ.

    One `git status` (the index's stat cache: only entries whose stat
    data changed are re-read; racily clean ones are re-read as git always
    does), then one `git hash-object -w --stdin-paths` for the regular
    files it lists: `.gitattributes` filters apply per path, as for `git
    add`. Nothing is written to the worktree or its index
    (`--no-optional-locks`: an agent's own git calls never find the index
    locked by hf). Paths in `exclude` (and
    below them) are left out. Git processes only, so it may run in
    threads; `Repository.tree_from_scan` does the object-database part.
    `keep_blobs` False: only the ids are wanted (a comparison, nothing to
    write): the files are not read again for their bytes.
    """
    skip = {RepoPath(p.rstrip("/")) for p in exclude}
    changed_items = changed(worktree, exact=True)
    # (a directory as `sub/`: a nested repository, at a path the index may drop)
    untracked = {i.path.rstrip("/") for i in changed_items if i.code == "??"}
    # A path the index no longer has (`D ` in the first column) that git does not
    # list as untracked is either gone from the disk or ignored: `git add -A`
    # leaves it out either way (a file dropped with `git rm --cached` and then
    # ignored stays out of the commit).
    dropped = {i.path for i in changed_items if i.code == "D " and i.path not in untracked}
    git_modes = {i.path: i.mode for i in changed_items if i.mode}
    listed = list(dict.fromkeys(i.path for i in changed_items))
    scan = WorktreeScan({}, {}, dirty_submodules=[
        i.path for i in changed_items if i.dirty_submodule
        and not (skip and under_any(i.path, skip))])
    files: dict[RepoPath, int] = {}
    executable: list[RepoPath] = []  # new files with an exec bit: core.fileMode decides
    links_seen: dict[str, bool] = {}
    for item in listed:
        path = RepoPath(item.rstrip("/"))  # an untracked nested repository: `sub/`
        if skip and under_any(path, skip):
            continue
        full = worktree / path
        if path in dropped:
            scan.entries[path] = None
            continue
        try:
            st = None if _behind_symlink(worktree, path, links_seen) else os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if st is None:
            scan.entries[path] = None
        elif stat.S_ISLNK(st.st_mode):
            scan.links[path] = os.readlink(os.fsencode(full))  # noqa: PTH115 (bytes)
        elif stat.S_ISDIR(st.st_mode):
            scan.entries[path] = _nested_repo(full, path)
        elif stat.S_ISREG(st.st_mode):
            # a tracked path: the mode git itself reported (its `ce_mode_from_stat`:
            # the index entry's mode where core.fileMode or core.symlinks is false)
            mode = git_modes.get(path, 0)
            if mode not in (0o100644, 0o100755, MODE_SYMLINK):
                mode = 0o100755 if st.st_mode & stat.S_IXUSR else 0o100644
                if mode == 0o100755:
                    executable.append(path)
            files[path] = mode
        else:  # a fifo or socket: `git add` cannot record it either
            scan.entries[path] = None
    scan.filled_submodules = [p for p in filled_submodules(worktree)
                              if not (skip and under_any(p, skip))]
    if executable and not _trusts_exec_bit(worktree):
        files.update(dict.fromkeys(executable, 0o100644))
    if files:
        names = list(files)
        oids, scan.blobs = _hash_blobs(worktree, names, keep_blobs)
        for path, oid in zip(names, oids, strict=True):
            scan.entries[path] = Entry(files[path], oid)
    return scan


def filled_submodules(worktree: Path) -> list[RepoPath]:
    """The submodules of the worktree's index that are not checked out (no `.git`
    in their folder) and whose folder holds something all the same. Asked of
    the paths `.gitmodules` names only (no `.gitmodules`: none), and of those
    that are gitlinks in the index. A sparse checkout may leave `.gitmodules`
    out of the folder: the index's is read then."""
    if (worktree / ".gitmodules").is_file():
        source = ["--file", ".gitmodules"]
    elif _is_sparse(worktree):
        source = ["--blob", ":.gitmodules"]
    else:
        return []
    paths = gitmodules_paths(worktree, source)
    if not paths:
        return []
    staged = out(["ls-files", "-s", "-z", "--",
                  *(":(literal)" + os.fsdecode(p) for p in paths)], worktree)
    found = []
    for item in nul_split(staged):
        meta, _, path = item.partition(b"\t")
        if not meta.startswith(b"160000 "):
            continue
        full = worktree / os.fsdecode(path)
        if (full / ".git").exists() or not _holds_a_file(full):
            continue
        found.append(from_git(path))
    return found


def _is_sparse(worktree: Path) -> bool:
    """Whether the worktree has a sparse checkout (its git dir's
    `info/sparse-checkout`); a worktree that is gone has none."""
    try:
        return (gitdir_of(worktree) / "info" / "sparse-checkout").is_file()
    except OSError:
        return False


def _holds_a_file(folder: Path) -> bool:
    """Whether anything but folders is below `folder` (empty folders are nothing
    git or a join could record)."""
    return any(files for _root, _dirs, files in os.walk(folder))


def _trusts_exec_bit(worktree: Path) -> bool:
    """core.fileMode in `worktree` (false: new files are recorded 0644)."""
    value = run(["config", "--type=bool", "core.filemode"], worktree, check=False).stdout
    return value.strip() != b"false"


def _nested_repo(full: Path, path: RepoPath) -> Entry | None:
    """A directory `git status` lists: a nested repository (a gitlink, as `git
    add` would record it), or a tracked file replaced by a directory (gone)."""
    if not (full / ".git").exists():
        return None
    head = run(["rev-parse", "--verify", "--quiet", "HEAD"], full, check=False)
    if head.returncode != 0:
        where = shell_word(str(path).rstrip("/"))
        raise HfError(f"{full} is a git repository without a commit: it cannot be "
                      "recorded (`git add` refuses it too)",
                      "to record its files as plain files of the part, remove its own git "
                      f"data (`rm -rf {where}/.git` in the part's worktree); or remove the "
                      "folder")
    return Entry(MODE_GITLINK, head.stdout.decode().strip())


def _behind_symlink(worktree: Path, path: RepoPath, seen: dict[str, bool]) -> bool:
    """A leading directory of `path` is a symlink: git sees no file there."""
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if prefix not in seen:
            seen[prefix] = (worktree / prefix).is_symlink()
        if seen[prefix]:
            return True
    return False


def _hash_blobs(worktree: Path, paths: list[RepoPath],
                keep: bool = True) -> tuple[list[str], dict[str, bytes]]:
    """The ids of the blobs `git add` in `worktree` would make of `paths`, and the
    bytes of those that are not written yet (`Repository.store_blobs` writes them).

    git computes every id (`git hash-object --stdin-paths`: the path's
    `.gitattributes` filters apply). Where a file's bytes are its blob (no
    filter changed them; the id says so), they are returned; the others
    (filtered, large, changed meanwhile) are added as `git add` adds them
    (`_added`: git's conversions also look at the index), and written. `keep`
    False: the ids only, nothing kept or written."""
    lines = b"".join(stdin_path(p) for p in paths)
    oids = out(["hash-object", "--stdin-paths"], worktree, stdin=lines).decode().split()
    blobs: dict[str, bytes] = {}  # one entry per object: a pack holds each once
    loose: list[int] = []
    for number, (path, oid) in enumerate(zip(paths, oids, strict=True)):
        data = _unfiltered_blob(worktree / path, oid)  # (each path: a same id may hide
        if data is None:                               # a file git keeps as it is)
            loose.append(number)
        else:
            blobs.setdefault(oid, data)
    if loose:
        try:
            again = _added(worktree, [paths[n] for n in loose], write=keep)
        except GitFailed as exc:
            raise _mixed_endings(exc, worktree) from None
        for number in loose:
            oids[number] = again[paths[number]]
    if not keep:
        return oids, {}
    return oids, blobs


def _added(worktree: Path, paths: list[RepoPath], *, write: bool) -> dict[RepoPath, str]:
    """The blobs `git add` of `paths` in `worktree` writes (written, with `write`):
    a copy of the worktree's index told `git update-index --add` of them, then
    read back.

    Not `git hash-object -w`: it reads no index, and git's conversions look at the
    index too (a path whose index blob has CRLF line endings is not converted by
    `text=auto` or `core.autocrlf`: the file committed before those rules came
    stays as it is; hashed without the index, every line of it changed). The
    worktree's own index is not touched."""
    import shutil
    import tempfile

    index = gitdir_of(worktree) / "index"
    with tempfile.TemporaryDirectory(prefix="hf-add-") as scratch:
        copy = Path(scratch) / "index"
        with contextlib.suppress(FileNotFoundError):  # (no index yet: git starts one)
            shutil.copyfile(index, copy)
        env = index_env(copy)
        config = ["-c", "core.splitIndex=false", "-c", "core.fsmonitor=false"]
        out([*config, "update-index", "--add", "--replace",
             *([] if write else ["--info-only"]), "-z", "--stdin"], worktree,
            env=env, stdin=b"".join(os.fsencode(p) + b"\0" for p in paths))
        listing = out([*config, "ls-files", "--stage", "-z"], worktree, env=env)
    wanted = set(paths)
    found: dict[RepoPath, str] = {}
    for record in nul_split(listing):
        meta, _, raw = record.partition(b"\t")
        path = from_git(raw)
        if path in wanted:
            found[path] = meta.split(b" ")[1].decode()
    return found


def _mixed_endings(exc: GitFailed, worktree: Path) -> GitFailed:
    """`exc` with a hint saying what to do when it is git's `core.safecrlf` refusing
    a file of mixed line endings (as `git add` of it would); else `exc` itself."""
    said = exc.stderr.strip().splitlines()[0] if exc.stderr.strip() else ""
    if " would be replaced by " not in said:
        return exc
    path = said.rsplit(" in ", 1)[-1]
    return GitFailed(exc.argv, exc.returncode, exc.stderr,
                     f"core.safecrlf refuses a file whose line endings git would change: "
                     f"give {path} one kind of line ending in {worktree} (`git add {path}` "
                     "there says the same), then try again")


def _unfiltered_blob(file: Path, oid: str) -> bytes | None:
    """`file`'s bytes when they are the blob `oid` (SHA-1 repositories), else None."""
    if len(oid) != 40:
        return None
    try:
        with file.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size > _PACK_FILE_MAX:
                return None
            data = handle.read()
    except OSError:
        return None
    return data if blob_id(data, len(oid)) == oid else None


def blob_id(data: bytes, length: int = 40) -> str:
    """The id of the blob of `data`, in a repository whose ids have `length` hex
    digits (40: SHA-1, 64: SHA-256), computed here, written nowhere."""
    import hashlib  # (here: a command that scans nothing does not load it)

    digest = hashlib.sha1 if length == 40 else hashlib.sha256
    return digest(b"blob %d\0" % len(data) + data).hexdigest()
