"""`hf join`: bring every part's owned files back into the main tree as one commit.

Planning reads the parts and the object database only; the main tree is
written under the commit lock, with a journal, for the affected paths only.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout.core import states
from hf_fanout.core.ownership import Ownership
from hf_fanout.core.records import DONE, DROPPED, JOINED, Batch, Part, now
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import (
    GitFailed,
    HfError,
    JoinRefused,
    MainMoved,
    MergeConflict,
    OwnershipViolation,
    storage_error,
)
from hf_fanout.guard import fingerprint
from hf_fanout.paths import RepoPath
from hf_fanout.preload import preload
from hf_fanout.worktrees.scan import WorktreeScan
from hf_fanout.worktrees.zparse import MODE_GITLINK, Change, Entry


@dataclass
class PartResult:
    part: Part
    tip: str
    tree: str
    result_commit: str
    changes: list[Change]

    def to_data(self) -> dict[str, Any]:
        return {
            "part": self.part.name,
            "tip": self.tip,
            "result": self.result_commit,
            "files": [
                {"path": c.path, "change": _kind(c)} for c in self.changes
            ],
        }


def _kind(change: Change) -> str:
    if change.old is None:
        return "added"
    if change.new is None:
        return "deleted"
    if change.old.oid == change.new.oid:
        return "mode"
    return "modified"


@dataclass
class JoinPlan:
    batch: Batch
    head: str
    target_ref: str
    results: list[PartResult]
    entries: dict[RepoPath, Entry | None] = field(default_factory=dict)
    merged: list[RepoPath] = field(default_factory=list)
    noop: bool = False
    partial: bool = False
    # parts that committed while the join wrote: not in the join, left unjoined
    late: list[str] = field(default_factory=list)

    @property
    def parts(self) -> list[Part]:
        return [r.part for r in self.results]

    def to_data(self) -> dict[str, Any]:
        return {
            "batch": self.batch.id,
            "head": self.head,
            "ref": self.target_ref,
            "parts": [r.to_data() for r in self.results],
            "affected": sorted(self.entries),
            "merged": self.merged,
            "noop": self.noop,
            "late": self.late,
        }


@dataclass
class JoinOutcome:
    """What `join_batch` did: the plan (what each part brings) and the commit made
    (None for a dry run, or when nothing was committed)."""

    plan: JoinPlan
    commit: str | None
    dry_run: bool

    @property
    def nothing_to_bring(self) -> bool:
        return not self.plan.noop and not self.plan.entries and not self.dry_run

    def to_data(self) -> dict[str, Any]:
        return {**self.plan.to_data(), "commit": self.commit, "dry_run": self.dry_run}


def join_batch(ws: Workspace, batch_id: str, *, partial: bool = False, wait: float = 30.0,
               dry_run: bool = False,
               on_wait: Callable[[str], None] | None = None) -> JoinOutcome:
    """`hf join` and the sweep's automatic join: plan, then (unless `dry_run`, or
    the batch is joined already) write under the locks. The objects the join
    makes are held in memory and written once, as one pack."""
    with ws.repo.holding_objects():
        # a real join checks the main tree for edits under the commit lock (execute_join)
        plan = plan_join(ws, batch_id, partial=partial, check_main=dry_run)
        if plan.noop:
            return JoinOutcome(plan, plan.batch.joined_commit, dry_run)
        if dry_run:
            return JoinOutcome(plan, None, True)
        commit = execute_join(ws, plan, wait=wait, on_wait=on_wait)
    return JoinOutcome(plan, commit if plan.entries or plan.noop else None, False)


def select_parts(ws: Workspace, batch: Batch, partial: bool) -> list[Part]:
    parts = [p for p in ws.store.load_parts(batch) if p.state not in (JOINED, DROPPED)]
    not_done = [p for p in parts if p.state != DONE]
    if not_done and not partial:
        listing = ", ".join(f"{p.name} ({p.state})" for p in not_done)
        first = not_done[0]
        raise JoinRefused(f"not every part is done: {listing}",
                          f"finish them (in each part's worktree `hf done`, or from here "
                          f"`hf done {first.batch}/{first.name}`), or join the done ones: "
                          f"`hf join {batch.id} --partial`",
                          details={"not_done": [p.name for p in not_done]})
    chosen = [p for p in parts if p.state == DONE]
    if not chosen:
        raise JoinRefused(f"no part of batch {batch.id!r} is done yet",
                          "mark finished parts with `hf done` first")
    return chosen


def plan_join(ws: Workspace, batch_id: str, *, partial: bool = False,
              check_main: bool = True) -> JoinPlan:
    """What joining `batch_id` would write, or a refusal (nothing is written).

    `check_main=False` leaves out the check for main-tree edits on the
    affected paths: `execute_join` makes it under the commit lock anyway.
    """
    batch = ws.store.load_batch(batch_id)
    main = ws.main
    head = main.head()
    if batch.state == JOINED:
        return JoinPlan(batch, head or "", batch.target_ref, [], noop=True, partial=partial)
    if batch.state != "running":
        raise JoinRefused(f"batch {batch.id!r} is {batch.state}", "only running batches join")
    ref = main.head_ref()
    if ref != batch.target_ref:
        raise JoinRefused(
            f"the main tree is on {ref}, batch {batch.id!r} was split from {batch.target_ref}",
            "switch the main tree back: git switch "
            + batch.target_ref.removeprefix("refs/heads/"),
        )
    assert head is not None
    parts = select_parts(ws, batch, partial)
    missing = [p for p in parts if not Path(p.worktree).is_dir()]
    if missing:
        first = missing[0]
        raise JoinRefused(
            "missing worktree: " + ", ".join(f"{p.name} ({p.worktree})" for p in missing),
            "the part's committed work is on its branch: restore the worktree with "
            f"`{restore_command(first)}`{' (and so for the others)' if missing[1:] else ''}, "
            f"or mark the part blocked (`hf blocked {first.batch}/{first.name} --reason ...`) "
            "and join the others with --partial",
        )
    # git runs config-defined programs: nothing runs in a part's worktree before this
    fingerprint.verify(ws, batch)

    tips = {p.name: _part_tip(ws, p) for p in parts}
    results = _part_results(ws, batch, parts, tips)
    try:
        _refuse_bad_changes(results)
        with tempfile.TemporaryDirectory(prefix="hf-join-") as scratch:
            entries, merged = _combine(ws, batch, head, results, Path(scratch))
        if check_main:
            refuse_main_edits(ws, list(entries), results)
    except HfError as exc:
        _attach_preview(exc, results)
        raise
    return JoinPlan(batch, head, ref, results, entries, merged, partial=partial)


def restore_command(part: Part) -> str:
    """The commands that bring back a part's deleted worktree on its branch: git
    still has it registered (`prune` clears that), and the new worktree needs
    the guard's hooks again (without them the tamper check refuses the join)."""
    return (f"git worktree prune && git worktree add {shlex.quote(part.worktree)} "
            f"{shlex.quote(part.branch)} && hf guard install {part.batch}/{part.name}")


