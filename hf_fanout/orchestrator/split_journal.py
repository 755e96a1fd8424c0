"""The split journal: what a split is making, so a split that was cut off (killed,
a full disk) is finished or removed by the next hf command instead of leaving a
batch nobody can see, re-split or remove.

`<common>/hf/journal/split-<batch>.json` names the batch, its base, every
branch and worktree the split makes, and the directories above the worktrees'
root that it creates; it is written before the first of them,
and removed once the batch record exists (or once everything was taken back).
The split holds `locks/split-<batch>.lock` meanwhile: a journal whose lock is
free belongs to a split that is gone.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import atomic, locks, processes
from hf_fanout.core.records import Batch, Part, now
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError, LockBusy
from hf_fanout.guard import fingerprint


def journal_file(ws: Workspace, batch: str) -> Path:
    return ws.store.root / "journal" / f"split-{batch}.json"


def _lock(ws: Workspace, batch: str) -> Any:
    return locks.hold(ws.store.lock_file(f"split-{batch}"), wait=0, what="split")


@dataclass
class Made:
    """What a split made, as its journal names it."""

    batch: str
    base: str
    branches: list[str]
    worktrees: list[str]
    root: str
    dirs: list[str] = field(default_factory=list)  # above root, made by the split: deepest first
    # per remote, the refs the split pushes there and what to (remote parts' branches
    # and tasks), recorded just before the push (`record_published`)
    remote: dict[str, dict[str, str]] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)  # what could not be removed
    # what this take-back found and removed (a split cut off early made fewer)
    removed_worktrees: int = 0
    removed_branches: int = 0
    # what stays on a remote (said, not tried again: the remote may not answer)
    left_remote: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": 1, "batch": self.batch, "base": self.base, "branches": self.branches,
                "worktrees": self.worktrees, "root": self.root, "dirs": self.dirs,
                "remote": self.remote, "started": now()}

    @classmethod
    def of(cls, batch: Batch, parts: list[Part]) -> Made:
        return cls(batch.id, batch.base, [p.branch for p in parts],
                   [p.worktree for p in parts], batch.worktree_root,
                   _missing_parents(batch.worktree_root))


def record_published(ws: Workspace, made: Made, published: dict[str, dict[str, str]]) -> None:
    """Before the split pushes its remote parts: per remote, each ref and the commit
    it pushes there, in the journal (what taking the split back deletes there)."""
    made.remote = published
    atomic.atomic_write_json(journal_file(ws, made.batch), made.to_dict())


def _missing_parents(root: str) -> list[str]:
    """The directories above `root` that do not exist yet, deepest first: the split
    creates them (`<repo>.hf/` the first time), and taking it back removes those
    still empty."""
    missing = []
    for parent in Path(root).parents:
        if parent.exists():
            break
        missing.append(str(parent))
    return missing


@contextlib.contextmanager
def journaled(ws: Workspace, made: Made) -> Iterator[None]:
    """Hold the split's lock and journal for the block. The journal is the claim
    of the batch id (created exclusively: of two splits of one id, one goes on).
    It goes when the block ends, unless the block failed and `made.left` says
    what is still there (the next hf command removes it)."""
    from hf_fanout.errors import BatchExists

    with _lock(ws, made.batch):
        if not atomic.create_exclusive(journal_file(ws, made.batch),
                                       atomic.json_bytes(made.to_dict())):
            raise BatchExists(f"batch {made.batch!r} is being split right now",
                              "wait for that split to end, then `hf status` shows it")
        failed = True
        try:
            yield
            failed = False
        finally:
            if not failed or not made.left:
                atomic.remove_durably(journal_file(ws, made.batch))


def take_back(ws: Workspace, made: Made) -> list[str]:
    """Remove what a split made: its worktrees, its branches (while they still
    point at the base: nothing was committed on them), its records, its tamper
    baseline, its directories (those still empty). Returns what could not be
    removed (and so stays in the journal)."""
    repo = ws.repo
    left: list[str] = []
    # (git checkouts a killed split left running in its worktrees)
    processes.wait_for_work_in(made.worktrees, 20.0, name_prefix="git")
    for worktree in made.worktrees:
        path = Path(worktree)
        if not path.exists():
            continue
        repo.remove_worktree(path)
        if path.exists():  # not (or half) registered: files the split made
            shutil.rmtree(path, ignore_errors=True)
        if path.exists():
            left.append(f"worktree {worktree}")
        else:
            made.removed_worktrees += 1
    repo.forget_missing_worktrees([Path(w) for w in made.worktrees])
    refs = [f"refs/heads/{b}" for b in made.branches]
    for ref in sorted(repo.existing_refs(refs)):
        if repo.ref_target(ref) == made.base and \
                repo.delete_branch(ref.removeprefix("refs/heads/")) is None:
            made.removed_branches += 1
    for ref in sorted(repo.existing_refs(refs)):
        left.append(f"branch {ref.removeprefix('refs/heads/')}")
    made.left_remote = _take_back_published(ws, made)
    _remove_empty_dirs([made.root, *made.dirs] if made.root else [])
    fingerprint.remove(ws, made.batch)
    ws.store.remove_batch(made.batch)
    if ws.store.batch_dir(made.batch).exists():
        left.append(f"records {ws.store.batch_dir(made.batch)}")
    made.left = left
    return left


def _take_back_published(ws: Workspace, made: Made) -> list[str]:
    """Delete from each remote the refs the split pushed there, so that no machine
    takes a part of a batch that is gone: only where the push landed (its task
    refs hold this split's task commits: refs of the same names another split
    pushed stay), each ref only while it is what was pushed (a worker's commits
    on a branch stay), each delete leased on what was read. What stays is said,
    not tried again (a remote that does not answer would hold up every hf
    command)."""
    from hf_fanout.core.remote_refs import read_timeout
    from hf_fanout.worktrees import remote as remotes

    left: list[str] = []
    for name, published in made.remote.items():
        try:
            there = remotes.list_refs(ws.main.path, name, list(published),
                                      timeout=read_timeout(ws.settings))
        except HfError as exc:
            left.append(f"{', '.join(published)} on {name} ({exc.message}; delete them "
                        f"there: git push {name} --delete REF)")
            continue
        if not any(there.get(ref) == oid for ref, oid in published.items()
                   if not ref.startswith("refs/heads/")):
            continue  # the push did not land (what is there is not this split's)
        gone = [ref for ref, oid in published.items() if there.get(ref) == oid]
        moved = [ref for ref in published if ref in there and ref not in gone]
        left += [f"{ref} on {name} (it moved past the base: a worker's commits)"
                 for ref in moved]
        if gone:
            outcome = remotes.push_refs(ws.main.path, remotes.url(ws.main.path, name),
                                        [f":{ref}" for ref in gone],
                                        leases=[f"{ref}:{there[ref]}" for ref in gone])
            if not outcome.ok:
                left.append(f"{', '.join(gone)} on {name} ("
                            f"{remotes.git_error(outcome.stderr, 'git push failed')})")
    return left


def _remove_empty_dirs(directories: list[str]) -> None:
    """Each of `directories` (deepest first) that is empty: one that holds anything
    (another batch's worktrees) stays, and so do those above it."""
    for directory in directories:
        try:
            Path(directory).rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


def recover_splits(ws: Workspace) -> list[str]:
    """Finish or remove every split that was cut off (its journal's lock is free).
    Returns one line per split, saying which."""
    directory = ws.store.root / "journal"
    try:
        found = sorted(directory.glob("split-*.json"))
    except OSError:
        return []
    said = []
    for path in found:
        batch = path.stem.removeprefix("split-")
        try:
            with _lock(ws, batch):
                said.append(_recover_one(ws, batch, path))
        except LockBusy:
            continue  # that split is running now
    return said


def _recover_one(ws: Workspace, batch: str, path: Path) -> str:
    hint = f"look at what it names, remove it by hand ({path}), then `hf doctor`"
    data = atomic.read_json(path, "split journal", hint)
    try:
        made = Made(str(data["batch"]), str(data["base"]), [str(b) for b in data["branches"]],
                    [str(w) for w in data["worktrees"]], str(data.get("root", "")),
                    [str(d) for d in data.get("dirs", [])],
                    {str(name): {str(r): str(oid) for r, oid in dict(refs).items()}
                     for name, refs in dict(data.get("remote", {})).items()})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        why = (f"it has no {exc.args[0]!r}" if isinstance(exc, KeyError) and exc.args
               else "a field is not what a split writes")
        raise HfError(f"the journal of a split that was cut off, {path}, is damaged ({why})",
                      hint) from None
    if ws.store.batch_file(batch).exists():
        # the batch record is written last: everything was made
        atomic.remove_durably(path)
        ws.store.audit("split-recovered", batch=batch, outcome="finished")
        return f"a split of {batch!r} that was cut off had made everything: kept"
    left = take_back(ws, made)
    if made.left_remote:
        ws.store.audit("split-remote-left", batch=batch, left=made.left_remote)
    remote_note = (f"; left on a remote: {'; '.join(made.left_remote)}"
                   if made.left_remote else "")
    if left:
        ws.store.audit("split-recovered", batch=batch, outcome="partly-removed", left=left)
        return (f"a split of {batch!r} that was cut off was removed except "
                f"{', '.join(left)} (tried again by the next hf command){remote_note}")
    atomic.remove_durably(path)
    ws.store.audit("split-recovered", batch=batch, outcome="removed")
    return (f"a split of {batch!r} that was cut off was removed "
            f"({made.removed_worktrees} worktree(s), {made.removed_branches} branch(es))"
            f"{remote_note}")
