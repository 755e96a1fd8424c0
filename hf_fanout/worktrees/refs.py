"""The one ref reader: refs, HEAD and reflogs read from git's files, in-process.

No git process and no pygit2: safe in threads, and cheap enough for every
command (`hf status` reads each part's tip this way). It reads the `files`
ref store as git writes it: a loose ref file (an object id, or `ref: NAME`, a
symbolic ref, followed), else its line in `packed-refs`; object ids of SHA-1
and SHA-256 repositories alike. Per-worktree refs (`HEAD` and the other
pseudo-refs, `refs/bisect/`, `refs/worktree/`, `refs/rewritten/`) live in the
worktree's own git dir, every other ref in the common dir. A repository that
stores its refs as a reftable is refused where it is opened (`refuse_reftable`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hf_fanout.errors import HfError

# Refs every worktree has its own of (besides the one-level pseudo-refs).
PER_WORKTREE = ("refs/bisect/", "refs/worktree/", "refs/rewritten/")
_MAX_SYMBOLIC = 5  # git's own limit on following symbolic refs is about this


def is_oid(value: str) -> bool:
    """A full object id (SHA-1 or SHA-256), in hex."""
    return len(value) in (40, 64) and not value.strip("0123456789abcdef")


def zero_oid(like: str | int = 40) -> str:
    """The null object id of a repository whose ids look like `like` (or are that
    many hex digits long): SHA-1 40 zeros, SHA-256 64."""
    return "0" * (like if isinstance(like, int) else len(like))


def is_zero(oid: str) -> bool:
    return bool(oid) and not oid.strip("0")


def read_head(git_dir: Path) -> str:
    """The text of a git dir's HEAD file ('' when it cannot be read)."""
    try:
        return (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _is_per_worktree(ref: str) -> bool:
    return ref.startswith(PER_WORKTREE) or "/" not in ref


def _loose(directory: Path, ref: str) -> str | None:
    """A loose ref file's content, stripped (None: no such file)."""
    try:
        return (directory / ref).read_bytes().decode("ascii", "replace").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        return None
    except OSError:
        return None


def packed(common_dir: Path, ref: str) -> str | None:
    """`ref`'s object id in `packed-refs` (None: not there). One search of the file
    for the ref's own line (`<oid> <ref>`), so a large packed-refs is not parsed."""
    try:
        data = (common_dir / "packed-refs").read_bytes()
    except OSError:
        return None
    end = data.find(b" " + os.fsencode(ref) + b"\n")
    while end >= 0:
        start = data.rfind(b"\n", 0, end) + 1
        value = data[start:end].decode("ascii", "replace")
        if is_oid(value):
            return value
        end = data.find(b" " + os.fsencode(ref) + b"\n", end + 1)
    return None


def prune_empty_folders(common_dir: Path, folder: str) -> None:
    """Remove the empty loose-ref folders in `folder` (`refs/hf`), itself included:
    deleting a ref, git removes the folders it leaves empty only up to the one
    right under `refs/`. (A folder is made again by whoever writes a ref there.)"""
    top = common_dir / folder
    for where, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            Path(where).rmdir()


def loose_value(common_dir: Path, ref: str, git_dir: Path | None = None) -> str | None:
    """The object id of `ref`'s loose file only (None: none, or a symbolic ref)."""
    found = _loose(git_dir if git_dir is not None and _is_per_worktree(ref) else common_dir,
                   ref)
    return found if found is not None and is_oid(found) else None


def resolve(common_dir: Path, ref: str, git_dir: Path | None = None) -> str | None:
    """The object id `ref` (a full name, or HEAD and the other pseudo-refs when
    `git_dir`, the worktree's own, is given) points to, following symbolic refs;
    None when it does not exist (an unborn branch included)."""
    for _ in range(_MAX_SYMBOLIC):
        here = git_dir if git_dir is not None and _is_per_worktree(ref) else common_dir
        found = _loose(here, ref)
        if found is None and here == common_dir and ref.startswith("refs/"):
            return packed(common_dir, ref)
        if found is None:
            return None
        if found.startswith("ref:"):
            ref = found.removeprefix("ref:").strip()
            continue
        return found if is_oid(found) else None
    return None


def symbolic_ref(common_dir: Path, ref: str) -> str | None:
    """The ref `ref`'s loose file names when it is a symbolic ref (`ref: NAME`), else
    None: a branch a process made point at another (main, say), which anything that
    follows it would read, move or delete as that other one."""
    found = _loose(common_dir, ref)
    return found.removeprefix("ref:").strip() if found and found.startswith("ref:") else None


def symbolic_target(git_dir: Path) -> str | None:
    """The ref a worktree's HEAD names (`refs/heads/...`), None when detached."""
    head = read_head(git_dir)
    return head.removeprefix("ref:").strip() if head.startswith("ref:") else None


def reflog(directory: Path, ref: str) -> list[tuple[str, str, str]]:
    """(old, new, message) of every entry of `ref`'s reflog in `directory` (the
    common dir, or a worktree's git dir for its HEAD), oldest first."""
    try:
        raw = (directory / "logs" / ref).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    entries = []
    for line in raw.splitlines():
        head, _, message = line.partition("\t")
        fields = head.split(" ")
        if len(fields) >= 2:
            entries.append((fields[0], fields[1], message))
    return entries


def refuse_reftable(common_dir: Path) -> None:
    """hf reads and checks refs through git's `files` store; a reftable is refused
    in one line rather than misread."""
    if (common_dir / "reftable").is_dir():
        raise HfError(f"{common_dir.parent if common_dir.name == '.git' else common_dir} "
                      "stores its refs as a reftable, which hf does not read yet",
                      "use a clone with the files ref store: git clone --ref-format=files "
                      "SOURCE DIR")
