"""`hf sync`: bring parts up to date with main, in each part's own worktree.

Per part, in this order: the part's uncommitted work saved (two commits kept by
`refs/hf/sync/<batch>/<part>/{index,work}`) and the record told what is under
way; the worktree cleared; git's rebase of the part's commits onto main's tip
(or, with `--merge`, a merge of main's tip); the saved work applied again on top;
the part's recorded base moved to main's tip. A conflict, in git's step or in
applying the work again, stops that part with git's conflict state in its
worktree (`--continue` once resolved, `--abort` puts branch, index and files back
exactly, from wherever the sync stopped or was cut off); the other parts go on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import locks
from hf_fanout.core import states
from hf_fanout.core.ownership import Ownership
from hf_fanout.core.records import DROPPED, JOINED, Batch, Part, copied_paths, part_base
from hf_fanout.core.remote_refs import remote_of, taken_from
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, GitFailed, HfError, LockBusy, NotFound, left_lock_hint
from hf_fanout.faults import fault_point
from hf_fanout.guard import fingerprint
from hf_fanout.worktrees import rebase
from hf_fanout.worktrees.repository import Worktree

# outcomes of one part
SYNCED = "synced"
UP_TO_DATE = "up-to-date"
STOPPED = "conflict"
ABORTED = "aborted"
WOULD = "would-sync"
SKIPPED = "skipped"
# where the sync's git step is (its record's `step`)
GIT_RUNS, GIT_STOPPED = "git", "conflict"


@dataclass
class PartSync:
    batch: str
    part: str
    outcome: str
    mode: str = rebase.REBASE
    behind: int = 0  # main's commits the part did not have
    onto: str | None = None
    conflicts: list[str] = field(default_factory=list)
    # files main changed since the part's base that the part owns
    owned_on_main: list[str] = field(default_factory=list)
    saved_ref: str | None = None  # where its uncommitted work is kept, while it is
    work_conflicts: list[str] = field(default_factory=list)  # in re-applying that work
    # staged before, whose staged version could not be carried over: now unstaged
    unstaged: list[str] = field(default_factory=list)
    reason: str = ""
    worktree: str = ""
    # `--continue` of a sync cut off while git's rebase or merge ran: that was taken
    # back and run again from the part's own commits
    restarted: bool = False
    # paths its commits change after the sync that it does not own, and did not
    # change before: git carried its work along main's renames, out of its files
    moved_outside: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    parts: list[PartSync]
    dry_run: bool

    @property
    def stopped(self) -> list[PartSync]:
        return [p for p in self.parts if p.outcome == STOPPED or p.work_conflicts]

    def to_data(self) -> dict[str, Any]:
        return {"parts": [asdict(p) for p in self.parts], "dry_run": self.dry_run}


class SyncStopped(HfError):
    """Some part's sync stopped on a conflict (the others went on)."""

    code = "sync_conflict"

    @classmethod
    def of(cls, report: SyncReport) -> SyncStopped:
        stopped = report.stopped
        listing = "; ".join(f"{p.batch}/{p.part} ("
                            f"{', '.join(p.conflicts or p.work_conflicts) or 'cut off'})"
                            for p in stopped)
        first = stopped[0]
        hint = first.reason if first.outcome == STOPPED and first.reason else (
            f"edit the files in {first.worktree} (its work as it was: {first.saved_ref})")
        return cls(f"sync stopped on a conflict in {len(stopped)} part(s): {listing}", hint,
                   details=report.to_data())


class SyncBusy(LockBusy):
    """Another `hf sync` of the part is under way."""


