"""The main tree's writes and the join journal: how a join killed half way is
finished or rolled back.

Whatever writes the main tree's index and files (a join, `hf commit`,
recovery) holds git's own `index.lock` from before the first write until the
branch has moved (`worktrees/index_lock.py`), so a concurrent git command
waits or fails on the lock and never sees, or commits, half a join. `hf join`
writes `<common>/hf/journal/join.json` (old commit, new commit, the ref, old
and new entries of every affected path, the identity of the lock it holds)
before it touches the main tree. Whoever finds it next, holding the commit
lock, looks at the ref: at the new commit (or beyond it), the join is
finished; at the old one, the affected paths are put back; anywhere else,
the main tree is made to match its index and the journal is set aside. See
docs/protocol.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from hf_fanout import atomic
from hf_fanout.errors import HfError, IndexLocked, LockBusy, StateCorrupt, storage_error
from hf_fanout.orchestrator.workspace import Workspace
from hf_fanout.paths import RepoPath, repo_path
from hf_fanout.worktrees import index_lock
from hf_fanout.worktrees.index_lock import LockedIndex
from hf_fanout.worktrees.repository import Worktree
from hf_fanout.worktrees.zparse import Entry

# How long recovery waits for a git command that holds the index lock.
RECOVERY_INDEX_WAIT = 5.0


@contextlib.contextmanager
def locked_main_index(ws: Workspace, *, wait: float,
                      on_wait: Callable[[str], None] | None = None,
                      adopt: list[tuple[int, int]] | None = None,
                      repo: Worktree | None = None) -> Iterator[LockedIndex]:
    """The main worktree's `index.lock` (or `repo`'s, a worktree of the same
    repository), held for the block (see the module docstring) and released at
    its end, whatever index the block put in place."""
    scratch = ws.store.scratch_dir("index") / "index"
    try:
        held = index_lock.acquire((repo or ws.main).git_dir / "index", scratch, wait=wait,
                                  on_wait=on_wait, adopt=adopt or [])
    except BaseException:
        shutil.rmtree(scratch.parent, ignore_errors=True)
        raise
    try:
        yield held
    finally:
        held.release()
        shutil.rmtree(scratch.parent, ignore_errors=True)


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


# --------------------------------------------------------------------- the journal


def entry_data(entry: Entry | None) -> list[Any] | None:
    return None if entry is None else [entry.mode, entry.oid]


def _entries(raw: Any) -> dict[RepoPath, Entry | None]:
    if not isinstance(raw, dict):
        raise TypeError("entries")
    result: dict[RepoPath, Entry | None] = {}
    for path, value in raw.items():
        result[repo_path(path)] = None if value is None else Entry(int(value[0]), str(value[1]))
    return result


def _identities(raw: Any) -> list[tuple[int, int]]:
    if not isinstance(raw, list):
        raise TypeError("index_lock")
    return [(int(dev), int(ino)) for dev, ino in raw]


DISCARD_HINT = ("`hf doctor` shows it; `hf doctor --discard-journal` saves it aside, removes "
                "it and puts the main tree's files back to what its index holds")


def read_journal(ws: Workspace) -> dict[str, Any] | None:
    """The join journal, checked; StateCorrupt (with the way out) when it is damaged."""
    try:
        raw = ws.store.journal_file.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateCorrupt(f"cannot read the join journal {ws.store.journal_file}: {exc}",
                           DISCARD_HINT) from None
    try:
        journal = json.loads(raw)
        parsed = {
            "ref": str(journal["ref"]), "old": str(journal["old"]), "new": str(journal["new"]),
            "old_entries": _entries(journal["old_entries"]),
            "new_entries": _entries(journal["new_entries"]),
            "batch": str(journal["batch"]), "parts": [str(p) for p in journal["parts"]],
            "index_lock": _identities(journal.get("index_lock", [])),
        }
    except (KeyError, TypeError, ValueError, IndexError, HfError) as exc:
        raise StateCorrupt(f"the join journal {ws.store.journal_file} is damaged ({exc})",
                           DISCARD_HINT) from None
    return parsed


def recover_join(ws: Workspace, wait: float | None) -> str | None:
    """Finish or roll back an interrupted join. Returns what was done, or None.

    `wait=None` means the caller already holds the commit lock. With `wait=0`
    a busy lock means a join is alive right now, so there is nothing to recover.
    """
    if not ws.store.journal_file.exists():
        return None
    if wait is None:
        return _recover(ws)
    try:
        with ws.store.commit_lock(wait):
            return _recover(ws)
    except LockBusy as exc:
        if isinstance(exc, IndexLocked):
            raise
        return None


def _recover(ws: Workspace) -> str | None:
    from hf_fanout.orchestrator.join import finish_join

    journal = read_journal(ws)
    if journal is None:
        return None
    main = ws.main
    repo = ws.repo
    ref, old, new = journal["ref"], journal["old"], journal["new"]
    old_entries, new_entries = journal["old_entries"], journal["new_entries"]
    batch, parts = journal["batch"], journal["parts"]
    current = main.rev_parse(ref)
    aside = Aside(ws)
    try:
        with locked_main_index(ws, wait=RECOVERY_INDEX_WAIT,
                               adopt=journal["index_lock"]) as held:
            if current == new:
                _put_in_place(ws, held, new_entries, aside)
                finish_join(ws, batch, parts, new)
                outcome = "finished"
            elif current is not None and repo.is_ancestor(new, current):
                # the join landed and the branch went on from it: the main tree is
                # someone's newer work; only the records are finished
                finish_join(ws, batch, parts, new)
                outcome = "finished"
            elif current == old:  # (the index may hold the new entries already)
                _put_in_place(ws, held, old_entries, aside)
                outcome = "rolled-back"
            else:
                _abandon(ws, journal, aside, current)
                outcome = "abandoned"
    except HfError as exc:
        raise _recovery_failed(ws, exc, batch) from None
    except OSError as exc:
        raise _recovery_failed(ws, storage_error(exc, "recovering an interrupted join",
                                                 "the journal is kept")
                               or HfError(str(exc)), batch) from None
    finally:
        aside.delete_later()
    ws.store.clear_journal()
    ws.store.audit("join-recovered", batch=batch, outcome=outcome, pid=os.getpid(),
                   ref=ref, at_commit=current)
    return outcome


def _put_in_place(ws: Workspace, held: LockedIndex, entries: Mapping[RepoPath, Entry | None],
                  aside: Aside) -> None:
    """The index entries and files of `entries`' paths made what `entries` says."""
    stage(ws, held, entries)
    write_files(ws, entries, index=held.scratch, aside=aside)
    held.swap_in()


