"""Writing the main tree's index and files: under git's own index lock, with the
files a write replaces moved aside first, so a failed write can be undone (even
on a full disk) and nothing reads or commits half of it.

Whatever writes the main tree (a join, `hf commit`, a join's recovery) holds
`index.lock` from before its first write until the change is complete
(`worktrees/index_lock.py`): the new index is staged in a copy (`stage`), the
files written from it (`write_files`), the index put in place, and only then
the lock let go. See docs/protocol.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from hf_fanout import atomic
from hf_fanout.core import inbox
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError
from hf_fanout.faults import fault_point
from hf_fanout.paths import RepoPath
from hf_fanout.worktrees import index_lock
from hf_fanout.worktrees.index_lock import LockedIndex
from hf_fanout.worktrees.repository import Worktree
from hf_fanout.worktrees.zparse import Entry


@contextlib.contextmanager
def locked_main_index(ws: Workspace, *, wait: float,
                      on_wait: Callable[[str], None] | None = None,
                      adopt: list[tuple[int, ...]] | None = None,
                      repo: Worktree | None = None) -> Iterator[LockedIndex]:
    """The main worktree's `index.lock` (or `repo`'s, a worktree of the same
    repository), held for the block (see the module docstring) and released at
    its end, whatever index the block put in place."""
    git_dir = (repo or ws.main).git_dir
    claim_file: Path | None = None
    if inbox.sandboxed():  # hf's own directories are read-only there: beside the index
        scratch = Path(tempfile.mkdtemp(prefix="hf-index-", dir=git_dir)) / "index"
    else:
        scratch = ws.store.scratch_dir("index") / "index"
        claim_file = ws.store.index_claim_file(git_dir / "index.lock")

    def claim(identity: tuple[int, ...]) -> None:
        assert claim_file is not None
        claim_file.parent.mkdir(parents=True, exist_ok=True)
        atomic.atomic_write_json(claim_file, {
            "lock": os.fsdecode(git_dir / "index.lock"), "identity": list(identity),
            "pid": os.getpid()})

    try:
        held = index_lock.acquire(git_dir / "index", scratch, wait=wait, on_wait=on_wait,
                                  adopt=adopt or [], claim=claim if claim_file else None)
    except BaseException:
        shutil.rmtree(scratch.parent, ignore_errors=True)
        if claim_file is not None:
            claim_file.unlink(missing_ok=True)
        raise
    try:
        fault_point("index-locked")
        yield held
    finally:
        held.release()
        if claim_file is not None and not held.kept:  # (one kept is the journal's)
            claim_file.unlink(missing_ok=True)
        shutil.rmtree(scratch.parent, ignore_errors=True)


def release_left_locks(ws: Workspace, *, dry_run: bool = False) -> list[str]:
    """git's index locks a killed hf command left behind: each recorded by
    `locked_main_index` before it was in place, and named by no journal (what a
    killed join or undo holds is its recovery's). Let go, with the records; the
    locks let go (`dry_run`: that would be), by path. Only under the commit
    lock, taken without waiting: whoever holds it may be the one holding the
    locks."""
    from hf_fanout.errors import LockBusy

    if not ws.store.index_claims() or ws.store.journal_file.exists():
        return []
    released = []
    try:
        with ws.store.commit_lock(0):
            if ws.store.journal_file.exists():
                return []
            for file in ws.store.index_claims():
                try:
                    data = atomic.read_json(file, "index lock record")
                    lock, pid = Path(data["lock"]), int(data["pid"])
                    identity = tuple(int(x) for x in data["identity"])
                except (HfError, KeyError, IndexError, TypeError, ValueError):
                    data = None  # a torn record names no lock: any lock stays (doctor says)
                try:
                    if data is not None and index_lock.let_go(lock, identity, pid,
                                                              dry_run=dry_run):
                        released.append(os.fsdecode(lock))
                    if not dry_run:
                        file.unlink(missing_ok=True)
                except OSError:
                    continue  # (one it may not remove: a lock left, which doctor reports)
    except LockBusy:
        return []
    return released


def stage(ws: Workspace, held: LockedIndex, entries: Mapping[RepoPath, Entry | None], *,
          repo: Worktree | None = None) -> None:
    """Build the new index in `held`'s scratch: the current index with `entries`
    (None: removed). Deletions go first, so a file can become a directory."""
    held.prepare()
    deleted = [p for p, e in entries.items() if e is None]
    (repo or ws.main).update_index({**dict.fromkeys(deleted),
                          **{p: e for p, e in entries.items() if e is not None}},
                         index=held.scratch)


class Aside:
    """Main-tree files a write replaces or deletes are first renamed into a trash
    directory (its own, in hf's state dir), and deleted later by a process of
    their own (`delete_later`): freeing a file's blocks can wait on the disk
    (ext4 mounted with `discard`, usual on cloud machines: 1000 small files
    took 0.65 s to delete and write again, 0.09 s to move aside and write),
    and a rename never does. Until then a failed write is undone by renaming
    them back, which needs no space on a full disk."""

    def __init__(self, ws: Workspace) -> None:
        self.trash = ws.store.trash_root
        self.directory = self.trash / f"{os.getpid()}-{time.time_ns()}"
        self.moved: list[Path] = []

    def move_all(self, targets: list[Path]) -> None:
        """Move each file (or link) aside; a directory, or one that cannot be
        renamed (another filesystem), stays where it is."""
        for target in targets:
            try:
                if stat.S_ISDIR(os.lstat(target).st_mode):
                    continue
                if not self.moved:
                    self.directory.mkdir(parents=True, exist_ok=True)
                target.rename(self.directory / str(len(self.moved)))
            except OSError:
                continue
            self.moved.append(target)

    def undo(self) -> list[Path]:
        """Put every moved file back, over whatever is there now; returns those
        that could not go back (they stay in the trash)."""
        failed = []
        for number, target in enumerate(self.moved):
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                (self.directory / str(number)).rename(target)
            except OSError:
                failed.append(target)
        self.moved = []
        return failed

    def delete_later(self) -> None:
        _delete_later(self.trash)


def write_files(ws: Workspace, entries: Mapping[RepoPath, Entry | None], *,
                index: Path | None, aside: Aside,
                while_writing: Callable[[], object] | None = None) -> None:
    """Make the main tree's files of `entries` hold what the index file `index`
    (None: the real index) has for them; paths whose entry is None are removed.

    The files there now are moved aside first (`Aside`). `while_writing` runs
    beside the writing of the files (it may read the index, not the work tree);
    its error is raised after the files are written. Called holding the commit
    lock and the main index lock.
    """
    from concurrent.futures import ThreadPoolExecutor

    main = ws.main

    deleted = [p for p, e in entries.items() if e is None]
    written = [p for p, e in entries.items() if e is not None]
    aside.move_all([main.path / p for p in deleted + written])
    _remove(main, deleted)
    with ThreadPoolExecutor(max_workers=1) as pool:
        files = pool.submit(main.checkout_paths, written, index=index)
        try:
            if while_writing is not None:
                while_writing()
        finally:
            files.result()


def put_back(ws: Workspace, old: Mapping[RepoPath, Entry | None], aside: Aside) -> None:
    """Undo a write of the affected paths that failed or was refused, in this
    process: what it wrote is removed, the files it moved aside are renamed back
    (a full disk cannot stop that), and whatever is still missing is written from
    the real index, which still holds `old` (the index lock kept it untouched)."""
    main = ws.main
    for path in old:
        target = main.path / path
        with contextlib.suppress(OSError):
            if not stat.S_ISDIR(os.lstat(target).st_mode):
                target.unlink()
    aside.undo()
    _remove(main, [p for p, e in old.items() if e is None])
    missing = [p for p, e in old.items() if e is not None
               and not os.path.lexists(main.path / p)]
    main.checkout_paths(missing)


def _delete_later(trash: Path) -> None:
    """Delete what writes moved aside (this one's and any a killed process left),
    in a process that outlives hf: the command does not wait for the disk."""
    try:
        leftovers = [str(p) for p in trash.iterdir()]
    except OSError:
        return
    if not leftovers:
        return
    # a shell that starts `rm` in the background of a session of its own and
    # exits at once: nobody waits for the `rm`, and no zombie is left
    # (at the lowest CPU and, where `ionice` exists, idle disk priority)
    script = ('if ionice -c3 -t true >/dev/null 2>&1; then set -- ionice -c3 -t "$@"; fi; '
              'nice -n 19 "$@" </dev/null >/dev/null 2>&1 &')
    try:
        done = subprocess.run(["sh", "-c", script, "hf-trash", "rm", "-rf", "--", *leftovers],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True,
                              check=False).returncode == 0
    except OSError:
        done = False
    if not done:  # no shell: delete here and now
        for path in leftovers:
            shutil.rmtree(path, ignore_errors=True)


def _remove(main: Worktree, deleted: list[RepoPath]) -> None:
    """The deleted paths that are still there (a directory, a file on another
    filesystem) are removed, and the directories they leave empty."""
    for path in deleted:
        target = main.path / path
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
            target.unlink()
        parent = target.parent
        while parent != main.path:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