def sync(ws: Workspace, target: str | None, *, merge: bool = False, resume: bool = False,
         abort: bool = False, dry_run: bool = False) -> SyncReport:
    """`hf sync [BATCH|BATCH/PART]` (default: the part of the current worktree)."""
    if resume and abort:
        raise BadInput("--continue and --abort exclude each other", "pick one")
    if merge and (resume or abort):
        raise BadInput("--merge starts a sync; --continue and --abort finish one",
                       "drop --merge: the stopped sync goes on the way it started")
    batch, parts = _targets(ws, target)
    # git runs config-defined programs (hooks, filters): nothing runs in a part's
    # worktree before the shared state is checked against the split's fingerprint
    fingerprint.verify(ws, batch)
    single = target is None or "/" in target
    results = []
    for listed in parts:
        try:
            with _part_lock(ws, listed):
                part = ws.store.load_part(listed.batch, listed.name)  # as it is now
                if resume:
                    results.append(_resume(ws, batch, part, dry_run, single))
                elif abort:
                    results.append(_abort(ws, batch, part, dry_run, single))
                else:
                    results.append(_start(ws, batch, part,
                                          rebase.MERGE if merge else rebase.REBASE, dry_run))
        except SyncBusy as exc:
            if single:
                raise
            results.append(_skip(PartSync(listed.batch, listed.name, SKIPPED,
                                          worktree=listed.worktree), exc.message))
    return SyncReport(results, dry_run)


@contextmanager
def _part_lock(ws: Workspace, part: Part) -> Iterator[None]:
    """One sync of a part at a time: two would both set its work aside and both move
    its branch."""
    with ExitStack() as stack:
        try:
            stack.enter_context(locks.hold(ws.store.sync_lock_file(part.batch, part.name),
                                           wait=0, what="sync"))
        except LockBusy as exc:  # (its hint would name a --wait that sync has not)
            raise SyncBusy(exc.message, "wait for that sync to finish, then run "
                           "`hf sync` again") from None
        yield


def _targets(ws: Workspace, target: str | None) -> tuple[Batch, list[Part]]:
    if target is None or "/" in target:
        part = ws.resolve_part(target, named_by="hf sync BATCH/PART")
        return ws.store.load_batch(part.batch), [part]
    batch = ws.store.load_batch(target)
    parts = [p for p in ws.store.load_parts(batch) if p.state not in (JOINED, DROPPED)]
    if not parts:
        raise NotFound(f"batch {batch.id} has no live part to sync",
                       "`hf status --all` shows its parts")
    return batch, parts


def _pending(part: Part) -> dict[str, Any] | None:
    found = part.extra.get("sync")
    return found if isinstance(found, dict) else None


def _saved(pending: dict[str, Any]) -> rebase.Saved | None:
    saved = pending.get("saved")
    if isinstance(saved, dict) and isinstance(saved.get("index"), str) \
            and isinstance(saved.get("work"), str):
        return rebase.Saved(saved["index"], saved["work"])
    return None


def saved_ref(part: Part, kind: str) -> str:
    return f"refs/hf/sync/{part.batch}/{part.name}/{kind}"


