"""The one adapter to git: the `git` CLI (bytes, -z, a clean environment) and pygit2.

Every git call in hf goes through here. The CLI is used where git's own
semantics must hold (filters, hooks, worktrees, the index, reflogs) or where
it is faster; pygit2 (imported on first use) for object-database work.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
import struct
import subprocess
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hf_fanout.errors import GitFailed, HfError, NotARepo
from hf_fanout.paths import RepoPath, from_git

if TYPE_CHECKING:
    import pygit2


def _pygit2() -> Any:
    import pygit2

    return pygit2

ZERO_OID = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
MODE_TREE = 0o040000
MODE_GITLINK = 0o160000
MODE_SYMLINK = 0o120000
# larger blobs stay compressed in the repository's packs (`unpacked_objects`):
# a stored copy of them would cost more disk than the inflating it saves
UNPACKED_BLOB_LIMIT = "1m"
# hooks `git reset --hard` runs (with `unpacked_objects`' variable set)
_CHECKOUT_HOOKS = ("reference-transaction", "post-index-change")

# Variables that point git at another repository, index or object store: a
# parent process (a hook, an agent) may have set them, and they must not leak.
_KEEP_GIT_VARS = {
    "GIT_EXEC_PATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSL_CAINFO",
    "GIT_SSL_NO_VERIFY",
    "GIT_ASKPASS",
    "GIT_TERMINAL_PROMPT",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_GLOBAL",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE",
    "GIT_TRACE",
    "GIT_TRACE2",
    "GIT_TRACE2_EVENT",
}


def git_executable() -> str:
    """The real git: the one the guard wrapper recorded, else `git` on the PATH."""
    return os.environ.get("HF_REAL_GIT") or "git"


@functools.lru_cache(maxsize=8)
def _without_guard(path: str) -> str:
    """PATH minus hf's guard wrapper directory: hf's own git calls go to the real git."""
    guard = str(Path(__file__).resolve().parent.parent / "guard" / "bin")
    return os.pathsep.join(d for d in path.split(os.pathsep) if d.rstrip("/") != guard)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") or key in _KEEP_GIT_VARS or key.startswith("GIT_CONFIG_")
    }
    # GIT_CONFIG_KEY_n / VALUE_n / COUNT are kept (they are `git -c` for children), but
    # GIT_CONFIG (a whole other config file) is not.
    env.pop("GIT_CONFIG", None)
    env["GIT_OPTIONAL_LOCKS"] = env.get("GIT_OPTIONAL_LOCKS", "0")
    env["LC_ALL"] = "C"
    if "PATH" in env:
        env["PATH"] = _without_guard(env["PATH"])
    if extra:
        env.update(extra)
    return env


def run(
    args: Sequence[str],
    cwd: Path,
    *,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git ARGS` in `cwd`; raise GitFailed (with stderr) on a non-zero exit if `check`."""
    proc = subprocess.run(
        [git_executable(), *args],
        cwd=cwd,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        env=clean_env(env),
        check=False,
    )
    if check and proc.returncode != 0:
        raise GitFailed(list(args), proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc


def out(args: Sequence[str], cwd: Path, **kwargs: Any) -> bytes:
    return run(args, cwd, **kwargs).stdout


def text(args: Sequence[str], cwd: Path, **kwargs: Any) -> str:
    return out(args, cwd, **kwargs).decode("utf-8", "surrogateescape").strip()


def _chunks(items: list[str], size: int = 1000) -> Iterable[list[str]]:
    """Pathspec lists small enough for one command line."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _index_env(index: Path | None) -> dict[str, str] | None:
    """The environment that points git at the index file `index` (None: the
    worktree's own)."""
    return {"GIT_INDEX_FILE": str(index)} if index is not None else None


def nul_split(data: bytes) -> list[bytes]:
    return [item for item in data.split(b"\0") if item]


# Up to this many paths a status takes them as a pathspec; beyond, git's
# pathspec matching (every index entry against every path) costs more than a
# status of the whole tree.
_FEW_PATHS = 32

# A status that writes nothing (`--no-optional-locks`: no refresh of the index
# behind an agent's back) and lists every path once, by its own name.
_STATUS = ["--no-optional-locks", "--literal-pathspecs", "status", "--porcelain=v1", "-z",
           "--no-renames", "--ignore-submodules=none"]


# `_changed`'s status: porcelain v2 also gives each tracked path's worktree mode
# as git computes it for `git add` (core.fileMode, core.symlinks applied).
_STATUS_V2 = ["--porcelain=v2" if a == "--porcelain=v1" else a for a in _STATUS]


@dataclass(frozen=True)
class Listed:
    """One path of `git status`: its two-letter code (as porcelain v1 writes it,
    `??` untracked) and, for a tracked path, the mode `git add` would record
    for what is on disk now (0: none, or untracked)."""

    code: str
    path: RepoPath
    mode: int = 0


def _parse_status_v2(data: bytes) -> list[Listed]:
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
            found.append(Listed(fields[1].decode().replace(".", " "), from_git(fields[-1]), mode))
            if kind == b"2 ":
                i += 1  # the original path of a rename (not asked for: --no-renames)
    return found


def _status_items(data: bytes) -> list[RepoPath]:
    """The paths of `git status --porcelain=v1 -z --no-renames` output."""
    return [from_git(item[3:]) for item in nul_split(data)]


def _under_any(path: RepoPath, wanted: set[RepoPath]) -> bool:
    """`path` is one of `wanted` or lies below one of them."""
    path = RepoPath(path.rstrip("/"))  # an untracked nested repository is listed as `sub/`
    if path in wanted:
        return True
    parts = path.split("/")
    return any(RepoPath("/".join(parts[:i])) in wanted for i in range(1, len(parts)))


@dataclass(frozen=True)
class Entry:
    """A blob (or symlink, or gitlink) in a tree: mode and object id."""

    mode: int
    oid: str


@dataclass
class WorktreeScan:
    """A worktree's uncommitted state: the new entry (None: gone) of every path
    `git status` lists, and the targets of the symlinks among them."""

    entries: dict[RepoPath, Entry | None]
    links: dict[RepoPath, bytes]
    # the bytes of new blobs among the entries, not written yet (`tree_from_scan` does)
    blobs: dict[str, bytes] = field(default_factory=dict)


class _Ambiguous(Exception):
    """overlay_trees: a path one part changed has another part's change below it."""


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


def _stdin_path(path: RepoPath) -> bytes:
    """One line of `--stdin-paths` input: C-quoted when git would misread it raw."""
    raw = os.fsencode(path)
    if not any(b < 0x20 or b in (0x22, 0x5C, 0x7F) for b in raw):
        return raw + b"\n"
    quoted = b"".join(b"\\" + bytes([b]) if b in (0x22, 0x5C)
                      else b"\\%03o" % b if b < 0x20 or b == 0x7F
                      else bytes([b]) for b in raw)
    return b'"' + quoted + b'"\n'


@dataclass(frozen=True)
class Ident:
    """A commit's author or committer as `git var GIT_*_IDENT` prints it."""

    name: str
    email: str
    when: int | None  # seconds: fixed by GIT_*_DATE; None: the time of the commit
    offset: int  # minutes east of UTC (used with `when`)

    @classmethod
    def parse(cls, line: str, fixed_date: bool) -> Ident | None:
        """`Name <email> 1700000000 +0100`; None when it is not that (or not UTF-8)."""
        head, _, zone = line.rpartition(" ")
        head, _, seconds = head.rpartition(" ")
        name, sep, email = head.rpartition(" <")
        if not sep or not email.endswith(">") or not seconds.isdigit() or \
                len(zone) != 5 or zone[0] not in "+-" or not zone[1:].isdigit():
            return None
        if not name or email == ">":  # git allows `T <>`; libgit2 does not
            return None
        try:
            (name + email).encode("utf-8")
        except UnicodeEncodeError:  # surrogates: bytes that are not UTF-8
            return None
        offset = int(zone[1:3]) * 60 + int(zone[3:5])
        return cls(name, email[:-1], int(seconds) if fixed_date else None,
                   -offset if zone[0] == "-" else offset)

    def at(self, now: float) -> tuple[str, str, int, int]:
        """pygit2.Signature's arguments, dated `now` unless the date is fixed."""
        if self.when is not None:
            return self.name, self.email, self.when, self.offset
        seconds = int(now)
        return (self.name, self.email, seconds,
                (time.localtime(seconds).tm_gmtoff or 0) // 60)


def _is_oid(value: str) -> bool:
    """A full object id (SHA-1 or SHA-256), in hex."""
    return len(value) in (40, 64) and not value.strip("0123456789abcdef")


def _read_head(git_dir: Path) -> str:
    """The text of a git dir's HEAD file ('' when it cannot be read)."""
    try:
        return (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _refuse_non_utf8(path: RepoPath) -> None:
    """libgit2 (trees built in-process) takes UTF-8 names only."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise HfError(f"{path!r} is a file name that is not UTF-8: hf cannot record it",
                      "rename the file to a UTF-8 name (git itself could store it, hf builds "
                      "trees with libgit2, which cannot)") from None


# Outside a join (which holds all its objects for one pack, `Repo.holding_objects`),
# from this many files up a worktree's new blobs go into one pack (a file and its
# index) instead of a loose object file each: on a disk where creating a small
# file is slow (about 1 ms here) 125 loose objects took 0.13 s, hashing them
# without writing 0.01 s.
_PACK_FROM = 16
_PACK_FILE_MAX = 32 << 20  # larger files: git streams them itself
_HELD_MAX = 256 << 20  # held in memory (`Repo.holding_objects`) up to this many bytes


def _hash_blobs(worktree: Path, paths: list[RepoPath]) -> tuple[list[str], dict[str, bytes]]:
    """The ids of the blobs `git add` in `worktree` would make of `paths`, and the
    bytes of those that are not written yet (`Repo.store_blobs` writes them).

    git computes every id (`git hash-object --stdin-paths`: the path's
    `.gitattributes` filters apply). Where a file's bytes are its blob (no
    filter changed them; the id says so), they are returned; the others
    (filtered, large, changed meanwhile) are written by `git hash-object -w`,
    as git writes them."""
    lines = b"".join(_stdin_path(p) for p in paths)
    oids = out(["hash-object", "--stdin-paths"], worktree, stdin=lines).decode().split()
    blobs: dict[str, bytes] = {}  # one entry per object: a pack holds each once
    loose: list[int] = []
    for number, (path, oid) in enumerate(zip(paths, oids, strict=True)):
        if oid in blobs:
            continue
        data = _unfiltered_blob(worktree / path, oid)
        if data is None:
            loose.append(number)
        else:
            blobs[oid] = data
    if loose:
        again = out(["hash-object", "-w", "--stdin-paths"], worktree,
                    stdin=b"".join(_stdin_path(paths[n]) for n in loose)).decode().split()
        for number, oid in zip(loose, again, strict=True):
            oids[number] = oid
    return oids, blobs


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
    if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() != oid:  # noqa: S324
        return None
    return data


_BLOB = 3  # the object types of packs (and of libgit2): commit 1, tree 2, blob 3


def _held_objects() -> Any:
    """A pygit2 object-database backend that keeps what is written to it in memory
    (`Repo.holding_objects`). Its callbacks run Python: safe because pygit2 keeps the
    interpreter lock in every call hf makes (it lets go only in revision walks
    and filter streams)."""
    pygit2 = _pygit2()

    class HeldObjects(pygit2.OdbBackend):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.objects: dict[str, tuple[int, bytes]] = {}
            self.unwritten: list[str] = []
            self.size = 0  # bytes held

        def read_cb(self, oid: Any) -> tuple[int, bytes]:
            return self.objects[str(oid)]  # KeyError: not here, libgit2 asks on

        def read_header_cb(self, oid: Any) -> tuple[int, int]:
            kind, data = self.objects[str(oid)]
            return kind, len(data)

        def read_prefix_cb(self, prefix: str) -> tuple[int, bytes, Any]:
            # libgit2 asks this way for full ids too (a blob it loads again)
            oid = self.exists_prefix_cb(prefix)
            kind, data = self.objects[str(oid)]
            return kind, data, oid

        def exists_cb(self, oid: Any) -> bool:
            return str(oid) in self.objects

        def exists_prefix_cb(self, prefix: str) -> Any:
            found = [oid for oid in self.objects if oid.startswith(prefix)] \
                if len(prefix) < 40 else [prefix] if prefix in self.objects else []
            if not found:
                raise KeyError(prefix)  # not here: libgit2 asks the other backends
            if len(found) > 1:
                raise ValueError(prefix)  # ambiguous
            return pygit2.Oid(hex=found[0])

        def write_cb(self, oid: Any, data: bytes, kind: int) -> None:
            self.add(str(oid), kind, bytes(data))

        def add(self, oid: str, kind: int, data: bytes) -> None:
            if oid not in self.objects:
                self.objects[oid] = (kind, data)
                self.unwritten.append(oid)
                self.size += len(data)

        def refresh_cb(self) -> None:
            pass

    return HeldObjects()


def _pack(objects: list[tuple[int, bytes]]) -> bytes:
    """A version 2 pack of whole (undeltified) objects, each (type, data), as `git
    index-pack` reads it. Blobs are deflated at zlib's fastest level; trees and
    commits are stored: mostly object ids, they do not compress (a join's 240
    trees: 0.79 MB, 0.57 MB at level 1 for 17 ms more)."""
    chunks = [b"PACK", struct.pack(">II", 2, len(objects))]
    for kind, data in objects:
        size = len(data)
        head = bytearray()
        byte = (kind << 4) | (size & 0x0F)  # the type, then the size, 7 bits a byte
        size >>= 4
        while size:
            head.append(byte | 0x80)
            byte = size & 0x7F
            size >>= 7
        head.append(byte)
        chunks += [bytes(head), zlib.compress(data, 1 if kind == _BLOB else 0)]
    body = b"".join(chunks)
    return body + hashlib.sha1(body).digest()  # noqa: S324 (the pack format's checksum)


@dataclass(frozen=True)
class Change:
    path: RepoPath
    old: Entry | None
    new: Entry | None


def parse_raw_diff(data: bytes) -> list[Change]:
    """Parse `git diff-* --raw -z --no-renames` output."""
    return [change for changes in parse_raw_diffs(data).values() for change in changes]


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


class Repo:
    """A repository as seen from one of its worktrees."""

    def __init__(self, workdir: Path, git_dir: Path, common_dir: Path) -> None:
        self.workdir = workdir
        self.git_dir = git_dir
        self.common_dir = common_dir
        self._held: Any = None  # see holding_objects

    @classmethod
    def discover(cls, start: Path | None = None) -> Repo:
        start = (start or Path.cwd()).resolve()
        if not start.is_dir():
            raise NotARepo(f"{start} is not a directory", "pass --repo PATH to a git repository")
        proc = run(
            ["rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"],
            start,
            check=False,
        )
        if proc.returncode != 0:
            raise NotARepo(
                f"{start} is not inside a git work tree",
                "cd into your repository, or pass --repo PATH",
            )
        top, git_dir, common = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
        common_path = Path(common)
        if not common_path.is_absolute():
            common_path = (start / common_path).resolve()
        return cls(Path(top), Path(git_dir), common_path)

    @property
    def is_main_worktree(self) -> bool:
        return self.git_dir == self.common_dir

    @cached_property
    def main_workdir(self) -> Path:
        """The main worktree of this repository (the one holding the common dir)."""
        if self.is_main_worktree:
            return self.workdir
        listing = out(["worktree", "list", "--porcelain", "-z"], self.workdir)
        first = nul_split(listing)[0]
        return Path(os.fsdecode(first.removeprefix(b"worktree ")))

    @cached_property
    def odb(self) -> pygit2.Repository:
        import pygit2

        return pygit2.Repository(str(self.git_dir))

    @contextlib.contextmanager
    def holding_objects(self) -> Iterator[None]:
        """Inside the block, the objects hf makes in this process (blobs from
        scans, trees, commits) are kept in memory and written as one pack: by
        `write_held_objects`, before something outside this process names them,
        and when the block ends.

        Otherwise libgit2 writes a tree or commit as a loose object, a file of its
        own (about 0.1 ms apiece here; a join at 20,000 files makes some 240), and
        each scan's blobs went into a pack of their own: `git gc --auto` packs
        everything once a repository has 50 packs, which 8-part joins reached
        in six. Objects made after the block go to disk one by one as before.
        """
        try:
            self._held = _held_objects()
            # before the loose objects (priority 1), which would take the writes
            self.odb.odb.add_backend(self._held, 3)
            yield
        finally:
            with contextlib.suppress(HfError, OSError):  # what a refusal's preview names
                self.write_held_objects()
            self._held = None
            self.__dict__.pop("odb", None)  # a fresh repository object, without the backend

    def write_held_objects(self) -> None:
        """Write the objects held since `holding_objects` began into the repository,
        as one pack (`git index-pack`), and let go of their bytes: libgit2 finds
        them in the pack from then on."""
        held = self._held
        if held is None or not held.unwritten:
            return
        count = len(held.unwritten)  # (only what is held now is written and let go)
        done = held.unwritten[:count]
        self._write_pack([held.objects[oid] for oid in done])
        for oid in done:
            held.size -= len(held.objects.pop(oid)[1])
        del held.unwritten[:count]

    def store_blobs(self, blobs: Mapping[str, bytes]) -> None:
        """Write blobs (id: bytes, the id known to be right): held in memory inside
        `holding_objects` (written as a pack once more than `_HELD_MAX` bytes are
        held), else one pack, or loose objects when there are few."""
        if not blobs:
            return
        if self._held is not None:
            for oid, data in blobs.items():
                self._held.add(oid, _BLOB, data)
            if self._held.size > _HELD_MAX:
                self.write_held_objects()
        elif len(blobs) < _PACK_FROM:
            for data in blobs.values():
                self.odb.odb.write(_BLOB, data)
        else:
            self._write_pack([(_BLOB, data) for data in blobs.values()])

    def _write_pack(self, objects: list[tuple[int, bytes]]) -> None:
        """`objects` (type, data) into the repository as one pack, which git verifies."""
        self.git(["index-pack", "--stdin"], stdin=_pack(objects))

    # --- plain git calls ---------------------------------------------------

    def git(self, args: Sequence[str], **kwargs: Any) -> bytes:
        return out(args, self.workdir, **kwargs)

    def rev_parse(self, rev: str) -> str | None:
        proc = run(["rev-parse", "--verify", "--quiet", "--end-of-options", rev], self.workdir,
                   check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def rev_parse_in(self, worktree: Path, rev: str) -> str | None:
        """`rev` resolved in another worktree of this repository (its own HEAD)."""
        proc = run(["rev-parse", "--verify", "--quiet", "--end-of-options", rev], worktree,
                   check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def head(self) -> str | None:
        """The commit HEAD points to (None on an unborn branch): from git's files
        when they say it plainly, else `git rev-parse`."""
        head = _read_head(self.git_dir)
        found = (self._ref_from_files(head.removeprefix("ref:").strip())
                 if head.startswith("ref:") else head if _is_oid(head) else None)
        return found if found is not None else self.rev_parse("HEAD^{commit}")

    def head_ref(self) -> str:
        """The ref HEAD points to (refs/heads/...), or 'HEAD' when detached."""
        head = _read_head(self.git_dir)
        if head.startswith("ref: refs/heads/"):
            return head.removeprefix("ref:").strip()
        proc = run(["symbolic-ref", "--quiet", "HEAD"], self.workdir, check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else "HEAD"

    def ref_exists(self, ref: str) -> bool:
        if self._ref_from_files(ref) is not None:
            return True
        proc = run(["show-ref", "--verify", "--quiet", ref], self.workdir, check=False)
        return proc.returncode == 0

    def enable_worktree_config(self) -> None:
        """Turn on per-worktree config (`config.worktree`), once per Repo."""
        if self.__dict__.get("_worktree_config_on"):
            return
        enabled = run(["config", "--bool", "--get", "extensions.worktreeConfig"],
                      self.workdir, check=False)
        if enabled.stdout.strip() != b"true":
            self.git(["config", "extensions.worktreeConfig", "true"])
        self.__dict__["_worktree_config_on"] = True

    def existing_refs(self, refs: Sequence[str], *options: str) -> set[str]:
        """Those of `refs` (full names) that exist and pass the `git for-each-ref`
        `options` (`--no-contains=C`...): one git process for all."""
        if not refs:
            return set()
        listing = text(["for-each-ref", *options, "--format=%(refname)", *refs], self.workdir)
        return set(listing.split("\n")) & set(refs)

    def tree_of(self, commit: str) -> str:
        return str(self.odb[commit].peel(_pygit2().Tree).id)

    def ref_target(self, ref: str) -> str | None:
        """The commit a full ref name points to, read in-process (no git spawn):
        from git's ref files when they hold it plainly (no pygit2 either, so it is
        safe in a thread), else by pygit2 (a symbolic ref, a ref that is not there)."""
        found = self._ref_from_files(ref)
        if found is not None:
            return found
        resolved = self.odb.references.get(ref)
        if resolved is None:
            return None
        return str(resolved.resolve().target)

    def _ref_from_files(self, ref: str) -> str | None:
        """`ref`'s object id from its loose file or `packed-refs` (shared refs only);
        None when neither holds it as a plain object id."""
        if not ref.startswith("refs/") or ref.startswith(
                ("refs/bisect/", "refs/worktree/", "refs/rewritten/")):  # per worktree
            return None
        try:
            value: bytes | None = (self.common_dir / ref).read_bytes().strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            value = None
        except OSError:
            return None
        if value is None:
            try:
                packed = (self.common_dir / "packed-refs").read_bytes()
            except OSError:
                return None
            end = packed.find(b" " + os.fsencode(ref) + b"\n")
            if end < 0:
                return None
            value = packed[packed.rfind(b"\n", 0, end) + 1:end]
        text_value = value.decode("ascii", "replace")
        return text_value if _is_oid(text_value) else None

    def is_ancestor(self, ancestor: str, commit: str) -> bool:
        """Whether `ancestor` is `commit` or in its history."""
        proc = run(["merge-base", "--is-ancestor", ancestor, commit], self.workdir, check=False)
        if proc.returncode not in (0, 1):
            raise GitFailed(["merge-base", "--is-ancestor", ancestor, commit], proc.returncode,
                            proc.stderr.decode("utf-8", "replace"))
        return proc.returncode == 0

    def not_descending(self, base: str, refs: Sequence[str]) -> set[str]:
        """Those of `refs` whose commit does not have `base` in its history."""
        return self.existing_refs(refs, f"--no-contains={base}")

    @staticmethod
    def worktree_gitdir(worktree: Path) -> Path:
        """A linked worktree's own git dir, from its `.git` file (no git spawn)."""
        dotgit = worktree / ".git"
        if dotgit.is_dir():
            return dotgit
        line = dotgit.read_text(encoding="utf-8", errors="surrogateescape").strip()
        path = Path(line.removeprefix("gitdir:").strip())
        return path if path.is_absolute() else (worktree / path).resolve()

    def worktree_head(self, worktree: Path) -> str | None:
        """The commit another worktree's HEAD points to (no git spawn)."""
        try:
            head = _read_head(self.worktree_gitdir(worktree))
        except OSError:  # no .git file
            return None
        if head.startswith("ref:"):
            return self.ref_target(head.removeprefix("ref:").strip())
        return head or None

    def last_head(self, worktree: Path) -> str | None:
        """The commit a worktree's HEAD last pointed to, from its HEAD reflog (it
        survives the deletion of the branch HEAD names); None without one."""
        try:
            lines = (self.worktree_gitdir(worktree) / "logs" / "HEAD").read_bytes().splitlines()
        except OSError:
            return None
        fields = lines[-1].split(b" ") if lines else []
        found = fields[1].decode("ascii", "replace") if len(fields) > 1 else ""
        return found if _is_oid(found) and found.strip("0") else None

    def ls_tree(self, commit: str) -> list[RepoPath]:
        """Every file path of `commit`'s tree. Kept per commit id for the process's
        life (a split asks for the base's listing several times)."""
        cache: dict[str, list[RepoPath]] = self.__dict__.setdefault("_ls_tree", {})
        if commit not in cache:
            data = self.git(["ls-tree", "-r", "-z", "--full-tree", "--name-only", commit])
            # one decode of the whole listing (what from_git does per path)
            listing = [RepoPath(p) for p in os.fsdecode(data).split("\0") if p]
            if len(commit) == 40 and all(c in "0123456789abcdef" for c in commit):
                cache[commit] = listing  # an object id never changes; a ref may
            return listing
        return list(cache[commit])

    def diff_trees(self, old: str, new: str) -> list[Change]:
        data = self.git(["diff-tree", "-r", "-z", "--raw", "--no-renames", "--no-commit-id",
                         old, new])
        return parse_raw_diff(data)

    def diff_commits(self, base: str, tips: Iterable[str]) -> dict[str, list[Change]]:
        """`diff_trees(base, tip)` for each commit of `tips`, from one git process
        (`diff-tree --stdin` reads each tip with `base` given as its parent).

        `diff-tree --stdin` skips a line it cannot read (a missing object) and
        still exits 0; `--always` names every tip it did read, and a tip it
        did not gets `diff_trees` of its own, which fails as git does."""
        wanted = list(dict.fromkeys(tips))
        if not wanted:
            return {}
        data = self.git(["diff-tree", "--stdin", "--always", "-r", "-z", "--raw",
                         "--no-renames"],
                        stdin="".join(f"{tip} {base}\n" for tip in wanted).encode())
        found = parse_raw_diffs(data)
        return {tip: found[tip] if tip in found else self.diff_trees(base, tip)
                for tip in wanted}

    def tree_changes(self, old_tree: str, new_tree: str,
                     paths: Iterable[RepoPath]) -> list[Change]:
        """What `diff_trees(old_tree, new_tree)` lists, in-process, given every path
        where the two trees may differ (`paths`: file paths; the others are
        left out). Same entries, same order (git's: by the path's bytes)."""
        wanted = sorted(set(paths), key=os.fsencode)
        old = self.entries_at(old_tree, wanted)
        new = self.entries_at(new_tree, wanted)
        return [Change(p, old.get(p), new.get(p)) for p in wanted if old.get(p) != new.get(p)]

    def entries_at(self, treeish: str, paths: Iterable[RepoPath]) -> dict[RepoPath, Entry]:
        """Entries of `paths` that exist in `treeish` (absent paths are left out).

        Each directory's tree is looked up once, however many paths it holds.
        """
        pygit2 = _pygit2()
        root = self.odb.revparse_single(treeish).peel(pygit2.Tree)
        trees: dict[str, Any] = {"": root}

        def tree_at(directory: str) -> Any:
            if directory not in trees:
                parent, _, name = directory.rpartition("/")
                above = tree_at(parent)
                found = None
                if above is not None:
                    try:
                        entry = above[name]
                    except KeyError:
                        entry = None
                    found = entry if entry is not None and entry.filemode == MODE_TREE else None
                trees[directory] = found
            return trees[directory]

        result: dict[RepoPath, Entry] = {}
        for path in paths:
            directory, _, name = path.rpartition("/")
            tree = tree_at(directory)
            if tree is None:
                continue
            try:
                entry = tree[name]
            except KeyError:
                continue
            if entry.filemode != MODE_TREE:
                result[path] = Entry(entry.filemode, str(entry.id))
        return result

    def status_paths(self, paths: Iterable[RepoPath] | None = None, *,
                     worktree: Path | None = None, exclude: Sequence[str] = (),
                     in_head: Mapping[RepoPath, Entry] | None = None) -> list[RepoPath]:
        """Paths with any uncommitted difference (staged, unstaged, untracked).

        In this worktree, or in `worktree` (another worktree of the repository).
        Paths in `exclude`, or below one of them, are left out. `in_head`: the
        entries of `paths` in HEAD, when the caller has them (`entries_at`);
        given, this runs git processes only (safe in a thread).
        """
        found = self._status_paths(paths, worktree or self.workdir, in_head)
        if not exclude:
            return found
        skip = {RepoPath(p.rstrip("/")) for p in exclude}
        return [p for p in found if not _under_any(p, skip)]

    def _status_paths(self, paths: Iterable[RepoPath] | None, cwd: Path,
                      in_head: Mapping[RepoPath, Entry] | None) -> list[RepoPath]:
        if paths is None:
            return self.changed_paths(cwd)
        wanted = set(paths)
        if len(wanted) > _FEW_PATHS:
            return self._status_of_many(wanted, cwd, in_head)
        return _status_items(self._status_limited(wanted, cwd))

    @staticmethod
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
        return [listed.path for listed in Repo._changed(worktree, exact=False)]

    @staticmethod
    def _changed(worktree: Path, *, exact: bool) -> list[Listed]:
        """`changed_paths` with each path's status code and worktree mode (`??` for
        the untracked files found inside untracked directories).

        `exact` (what the join and a rescue record): without git's untracked
        cache. The cache trusts a directory whose mtime, in whole seconds, did not
        move; a file made in the second the cache looked at its directory, with
        the index written in a later second (by any git command), is missed for
        good. Without it git reads every directory: exact, at the cost of a walk
        (about 0.1 s at 90,000 files). A status shown to a person uses it."""
        cache = ["-c", "core.untrackedCache=false"] if exact else []
        items = _parse_status_v2(out([*cache, *_STATUS_V2, "--untracked-files=normal"],
                                     worktree))
        # an untracked directory is listed as `dir/`; a tracked file that is now a
        # directory is listed only as deleted (its files are untracked too)
        dirs = [i.path for i in items if i.path.endswith("/") or (
            (worktree / i.path).is_dir() and not (worktree / i.path).is_symlink())]
        if not dirs:
            return items
        specs = [":(literal)" + os.fsencode(d.rstrip("/")).decode("utf-8", "surrogateescape")
                 + "/" for d in dirs]
        inside = [Listed("??", from_git(p)) for chunk in _chunks(specs) for p in nul_split(
            out([*cache, "ls-files", "-z", "--others", "--exclude-standard", "--", *chunk],
                worktree))]
        return [i for i in items if not i.path.endswith("/")] + inside

    @staticmethod
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

    @staticmethod
    def _status_limited(paths: set[RepoPath], cwd: Path) -> bytes:
        specs = [os.fsencode(p).decode("utf-8", "surrogateescape") for p in sorted(paths)]
        return b"".join(out([*_STATUS, "--untracked-files=all", "--", *chunk], cwd)
                        for chunk in _chunks(specs))

    def _status_of_many(self, wanted: set[RepoPath], cwd: Path,
                        in_head: Mapping[RepoPath, Entry] | None) -> list[RepoPath]:
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
        tracked = _status_items(out([*_STATUS, "--untracked-files=no"], cwd))
        found = [p for p in tracked if _under_any(p, wanted)]
        listed = set(found)
        if in_head is None:
            head = self.head() if cwd == self.workdir else self.rev_parse_in(cwd, "HEAD^{commit}")
            in_head = self.entries_at(head, wanted) if head else {}
        maybe_untracked = {p for p in wanted if p not in in_head and p not in listed
                           and os.path.lexists(cwd / p)}
        if maybe_untracked:
            untracked = _status_items(self._status_limited(maybe_untracked, cwd))
            found += [p for p in untracked if p not in listed]
        return found

    def staged_paths(self, against: str, *, index: Path | None = None) -> set[RepoPath]:
        """Paths whose entry in the index (or the index file `index`) differs from
        `against`."""
        data = self.git(["diff-index", "--cached", "-z", "--name-only", "--no-renames", against],
                        env=_index_env(index))
        return {from_git(p) for p in nul_split(data)}

    # --- worktrees ---------------------------------------------------------

    def add_worktree(self, path: Path, branch: str, base: str) -> None:
        """Register a worktree on a new branch, without checking files out.

        Registration is serial: `git worktree add` reads every other worktree's
        metadata and fails on one that another process is half way through
        creating. The slow part, the checkout (`populate_worktree`), runs in
        parallel, each as soon as its worktree is registered.
        """
        self.git(["worktree", "add", "--quiet", "--no-checkout", "-b", branch, str(path), base])

    def unpacked_objects(self, commit: str, where: Path) -> Path | None:
        """Make `where` an object directory whose one pack holds `commit`'s trees and
        blobs stored without compression (blobs up to `UNPACKED_BLOB_LIMIT`), with
        the repository's own objects as its alternate, and return it.

        A checkout reading from it (`populate_worktree(objects=...)`) copies bytes
        where it would inflate every blob: zlib is a third of a checkout's CPU, and
        for several worktrees of one commit it is paid once here instead of once per
        worktree. Nothing is written to the repository. None where that cannot be
        done (a partial clone, whose missing blobs would be fetched into the scratch
        directory; a path git cannot name as an alternate; any failure): the
        checkout then reads the repository's objects as usual.
        """
        objects = self.common_dir / "objects"
        if b"\n" in os.fsencode(objects):
            return None
        partial = run(["config", "--get", "extensions.partialClone"], self.workdir, check=False)
        if partial.stdout.strip():
            return None
        try:
            # hooks the checkout itself runs would see the variable too, and what one
            # of them wrote into the object store would go with the scratch directory
            hooks = Path(text(["rev-parse", "--path-format=absolute", "--git-path", "hooks"],
                              self.workdir))
            if any(os.access(hooks / name, os.X_OK) for name in _CHECKOUT_HOOKS):
                return None
            (where / "pack").mkdir(parents=True)
            (where / "info").mkdir()
            (where / "info" / "alternates").write_bytes(os.fsencode(objects) + b"\n")
            listing = out(["rev-list", "--objects", "--no-walk",
                           f"--filter=blob:limit={UNPACKED_BLOB_LIMIT}", commit], self.workdir)
            # its temporary files in the scratch directory too, not the repository's
            out(["-c", "pack.compression=0", "pack-objects", "--quiet", "--no-reuse-object",
                 "--window=0", "--depth=0", str(where / "pack" / "pack")], self.workdir,
                stdin=listing, env={"GIT_OBJECT_DIRECTORY": str(where)})
        except (OSError, GitFailed):
            return None
        return where

    def populate_worktree(self, path: Path, *, workers: int = 1,
                          objects: Path | None = None, prime: bool = True) -> None:
        """Check out HEAD in a worktree registered by `add_worktree`, as `worktree add`
        would: `reset --hard` (filters apply), then the post-checkout hook; then
        `prime_status_caches` (unless `prime` is false: the caller does it). `objects`
        (from `unpacked_objects`) is where the checkout reads objects first; only
        the checkout, which writes none."""
        env = {"GIT_OBJECT_DIRECTORY": str(objects)} if objects is not None else None
        out(["-c", f"checkout.workers={workers}", "reset", "--hard", "--quiet",
             "--no-recurse-submodules"], path, env=env)
        head = self.worktree_head(path) or text(["rev-parse", "HEAD"], path)
        out(["hook", "run", "--ignore-missing", "post-checkout", "--", ZERO_OID, head, "1"],
            path)
        if prime:
            self.prime_status_caches(path)

    def remove_worktree(self, path: Path) -> None:
        run(["worktree", "remove", "--force", "--force", str(path)], self.workdir, check=False)

    def delete_branch(self, branch: str) -> None:
        run(["update-ref", "-d", f"refs/heads/{branch}"], self.workdir, check=False)

    def prune_worktrees(self) -> None:
        run(["worktree", "prune"], self.workdir, check=False)

    def not_ignored(self, worktree: Path, paths: Sequence[str]) -> list[str]:
        """Those of `paths` (existing, in `worktree`) that git does not ignore."""
        if not paths:
            return []
        stdin = b"".join(os.fsencode(p) + b"\0" for p in paths)
        proc = run(["check-ignore", "-z", "--stdin"], worktree, stdin=stdin, check=False)
        if proc.returncode not in (0, 1):
            raise GitFailed(["check-ignore", "-z", "--stdin"], proc.returncode,
                            proc.stderr.decode("utf-8", "replace"))
        ignored = {os.fsdecode(p) for p in nul_split(proc.stdout)}
        return [p for p in paths if p not in ignored]

    def scan_worktree(self, worktree: Path, *, exclude: Sequence[str] = ()) -> WorktreeScan:
        """What `git add -A` in `worktree` would record, for the paths that differ.

        One `git status` (the index's stat cache: only entries whose stat
        data changed are re-read; racily clean ones are re-read as git always
        does), then one `git hash-object -w --stdin-paths` for the regular
        files it lists: `.gitattributes` filters apply per path, as for `git
        add`. Nothing is written to the worktree or its index
        (`--no-optional-locks`: an agent's own git calls never find the index
        locked by hf). Paths in `exclude` (and
        below them) are left out. Git processes only, so it may run in
        threads; `tree_from_scan` does the object-database part.
        """
        skip = {RepoPath(p.rstrip("/")) for p in exclude}
        changed = self._changed(worktree, exact=True)
        untracked = {i.path for i in changed if i.code == "??"}
        # A path the index no longer has (`D ` in the first column) that git does not
        # list as untracked is either gone from the disk or ignored: `git add -A`
        # leaves it out either way (a file dropped with `git rm --cached` and then
        # ignored stays out of the commit).
        dropped = {i.path for i in changed if i.code == "D " and i.path not in untracked}
        git_modes = {i.path: i.mode for i in changed if i.mode}
        listed = list(dict.fromkeys(i.path for i in changed))
        scan = WorktreeScan({}, {})
        files: dict[RepoPath, int] = {}
        executable: list[RepoPath] = []  # new files with an exec bit: core.fileMode decides
        links_seen: dict[str, bool] = {}
        for item in listed:
            path = RepoPath(item.rstrip("/"))  # an untracked nested repository: `sub/`
            if skip and _under_any(path, skip):
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
                scan.entries[path] = self._nested_repo(full, path)
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
        if executable and not self._trusts_exec_bit(worktree):
            files.update(dict.fromkeys(executable, 0o100644))
        if files:
            names = list(files)
            oids, scan.blobs = _hash_blobs(worktree, names)
            for path, oid in zip(names, oids, strict=True):
                scan.entries[path] = Entry(files[path], oid)
        return scan

    @staticmethod
    def _trusts_exec_bit(worktree: Path) -> bool:
        """core.fileMode in `worktree` (false: new files are recorded 0644)."""
        value = run(["config", "--type=bool", "core.filemode"], worktree, check=False).stdout
        return value.strip() != b"false"

    def _nested_repo(self, full: Path, path: RepoPath) -> Entry | None:
        """A directory `git status` lists: a nested repository (a gitlink, as `git
        add` would record it), or a tracked file replaced by a directory (gone)."""
        if not (full / ".git").exists():
            return None
        head = run(["rev-parse", "--verify", "--quiet", "HEAD"], full, check=False)
        if head.returncode != 0:
            raise HfError(f"{full} is a git repository without a commit: it cannot be "
                          "recorded (`git add` refuses it too)",
                          "remove it, or make a first commit in it")
        return Entry(MODE_GITLINK, head.stdout.decode().strip())

    def tree_from_scan(self, head_tree: str, scan: WorktreeScan) -> str:
        """`head_tree` with the scanned worktree state applied (its blobs written)."""
        self.store_blobs(scan.blobs)
        scan.blobs = {}  # stored: the scan need not keep their bytes
        entries = dict(scan.entries)
        for path, target in scan.links.items():
            entries[path] = Entry(MODE_SYMLINK, self.write_blob(target))
        return self.build_tree(head_tree, entries) if entries else head_tree

    def worktree_tree(self, worktree: Path, head_tree: str, *,
                      exclude: Sequence[str] = ()) -> str:
        """The tree of everything in `worktree` as `git add -A` would record it,
        given the tree of the worktree's HEAD. See `scan_worktree`."""
        return self.tree_from_scan(head_tree, self.scan_worktree(worktree, exclude=exclude))

    # --- objects -----------------------------------------------------------

    def read_blob(self, oid: str) -> bytes:
        data: bytes = self.odb[oid].data  # type: ignore[attr-defined]
        return data

    def write_blob(self, data: bytes) -> str:
        return str(self.odb.create_blob(data))

    def build_tree(self, base_tree: str, changes: Mapping[RepoPath, Entry | None]) -> str:
        """`base_tree` with `changes` applied (None deletes), built in the object database.

        Only the directories on the way to a changed path are rewritten, so the
        cost grows with the change, not with the repository.
        """
        pygit2 = _pygit2()
        odb = self.odb
        nested: dict[str, Any] = {}
        for path, entry in changes.items():
            _refuse_non_utf8(path)
            node = nested
            *dirs, leaf = path.split("/")
            for name in dirs:
                node = node.setdefault(name + "/", {})
            node[leaf] = entry

        def rebuild(tree_oid: str | None, node: dict[str, Any]) -> str | None:
            tree: Any = odb[tree_oid] if tree_oid else None
            builder = odb.TreeBuilder(tree) if tree is not None else odb.TreeBuilder()
            # deletions, then directories, then files: a file replaced by a directory
            # of the same name and a directory replaced by a file both work
            for key, value in sorted(node.items(), key=lambda kv: 0 if kv[1] is None
                                     else 1 if kv[0].endswith("/") else 2):
                if key.endswith("/"):
                    name = key[:-1]
                    existing = tree[name] if tree is not None and name in tree else None
                    sub_oid = str(existing.id) if existing is not None and \
                        existing.filemode == MODE_TREE else None
                    new_sub = rebuild(sub_oid, value)
                    if new_sub is None:
                        if sub_oid is not None:  # the directory is left empty
                            builder.remove(name)
                    else:
                        builder.insert(name, pygit2.Oid(hex=new_sub), MODE_TREE)
                elif value is None:
                    # a file's path: a directory of that name is not it
                    if tree is not None and key in tree and tree[key].filemode != MODE_TREE:
                        builder.remove(key)
                else:
                    builder.insert(key, pygit2.Oid(hex=value.oid), value.mode)
            if len(builder) == 0:
                return None
            return str(builder.write())

        result = rebuild(base_tree, nested)
        if result is None:
            return str(odb.TreeBuilder().write())
        return result

    def overlay_trees(self, base_tree: str,
                      parts: Sequence[tuple[str, Iterable[RepoPath]]]) -> str | None:
        """`base_tree` with each part's changes, taken from the part's own tree.

        Each part is (its tree, the paths it changed), its tree being
        `base_tree` plus exactly those changes, and no path changed by two
        parts. A directory only one part changed is that part's subtree as
        it is (no rewrite); only directories where parts meet are built.
        None when a part changed a path that another part changed something
        below (a file replaced by a directory): use `build_tree` then.
        """
        pygit2 = _pygit2()
        odb = self.odb
        # name -> {part index: that part's changes below the name ({}: the name itself)}
        root: dict[str, Any] = {}
        for index, (_tree, paths) in enumerate(parts):
            for path in paths:
                node = root
                for name in path.split("/"):
                    node = node.setdefault(name, {}).setdefault(index, {})
        trees = [odb[tree] for tree, _ in parts]

        def entry_of(tree: Any, name: str) -> Any:
            return tree[name] if tree is not None and name in tree else None

        def subtree(entry: Any) -> Any:
            return odb[entry.id] if entry is not None and entry.filemode == MODE_TREE else None

        def build(base: Any, level: list[Any], node: dict[str, Any]) -> str | None:
            builder = odb.TreeBuilder(base) if base is not None else odb.TreeBuilder()
            for name, by_part in node.items():
                if len(by_part) == 1:
                    (index,) = by_part
                    entry = entry_of(level[index], name)
                    if entry is None:
                        if base is not None and name in base:
                            builder.remove(name)
                    else:
                        builder.insert(name, entry.id, entry.filemode)
                    continue
                if any(not below for below in by_part.values()):
                    raise _Ambiguous
                deeper = [subtree(entry_of(t, name)) if t is not None else None for t in level]
                merged: dict[str, Any] = {}
                for index, below in by_part.items():
                    for child, sub in below.items():
                        merged.setdefault(child, {})[index] = sub[index]
                result = build(subtree(entry_of(base, name)), deeper, merged)
                if result is None:
                    if base is not None and name in base:
                        builder.remove(name)
                else:
                    builder.insert(name, pygit2.Oid(hex=result), MODE_TREE)
            return str(builder.write()) if len(builder) else None

        try:
            result = build(odb[base_tree], trees, root)
        except _Ambiguous:
            return None
        return result if result is not None else str(odb.TreeBuilder().write())

    def commit_tree(self, tree: str, parents: Sequence[str], message: str) -> str:
        """The commit `git commit-tree` would make (the same object), written in-process.

        Author and committer are git's own (`commit_identity`), dated now unless
        GIT_AUTHOR_DATE / GIT_COMMITTER_DATE say otherwise. `git commit-tree`
        itself makes the commit when it must carry an encoding header
        (i18n.commitEncoding) or an identity is not UTF-8. (Like `git
        commit-tree`, it does not sign: commit.gpgSign is `git commit`'s.)
        """
        identity = self.commit_identity
        if identity is None:
            self.write_held_objects()  # git reads the tree
            args = ["commit-tree", tree]
            for parent in parents:
                args += ["-p", parent]
            return text([*args, "-F", "-"], self.workdir, stdin=message.encode("utf-8"))
        pygit2 = _pygit2()
        author, committer = (pygit2.Signature(*who.at(time.time())) for who in identity)
        oid = self.odb.create_commit(None, author, committer, message, pygit2.Oid(hex=tree),
                                     [pygit2.Oid(hex=p) for p in parents])
        return str(oid)

    @cached_property
    def commit_identity(self) -> tuple[Ident, Ident] | None:
        """(author, committer) as git would write them into a commit, or None when
        `git commit-tree` must make the commits (see `commit_tree`). Three git
        processes, once; safe in a thread."""
        encoding = run(["config", "i18n.commitEncoding"], self.workdir, check=False).stdout
        if encoding.strip().lower() not in (b"", b"utf-8", b"utf8"):
            return None
        found = []
        for var, date_var in (("GIT_AUTHOR_IDENT", "GIT_AUTHOR_DATE"),
                              ("GIT_COMMITTER_IDENT", "GIT_COMMITTER_DATE")):
            # strict, as for a commit: an unknown identity fails here as `git commit` would
            line = text(["var", var], self.workdir)
            ident = Ident.parse(line, fixed_date=bool(os.environ.get(date_var)))
            if ident is None:
                return None
            found.append(ident)
        return found[0], found[1]

    def update_ref(self, ref: str, new: str, old: str, message: str) -> None:
        """Compare-and-swap: move `ref` to `new` only if it still points at `old`."""
        self.git(["update-ref", "-m", message, ref, new, old])

    def merge_file(self, base: bytes, ours: bytes, theirs: bytes, scratch: Path,
                   labels: tuple[str, str, str]) -> tuple[bytes, int]:
        """Three-way merge of one file's contents: (result, number of conflicts)."""
        files = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            file = scratch / f"merge-{name}"
            file.write_bytes(data)
            files.append(str(file))
        proc = run(["merge-file", "-p", "--diff3", "-L", labels[0], "-L", labels[1],
                    "-L", labels[2], *files], self.workdir, check=False)
        if proc.returncode < 0 or proc.returncode > 127:
            raise GitFailed(["merge-file"], proc.returncode, proc.stderr.decode())
        return proc.stdout, proc.returncode

    # --- the main tree and index --------------------------------------------

    def update_index(self, entries: Mapping[RepoPath, Entry | None], *,
                     index: Path | None = None) -> None:
        """Set the index entries of `entries` (None: removed), in this worktree's
        index or in the index file `index` (a `LockedIndex`'s scratch)."""
        lines = []
        for path, entry in entries.items():
            if entry is None:
                lines.append(b"0 " + ZERO_OID.encode() + b"\t" + os.fsencode(path))
            else:
                lines.append(f"{entry.mode:o} {entry.oid}".encode() + b"\t" + os.fsencode(path))
        if lines:
            self.git(["update-index", "-z", "--index-info"], stdin=b"\0".join(lines) + b"\0",
                     env=_index_env(index))

    def checkout_paths(self, paths: Iterable[RepoPath], *, index: Path | None = None) -> None:
        """Write `paths` from the index (or the index file `index`) into the work
        tree (smudge filters, modes, links). The index itself is not written."""
        data = b"\0".join(os.fsencode(p) for p in paths)
        if data:
            # two writers: on a slow filesystem writing the files is most of a join's
            # time in the main tree (git uses them from 100 files up)
            self.git(["-c", "checkout.workers=2", "checkout-index", "-f", "-z", "--stdin"],
                     stdin=data + b"\0", env=_index_env(index))

    def index_entries(self, *, index: Path | None = None) -> dict[RepoPath, Entry]:
        """Every stage-0 entry of the index (or of the index file `index`)."""
        data = self.git(["ls-files", "--stage", "-z"], env=_index_env(index))
        found: dict[RepoPath, Entry] = {}
        for item in nul_split(data):
            meta, _, path = item.partition(b"\t")
            mode, oid, stage = meta.decode().split(" ")
            if stage == "0":
                found[from_git(path)] = Entry(int(mode, 8), oid)
        return found
