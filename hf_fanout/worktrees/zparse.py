"""git's `-z` output, parsed: NUL-separated items, status lines, raw diffs, and the
entries and changes they name. Pure: no process here."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from hf_fanout.paths import RepoPath, from_git

MODE_TREE = 0o040000
MODE_GITLINK = 0o160000
MODE_SYMLINK = 0o120000


def nul_split(data: bytes) -> list[bytes]:
    return [item for item in data.split(b"\0") if item]


def chunks(items: list[str], size: int = 1000) -> Iterable[list[str]]:
    """Pathspec lists small enough for one command line."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def stdin_path(path: RepoPath) -> bytes:
    """One line of `--stdin-paths` input: C-quoted when git would misread it raw."""
    raw = os.fsencode(path)
    if not any(b < 0x20 or b in (0x22, 0x5C, 0x7F) for b in raw):
        return raw + b"\n"
    quoted = b"".join(b"\\" + bytes([b]) if b in (0x22, 0x5C)
                      else b"\\%03o" % b if b < 0x20 or b == 0x7F
                      else bytes([b]) for b in raw)
    return b'"' + quoted + b'"\n'


@dataclass(frozen=True)
class Entry:
    """A blob (or symlink, or gitlink) in a tree: mode and object id."""

    mode: int
    oid: str


@dataclass(frozen=True)
class Change:
    path: RepoPath
    old: Entry | None
    new: Entry | None


@dataclass(frozen=True)
class Listed:
    """One path of `git status`: its two-letter code (as porcelain v1 writes it,
    `??` untracked) and, for a tracked path, the mode `git add` would record
    for what is on disk now (0: none, or untracked)."""

    code: str
    path: RepoPath
    mode: int = 0
    # a submodule's state as porcelain v2 writes it (`S` + commit changed, tracked
    # changes, untracked files: `S.M.`); `N...` or empty for any other path
    sub: str = ""

    @property
    def dirty_submodule(self) -> bool:
        """A submodule checkout holding changes of its own: edited tracked files or
        untracked ones, which no gitlink records."""
        return self.sub.startswith("S") and (self.sub[2:3] == "M" or self.sub[3:4] == "U")


def parse_status_v2(data: bytes) -> list[Listed]:
    """`git status --porcelain=v2 -z` output (ordinary, unmerged, untracked lines)."""
    items = data.split(b"\0")
    found: list[Listed] = []
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        kind = item[:2]
        if kind == b"? ":
            found.append(Listed("??", from_git(item[2:])))
        elif kind in (b"1 ", b"2 ", b"u "):
            # 1 XY sub mH mI mW hH hI path | 2 ... Xscore path NUL orig | u XY sub m1 m2 m3 mW ...
            fields = item.split(b" ", {b"1 ": 8, b"2 ": 9, b"u ": 10}[kind])
            mode = int(fields[5 if kind != b"u " else 6], 8)
            found.append(Listed(fields[1].decode().replace(".", " "), from_git(fields[-1]), mode,
                                fields[2].decode()))
            if kind == b"2 ":
                i += 1  # the original path of a rename (not asked for: --no-renames)
    return found


def status_items(data: bytes) -> list[RepoPath]:
    """The paths of `git status --porcelain=v1 -z --no-renames` output."""
    return [from_git(item[3:]) for item in nul_split(data)]


def under_any(path: RepoPath, wanted: set[RepoPath]) -> bool:
    """`path` is one of `wanted` or lies below one of them."""
    path = RepoPath(path.rstrip("/"))  # an untracked nested repository is listed as `sub/`
    if path in wanted:
        return True
    parts = path.split("/")
    return any(RepoPath("/".join(parts[:i])) in wanted for i in range(1, len(parts)))


def parse_raw_diff(data: bytes) -> list[Change]:
    """Parse `git diff-* --raw -z --no-renames` output."""
    return [change for changes in parse_raw_diffs(data).values() for change in changes]


def paths_by_commit(data: bytes) -> dict[str, list[RepoPath]]:
    """Parse `git diff-tree --stdin -c --raw -z` output: the paths under each commit
    id it prints (a combined diff's meta item starts with `::`, a plain one with
    `:`; each is followed by its path, and any other item is a commit id)."""
    items = data.split(b"\0")
    found: dict[str, list[RepoPath]] = {}
    paths = found.setdefault("", [])
    i = 0
    while i < len(items) - 1:
        if items[i].startswith(b":"):
            paths.append(from_git(items[i + 1]))
            i += 2
            continue
        if items[i].strip():
            paths = found.setdefault(items[i].decode().strip(), [])
        i += 1
    found.pop("", None)
    return found


def parse_raw_diffs(data: bytes) -> dict[str, list[Change]]:
    """Parse `git diff-tree --stdin --raw -z --no-renames` output: the changes
    under each commit id it prints ('' for those before any id)."""
    items = data.split(b"\0")
    found: dict[str, list[Change]] = {}
    changes = found.setdefault("", [])
    i = 0
    while i < len(items) - 1:  # the last item is what follows the final NUL
        meta = items[i]
        if not meta.startswith(b":"):  # a commit id (a path follows its meta item)
            if meta.strip():
                changes = found.setdefault(meta.decode().strip(), [])
            i += 1
            continue
        old_mode, new_mode, old_oid, new_oid, _status = meta[1:].decode().split(" ")
        path = from_git(items[i + 1])
        old = None if int(old_mode, 8) == 0 else Entry(int(old_mode, 8), old_oid)
        new = None if int(new_mode, 8) == 0 else Entry(int(new_mode, 8), new_oid)
        changes.append(Change(path, old, new))
        i += 2
    return found