def _start(ws: Workspace, batch: Batch, part: Part, mode: str, dry_run: bool) -> PartSync:
    result = PartSync(part.batch, part.name, UP_TO_DATE, mode, worktree=part.worktree)
    pending = _pending(part)
    worktree = ws.worktree(part.worktree)
    if pending is not None:
        result.outcome, result.mode = STOPPED, str(pending.get("mode", mode))
        result.conflicts = rebase.conflicted(worktree) if Path(part.worktree).is_dir() else []
        result.reason = ("a sync stopped here before: resolve the files, `git add` them, "
                         f"then `hf sync {part.batch}/{part.name} --continue` (or --abort)")
        if not result.conflicts and Path(part.worktree).is_dir() \
                and rebase.in_progress(worktree) is None:
            result.reason = ("a sync of this part was cut off before it finished: "
                             f"`hf sync {part.batch}/{part.name} --continue` finishes it "
                             "(or --abort)")
        elif pending.get("step") == GIT_RUNS and Path(part.worktree).is_dir():
            result.reason = (f"a sync of this part was cut off while git's {result.mode} ran: "
                             f"`hf sync {part.batch}/{part.name} --continue` runs it again "
                             "(or --abort)")
        return result
    if part.state in (JOINED, DROPPED):
        return _skip(result, f"the part is {part.state}")
    if remote_of(part) or taken_from(part):  # (its main is the splitting machine's)
        return _skip(result, "a part worked through a remote keeps the batch's base: the "
                             "join, where the batch was split, merges it three-way")
    if not Path(part.worktree).is_dir():
        return _skip(result, f"its worktree {part.worktree} is missing")
    if not worktree.is_linked_here():
        return _skip(result, f"{part.worktree} is not a worktree of this repository any "
                             "more (its .git is another repository's, or gone)")
    onto = ws.repo.ref_target(batch.target_ref)
    head = worktree.head()
    if onto is None or head is None:
        return _skip(result, f"{batch.target_ref} or the part's HEAD cannot be read")
    if head != ws.repo.ref_target(f"refs/heads/{part.branch}"):
        return _skip(result, f"its worktree is not on its branch {part.branch}")
    if rebase.in_progress(worktree) is not None:
        return _skip(result, "a rebase or merge is under way in its worktree")
    result.onto = onto
    if ws.repo.is_ancestor(onto, head):
        return result
    base = part_base(batch, part)
    result.behind = int(ws.repo.git(["rev-list", "--count", f"{head}..{onto}"]).strip())
    ownership = Ownership.parse(part.owns)
    result.owned_on_main = sorted(c.path for c in ws.repo.diff_trees(base, onto)
                                  if ownership.owns(c.path))
    if dry_run:
        result.outcome = WOULD
        return result
    # 1. the uncommitted work set aside, and the record told before anything moves
    saved = rebase.save(worktree, head, exclude=copied_paths(part))
    if saved is not None:
        for kind, commit in (("index", saved.index), ("work", saved.work)):
            ws.repo.git(["update-ref", "-m", "hf sync: uncommitted work",
                         saved_ref(part, kind), commit])
        result.saved_ref = saved_ref(part, "work")
    # `step`: "git" while git's rebase or merge runs, "conflict" once it stopped on one
    pending = {"mode": mode, "from": head, "onto": onto, "base": base,
               "saved": asdict(saved) if saved else None, "step": GIT_RUNS}
    _record(ws, part, lambda p: p.extra.__setitem__("sync", pending), "sync-start",
            mode=mode, onto=onto)
    # 2. git's rebase or merge, on a clean worktree
    if saved is not None:
        rebase.clear(worktree, keep=copied_paths(part))
    fault_point("sync-cleared")
    try:
        conflicts = rebase.start(worktree, mode, onto, base, _message(part))
    except HfError as exc:
        # git refused without a conflict (a hook, a damaged object, a commit it could
        # not sign): everything back, so the way on is a new sync, not --continue
        _abort(ws, batch, ws.store.load_part(part.batch, part.name), False, True)
        if not (isinstance(exc, GitFailed) and left_lock_hint(exc.stderr)):
            exc.hint = (f"the sync was taken back (the part is as it was before it): fix "
                        f"what git says, then `hf sync {part.batch}/{part.name}` again")
        raise
    if conflicts:
        _step(ws, part, GIT_STOPPED)
        result.outcome, result.conflicts = STOPPED, conflicts
        result.reason = (f"resolve the files in {part.worktree}, `git add` them, then "
                         f"`hf sync {part.batch}/{part.name} --continue` (or --abort)")
        return result
    return _finish(ws, part, pending, result)


def _step(ws: Workspace, part: Part, step: str) -> None:
    """Record whether git's rebase or merge of the sync is running (GIT_RUNS) or
    stopped on a conflict (GIT_STOPPED): one found under way while the record says
    it runs was cut off part way, and is not to be continued."""
    _record(ws, part, lambda p: p.extra["sync"].__setitem__("step", step), "sync-step",
            step=step)


