"""git's own lock on a worktree's index, held the way git holds it.

Whoever writes a worktree's index and files holds `<git dir>/index.lock` from
before the first write until the change is complete: every other git command
that would write the index (`git add`, `git commit -a`, an editor's background
refresh) fails on the lock meanwhile instead of reading a half-written state.

The new index is built in a copy (`scratch`), through `GIT_INDEX_FILE`, and put
in place (`swap_in`: one rename onto `index`) while the lock is still held,
before the branch moves; the lock is let go (`release`) only after. So a git
command that reads HEAD and then the index never sees the new HEAD with the
old index: a `git commit` that read them around the change fails on its ref's
compare-and-swap instead of committing the old index over the new commit. If
the branch cannot move, `swap_back` puts the old index back, still under the
lock.

With a `claim`, the lock is first made under a name of its own beside it
(`index.lock.hf-PID`), its identity handed to `claim` (the caller records it),
and only then linked into place: a process killed at any moment leaves either
no lock, or one whose identity was recorded, which the next command knows as
hf's own and lets go (core/maintree.py). Where the file system cannot link, the
lock is created in place and claimed right after.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hf_fanout.errors import IndexLocked
from hf_fanout.faults import fault_point

# How often a waiter looks at the lock again (git's own commands are short).
_POLL = 0.05


# A lock file as hf tells its own: (device, inode, mtime in ns, size). The inode
# alone is not enough: a file system hands a freed inode to the next file made (a
# git command's own index.lock, once a person removed the one hf left). hf's lock
# stays empty and is never written, so its mtime stays the one recorded.
FileId = tuple[int, ...]


def _identity(path: Path) -> FileId | None:
    """`path`'s FileId, or None when it is not there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def same_file(found: FileId | None, recorded: Sequence[int]) -> bool:
    """Whether `found` is the file `recorded` names (a record of older hf names only
    device and inode)."""
    return found is not None and len(recorded) >= 2 and \
        found[:len(recorded)] == tuple(recorded)


@dataclass
class LockedIndex:
    """A held `index.lock` and the new index being built beside it (`scratch`)."""

    index: Path
    scratch: Path
    # the lock file hf made (FileId): recovery tells by it that a lock left behind
    # is hf's own
    identities: list[FileId] = field(default_factory=list)
    swapped: bool = False
    # left held on purpose (the main tree could not be put back): the next hf
    # command adopts it, and no git command commits what is half-written
    kept: bool = False

    @property
    def lock(self) -> Path:
        return self.index.with_name(self.index.name + ".lock")

    @property
    def saved(self) -> Path:
        """The index as it was, kept (a hard link) while the new one is in place."""
        return self.scratch.with_name("index.before")

    def prepare(self) -> None:
        """Start the new index as a copy of the current one."""
        if self.index.exists():
            shutil.copyfile(self.index, self.scratch)
        else:
            self.scratch.unlink(missing_ok=True)  # no index: git starts from an empty one

    def swap_in(self) -> None:
        """Make the new index the worktree's index (the lock stays held)."""
        fd = os.open(self.scratch, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.saved.unlink(missing_ok=True)
        if self.index.exists():
            os.link(self.index, self.saved)
        os.replace(self.scratch, self.index)
        self.swapped = True

    def swap_back(self) -> None:
        """Put the index that was there before `swap_in` back (the lock still held)."""
        if not self.swapped:
            return
        if self.saved.exists():
            os.replace(self.saved, self.index)
        else:
            self.index.unlink(missing_ok=True)
        self.swapped = False

    def release(self) -> None:
        """Let the lock go (the index stays as it is now), unless it is `kept`."""
        if self.kept:
            return
        if self.owns_lock():
            self.lock.unlink(missing_ok=True)
        self.scratch.unlink(missing_ok=True)
        self.saved.unlink(missing_ok=True)

    def owns_lock(self) -> bool:
        found = _identity(self.lock)
        return any(same_file(found, mine) for mine in self.identities)


def claim_name(lock: Path, pid: int | None = None) -> Path:
    """Where `acquire` (of process `pid`, default this one) makes a claimed lock
    before linking it into place."""
    return lock.with_name(f"{lock.name}.hf-{os.getpid() if pid is None else pid}")


def let_go(lock: Path, identity: FileId, pid: int, *, dry_run: bool = False) -> bool:
    """Remove the lock a killed `acquire` of process `pid` claimed as `identity`,
    where it is still that file (and the file it was made under); True when the
    lock itself was there and went (with `dry_run`: would go). A lock of anyone
    else stays."""
    for path in (claim_name(lock, pid), lock):
        if same_file(_identity(path), identity):
            if not dry_run:
                path.unlink(missing_ok=True)
            if path == lock:
                return True
    return False


def acquire(index: Path, scratch: Path, *, wait: float,
            on_wait: Callable[[str], None] | None = None,
            adopt: Sequence[Sequence[int]] = (),
            claim: Callable[[FileId], None] | None = None) -> LockedIndex:
    """Take `index`'s lock, waiting up to `wait` seconds for whoever holds it.

    `adopt`: identities of a lock hf itself left behind (a killed hf, recorded
    in its journal): such a lock is taken over instead of waited for. `claim`:
    called with the identity of the lock before it is in place (see the module
    docstring). Raises IndexLocked, having written nothing, when the lock stays
    taken.
    """
    held = LockedIndex(index, scratch)
    lock = held.lock
    own = _claimed_file(lock, claim) if claim is not None else None
    try:
        return _take(held, lock, own, wait, on_wait, adopt, claim)
    finally:
        if own is not None:
            own.unlink(missing_ok=True)


def _claimed_file(lock: Path, claim: Callable[[FileId], None]) -> Path:
    """A new empty file beside `lock`, its identity claimed: the lock to link in."""
    own = claim_name(lock)
    own.unlink(missing_ok=True)  # (a pid's earlier one, left by a kill)
    os.close(os.open(own, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        identity = _identity(own)
        assert identity is not None
        claim(identity)
        fault_point("index-claimed")
    except BaseException:
        own.unlink(missing_ok=True)
        raise
    return own


def _take(held: LockedIndex, lock: Path, own: Path | None, wait: float,
          on_wait: Callable[[str], None] | None, adopt: Sequence[Sequence[int]],
          claim: Callable[[FileId], None] | None) -> LockedIndex:
    deadline = time.monotonic() + wait
    said = False
    while True:
        found = _identity(lock)
        if found is not None and any(same_file(found, left) for left in adopt):
            held.identities.append(found)
            if claim is not None:
                claim(found)
            return held
        try:
            if own is not None:
                try:
                    os.link(own, lock)
                except FileExistsError:
                    raise
                except OSError:  # no hard links here: created in place, claimed after
                    own.unlink(missing_ok=True)
                    own = None
                    continue
                identity = _identity(lock)
                if identity is not None:
                    held.identities.append(identity)
                return held
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            if time.monotonic() >= deadline:
                raise IndexLocked(
                    f"git's index lock {lock} is held by another process (a git command "
                    "in that worktree, or one that was killed and left it)",
                    f"wait for that git command to end, then run the same command again; "
                    f"if no git is running there, remove {lock} (git says the same)",
                    details={"lock": str(lock)}) from None
            if not said and on_wait is not None:
                on_wait(f"waiting up to {wait:g} s for git's index lock {lock} (another git "
                        "command holds it)")
                said = True
            time.sleep(_POLL)
            continue
        os.close(fd)
        created = _identity(lock)
        if created is not None:
            held.identities.append(created)
            if claim is not None:
                claim(created)
        return held