def _listing(paths: list[RepoPath] | list[str], limit: int = 10) -> str:
    shown = ", ".join(sorted(paths)[:limit])
    more = len(paths) - limit
    return shown + (f" (and {more} more)" if more > 0 else "")


def _part_tip(ws: Workspace, part: Part) -> str:
    """The part's branch tip; refused unless its worktree is on it.

    Read from git's ref files, before the part is scanned.
    """
    repo = ws.repo
    tip = repo.ref_target(f"refs/heads/{part.branch}")
    if tip is None:
        last = ws.repo.worktree(Path(part.worktree)).last_head()
        restore = (f"restore it at its last commit: `git update-ref refs/heads/{part.branch} "
                   f"{last}` (from its worktree's reflog), or " if last else "")
        raise JoinRefused(f"part {part.name!r}: its branch {part.branch} is gone",
                          f"{restore}leave the part out of the batch: `hf drop "
                          f"{part.batch}/{part.name}` (its worktree is kept)")
    if ws.repo.worktree(Path(part.worktree)).head() != tip:
        raise JoinRefused(
            f"part {part.name!r}: its worktree is not on its branch {part.branch}",
            f"in {part.worktree} run `git switch {part.branch}`",
        )
    return tip


def _part_results(ws: Workspace, batch: Batch, parts: list[Part],
                  tips: dict[str, str]) -> list[PartResult]:
    """Each part's result: its branch tip plus what is uncommitted in its worktree.

    The worktrees are scanned by git processes in a pool, two at a time;
    this thread takes each scan as it arrives (in part order) and makes the
    part's tree, its result commit and its changes in the object database
    while the other scans go on.
    """
    from hf_fanout.core.records import copied_paths


    repo = ws.repo

    def scan(part: Part) -> WorktreeScan:
        """The worktree's uncommitted state."""
        return ws.repo.worktree(Path(part.worktree)).scan(exclude=copied_paths(part))

    # While the scans run (this thread mostly waits on git), load what the write
    # under the lock needs: filelock alone takes about 0.04 s to import.
    preload("filelock", "hf_fanout.orchestrator.journal")
    committed = [tip for tip in tips.values() if tip != batch.base]
    with ThreadPoolExecutor(max_workers=1) as side, ThreadPoolExecutor(max_workers=2) as pool:
        # what every part committed: one `diff-tree`, beside the scans
        diffs = side.submit(repo.diff_commits, batch.base, committed)
        scans = [pool.submit(scan, p) for p in parts]
        # while the first scans run (they need this thread only when they end):
        # the base's tree (pygit2 loads now, holding the interpreter lock), then
        # who commits (three small git processes, once; an unknown identity
        # fails later, where a commit is made)
        base_tree = repo.tree_of(batch.base)
        with contextlib.suppress(GitFailed):
            _ = repo.commit_identity
        return [_result_of(ws, batch, base_tree, part, tips[part.name], future.result(),
                           [c.path for c in diffs.result().get(tips[part.name], [])])
                for part, future in zip(parts, scans, strict=True)]


