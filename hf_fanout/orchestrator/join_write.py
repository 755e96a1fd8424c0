"""Writing a planned join: under the commit lock and git's own index lock, the new
index staged beside the real one, the journal, the files, the staged-set check,
the index in place, the branch's compare-and-swap (docs/protocol.md)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout.core import states
from hf_fanout.core.records import now
from hf_fanout.core.remote_refs import remote_of
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import (
    GitFailed,
    HfError,
    JoinRefused,
    MainMoved,
    storage_error,
)
from hf_fanout.faults import fault_point
from hf_fanout.guard import mainhook
from hf_fanout.orchestrator.join_plan import JoinPlan, listing, plan_join, refuse_main_edits
from hf_fanout.paths import RepoPath
from hf_fanout.worktrees.zparse import Entry


def _final_tree(ws: Workspace, plan: JoinPlan, head: str) -> str:
    """HEAD's tree with the join's entries. When main has not moved since the
    base, each part's tree already holds its changes on the same base: the
    directories only one part changed are taken from it as they are."""
    repo = ws.repo
    if plan.on_head(head):
        overlaid = repo.overlay_trees(
            repo.tree_of(head), [(r.tree, [c.path for c in r.changes]) for r in plan.results])
        if overlaid is not None:
            return overlaid
    return repo.build_tree(repo.tree_of(head), plan.entries)


def parents(plan: JoinPlan, head: str) -> list[str]:
    """The join commit's parents: main's HEAD; with `keep_history` also each part's
    result (its tip, or the commit of its uncommitted work on it) that brings a
    change, so `git log` and `git blame` reach the parts' own commits."""
    if not plan.keep_history:
        return [head]
    found = [head]
    for r in plan.results:
        if r.changes and r.result_commit not in found:
            found.append(r.result_commit)
    return found


def commit_message(plan: JoinPlan) -> str:
    batch = plan.batch
    names = ", ".join(r.part.name for r in plan.results)
    subject = f"hf: join batch {batch.id} ({names})"
    body = batch.task.strip()
    trailers = [f"Hf-Batch: {batch.id}"] + [
        f"Hf-Part: {r.part.name} {r.result_commit}"
        + (f" remote={remote_of(r.part)}" if remote_of(r.part) else "") for r in plan.results
    ]
    parts = [subject]
    if body:
        parts.append(body)
    parts.append("\n".join(trailers))
    return "\n\n".join(parts) + "\n"


def execute_join(ws: Workspace, plan: JoinPlan, *, wait: float,
                 on_wait: Callable[[str], None] | None = None,
                 started: float | None = None) -> str:
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
    `started`: when the join began (its audit line says how long it took).
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
                states.mark_joined(ws, plan.batch.id, [p.name for p in plan.parts], plan.head,
                                   _results(plan), **_took(started))
                return plan.head
            return _write_join(ws, plan, held, started)


def _locked_index(ws: Workspace, wait: float, on_wait: Callable[[str], None] | None) -> Any:
    from hf_fanout.core.maintree import locked_main_index

    return locked_main_index(ws, wait=wait, on_wait=on_wait)


def _moved_tips(ws: Workspace, plan: JoinPlan) -> list[str]:
    """The parts whose branch is no longer at the tip the plan read (they committed)."""
    return [r.part.name for r in plan.results
            if ws.repo.ref_target(f"refs/heads/{r.part.branch}") != r.tip]


def _replan(ws: Workspace, plan: JoinPlan) -> None:
    """Plan again (under the locks) and make `plan` what is now planned."""
    fresh = plan_join(ws, plan.batch.id, partial=plan.partial, check_main=False,
                      allow_outside_links=plan.allow_outside_links,
                      keep_history=plan.keep_history)
    for name in fresh.__dataclass_fields__:
        setattr(plan, name, getattr(fresh, name))


def _results(plan: JoinPlan) -> dict[str, str]:
    """What the join takes from each part: its tip, or the commit of its work on top."""
    return {r.part.name: r.result_commit for r in plan.results}


def _took(started: float | None) -> dict[str, float]:
    return {} if started is None else {"seconds": round(time.time() - started, 3)}


def _write_join(ws: Workspace, plan: JoinPlan, held: Any, started: float | None) -> str:
    """The join's writes, holding both locks: the new index staged beside the
    real one, the journal, the files, the staged-set check, the new index put in
    place, then the branch's compare-and-swap (git's lock goes after)."""
    main = ws.main
    repo = ws.repo
    head = plan.head
    affected = list(plan.entries)
    if plan.on_head(head):  # what the parts changed is what HEAD has
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
        hidden = pool.submit(main.hidden_edits, affected)
        new_tree = _final_tree(ws, plan, head)
        commit = repo.commit_tree(new_tree, parents(plan, head), commit_message(plan),
                                 sign=True)
        written = pool.submit(repo.write_held_objects)  # before a ref names them
        refuse_main_edits(ws, affected, plan.results, dirty=dirty.result(),
                          hidden=hidden.result())
        staged_before = staged_then.result()
        written.result()

    def keep_results() -> None:
        """Beside the writing of the files: what the trailers name is kept
        reachable (one transaction for all parts)."""
        keep = "".join(f"update refs/hf/results/{plan.batch.id}/{r.part.name} "
                       f"{r.result_commit}\n"
                       for r in plan.results if r.result_commit != r.tip)
        if keep:
            main.git(["update-ref", "--stdin"], stdin=keep.encode())

    def landed() -> None:
        # (what stays staged now is what was staged before: the check saw
        # exactly the join's paths added to it, and the commit holds those)
        plan.late = _moved_tips(ws, plan)
        states.mark_joined(ws, plan.batch.id,
                           [p.name for p in plan.parts if p.name not in plan.late], commit,
                           _results(plan), **_took(started))
        _remember_late(ws, plan, commit)

    change = MainChange(
        action="join", batch=plan.batch.id, parts=[p.name for p in plan.parts],
        ref=plan.target_ref, old=head, new=commit,
        old_entries={p: old_entries.get(p) for p in affected}, new_entries=plan.entries,
        staged_before=staged_before)
    apply_change(ws, held, change, while_writing=keep_results, landed=landed)
    return commit