def _finish(ws: Workspace, part: Part, pending: dict[str, Any], result: PartSync) -> PartSync:
    """After git's step went through: the saved work back on top, the base moved."""
    worktree = ws.worktree(part.worktree)
    saved = _saved(pending)
    onto = str(pending["onto"])
    if saved is not None:
        result.work_conflicts, result.unstaged = rebase.reapply(
            worktree, saved, exclude=copied_paths(part),
            applied=bool(pending.get("work_conflicts")))
        fault_point("sync-reapplied")
        result.saved_ref = saved_ref(part, "work")
    if result.work_conflicts:
        # stopped, as on a conflict in git's step: the record stays (so `hf status`,
        # the join and --continue / --abort know), and so do the saved refs
        conflicts = list(result.work_conflicts)
        _record(ws, part, lambda p: p.extra["sync"].__setitem__("work_conflicts", conflicts),
                "sync-stop", mode=result.mode, onto=onto)
        result.outcome, result.onto, result.conflicts = STOPPED, onto, conflicts
        result.reason = (
            f"its uncommitted work conflicts with main's change: resolve the files in "
            f"{part.worktree} (conflict markers where both changed a file; keep it or "
            f"`git rm` it where one side deleted it), `git add` the files, then `hf sync "
            f"{part.batch}/{part.name} --continue` (what was staged before is staged "
            f"again, the rest left unstaged); or `hf sync {part.batch}/{part.name} "
            f"--abort` puts branch, index and files back as before the sync; the work "
            f"as it was is kept at {result.saved_ref}")
        return result
    result.outcome, result.onto = SYNCED, onto
    result.moved_outside = _moved_outside(ws, part, pending, worktree)

    def moved(p: Part) -> None:
        p.extra.pop("sync", None)
        p.extra["base"] = onto

    _record(ws, part, moved, "sync", mode=result.mode, onto=onto)
    if saved is not None and not result.unstaged:
        _drop_saved(ws, part)
        result.saved_ref = None
    if result.unstaged:
        result.reason = (f"what was staged of {', '.join(result.unstaged)} conflicts with "
                         "main's change there, so it is not staged now; the staged version "
                         f"is kept at {saved_ref(part, 'index')}")
    return result


def _resume(ws: Workspace, batch: Batch, part: Part, dry_run: bool, single: bool) -> PartSync:
    pending = _pending(part)
    result = PartSync(part.batch, part.name, UP_TO_DATE, worktree=part.worktree)
    if pending is None:
        if single:
            raise NotFound(f"no sync of part {part.batch}/{part.name} is stopped",
                           f"`hf sync {part.batch}/{part.name}` starts one")
        return _skip(result, "no sync stopped here")
    result.mode = str(pending.get("mode", rebase.REBASE))
    worktree = ws.worktree(part.worktree)
    result.conflicts = rebase.conflicted(worktree)
    if dry_run:
        result.outcome = WOULD if not result.conflicts else STOPPED
        return result
    underway = rebase.in_progress(worktree) is not None
    restarted = underway and pending.get("step") == GIT_RUNS
    if restarted:
        # cut off while git's rebase or merge ran: `--continue` would take the step
        # git was killed in as done, and drop that commit; taken back, and run again
        rebase.abandon(worktree, part.branch)
        rebase.take_back(worktree, str(pending["from"]))  # (index and files too)
        underway, result.restarted = False, True
    if underway:
        _step(ws, part, GIT_RUNS)
        result.conflicts = rebase.resume(worktree, result.mode)
    elif not _contains(worktree, str(pending["onto"])):
        # cut off (killed) before git's step began, or in it: it is taken now, on a
        # clean worktree (the work set aside is in the saved refs)
        if _saved(pending) is not None:
            rebase.clear(worktree, keep=copied_paths(part))
        result.conflicts = rebase.start(worktree, result.mode, str(pending["onto"]),
                                        str(pending.get("base") or part_base(batch, part)),
                                        _message(part))
    if result.conflicts:
        _step(ws, part, GIT_STOPPED)
        result.outcome = STOPPED
        result.reason = ("still in conflict: edit the files, `git add` them, then "
                         f"`hf sync {part.batch}/{part.name} --continue`")
        return result
    return _finish(ws, part, pending, result)


