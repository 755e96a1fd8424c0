"""Planning a join, without writing anything: each done part's result (its branch
tip and what is uncommitted in its worktree, read as `git add -A` would), the
refusals (a path outside ownership, two parts on one path, a gitlink, edits in
the main tree on an affected path), and the entries to write (merged three-way
when main moved: merge.py)."""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hf_fanout.core.ownership import Ownership
from hf_fanout.core.records import DONE, DROPPED, JOINED, Batch, Part, part_base
from hf_fanout.core.remote_refs import remote_of
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import (
    GitFailed,
    HfError,
    JoinRefused,
    LockBusy,
    OwnershipViolation,
)
from hf_fanout.guard import fingerprint
from hf_fanout.orchestrator.merge import combine
from hf_fanout.paths import RepoPath, shell_word, shown_path
from hf_fanout.preload import preload
from hf_fanout.worktrees import refs
from hf_fanout.worktrees.repository import Worktree
from hf_fanout.worktrees.scan import WorktreeScan
from hf_fanout.worktrees.zparse import MODE_GITLINK, MODE_SYMLINK, Change, Entry


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
    allow_outside_links: bool = False
    # the commit's parents: main and every part's result (not main alone)
    keep_history: bool = False
    # parts that committed while the join wrote: not in the join, left unjoined
    late: list[str] = field(default_factory=list)
    # with keep_history, after the join: part -> `moved` (its branch now at the commit
    # of its uncommitted work) or why its branch stayed (orchestrator/join_history.py)
    branches: dict[str, str] = field(default_factory=dict)

    @property
    def parts(self) -> list[Part]:
        return [r.part for r in self.results]

    def on_head(self, head: str) -> bool:
        """Every part starts from `head`: main has not moved under any of them."""
        return _on_head(self.batch, self.parts, head)

    def to_data(self) -> dict[str, Any]:
        return {
            "batch": self.batch.id,
            "head": self.head,
            "ref": self.target_ref,
            "parts": [r.to_data() for r in self.results],
            "affected": sorted(self.entries),
            "merged": self.merged,
            "noop": self.noop,
            "keep_history": self.keep_history,
            "late": self.late,
            "branches": self.branches,
        }


def select_parts(ws: Workspace, batch: Batch, partial: bool,
                 fetched: dict[str, str] | None = None) -> list[Part]:
    """The parts the join takes (refused unless every one is done, or `partial`);
    a remote part in `fetched` (a dry run's) counts as done."""
    every = ws.store.load_parts(batch)
    parts = [replace(p, state=DONE) if fetched and p.name in fetched else p
             for p in every if p.state not in (JOINED, DROPPED)]
    not_done = [p for p in parts if p.state != DONE]
    if not_done and not partial:
        listing = ", ".join(f"{p.name} ({p.state})" for p in not_done)
        first = not_done[0]
        remote = [p.name for p in not_done if remote_of(p)]
        raise JoinRefused(f"not every part is done: {listing}",
                          f"finish them (in each part's worktree `hf done`, or from here "
                          f"`hf done {first.batch}/{first.name}`), or join the done ones: "
                          f"`hf join {batch.id} --partial`" + (
                              f"; a remote part ({', '.join(remote)}) is done once `hf done` "
                              "ran where it is worked" if remote else ""),
                          details={"not_done": [p.name for p in not_done]})
    chosen = [p for p in parts if p.state == DONE]
    if not chosen:
        joined = [p for p in every if p.state == JOINED]
        raise JoinRefused(
            f"no part of batch {batch.id!r} is done yet" + (
                f" (joined before: {', '.join(p.name for p in joined)})" if joined else ""),
            "mark finished parts with `hf done` first" + (
                f"; a part joined before is not joined again: work it got since (pushed by "
                f"`hf done` where it is worked, or committed here) is offered to the next "
                f"join by `hf done {joined[0].batch}/{joined[0].name}` here "
                "(`hf status` says which have some)" if joined else ""))
    return chosen