def _result_of(ws: Workspace, batch: Batch, base_tree: str, part: Part,
               tip_commit: str, scan: WorktreeScan,
               committed: list[RepoPath]) -> PartResult:
    """The part's result from its scan and the paths its commits changed: the
    tree (its tip's tree plus what the scan found), a commit of it when
    something is uncommitted, and the changes against the base. Refused if
    the part committed while it was being scanned (the scan would be
    relative to a HEAD the tree does not start from)."""
    repo = ws.repo
    if ws.repo.worktree(Path(part.worktree)).head() != tip_commit:
        raise JoinRefused(f"part {part.name!r} committed while the join was reading it",
                          "run `hf join` again")
    tip_tree = repo.tree_of(tip_commit)
    tree = repo.tree_from_scan(tip_tree, scan)
    result_commit = tip_commit
    if tree != tip_tree:
        # Uncommitted work: record it as a commit of its own so the trailer
        # names exactly what was joined and it stays reachable.
        # (an object only: the ref that keeps it is written by the join itself)
        message = f"hf: uncommitted work of part {part.name} of batch {batch.id}\n"
        result_commit = repo.commit_tree(tree, [tip_commit], message)
    # where the result can differ from the base: what the part committed, and
    # what the scan found on top
    maybe = [*committed, *scan.entries, *scan.links]
    since = _since(part)
    if since is not None:  # what changed since its result that was joined before
        return PartResult(part, tip_commit, tree, result_commit,
                          repo.diff_trees(repo.tree_of(since), tree))
    return PartResult(part, tip_commit, tree, result_commit,
                      repo.tree_changes(base_tree, tree, maybe))