def _abandon(ws: Workspace, journal: dict[str, Any], aside: Aside, current: str | None) -> None:
    """The ref is neither where the join started nor at (or above) the join: the
    join did not land. The affected paths are made to match the main index, which
    the lock kept, and the journal is kept aside for a person to read."""
    affected = set(journal["old_entries"]) | set(journal["new_entries"])
    index = ws.main.index_entries()
    write_files(ws, {p: index.get(p) for p in sorted(affected)}, index=None, aside=aside)
    keep_aside(ws, f"{journal['ref']} at {(current or 'nothing')[:12]}")


def keep_aside(ws: Workspace, why: str) -> Path:
    """Move the journal to `journal/set-aside/` (for a person), and say why in the audit log."""
    target = ws.store.journal_file.parent / "set-aside" / \
        time.strftime("join-%Y%m%dT%H%M%SZ.json", time.gmtime())
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while target.exists():
        target = target.with_name(f"{target.stem}-{n}.json")
        n += 1
    os.replace(ws.store.journal_file, target)
    atomic.fsync_dir(target.parent)
    ws.store.audit("journal-set-aside", path=str(target), why=why)
    return target


def _recovery_failed(ws: Workspace, exc: HfError, batch: str) -> HfError:
    """Recovery could not finish: said in one line; the journal stays for the next try."""
    exc.message = f"an interrupted join of {batch!r} could not be recovered yet: {exc.message}"
    if not exc.hint:
        exc.hint = f"fix that, then run `hf doctor`; {DISCARD_HINT}"
    return exc


def _release_own_lock(ws: Workspace) -> bool:
    """A journal that cannot be read cannot say which index lock is hf's: a lock
    older than the journal is (the join takes it before it writes the journal;
    a git command that came after the join was killed would have made a newer
    one), and is removed."""
    lock = ws.main.git_dir / "index.lock"
    try:
        if lock.stat().st_mtime <= ws.store.journal_file.stat().st_mtime:
            lock.unlink()
            return True
    except OSError:
        pass
    return False


def discard_journal(ws: Workspace, *, dry_run: bool) -> dict[str, Any] | None:
    """`hf doctor --discard-journal`: the journal (damaged, or not wanted) is saved
    aside and removed; a main index lock hf left is released, and the files of the
    paths the journal names (when it can be read) are made to match the index."""
    path = ws.store.journal_file
    if not path.exists():
        return None
    try:
        journal: dict[str, Any] | None = read_journal(ws)
    except StateCorrupt:
        journal = None
    result: dict[str, Any] = {"journal": str(path), "readable": journal is not None}
    if dry_run:
        return result
    with ws.store.commit_lock(5):
        aside = Aside(ws)
        try:
            if journal is None:
                result["index_lock_released"] = _release_own_lock(ws)
            else:
                with locked_main_index(ws, wait=RECOVERY_INDEX_WAIT,
                                       adopt=journal["index_lock"]):
                    affected = set(journal["old_entries"]) | set(journal["new_entries"])
                    index = ws.main.index_entries()
                    write_files(ws, {p: index.get(p) for p in sorted(affected)}, index=None,
                                aside=aside)
                    result["restored"] = len(affected)
        finally:
            aside.delete_later()
        result["saved"] = str(keep_aside(ws, "discarded by `hf doctor --discard-journal`"))
    return result