def plan_join(ws: Workspace, batch_id: str, *, partial: bool = False,
              check_main: bool = True, allow_outside_links: bool = False,
              keep_history: bool = False,
              fetched: dict[str, str] | None = None) -> JoinPlan:
    """What joining `batch_id` would write, or a refusal (nothing is written).

    `check_main=False` leaves out the check for main-tree edits on the
    affected paths: `execute_join` makes it under the commit lock anyway.
    `fetched` (a dry run's): remote parts' tips fetched but not on their branches.
    """
    batch = ws.store.load_batch(batch_id)
    main = ws.main
    head = main.head()
    if batch.state == JOINED:
        return JoinPlan(batch, head or "", batch.target_ref, [], noop=True, partial=partial)
    if batch.state != "running":
        raise JoinRefused(f"batch {batch.id!r} is {batch.state}", "only running batches join")
    ref = refuse_main_elsewhere(main, batch, JoinRefused, "split from", batch.base)
    if head is None:
        branch = ref.removeprefix("refs/heads/")
        raise JoinRefused(f"the main tree's branch {branch} has no commit yet: the join has "
                          "no commit to go on", "make its first commit (`git commit "
                          "--allow-empty -m start`), then run the same hf command again")
    fetched = fetched or {}
    parts = select_parts(ws, batch, partial, fetched)
    missing = [p for p in parts if not Path(p.worktree).is_dir() and remote_of(p) is None]
    if missing:
        first = missing[0]
        raise JoinRefused(
            "missing worktree: " + ", ".join(f"{p.name} ({p.worktree})" for p in missing),
            "the part's committed work is on its branch: restore the worktree with "
            f"`{restore_command(first)}`{' (and so for the others)' if missing[1:] else ''}, "
            f"or mark the part blocked (`hf blocked {first.batch}/{first.name} --reason ...`) "
            "and join the others with --partial",
        )
    _refuse_foreign_worktrees(ws, parts)
    # git runs config-defined programs: nothing runs in a part's worktree before this
    fingerprint.verify(ws, batch)
    _refuse_forged_objects(ws, batch)

    tips = {p.name: fetched.get(p.name) or _part_tip(ws, p) for p in parts}
    results = _part_results(ws, batch, parts, tips)
    try:
        _refuse_bad_changes(results, {p.name: part_base(batch, p) for p in parts},
                            Path(ws.main.path))
        if not allow_outside_links:
            _refuse_outside_links(ws, results)
        if keep_history:
            _refuse_unowned_history(ws, batch, results, head)
        with tempfile.TemporaryDirectory(prefix="hf-join-") as scratch:
            entries, merged = combine(ws, _on_head(batch, parts, head), head,
                                     [(r.part.name, c) for r in results for c in r.changes],
                                     Path(scratch))
        if check_main:
            refuse_main_edits(ws, list(entries), results)
    except HfError as exc:
        _attach_preview(exc, results)
        raise
    return JoinPlan(batch, head, ref, results, entries, merged, partial=partial,
                    allow_outside_links=allow_outside_links, keep_history=keep_history)


def refuse_main_elsewhere(main: Worktree, batch: Batch, refusal: type[HfError],
                          was: str, detached_at: str) -> str:
    """The main tree's ref, when it is where the batch was split (`was`: "split
    from", "joined into"); refused (`refusal`) while a git merge, rebase or the
    like is under way there, or on another branch, with the way back (for a batch
    of a detached HEAD: to the commit `detached_at`)."""
    busy = main.operation_in_progress()
    if busy is not None:
        what, way = busy
        raise refusal(f"the main tree is in the middle of {what}",
                      f"finish it first: {way}; then run the same hf command again")
    ref = main.head_ref()
    if ref != batch.target_ref:
        back = (f"git switch --detach {detached_at[:12]}" if batch.target_ref == "HEAD"
                else "git switch " + batch.target_ref.removeprefix("refs/heads/"))
        shown = "a detached HEAD" if batch.target_ref == "HEAD" else batch.target_ref
        here = "a detached HEAD" if ref == "HEAD" else ref
        if batch.target_ref != "HEAD" and not main.repository.ref_exists(batch.target_ref):
            _refuse_gone_target(batch, refusal, was, ref)
        raise refusal(f"the main tree is on {here}, batch {batch.id!r} was {was} {shown}",
                      f"switch the main tree back: `{back}`")
    return ref