def _attach_preview(exc: HfError, results: list[PartResult]) -> None:
    """What each part would bring, beside a refusal (for --dry-run and people)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    exc.details = {**details, "preview": [r.to_data() for r in results]}


def refuse_main_edits(ws: Workspace, affected: list[RepoPath], results: list[PartResult],
                      dirty: list[RepoPath] | None = None) -> None:
    """Refuse when the main tree has uncommitted edits (staged or not, or an
    untracked file) on a path the join would write (`dirty`: those paths,
    when the caller already asked)."""
    if dirty is None:
        dirty = ws.main.status_paths(affected)
    if dirty:
        exc = JoinRefused(
            "the main tree has uncommitted edits on paths this join would write: "
            + _listing(dirty),
            "commit or stash those edits in the main tree, then join again",
            details={"paths": sorted(dirty)},
        )
        _attach_preview(exc, results)
        raise exc


def _refuse_bad_changes(results: list[PartResult]) -> None:
    gitlinks = [f"{r.part.name}: {c.path}" for r in results for c in r.changes
                if MODE_GITLINK in (c.old and c.old.mode, c.new and c.new.mode)]
    if gitlinks:
        raise JoinRefused("submodule (gitlink) changes cannot be joined: " + _listing(gitlinks),
                          "change submodules in the main tree yourself, outside the batch",
                          details={"paths": gitlinks})
    outside: dict[str, list[RepoPath]] = {}
    for r in results:
        ownership = Ownership.parse(r.part.owns)
        bad = [c.path for c in r.changes if not ownership.owns(c.path)]
        if bad:
            outside[r.part.name] = bad
    if outside:
        text = "; ".join(f"{name}: {_listing(paths)}" for name, paths in outside.items())
        raise OwnershipViolation(
            f"changed paths outside the part's ownership: {text}",
            "revert those files in the part's worktree (or move them to the part that "
            "owns them), then join again",
            details={"outside": outside},
        )
    seen: dict[RepoPath, str] = {}
    clashes: list[str] = []
    for r in results:
        for c in r.changes:
            other = seen.setdefault(c.path, r.part.name)
            if other != r.part.name:
                clashes.append(f"{c.path} ({other}, {r.part.name})")
    if clashes:
        raise JoinRefused("two parts changed the same path: " + _listing(clashes),
                          "only one part may change a path; fix the ownership and redo one part",
                          details={"paths": clashes})


def _combine(ws: Workspace, batch: Batch, head: str, results: list[PartResult],
             scratch: Path) -> tuple[dict[RepoPath, Entry | None], list[RepoPath]]:
    """The entries to write: each part's changes, merged three-way if main moved."""
    repo = ws.repo
    changes = [c for r in results for c in r.changes]
    owner = {c.path: r.part.name for r in results for c in r.changes}
    if head == batch.base:
        return {c.path: c.new for c in changes}, []
    ours = repo.entries_at(head, [c.path for c in changes])
    entries: dict[RepoPath, Entry | None] = {}
    merged: list[RepoPath] = []
    conflicts: list[dict[str, Any]] = []
    for c in changes:
        mine = ours.get(c.path)
        if mine == c.old:  # main did not touch it
            entries[c.path] = c.new
        elif mine == c.new:  # both made the same change
            continue
        else:
            result = _merge_one(ws, c, mine, scratch, owner[c.path])
            if isinstance(result, dict):
                conflicts.append(result)
            else:
                merged.append(c.path)
                if result != mine:
                    entries[c.path] = result
    if conflicts:
        names = ", ".join(f"{c['path']} ({c['part']})" for c in conflicts)
        raise MergeConflict(
            f"main moved since the split and {len(conflicts)} file(s) conflict: {names}",
            "bring the part up to date with main in its worktree (edit the files), "
            "or undo the change on main, then join again",
            details={"conflicts": conflicts},
        )
    return entries, merged


def _merge_one(ws: Workspace, c: Change, mine: Entry | None, scratch: Path,
               part: str) -> Entry | dict[str, Any] | None:
    base, theirs = c.old, c.new
    conflict = {"path": c.path, "part": part}
    if mine is None or theirs is None or base is None:
        why = ("deleted on main, changed by the part" if mine is None else
               "changed on main, deleted by the part" if theirs is None else
               "added on main and by the part with different content")
        if base is None and mine is not None and theirs is not None:
            pass  # both added: try a merge against an empty base
        else:
            return {**conflict, "reason": why, "hunks": ""}
    # modes: take the side that changed it
    base_mode = base.mode if base else (theirs.mode if theirs else 0o100644)
    assert mine is not None and theirs is not None
    if mine.mode == base_mode:
        mode = theirs.mode
    elif theirs.mode in (base_mode, mine.mode):
        mode = mine.mode
    else:
        return {**conflict, "reason": "mode changed differently on both sides", "hunks": ""}
    if 0o120000 in (mine.mode, theirs.mode) and mine.oid != theirs.oid:
        return {**conflict, "reason": "symlink changed on both sides", "hunks": ""}
    repo = ws.repo
    merged_data, nconflicts = repo.merge_file(
        repo.read_blob(base.oid) if base else b"",
        repo.read_blob(mine.oid),
        repo.read_blob(theirs.oid),
        scratch,
        ("main", "base", f"part {part}"),
    )
    if nconflicts:
        return {**conflict, "reason": f"{nconflicts} conflicting hunk(s)",
                "hunks": _conflict_hunks(merged_data)}
    return Entry(mode, repo.write_blob(merged_data))


