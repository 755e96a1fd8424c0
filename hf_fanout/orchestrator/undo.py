"""`hf undo BATCH`: take back a batch's last join.

While the join commit is still the branch's tip, the branch moves back to the
join's first parent (compare-and-swap) and the main tree's affected paths are
put back to it; once main went on from the join, a revert commit is made on
top instead (main's later changes are kept, merged three-way where they touch
the same files). Either way the write goes through the join's own machinery
(`join_write.apply_change`: the commit lock, git's index lock, the journal,
the staged-set check), so `hf doctor` settles an undo cut off half way as it
does a join. The parts go back to done; their branches and worktrees are not
touched, so the batch can be joined again.
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout.core import states
from hf_fanout.core.records import JOINED, Batch, Part
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import MergeConflict, UndoRefused
from hf_fanout.orchestrator.join_plan import (
    hidden_edits_hint,
    hidden_edits_line,
    listing,
    refuse_main_elsewhere,
)
from hf_fanout.orchestrator.joined_parts import join_results, trailers
from hf_fanout.paths import RepoPath, shell_word
from hf_fanout.worktrees.zparse import Change, Entry

FAST = "fast"  # the branch moves back to the join's parent
REVERT = "revert"  # a commit on top takes the join's changes back
RECORDS = "records"  # the join made no commit (nothing to bring): records only


@dataclass
class UndoPlan:
    """What taking back `join` (a commit of batch `batch`) writes: the branch
    `ref` from `head` to `new` (None: a revert commit, made under the lock), and
    the affected paths from `old_entries` to `entries`."""

    batch: Batch
    join: str
    parts: list[str]
    ref: str
    head: str
    how: str
    new: str | None = None
    entries: dict[RepoPath, Entry | None] = field(default_factory=dict)
    old_entries: dict[RepoPath, Entry | None] = field(default_factory=dict)
    merged: list[RepoPath] = field(default_factory=list)
    joined_after: str | None = None
    dry_run: bool = False
    # the main tree is a sparse checkout and git would not apply its patterns again
    sparse_left: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {"batch": self.batch.id, "join": self.join, "parts": self.parts,
                "ref": self.ref, "head": self.head, "how": self.how, "commit": self.new,
                "affected": sorted(self.entries), "merged": self.merged,
                "dry_run": self.dry_run, "sparse_left": self.sparse_left}


def undo_batch(ws: Workspace, batch_id: str, *, dry_run: bool = False, wait: float = 30.0,
               on_wait: Callable[[str], None] | None = None) -> UndoPlan:
    """`hf undo`: plan, then (unless `dry_run`) plan again and write under the
    commit lock and the main index lock."""
    from hf_fanout.core.maintree import locked_main_index
    from hf_fanout.guard import mainhook
    from hf_fanout.orchestrator.boundary import refuse_inside_part
    from hf_fanout.orchestrator.journal import recover_join

    if dry_run:
        with ws.repo.holding_objects():
            plan = plan_undo(ws, batch_id)
            _refuse_main_edits(ws, plan)
        plan.dry_run = True
        return plan
    refuse_inside_part(f"hf undo {batch_id}")
    with ws.store.commit_lock(wait, on_wait), ws.repo.holding_objects():
        recover_join(ws, wait=None)  # already holding the lock
        with locked_main_index(ws, wait=wait, on_wait=on_wait) as held:
            plan = plan_undo(ws, batch_id)
            if plan.how == RECORDS or (plan.how == REVERT and not plan.entries):
                # (nothing to write: the join made no commit, or main took its
                # changes back already)
                _mark(ws, plan, plan.head)
            else:
                _write(ws, plan, held)
    if plan.entries:  # a sparse main tree keeps its shape (see join.py)
        plan.sparse_left = ws.main.reapply_sparse()
    mainhook.settle(ws)  # the batch runs again: the main tree's hook comes back
    return plan


def plan_undo(ws: Workspace, batch_id: str) -> UndoPlan:
    """What undoing the batch's last join would write, or a refusal (one line,
    nothing written)."""
    batch = ws.store.load_batch(batch_id)
    parts = ws.store.load_parts(batch)
    joined = [p for p in parts if p.state == JOINED and p.joined_commit]
    if not joined:
        states_now = ", ".join(f"{p.name} {p.state}" for p in parts)
        raise UndoRefused(f"batch {batch_id!r} has no join to take back ({states_now})",
                          f"`hf log {batch_id}` shows what happened to it")
    join = _last_join(ws, batch, joined)
    taken = [p for p in joined if p.joined_commit == join]
    joined_after = _last_join(ws, batch, [p for p in joined if p.joined_commit != join]) \
        if len(taken) < len(joined) else None
    main = ws.main
    ref = refuse_main_elsewhere(main, batch, UndoRefused, "joined into", join)
    head = main.head() or ""
    plan = UndoPlan(batch, join, [p.name for p in taken], ref, head, RECORDS,
                    joined_after=joined_after)
    repo = ws.repo
    if not _is_join_commit(ws, batch, join):
        return plan  # the join brought nothing and made no commit
    parent = repo.commit_parents(join)[0]
    changes = repo.diff_trees(repo.tree_of(parent), repo.tree_of(join))
    if head != join and not repo.is_ancestor(join, head):
        _join_left_history(ws, batch, taken, join, head, ref, changes)
        plan.how = REVERT  # (reset past it: main has none of its changes, nothing to write)
        return plan
    _refuse_lost_work(ws, batch, taken, join)
    if head == join and not _published(ws, join):
        plan.how, plan.new = FAST, parent
        plan.entries = {c.path: c.old for c in changes}
        plan.old_entries = {c.path: c.new for c in changes}
        return plan
    plan.how = REVERT
    back = [("undo", Change(c.path, c.new, c.old)) for c in changes]
    plan.entries, plan.merged = _merged(ws, batch, join, head, back)
    now_at = repo.entries_at(head, list(plan.entries))
    plan.old_entries = {p: now_at.get(p) for p in plan.entries}
    return plan


def _published(ws: Workspace, join: str) -> bool:
    """Whether a remote-tracking branch holds the join (`hf publish`, `git push`):
    others may have it, so it is taken back by a revert commit on top, which can be
    pushed, not by moving the branch back, which would rewrite what they have."""
    found = ws.repo.git(["for-each-ref", "--count=1", "--contains", join,
                         "--format=%(refname)", "refs/remotes/"])
    return bool(found.strip())


def _join_left_history(ws: Workspace, batch: Batch, taken: list[Part], join: str, head: str,
                       ref: str, changes: list[Change]) -> None:
    """The join commit is not in the branch's history any more. Reset past it (main
    has none of its changes): only the records are taken back, so that the batch
    can be joined again (nothing else brings its parts back). Rewritten (amended,
    rebased: main has its changes under another commit) or in part: refused, with
    the commit that now carries them where one says so."""
    repo = ws.repo
    branch = ref.removeprefix("refs/heads/")
    now = repo.entries_at(head, [c.path for c in changes])
    carried = [c for c in changes if now.get(c.path) == c.new]
    if not carried:  # (a path main changed since in its own way is not the join's)
        _refuse_lost_work(ws, batch, taken, join)
        return
    # (a batch id is letters, digits and dashes: nothing a regex reads otherwise)
    carrier = repo.git(["log", "-1", "--format=%H", f"--grep=^Hf-Batch: {batch.id}$",
                        head, "--"]).decode().strip()
    still = len(carried) == len(changes)
    raise UndoRefused(
        f"the join commit {join[:12]} of batch {batch.id!r} is not in the history of {ref} "
        "any more, but " + ("all" if still else "some") + " of its changes are (the branch "
        "was rewritten: an amend, a rebase)",
        (f"`git revert {carrier[:12]}` takes back the commit that carries them now (it names "
         "the batch); " if carrier else
         f"`git log -- {shlex.quote(str(carried[0].path))}` finds the commit that carries them "
         "now, `git revert` it; ") +
        f"`git reflog {branch}` shows where the branch went")


def _last_join(ws: Workspace, batch: Batch, joined: list[Part]) -> str:
    """The newest of the commits `joined` were joined in: the batch's own when it
    is one of them, else the one no other has in its history."""
    commits = list(dict.fromkeys(p.joined_commit for p in joined if p.joined_commit))
    if batch.joined_commit in commits:
        return batch.joined_commit
    newest = commits[0]
    for commit in commits[1:]:
        if ws.repo.is_ancestor(newest, commit):
            newest = commit
    return newest


def _is_join_commit(ws: Workspace, batch: Batch, commit: str) -> bool:
    """Whether `commit` is a join of `batch` (its `Hf-Batch:` trailer), not the HEAD
    a join that brought nothing marked its parts with."""
    return f"Hf-Batch: {batch.id}" in trailers(ws.repo.commit_message(commit))


def _refuse_lost_work(ws: Workspace, batch: Batch, taken: list[Part], join: str) -> None:
    """Refuse when a part's result (what the join took from it) is held by no ref
    but the target branch: its branch was removed (`hf gc`, by hand) and nothing
    else keeps it. Taken back, the part would be done with nothing to join again,
    and on the fast path its work would be left to the reflog (docs/decisions.md)."""
    results = join_results(ws, join)
    lost = []
    for part in taken:
        result = results.get(part.name)
        if result is None or not ws.repo.has_object(result):
            lost.append((part, result))
            continue
        holders = ws.main.git(["for-each-ref", f"--contains={result}",
                               "--format=%(refname)"]).decode("utf-8", "replace").split()
        if not [r for r in holders if r != batch.target_ref]:
            lost.append((part, result))
    if not lost:
        return
    first, result = lost[0]
    restore = (f"restore the branches from the join's Hf-Part trailers (`git branch "
               f"{first.branch} {result[:12]}`, and so for the others), then run "
               f"`hf undo {batch.id}` again, or " if result is not None else "")
    raise UndoRefused(
        f"batch {batch.id!r}: the branch of {', '.join(p.name for p, _ in lost)} was removed "
        f"and the join commit {join[:12]} is the only place that work is kept; taking it "
        "back would leave it nowhere else",
        f"{restore}take the changes back by hand with `git revert {join[:12]}`")


def _merged(ws: Workspace, batch: Batch, join: str, head: str,
            back: list[tuple[str, Change]]) -> tuple[dict[RepoPath, Entry | None],
                                                     list[RepoPath]]:
    """The revert's entries: each affected path back to the join's parent, merged
    three-way (the join's version, main's now, the parent's) where main changed it
    since; a conflict refuses, naming the files."""
    from hf_fanout.orchestrator.merge import combine

    try:
        with tempfile.TemporaryDirectory(prefix="hf-undo-") as scratch:
            return combine(ws, False, head, back, Path(scratch))
    except MergeConflict as exc:
        conflicts = exc.details.get("conflicts", []) if isinstance(exc.details, dict) else []
        paths = [str(c.get("path")) for c in conflicts]
        raise UndoRefused(
            f"main changed {len(paths)} file(s) of batch {batch.id!r} since its join, and "
            f"taking the join back conflicts with that: {listing(paths)}",
            f"take it back by hand: `git revert {join[:12]}`, resolve, commit; then the "
            f"parts' records stay joined", details={"conflicts": conflicts}) from None


def _refuse_main_edits(ws: Workspace, plan: UndoPlan) -> None:
    """Refuse when the main tree has uncommitted edits on a path the undo writes."""
    if not plan.entries:
        return
    dirty = ws.main.status_paths(list(plan.entries), in_head={
        p: e for p, e in plan.old_entries.items() if e is not None})
    if dirty:
        raise UndoRefused(
            "the main tree has uncommitted edits on paths this undo would write: "
            + listing(dirty), "commit or stash those edits in the main tree, then undo again",
            details={"paths": sorted(dirty)})
    hidden = ws.main.hidden_edits(plan.entries)
    if hidden:
        raise UndoRefused(hidden_edits_line("undo", hidden), hidden_edits_hint("undo"),
                          details={"paths": sorted(hidden)})
    ignored = ws.main.ignored_in_the_way(plan.entries)
    if ignored:
        raise UndoRefused(
            "the main tree has files git ignores where this undo writes files back: "
            + listing(ignored) + " (the undo would overwrite them)",
            f"move them aside (`mv -- {shell_word(ignored[0])} "
            f"{shell_word(ignored[0] + '.mine')}`), then undo again",
            details={"paths": ignored})


def _revert_message(plan: UndoPlan) -> str:
    return (f"hf: undo batch {plan.batch.id} ({', '.join(plan.parts)})\n\n"
            f"This takes back the join {plan.join}.\n\n"
            f"Hf-Batch: {plan.batch.id}\nHf-Undo: {plan.join}\n")


def _write(ws: Workspace, plan: UndoPlan, held: Any) -> None:
    """The undo's writes (holding both locks), as a join makes them."""
    from hf_fanout.orchestrator.join_write import MainChange, apply_change

    repo = ws.repo
    _refuse_main_edits(ws, plan)
    if plan.how == REVERT:
        tree = repo.build_tree(repo.tree_of(plan.head), plan.entries)
        plan.new = repo.commit_tree(tree, [plan.head], _revert_message(plan), sign=True)
        repo.write_held_objects()  # before a ref names it
    assert plan.new is not None
    new = plan.new
    change = MainChange(
        action="undo", batch=plan.batch.id, parts=plan.parts, ref=plan.ref, old=plan.head,
        new=new, old_entries=plan.old_entries, new_entries=plan.entries,
        staged_before=ws.main.staged_paths(plan.head),
        extra={"join": plan.join, "joined_after": plan.joined_after, "how": plan.how})
    apply_change(ws, held, change, landed=lambda: _mark(ws, plan, new))


def _mark(ws: Workspace, plan: UndoPlan, commit: str) -> None:
    """The records: the parts back to done, the batch running (audit `undo`)."""
    states.mark_undone(ws, plan.batch.id, plan.parts, plan.join, plan.joined_after,
                       commit=commit, how=plan.how)