def _refuse_gone_target(batch: Batch, refusal: type[HfError], was: str, ref: str) -> None:
    """The branch the batch was split from is gone (renamed, as `master` to `main`):
    the way back names it again, and the rename after the command."""
    old = batch.target_ref.removeprefix("refs/heads/")
    if ref.startswith("refs/heads/"):
        now = ref.removeprefix("refs/heads/")
        way = (f"give {now} its old name for the command: `git branch -m {now} {old}`, "
               f"the same hf command, then `git branch -m {old} {now}`")
    else:
        way = f"make the branch again where the main tree is: `git switch -c {old}`"
    raise refusal(f"batch {batch.id!r} was {was} {batch.target_ref}, which no longer exists "
                  "(renamed or deleted)", way)


def _refuse_foreign_worktrees(ws: Workspace, parts: list[Part]) -> None:
    """Refuse a part whose folder is no longer linked to this repository (its
    `.git` replaced by a repository of its own, or gone): what it holds now is
    in no commit here, and its HEAD says nothing of the part's branch. Read
    from the files alone, before git runs in any worktree."""
    foreign = [p for p in parts if remote_of(p) is None
               and not ws.repo.worktree(Path(p.worktree)).is_linked_here()]
    unlinked = [p for p in foreign if not os.path.lexists(Path(p.worktree) / ".git")]
    if unlinked:
        first = unlinked[0]
        raise JoinRefused(
            "the .git link of a worktree is gone: " + ", ".join(
                f"part {p.name!r} ({p.worktree})" for p in unlinked),
            f"`git worktree repair {shlex.quote(first.worktree)}` puts it back"
            f"{' (and so for the others)' if unlinked[1:] else ''}; then join again")
    if foreign:
        first = foreign[0]
        raise JoinRefused(
            "not a worktree of this repository any more: "
            + ", ".join(f"part {p.name!r} ({p.worktree})" for p in foreign),
            "its files are left as they are (what was committed there is in that folder's "
            "own repository): take what you need from it, then leave the part out of the "
            f"batch: `hf drop {first.batch}/{first.name}`",
        )


def _on_head(batch: Batch, parts: list[Part], head: str) -> bool:
    return all(part_base(batch, p) == head for p in parts)


def restore_command(part: Part) -> str:
    """The commands that bring back a part's deleted worktree on its branch: git
    still has it registered (`prune` clears that), and the new worktree needs
    the guard's hooks again (without them the tamper check refuses the join)."""
    return (f"git worktree prune && git worktree add {shlex.quote(part.worktree)} "
            f"{shlex.quote(part.branch)} && hf guard install {part.batch}/{part.name}")