def _conflict_hunks(data: bytes, limit: int = 60) -> str:
    lines = data.decode("utf-8", "replace").splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("<<<<<<< "):
            inside = True
        if inside:
            out.append(line)
        if line.startswith(">>>>>>> "):
            inside = False
    return "\n".join(out[:limit])


def _final_tree(ws: Workspace, plan: JoinPlan, head: str) -> str:
    """HEAD's tree with the join's entries. When main has not moved since the
    base, each part's tree already holds its changes on the same base: the
    directories only one part changed are taken from it as they are."""
    repo = ws.repo
    if head == plan.batch.base:
        overlaid = repo.overlay_trees(
            repo.tree_of(head), [(r.tree, [c.path for c in r.changes]) for r in plan.results])
        if overlaid is not None:
            return overlaid
    return repo.build_tree(repo.tree_of(head), plan.entries)


def commit_message(plan: JoinPlan) -> str:
    batch = plan.batch
    names = ", ".join(r.part.name for r in plan.results)
    subject = f"hf: join batch {batch.id} ({names})"
    body = batch.task.strip()
    trailers = [f"Hf-Batch: {batch.id}"] + [
        f"Hf-Part: {r.part.name} {r.result_commit}" for r in plan.results
    ]
    parts = [subject]
    if body:
        parts.append(body)
    parts.append("\n".join(trailers))
    return "\n\n".join(parts) + "\n"


def execute_join(ws: Workspace, plan: JoinPlan, *, wait: float,
                 on_wait: Callable[[str], None] | None = None) -> str:
    """Write the planned join under the commit lock and git's own index lock
    (held from before the first write until the branch has moved: a concurrent
    git command in the main tree waits or fails on it, and never sees or commits
    half a join). Returns the new commit.

    If HEAD, or a part's branch, moved while the plan was made without the locks
    (another join or `hf commit` landed first, a part committed after `hf done`),
    the join is planned again under the locks, and `plan` is updated in place
    to what is committed; a batch that another process joined meanwhile becomes
    a no-op (`plan.noop`). A part that commits while the join writes is left
    out of the join (`plan.late`), never marked joined with its commit missing.
    """
    from hf_fanout.orchestrator.journal import recover_join

    with ws.store.commit_lock(wait, on_wait):
        recover_join(ws, wait=None)  # already holding the lock
        with _locked_index(ws, wait, on_wait) as held:
            if ws.main.head() != plan.head or _moved_tips(ws, plan):
                _replan(ws, plan)
                if plan.noop:
                    return plan.batch.joined_commit or ""
            if not plan.entries:
                # Nothing to bring (no part changed anything, or main already has
                # it all): no empty commit; the parts are joined as of HEAD.
                states.mark_joined(ws, plan.batch.id, [p.name for p in plan.parts], plan.head)
                return plan.head
            return _write_join(ws, plan, held)


def _locked_index(ws: Workspace, wait: float, on_wait: Callable[[str], None] | None) -> Any:
    from hf_fanout.core.maintree import locked_main_index

    return locked_main_index(ws, wait=wait, on_wait=on_wait)


def _moved_tips(ws: Workspace, plan: JoinPlan) -> list[str]:
    """The parts whose branch is no longer at the tip the plan read (they committed)."""
    return [r.part.name for r in plan.results
            if ws.repo.ref_target(f"refs/heads/{r.part.branch}") != r.tip]


def _replan(ws: Workspace, plan: JoinPlan) -> None:
    """Plan again (under the locks) and make `plan` what is now planned."""
    fresh = plan_join(ws, plan.batch.id, partial=plan.partial, check_main=False)
    for name in fresh.__dataclass_fields__:
        setattr(plan, name, getattr(fresh, name))