@dataclass
class MainChange:
    """One write of the main tree and a move of its branch, as a join (or the undo
    of one) makes it: the affected paths go from `old_entries` to `new_entries`,
    the branch `ref` from `old` to `new`. `staged_before`: what was staged against
    `old` before (it stays staged). `extra`: more fields for the journal."""

    action: str
    batch: str
    parts: list[str]
    ref: str
    old: str
    new: str
    old_entries: dict[RepoPath, Entry | None]
    new_entries: dict[RepoPath, Entry | None]
    staged_before: set[RepoPath]
    extra: dict[str, Any] = field(default_factory=dict)


def apply_change(ws: Workspace, held: Any, change: MainChange, *,
                 while_writing: Callable[[], None] | None = None,
                 landed: Callable[[], None]) -> None:
    """The writes, holding the commit lock and the index lock: the new index
    staged beside the real one, the journal, the files, the staged-set check, the
    new index put in place, then the branch's compare-and-swap; `landed` (the
    records) and the main tree's hook settled after, then the journal goes.
    Anything failing before the branch
    moved puts the main tree back (`_undo_write`)."""
    from hf_fanout.core.maintree import Aside, stage, write_files
    from hf_fanout.orchestrator.journal import entry_data

    main = ws.main
    affected = list(change.new_entries)
    stage(ws, held, change.new_entries)
    ws.store.write_journal({
        "schema": 1,
        "action": change.action,
        "batch": change.batch,
        "parts": change.parts,
        "ref": change.ref,
        "old": change.old,
        "new": change.new,
        "old_entries": {p: entry_data(change.old_entries.get(p)) for p in affected},
        "new_entries": {p: entry_data(change.new_entries[p]) for p in affected},
        "index_lock": [list(i) for i in held.identities],
        "started": now(),
        **change.extra,
    })
    fault_point("journal")
    aside = Aside(ws)
    try:
        try:
            write_files(ws, change.new_entries, index=held.scratch, aside=aside,
                        while_writing=while_writing)
            fault_point("applied")
            # last, right before the ref moves: the staged change must be exactly this one's
            _check_staged(main.staged_paths(change.old, index=held.scratch),
                          change.staged_before | set(affected), change.action)
            # the new index goes in place before the branch moves, under the lock:
            # nothing ever reads the new commit with the old index
            held.swap_in()
            fault_point("swapped")
            _move_ref(ws, change)
        except BaseException as exc:
            failure = _as_refusal(exc, main.path, lambda: _size_of(ws, change.new_entries),
                                  change.action)
            _undo_write(ws, change.old_entries, aside, held, exc, change.action)
            if failure is None:
                raise
            raise failure from exc
        fault_point("ref")
        landed()
        # (before the journal goes: cut off before this line, the recovery does it)
        mainhook.settle(ws)  # the main tree's hook: there while a batch runs, gone after
        ws.store.clear_journal()
    finally:
        aside.delete_later()


def _check_staged(staged: set[RepoPath], expected: set[RepoPath], action: str) -> None:
    if staged != expected:
        raise JoinRefused(
            f"the staged change is not exactly the {action}'s: "
            f"missing {listing(sorted(expected - staged)) or 'none'}, "
            f"extra {listing(sorted(staged - expected)) or 'none'}",
            f"something wrote the new index during the {action} (a hook?); nothing was "
            "committed and the main tree is as it was",
            details={"missing": sorted(expected - staged), "extra": sorted(staged - expected)})


def _move_ref(ws: Workspace, change: MainChange) -> None:
    """The branch moves by compare-and-swap, or the join (or undo) is refused."""
    main = ws.main
    repo = ws.repo
    by = f"hf {change.action}"
    ref, old = change.ref, change.old
    try:
        repo.update_ref(ref, change.new, old, f"{by} {change.batch}")
        # hf's own record of the move: the tamper check trusts this, not reflog text
        ws.store.audit("ref-move", batch=change.batch, ref=ref, old=old, new=change.new, by=by)
    except GitFailed as exc:
        now_at = main.rev_parse(ref)
        if now_at == old:
            raise
        raise MainMoved(
            f"{ref} moved during the {change.action} ({old[:12]} -> "
            f"{(now_at or 'none')[:12]}), outside hf's commit lock; nothing committed",
            f"run `{by} {change.batch}` again; it plans against the new HEAD",
        ) from exc


def _undo_write(ws: Workspace, old: dict[RepoPath, Entry | None], aside: Any, held: Any,
                cause: BaseException, action: str) -> None:
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
            f"the {action} failed ({_reason(cause)}) and the main tree could not be put back "
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


def _as_refusal(exc: BaseException, where: Path, need: Callable[[], int],
                action: str) -> HfError | None:
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
                       f"fix that, then run `hf {action}` again")
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


