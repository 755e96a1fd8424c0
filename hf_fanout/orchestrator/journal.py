"""The join journal: how a join killed half way is finished or rolled back.

A join writes the main tree through `core/maintree.py` (under git's own index
lock), and before it touches anything `hf join`
writes `<common>/hf/journal/join.json` (old commit, new commit, the ref, old
and new entries of every affected path, the identity of the lock it holds)
before it touches the main tree. Whoever finds it next, holding the commit
lock, looks at the ref: at the new commit (or beyond it), the join is
finished; at the old one, the affected paths are put back; anywhere else,
the main tree is made to match its index and the journal is set aside. See
docs/protocol.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hf_fanout import atomic, timefmt
from hf_fanout.core import states
from hf_fanout.core.maintree import Aside, locked_main_index, stage, write_files
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError, IndexLocked, LockBusy, StateCorrupt, storage_error
from hf_fanout.paths import RepoPath, repo_path
from hf_fanout.worktrees.index_lock import LockedIndex
from hf_fanout.worktrees.zparse import Entry

# How long recovery waits for a git command that holds the index lock.
RECOVERY_INDEX_WAIT = 5.0


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


def _identities(raw: Any) -> list[tuple[int, ...]]:
    """The lock files the journal names: [device, inode, mtime_ns, size] each (older
    journals: [device, inode])."""
    if not isinstance(raw, list) or not all(isinstance(i, list) and len(i) >= 2 for i in raw):
        raise TypeError("index_lock")
    return [tuple(int(x) for x in item) for item in raw]


DISCARD_HINT = ("`hf doctor` shows it; `hf doctor --discard-journal` saves it aside, removes "
                "it and puts the files it names back to what the main tree's index holds")


def _optional(raw: Any) -> str | None:
    if raw is not None and not isinstance(raw, str):
        raise TypeError("joined_after")
    return raw


_REQUIRED = object()  # (a field of the journal that must be there)


def read_journal(ws: Workspace) -> dict[str, Any] | None:
    """The join journal, checked; StateCorrupt (with the way out) when it is damaged,
    naming the field that is missing or not what a join writes."""
    journal = atomic.read_json(ws.store.journal_file, "join journal", DISCARD_HINT)
    if journal is None:
        return None
    if not isinstance(journal, dict):
        raise _damaged(ws, "it is not a JSON object")

    def read(key: str, convert: Any, default: Any = _REQUIRED) -> Any:
        """One field, converted; a missing required one, or one that does not convert,
        is StateCorrupt naming it."""
        if key not in journal and default is _REQUIRED:
            raise _damaged(ws, f"it has no {key!r}")
        try:
            return convert(journal.get(key, default))
        except (KeyError, TypeError, ValueError, IndexError, HfError):
            raise _damaged(ws, f"its {key!r} is not what a join writes") from None

    return {
        "ref": read("ref", str), "old": read("old", str), "new": read("new", str),
        "old_entries": read("old_entries", _entries),
        "new_entries": read("new_entries", _entries),
        "batch": read("batch", str), "parts": read("parts", _names),
        "index_lock": read("index_lock", _identities, []),
        # `undo`: the journal of an undo (`orchestrator/undo.py`), which names
        # the join it takes back and what the batch's joined commit becomes
        "action": read("action", str, "join"),
        "join": read("join", str, ""),
        "joined_after": read("joined_after", _optional, None),
        "how": read("how", str, ""),  # the undo's way: fast, revert
    }


def _names(raw: Any) -> list[str]:
    if not isinstance(raw, list):
        raise TypeError("parts")
    return [str(p) for p in raw]


def _damaged(ws: Workspace, why: str) -> StateCorrupt:
    return StateCorrupt(f"the join journal {ws.store.journal_file} is damaged ({why})",
                        DISCARD_HINT)


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

    def finish_records() -> None:
        if journal["action"] == "undo":
            states.mark_undone(ws, batch, parts, journal["join"], journal["joined_after"],
                               commit=new, how=journal["how"], recovered=True)
        else:
            states.mark_joined(ws, batch, parts, new)

    try:
        with locked_main_index(ws, wait=RECOVERY_INDEX_WAIT,
                               adopt=journal["index_lock"]) as held:
            if current == new:
                _put_in_place(ws, held, new_entries, aside)
                finish_records()
                outcome = "finished"
            elif current == old:  # (the index may hold the new entries already)
                _put_in_place(ws, held, old_entries, aside)
                outcome = "rolled-back"
            elif current is not None and _went_on_from(repo, old, new, current):
                # it landed and the branch went on from it: the main tree is
                # someone's newer work; only the records are finished
                finish_records()
                outcome = "finished"
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
    if outcome == "finished":
        from hf_fanout.guard import mainhook

        # the batch runs again (an undo) or no more (a join): the main tree's hook
        # comes back or goes, before the journal that says to do it
        mainhook.settle(ws)
    ws.store.clear_journal()
    ws.store.audit(f"{journal['action']}-recovered", batch=batch, outcome=outcome, pid=os.getpid(),
                   ref=ref, at_commit=current)
    return outcome


def _went_on_from(repo: Any, old: str, new: str, current: str) -> bool:
    """Whether the branch, now at `current`, went on from `new` after moving there
    from `old`. A move back (an undo that puts the branch on the join's parent)
    landed only if `current` descends from `new` without holding `old`."""
    if not repo.is_ancestor(new, current):
        return False
    return repo.is_ancestor(old, new) or not repo.is_ancestor(old, current)


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
        f"join-{timefmt.compact()}.json"
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
    with ws.store.commit_lock(5, retry="then run hf doctor --discard-journal again"):
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