def _write_join(ws: Workspace, plan: JoinPlan, held: Any) -> str:
    """The join's writes, holding both locks: the new index staged beside the
    real one, the journal, the files, the staged-set check, the new index put in
    place, then the branch's compare-and-swap (git's lock goes after)."""
    from hf_fanout.core.maintree import Aside, stage, write_files
    from hf_fanout.orchestrator.journal import entry_data

    main = ws.main

    repo = ws.repo
    head = plan.head
    affected = list(plan.entries)
    if head == plan.batch.base:  # what the parts changed is what HEAD has
        old_entries = {c.path: c.old for r in plan.results for c in r.changes
                       if c.old is not None}
    else:
        old_entries = repo.entries_at(head, affected)
    with ThreadPoolExecutor(max_workers=3) as pool:
        # the two reads of the main tree (git processes) run beside the
        # commit's construction in the object database, and the writing of
        # the join's objects (one pack) beside what is left of them
        dirty = pool.submit(main.status_paths, affected, in_head=old_entries)
        staged_then = pool.submit(main.staged_paths, head)
        new_tree = _final_tree(ws, plan, head)
        commit = repo.commit_tree(new_tree, [head], commit_message(plan))
        written = pool.submit(repo.write_held_objects)  # before a ref names them
        refuse_main_edits(ws, affected, plan.results, dirty=dirty.result())
        staged_before = staged_then.result()
        written.result()
    stage(ws, held, plan.entries)
    ws.store.write_journal({
        "schema": 1,
        "batch": plan.batch.id,
        "parts": [p.name for p in plan.parts],
        "ref": plan.target_ref,
        "old": head,
        "new": commit,
        "old_entries": {p: entry_data(old_entries.get(p)) for p in affected},
        "new_entries": {p: entry_data(plan.entries[p]) for p in affected},
        "index_lock": [list(i) for i in held.identities],
        "started": now(),
    })
    _crash_point("journal")

    def keep_results() -> None:
        """Beside the writing of the files: what the trailers name is kept
        reachable (one transaction for all parts)."""
        keep = "".join(f"update refs/hf/results/{plan.batch.id}/{r.part.name} "
                       f"{r.result_commit}\n"
                       for r in plan.results if r.result_commit != r.tip)
        if keep:
            main.git(["update-ref", "--stdin"], stdin=keep.encode())

    aside = Aside(ws)
    try:
        try:
            write_files(ws, plan.entries, index=held.scratch, aside=aside,
                        while_writing=keep_results)
            _crash_point("applied")
            # last, right before the ref moves: the staged change must be exactly the join's
            _check_staged(main.staged_paths(head, index=held.scratch),
                          staged_before | set(affected))
            # the new index goes in place before the branch moves, under the lock:
            # nothing ever reads the new commit with the old index
            held.swap_in()
            _crash_point("swapped")
            _move_ref(ws, plan, commit, head)
        except BaseException as exc:
            failure = _as_refusal(exc, main.path, lambda: _size_of(ws, plan.entries))
            _undo_write(ws, {p: old_entries.get(p) for p in affected}, aside, held, exc)
            if failure is None:
                raise
            raise failure from exc
        _crash_point("ref")
        # (what stays staged now is what was staged before: the check above saw
        # exactly the join's paths added to it, and the commit holds those)
        plan.late = _moved_tips(ws, plan)
        states.mark_joined(ws, plan.batch.id,
                           [p.name for p in plan.parts if p.name not in plan.late], commit)
        _remember_late(ws, plan, commit)
        ws.store.clear_journal()
    finally:
        aside.delete_later()
    return commit


def _check_staged(staged: set[RepoPath], expected: set[RepoPath]) -> None:
    if staged != expected:
        raise JoinRefused(
            "the staged change is not exactly the join's: "
            f"missing {_listing(sorted(expected - staged)) or 'none'}, "
            f"extra {_listing(sorted(staged - expected)) or 'none'}",
            "something wrote the new index during the join (a hook?); nothing was "
            "committed and the main tree is as it was",
            details={"missing": sorted(expected - staged), "extra": sorted(staged - expected)})