def _part_tip(ws: Workspace, part: Part) -> str:
    """The part's branch tip; refused unless its worktree is on it.

    Read from git's ref files, before the part is scanned.
    """
    repo = ws.repo
    named = refs.symbolic_ref(repo.common_dir, f"refs/heads/{part.branch}")
    if named is not None:
        last = ws.repo.worktree(Path(part.worktree)).last_head()
        raise JoinRefused(
            f"part {part.name!r}: its branch {part.branch} is a symbolic ref to {named}, "
            "not a branch of its own (a process in the part made it so)",
            (f"point it back at its own last commit: `git update-ref --no-deref "
             f"refs/heads/{part.branch} {last}`" if last else
             f"leave the part out: `hf drop {part.batch}/{part.name}`") + "; then join again")
    tip = repo.ref_target(f"refs/heads/{part.branch}")
    if tip is None:
        last = ws.repo.worktree(Path(part.worktree)).last_head()
        restore = (f"restore it at its last commit: `git update-ref refs/heads/{part.branch} "
                   f"{last}` (from its worktree's reflog), or " if last else "")
        raise JoinRefused(f"part {part.name!r}: its branch {part.branch} is gone",
                          f"{restore}leave the part out of the batch: `hf drop "
                          f"{part.batch}/{part.name}` (its worktree is kept)")
    if isinstance(part.extra.get("sync"), dict):
        # mid-rebase or mid-merge its files hold conflict markers, and the work set
        # aside before git's step is in the sync's refs, not in the worktree
        from hf_fanout import locks

        lock = ws.store.sync_lock_file(part.batch, part.name)
        if locks.is_held(lock):
            raise LockBusy(f"part {part.name!r}: its `hf sync` is running (held by "
                           f"{locks.describe_holder(lock)})",
                           "wait for it to finish, then join again")
        raise JoinRefused(
            f"part {part.name!r}: its `hf sync` is stopped, not finished",
            f"resolve it, then `hf sync {part.batch}/{part.name} --continue`, or take "
            f"it back: `hf sync {part.batch}/{part.name} --abort`")
    worktree = ws.repo.worktree(Path(part.worktree))
    on = worktree.head_branch() if remote_of(part) is None else None
    if on and on != f"refs/heads/{part.branch}":
        raise JoinRefused(
            f"part {part.name!r}: its worktree is on the branch "
            f"{on.removeprefix('refs/heads/')}, not on its own branch {part.branch}",
            f"`git -C {shlex.quote(part.worktree)} switch {part.branch}` puts it back (what "
            f"was committed there since is on {on.removeprefix('refs/heads/')})")
    head = worktree.head() if remote_of(part) is None else tip
    if head != tip:
        where = shlex.quote(part.worktree)
        ahead = head is not None and _descends(ws, tip, head)
        raise JoinRefused(
            f"part {part.name!r}: its worktree is not on its branch {part.branch}"
            + (f" (its HEAD has commits beyond the branch's tip {tip[:12]})" if ahead else ""),
            f"take its HEAD's commits onto the branch: `git -C {where} switch -C "
            f"{part.branch}`" if ahead else
            f"in {part.worktree} run `git switch {part.branch}` (a commit made on "
            f"its HEAD since is left behind: `git -C {where} branch -f {part.branch} HEAD` "
            "first keeps it, in place of the branch's own)",
        )
    return tip