def _abort(ws: Workspace, batch: Batch, part: Part, dry_run: bool, single: bool) -> PartSync:
    pending = _pending(part)
    result = PartSync(part.batch, part.name, ABORTED, worktree=part.worktree)
    if pending is None:
        if single:
            raise NotFound(f"no sync of part {part.batch}/{part.name} is stopped",
                           "nothing to take back")
        return _skip(result, "no sync stopped here")
    result.mode = str(pending.get("mode", rebase.REBASE))
    if dry_run:
        return result
    worktree = ws.worktree(part.worktree)
    rebase.abandon(worktree, part.branch)
    start = str(pending["from"])
    head = worktree.head()
    if head == start and pending.get("step") == GIT_RUNS:
        # cut off inside git's step: the branch is back, not yet the index and files
        rebase.take_back(worktree, start)
    if head != start:
        # git's step went through before the sync stopped (its work conflicted when
        # applied again) or was cut off: the branch is taken back, if nothing but
        # the sync moved it since
        moved_by = _moved_by_sync(ws, worktree, part, pending, head)
        if moved_by is not None:
            raise HfError(f"part {part.batch}/{part.name}: {moved_by}; --abort changed "
                          f"nothing (taking it back to {start[:12]} would lose what came "
                          "after the sync)",
                          f"`hf sync {part.batch}/{part.name} --continue` finishes the sync "
                          f"as it is; or `git reset --hard {start[:12]}` on {part.branch} "
                          f"in {part.worktree}, then --abort again (the uncommitted work "
                          f"from before the sync is kept at {saved_ref(part, 'work')})")
        rebase.take_back(worktree, start)
    saved = _saved(pending)
    if saved is not None:
        rebase.clear(worktree, keep=copied_paths(part))
        rebase.restore(worktree, saved)
    _record(ws, part, lambda p: p.extra.pop("sync", None), "sync-abort")
    if saved is not None:
        _drop_saved(ws, part)
    return result


def _moved_by_sync(ws: Workspace, worktree: Worktree, part: Part, pending: dict[str, Any],
                   head: str | None) -> str | None:
    """None when the worktree's branch is where the sync's rebase or merge took it
    from `pending["from"]`; else what moved it since (or where it is instead)."""
    branch = f"refs/heads/{part.branch}"
    if head is None or ws.repo.ref_target(branch) != head:
        return f"its worktree is not on its branch {part.branch}"
    start, onto = str(pending["from"]), str(pending["onto"])
    last, before = worktree.rev_parse(f"{branch}@{{0}}"), worktree.rev_parse(f"{branch}@{{1}}")
    if last is not None:  # the branch's reflog: its last move is the sync's own
        if last == head and before == start:
            return None
        return f"its branch {part.branch} moved since the sync (commits made after it)"
    # no reflog (core.logAllRefUpdates off): what the rebase or merge makes
    if str(pending.get("mode", rebase.REBASE)) == rebase.MERGE:
        parents = ws.repo.git(["rev-list", "--parents", "-n1", head]).decode().split()[1:]
        made = parents == [start, onto]
    else:
        fork = ws.repo.git(["merge-base", start, onto]).decode().strip()
        made = ws.repo.is_ancestor(onto, head) and int(ws.repo.git(
            ["rev-list", "--count", f"{onto}..{head}"]).strip()) <= int(ws.repo.git(
                ["rev-list", "--count", f"{fork}..{start}"]).strip())
    return None if made else f"its branch {part.branch} moved since the sync"


def _moved_outside(ws: Workspace, part: Part, pending: dict[str, Any],
                   worktree: Worktree) -> list[str]:
    """The paths the part's commits change now, on top of main, that it does not own
    and did not change before the sync: a file it edited that main renamed or moved
    into another part's files, where git's rename detection took the edit along.
    The join refuses them; the sync says so rather than leave it to the join."""
    head = worktree.head()
    if head is None:
        return []
    ownership = Ownership.parse(part.owns)
    before = {c.path for c in ws.repo.diff_trees(str(pending["base"]), str(pending["from"]))}
    return sorted(c.path for c in ws.repo.diff_trees(str(pending["onto"]), head)
                  if c.path not in before and not ownership.owns(c.path))


def _message(part: Part) -> str:
    return f"hf: sync part {part.name} of batch {part.batch} with main"


def _contains(worktree: Worktree, commit: str) -> bool:
    head = worktree.head()
    return head is not None and worktree.repository.is_ancestor(commit, head)


def _skip(result: PartSync, why: str) -> PartSync:
    result.outcome, result.reason = SKIPPED, why
    return result


def _record(ws: Workspace, part: Part, update: Any, action: str, **audit: Any) -> None:
    states.change(ws, part.batch, part.name, None, action=action, update=update, **audit)


def _drop_saved(ws: Workspace, part: Part) -> None:
    for kind in ("index", "work"):
        ws.repo.git(["update-ref", "-d", saved_ref(part, kind)])