def _move_ref(ws: Workspace, plan: JoinPlan, commit: str, head: str) -> None:
    """The branch moves by compare-and-swap, or the join is refused."""
    main = ws.main
    repo = ws.repo
    try:
        repo.update_ref(plan.target_ref, commit, head, f"hf join {plan.batch.id}")
    except GitFailed as exc:
        now_at = main.rev_parse(plan.target_ref)
        if now_at == head:
            raise
        raise MainMoved(
            f"{plan.target_ref} moved during the join ({head[:12]} -> "
            f"{(now_at or 'none')[:12]}), outside hf's commit lock; nothing committed",
            "run `hf join` again; it plans against the new HEAD",
        ) from exc


def _undo_write(ws: Workspace, old: dict[RepoPath, Entry | None], aside: Any, held: Any,
                cause: BaseException) -> None:
    """A write that failed or was refused half way: the old index back in place
    (when the new one was), the main tree's files put back, the journal removed.
    If even that fails, the journal and git's index lock stay, so no git command
    commits the half-written files, and the next hf command finishes putting
    them back."""
    from hf_fanout.core.maintree import put_back

    try:
        held.swap_back()
        put_back(ws, old, aside)
    except (HfError, OSError) as exc:
        held.kept = True
        why = storage_error(exc, "putting the main tree back", "") if isinstance(
            exc, OSError) else exc
        raise HfError(
            f"the join failed ({_reason(cause)}) and the main tree could not be put back "
            f"yet ({_reason(why or exc)}); git's index lock stays in place, so no git "
            "command commits the half-written files",
            "fix that (free space?), then run `hf doctor`: it finishes putting the main "
            "tree back") from cause
    ws.store.clear_journal()


_KEPT = "nothing was committed; the main tree and its index are as they were"


def _size_of(ws: Workspace, entries: dict[RepoPath, Entry | None]) -> int:
    """How many bytes of files `entries` make (to tell a full disk from git's words)."""
    total = 0
    for entry in entries.values():
        if entry is not None:
            with contextlib.suppress(KeyError, ValueError):
                total += len(ws.repo.read_blob(entry.oid))
    return total


def _as_refusal(exc: BaseException, where: Path, need: Callable[[], int]) -> HfError | None:
    """A failed write, as one line that says so (taken before the write is undone:
    undoing frees space); None: raise `exc` as it is (a refusal that says it
    already, Ctrl-C)."""
    if isinstance(exc, OSError | GitFailed):
        found = storage_error(exc, "writing the main tree", _KEPT, where=str(where),
                              need=need() if isinstance(exc, GitFailed) else 0)
        if found is not None:
            return found
    if isinstance(exc, GitFailed):
        return HfError(f"writing the main tree failed ({exc.message.removesuffix('.')}); "
                       f"{_KEPT}", exc.hint, details=exc.details)
    if isinstance(exc, OSError):
        return HfError(f"writing the main tree failed ({exc}); {_KEPT}",
                       "fix that, then run `hf join` again")
    return None


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, HfError) else f"{type(exc).__name__}: {exc}"


def _remember_late(ws: Workspace, plan: JoinPlan, commit: str) -> None:
    """A part left out because it committed during the join had its earlier result
    joined: the next join takes what changed since that result (so main holding
    the part's own earlier version is no conflict)."""
    if not plan.late:
        return
    with ws.store.state_lock():
        for r in plan.results:
            if r.part.name in plan.late:
                part = ws.store.load_part(plan.batch.id, r.part.name)
                part.extra["joined_result"] = {"result": r.result_commit, "commit": commit}
                ws.store.save_part(part)
    ws.store.audit("join-late", batch=plan.batch.id, parts=plan.late, commit=commit)


def _since(part: Part) -> str | None:
    """The result of the part joined before (`_remember_late`), if any."""
    earlier = part.extra.get("joined_result")
    found = earlier.get("result") if isinstance(earlier, dict) else None
    return found if isinstance(found, str) else None


def _crash_point(name: str) -> None:
    """Tests kill the process here (HF_TEST_CRASH_AT=journal|applied|swapped|ref) to
    prove recovery."""
    if os.environ.get("HF_TEST_CRASH_AT") == name:
        import signal

        with contextlib.suppress(Exception):
            os.kill(os.getpid(), signal.SIGKILL)