def _descends(ws: Workspace, tip: str, head: str) -> bool:
    """Whether `head` is `tip` or has it in its history (False when git cannot say)."""
    try:
        return ws.repo.is_ancestor(tip, head)
    except GitFailed:
        return False


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
        """The worktree's uncommitted state (a remote part has its fetched tip only)."""
        if remote_of(part) is not None:
            return WorktreeScan({}, {})
        return ws.repo.worktree(Path(part.worktree)).scan(exclude=copied_paths(part))

    # While the scans run (this thread mostly waits on git), load what the write
    # under the lock needs: filelock alone takes about 0.04 s to import.
    preload("filelock", "hf_fanout.orchestrator.journal")
    # a part `hf sync` brought onto main's tip starts from there, not the batch's base
    bases = {p.name: part_base(batch, p) for p in parts}
    with ThreadPoolExecutor(max_workers=1) as side, ThreadPoolExecutor(max_workers=2) as pool:
        # what every part committed: one `diff-tree` per base, beside the scans
        diffs = {base: side.submit(repo.diff_commits, base, [
            tips[name] for name, b in bases.items() if b == base and tips[name] != base])
            for base in sorted(set(bases.values()))}
        scans = [pool.submit(scan, p) for p in parts]
        # while the first scans run (they need this thread only when they end):
        # the base's tree (pygit2 loads now, holding the interpreter lock), then
        # who commits (three small git processes, once; an unknown identity
        # fails later, where a commit is made)
        base_trees = {base: repo.tree_of(base) for base in diffs}
        with contextlib.suppress(GitFailed):
            _ = repo.commit_identity
        return [_result_of(ws, batch, base_trees[bases[part.name]], part, tips[part.name],
                           future.result(), [c.path for c in diffs[bases[part.name]].result()
                                             .get(tips[part.name], [])])
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
    if remote_of(part) is None and ws.repo.worktree(Path(part.worktree)).head() != tip_commit:
        raise JoinRefused(f"part {part.name!r} committed while the join was reading it",
                          "run `hf join` again")
    if scan.dirty_submodules:
        first = shell_word(str(scan.dirty_submodules[0]))
        raise JoinRefused(
            f"part {part.name!r}: work inside submodule(s) {listing(scan.dirty_submodules)} "
            "(changed or untracked files in the submodule's checkout), which a join "
            "cannot take",
            "commit it in the submodule's own repository and change the submodule in the "
            "main tree yourself, outside the batch; or set it aside in the part's worktree "
            f"(`git -C {first} stash -u`), then join again",
            details={"part": part.name, "submodules": scan.dirty_submodules})
    if scan.filled_submodules:
        first = shell_word(str(scan.filled_submodules[0]))
        raise JoinRefused(
            f"part {part.name!r}: files in the folder of submodule(s) "
            f"{listing(scan.filled_submodules)}, which is not checked out in the part: "
            "git records a submodule as its commit, never files in its folder, so a join "
            "cannot take them",
            f"move them out of the submodule's folder, to another folder the part owns or "
            f"out of the worktree (in the part's worktree: `ls -A {first}`); work meant for "
            "the submodule belongs in its own repository; then join again",
            details={"part": part.name, "submodules": scan.filled_submodules})
    tip_tree = repo.tree_of(tip_commit)
    tree = repo.tree_from_scan(tip_tree, scan)
    result_commit = tip_commit
    if tree != tip_tree:
        # Uncommitted work: record it as a commit of its own so the trailer
        # names exactly what was joined and it stays reachable.
        # (an object only: the ref that keeps it is written by the join itself)
        message = f"hf: uncommitted work of part {part.name} at join\n\nHf-Batch: {batch.id}\n"
        result_commit = repo.commit_tree(tree, [tip_commit], message)
    # where the result can differ from the base: what the part committed, and
    # what the scan found on top
    maybe = [*committed, *scan.entries, *scan.links]
    since = _since(part)
    if since is not None:  # what changed since its result that was joined before
        # (in-process: the new tree may be held in memory, not written yet; the two
        # trees can differ only where one of them differs from the base)
        since_tree = repo.tree_of(since)
        maybe += [c.path for c in repo.diff_trees(base_tree, since_tree)]
        return PartResult(part, tip_commit, tree, result_commit,
                          repo.tree_changes(since_tree, tree, maybe))
    return PartResult(part, tip_commit, tree, result_commit,
                      repo.tree_changes(base_tree, tree, maybe))


def _refuse_forged_objects(ws: Workspace, batch: Batch) -> None:
    """A sandboxed part's private object store (the repository reads it while the
    batch runs) holding an object that is not what its name says: refused before
    the join reads anything, naming the files."""
    from hf_fanout.guard.sandbox import forged_objects

    for part in ws.store.load_parts(batch):
        forged = forged_objects(ws.repo.common_dir, part)
        if forged:
            raise JoinRefused(
                f"part {part.name!r}: its private object store holds objects that are not "
                f"what their names say: {listing([str(f) for f in forged])}; git would "
                "show their content under other objects' names (a forged pack or object)",
                f"remove them (`rm -f -- {' '.join(shell_word(str(f)) for f in forged[:4])}`)"
                f", or leave the part out (`hf drop {batch.id}/{part.name}`); look at what "
                "its agent did, then join again",
                details={"part": part.name, "files": [str(f) for f in forged]})


def _attach_preview(exc: HfError, results: list[PartResult]) -> None:
    """What each part would bring, beside a refusal (for --dry-run and people)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    exc.details = {**details, "preview": [r.to_data() for r in results]}


def refuse_main_edits(ws: Workspace, affected: list[RepoPath], results: list[PartResult],
                      dirty: list[RepoPath] | None = None,
                      hidden: list[RepoPath] | None = None) -> None:
    """Refuse when the main tree has uncommitted edits (staged or not, an
    untracked file, one in the way of a folder the join makes, or one in a file
    marked assume-unchanged or skip-worktree) on a path the join would write
    (`dirty`, `hidden`: those paths, when the caller already asked), or a file git
    ignores where the join writes a new one (a path HEAD lacks)."""
    if dirty is None:
        dirty = ws.main.status_paths(affected)
    if dirty:
        exc = JoinRefused(
            "the main tree has uncommitted edits on paths this join would write: "
            + listing(dirty),
            "commit or stash those edits in the main tree, then join again",
            details={"paths": sorted(dirty)},
        )
        _attach_preview(exc, results)
        raise exc
    if hidden is None:
        hidden = ws.main.hidden_edits(affected)
    if hidden:
        exc = JoinRefused(hidden_edits_line("join", hidden), hidden_edits_hint("join"),
                          details={"paths": sorted(hidden)})
        _attach_preview(exc, results)
        raise exc
    ignored = ws.main.ignored_in_the_way(affected)
    if ignored:
        first = shell_word(ignored[0])
        exc = JoinRefused(
            "the main tree has files git ignores where this join writes new files: "
            + listing(ignored) + " (the join would overwrite them, and an undo remove them)",
            f"move them aside (`mv -- {first} {shell_word(ignored[0] + '.mine')}`), then join "
            "again", details={"paths": ignored})
        _attach_preview(exc, results)
        raise exc


def hidden_edits_line(command: str, paths: list[RepoPath]) -> str:
    return ("the main tree has edits `git status` does not show (files marked "
            f"skip-worktree or assume-unchanged) on paths this {command} would write: "
            + listing(paths))


def hidden_edits_hint(command: str) -> str:
    return ("keep a copy of those files, clear the mark (`git update-index "
            "--no-skip-worktree --no-assume-unchanged -- PATH`), commit or stash the "
            f"edits, then {command} again")


def link_escape(path: str, target: bytes) -> str | None:
    """Where a symlink at repository path `path` with `target` points that a join
    should not bring silently: out of the repository, or into `.git`."""
    import posixpath

    text = target.decode("utf-8", "surrogateescape")
    if text.startswith("/"):
        return "an absolute path"
    landed = posixpath.normpath(posixpath.join(posixpath.dirname(path), text))
    if landed == ".." or landed.startswith("../"):
        return "outside the repository"
    if any(part.lower() == ".git" for part in landed.split("/")):
        return "into .git"
    return None


def _refuse_outside_links(ws: Workspace, results: list[PartResult]) -> None:
    """A symlink a part adds or changes that points out of the repository or into
    `.git` is refused (`--allow-outside-symlinks` takes it)."""
    found = []
    for r in results:
        for c in r.changes:
            if c.new is not None and c.new.mode == MODE_SYMLINK:
                where = link_escape(c.path, ws.repo.read_blob(c.new.oid))
                if where is not None:
                    found.append(f"{r.part.name}: {c.path} ({where})")
    if found:
        raise JoinRefused("symbolic links point out of the repository or into .git: "
                          + listing(found),
            "make them point inside the repository, or join with --allow-outside-symlinks "
            "when that is meant", details={"links": found})


def _put_back(result: PartResult, base: str, paths: list[RepoPath]) -> str:
    """Commands that put a part's changes of `paths` back as its base has them, run
    in its worktree: the guard refuses `git restore --source` of files a part does
    not own, and a reversed diff against the base brings back content, mode and
    deleted directories alike. A new file is never just deleted: one that is a
    file of the part's own moved out of its files (the same content, or the only
    one of that name it deleted) is moved back, where the join takes its edits;
    the others are kept in a tar file beside the worktree, then removed. The
    join then sees no change to them."""
    before = {c.path: c.old for c in result.changes}
    shown = paths[:10]
    had = [shell_word(p) for p in shown if before.get(p) is not None]
    moved = _moved_out(result, [p for p in shown if before.get(p) is None], set(paths))
    new = [shell_word(p) for p in shown if before.get(p) is None and p not in moved]
    steps = [f"git diff --binary {base[:12]} -- {' '.join(had)} | git apply -R"] if had else []
    for path, home in moved.items():
        folder = home.rpartition("/")[0]
        steps.append((f"mkdir -p -- {shell_word(folder)} && " if folder else "")
                     + f"mv -- {shell_word(path)} {shell_word(home)}")
    kept = Path(result.part.worktree).parent / f"{result.part.name}.outside.tar"
    if new:
        steps.append(f"tar -rf {shell_word(str(kept))} -- {' '.join(new)} && "
                     f"rm -f -- {' '.join(new)}")
    more = " (and so for the others)" if paths[10:] else ""
    said = "".join(f"; {shown_path(path)} is its {shown_path(home)} moved out of its files, "
                   "moved back" for path, home in list(moved.items())[:3])
    return (f"put them back as the part's base has them, in {result.part.name}'s worktree: "
            f"`{' && '.join(steps)}`{more}{said}"
            + (f"; new files are kept in {shown_path(str(kept))}" if new else ""))


def _moved_out(result: PartResult, new: list[RepoPath],
               outside: set[RepoPath]) -> dict[RepoPath, RepoPath]:
    """The new paths of `new` that are a file the part deleted from its own files,
    moved: the deleted file with the same content, else the only one deleted with
    the same name. New path -> the owned path it came from."""
    gone = [c for c in result.changes if c.new is None and c.old is not None
            and c.path not in outside]
    added = {c.path: c.new for c in result.changes if c.path in set(new)}
    found: dict[RepoPath, RepoPath] = {}
    for path in new:
        entry = added.get(path)
        left = [c for c in gone if c.path not in found.values()]
        same = [c.path for c in left if entry is not None and c.old is not None
                and c.old.oid == entry.oid]
        named = [c.path for c in left if c.path.rpartition("/")[2] == path.rpartition("/")[2]]
        home = same[0] if same else named[0] if len(named) == 1 else None
        if home is not None:
            found[path] = home
    return found


def _refuse_unowned_history(ws: Workspace, batch: Batch, results: list[PartResult],
                            head: str) -> None:
    """With `--keep-history` each part's commits enter main's history: refuse one that
    changes a path its part does not own, even when a later commit of the part
    puts the path back (the squash join takes only the net, owned change; kept,
    that commit would be what `git log`, `git blame`, `git bisect` and `git revert`
    find for the path). The part's commits are enough: what the commit of its
    uncommitted work changes outside its ownership either stays in the net change
    (refused already) or puts back what one of them changed."""
    for r in results:
        base = part_base(batch, r.part)
        if not r.changes or r.tip == base:
            continue  # (not a parent of the join commit, or nothing committed)
        ownership = Ownership.parse(r.part.owns)
        for commit, paths in ws.repo.commits_paths(r.tip, [head, base]).items():
            bad = [p for p in paths if not ownership.owns(p)]
            if bad:
                raise OwnershipViolation(
                    f"part {r.part.name!r}: its commit {commit[:12]} changes paths it does "
                    f"not own: {listing(bad)} (kept history would bring that commit "
                    "into main's)",
                    f"join its net owned changes as one commit: `hf join {batch.id} "
                    "--squash`; or rewrite the part's branch without that change",
                    details={"part": r.part.name, "commit": commit, "paths": bad})


def _refuse_bad_changes(results: list[PartResult], bases: dict[str, str],
                        main: Path) -> None:
    gitlinks = [f"{r.part.name}: {c.path}" for r in results for c in r.changes
                if MODE_GITLINK in (c.old and c.old.mode, c.new and c.new.mode)]
    if gitlinks:
        made = [(r.part.name, c.path) for r in results for c in r.changes
                if c.old is None and c.new is not None and c.new.mode == MODE_GITLINK]
        hint = "change submodules in the main tree yourself, outside the batch"
        moved = [(r.part, c.path, c.new.oid) for r in results for c in r.changes
                 if c.old is not None and c.old.mode == MODE_GITLINK
                 and c.new is not None and c.new.mode == MODE_GITLINK]
        if moved:  # (the commit is in the part's submodule repository, not main's)
            part, path, commit = moved[0]
            inside = shell_word(str(Path(part.worktree) / path))
            there = shell_word(str(main / path))
            hint = (f"{hint}: bring the commit from the part's submodule (`git -C {there} "
                    f"fetch {inside} {commit} && git -C {there} checkout -q {commit}`) and "
                    "commit the new gitlink in the main tree; then, in the part, `git "
                    f"submodule update -- {shell_word(str(path))}` where it is not committed, "
                    f"or `hf sync {part.batch}/{part.name}` where it is")
        if made:  # (a repository an agent made in its part: `cargo new`, `git init`)
            name, path = made[0]
            where = shell_word(str(path).rstrip("/"))
            hint = (f"a repository made inside a part ({name}: {shown_path(path)}) joins as "
                    "plain files once its own git data is gone: `git rm -q --cached "
                    f"--ignore-unmatch {where} && rm -rf {where}/.git` in that part's "
                    f"worktree; {hint}")
        raise JoinRefused("submodule (gitlink) changes cannot be joined: " + listing(gitlinks),
                          hint, details={"paths": gitlinks})
    outside: dict[str, list[RepoPath]] = {}
    for r in results:
        ownership = Ownership.parse(r.part.owns)
        bad = [c.path for c in r.changes if not ownership.owns(c.path)]
        if bad:
            outside[r.part.name] = bad
    if outside:
        text = "; ".join(f"{name}: {listing(paths)}" for name, paths in outside.items())
        first = next(r for r in results if r.part.name in outside)
        remote = any(remote_of(r.part) for r in results if r.part.name in outside)
        raise OwnershipViolation(
            f"changed paths outside the part's ownership: {text}",
            _put_back(first, bases[first.part.name], outside[first.part.name])
            + " (or move the work to the part that owns them), then join again"
            + ("; for a remote part, push the fix to its branch (`hf done` again where "
               "it is worked)" if remote else ""),
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
        raise JoinRefused("two parts changed the same path: " + listing(clashes),
                          "only one part may change a path; fix the ownership and redo one part",
                          details={"paths": clashes})


def _since(part: Part) -> str | None:
    """The result of the part joined before (`_remember_late`), if any."""
    earlier = part.extra.get("joined_result")
    found = earlier.get("result") if isinstance(earlier, dict) else None
    return found if isinstance(found, str) else None


def listing(paths: list[RepoPath] | list[str], limit: int = 10) -> str:
    """Paths for a message: the first `limit`, each on the line as git quotes it."""
    shown = ", ".join(shown_path(p) for p in sorted(paths)[:limit])
    more = len(paths) - limit
    return shown + (f" (and {more} more)" if more > 0 else "")
