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
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hf_fanout.errors import IndexLocked

# How often a waiter looks at the lock again (git's own commands are short).
_POLL = 0.05


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of `path`, or None when it is not there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


@dataclass
class LockedIndex:
    """A held `index.lock` and the new index being built beside it (`scratch`)."""

    index: Path
    scratch: Path
    # (device, inode) of the lock file hf made: recovery tells by it that a lock
    # left behind is hf's own
    identities: list[tuple[int, int]] = field(default_factory=list)
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
        return _identity(self.lock) in self.identities


def acquire(index: Path, scratch: Path, *, wait: float,
            on_wait: Callable[[str], None] | None = None,
            adopt: Sequence[tuple[int, int]] = ()) -> LockedIndex:
    """Take `index`'s lock, waiting up to `wait` seconds for whoever holds it.

    `adopt`: identities of a lock hf itself left behind (a killed hf, recorded
    in its journal): such a lock is taken over instead of waited for. Raises
    IndexLocked, having written nothing, when the lock stays taken.
    """
    held = LockedIndex(index, scratch)
    lock = held.lock
    deadline = time.monotonic() + wait
    said = False
    while True:
        found = _identity(lock)
        if found is not None and found in adopt:
            held.identities.append(found)
            return held
        try:
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
        return held
