"""`hf drop` and `hf gc`: abandon a batch; remove what joined or dropped batches left.

A worktree that stays (gc keeps it, or a dropped part until gc) loses the agent
hooks hf wrote into it: the part no longer reports.

gc never removes a part whose changes are not in the main branch. Join brings
files, not commits, so "in the main branch" is a content comparison: every
path the part changed (committed or not) has the part's content at the main
branch's tip. With --force such a part goes too, but only once a rescue ref
holds its work.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import timefmt
from hf_fanout.core import states
from hf_fanout.core.records import (
    DROPPED,
    JOINED,
    RUNNING,
    Batch,
    Part,
    collected,
    ended_at,
    now,
    part_base,
)
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import GitFailed, HfError
from hf_fanout.guard import mainhook
from hf_fanout.liveness import heartbeat, judge, rescue
from hf_fanout.orchestrator import remote_parts, taken_gc
from hf_fanout.orchestrator.boundary import refuse_inside_part
from hf_fanout.orchestrator.safety import target_of, unintegrated_work
from hf_fanout.paths import shell_word, shown_path
from hf_fanout.tabs.isolated import Isolated
from hf_fanout.worktrees import refs, removal
from hf_fanout.worktrees.repository import Repository
from hf_fanout.worktrees.scan import filled_submodules


def drop_part(ws: Workspace, batch_id: str, name: str, *, dry_run: bool) -> Part:
    """Leave one part out of its batch for good: the join goes on without it (the
    others need not wait for it, no --partial needed); its worktree and branch stay
    until `hf gc` collects the batch, which keeps them while they hold work that is
    not in main (unless --force, after a rescue ref)."""
    if not dry_run:
        refuse_inside_part(f"hf drop {batch_id}/{name}")
    batch = ws.store.load_batch(batch_id)
    part = ws.store.load_part(batch_id, name)
    ws.store.load_parts(batch)  # (a batch with a damaged record refuses before any change)
    if judge.worker_alive(part):
        raise HfError(f"part {batch_id}/{name} has a live worker "
                      f"(pid {(part.worker or {}).get('pid')})",
                      f"end it first: hf stop {batch_id}/{name}")
    states.check(part, DROPPED)
    if dry_run or part.state == DROPPED:
        return part
    fresh, _ = states.change(ws, batch_id, name, DROPPED, action="drop-part",
                             when=lambda p: not judge.worker_alive(p))
    remove_agent_hooks(fresh)
    parts = ws.store.load_parts(batch)
    if batch.state == RUNNING and all(p.state in (JOINED, DROPPED) for p in parts):
        joined = any(p.state == JOINED for p in parts)
        states.change_batch(ws, batch_id, JOINED if joined else DROPPED,
                            action="batch-joined" if joined else "drop")
    return fresh


def drop(ws: Workspace, batch_id: str, *, dry_run: bool) -> Batch:
    if not dry_run:
        refuse_inside_part(f"hf drop {batch_id}")
    batch = ws.store.load_batch(batch_id)
    if batch.state == JOINED:
        raise HfError(f"batch {batch_id!r} is joined; there is nothing to drop",
                      f"`hf gc {batch_id}` removes its worktrees and branches")
    live = [p.name for p in ws.store.load_parts(batch) if judge.worker_alive(p)]
    if live:
        raise HfError(f"batch {batch_id!r} still has live workers: {', '.join(live)}",
                      f"end them first: hf stop {batch_id}")
    if dry_run or batch.state == DROPPED:
        return batch
    dropped, _ = states.change_batch(ws, batch_id, DROPPED, action="drop")
    for part in ws.store.load_parts(dropped):
        remove_agent_hooks(part)
    mainhook.settle(ws)
    return dropped


def remove_agent_hooks(part: Part) -> str:
    """hf's agent hook entries out of a worktree that stays (see
    tabs/agent_hooks.remove_claude): "removed", "cleaned" or "" (none there, or a
    settings file hf cannot read, which it leaves as it is)."""
    from hf_fanout.tabs import agent_hooks

    hooks = part.extra.get("agent_hooks")
    if not isinstance(hooks, dict) or not Path(part.worktree).is_dir():
        return ""
    try:
        return agent_hooks.remove_claude(Path(part.worktree), bool(hooks.get("created")))
    except (HfError, OSError):
        return ""


@dataclass
class GcPart:
    batch: str
    part: str
    action: str  # removed | kept | would-remove
    why: str = ""
    freed_bytes: int = 0
    rescue: str | None = None
    agent_hooks: str = ""  # a kept worktree: hf's hook entries "removed" or "cleaned"


@dataclass
class GcReport:
    parts: list[GcPart] = field(default_factory=list)
    refs_removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    # collected batches older than `forget_after_days` whose records went
    forgotten: list[str] = field(default_factory=list)
    # refs a forgotten batch left that hold work main has not: old name -> new name
    refs_kept: dict[str, str] = field(default_factory=dict)
    # the worktrees of queue entries (`hf next --isolated`), batch "queue", part the entry
    queue: list[GcPart] = field(default_factory=list)
    # batches `hf take` brought here, over where they were split: removed here with
    # their records
    taken_removed: list[str] = field(default_factory=list)
    # remote part branches left on their remote: they moved past what was joined
    # (`REMOTE:REF` -> tip)
    remote_moved: dict[str, str] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        return {"parts": [p.__dict__ for p in self.parts], "refs_removed": self.refs_removed,
                "taken_removed": self.taken_removed,
                "freed_bytes": self.freed_bytes, "forgotten": self.forgotten,
                "refs_kept": self.refs_kept, "remote_moved": self.remote_moved,
                "queue": [p.__dict__ for p in self.queue]}


class _BatchFacts:
    """What every part of one batch is compared with, asked of git once per batch: the
    target branch's tip, and whether a join commit is in its history."""

    def __init__(self, ws: Workspace, batch: Batch) -> None:
        self.ws = ws
        self.target = target_of(ws, batch)
        self._in_target: dict[str, bool] = {}

    def in_target(self, commit: str) -> bool:
        if commit not in self._in_target:
            repo = self.ws.repo
            self._in_target[commit] = (repo.has_object(commit)
                                       and repo.is_ancestor(commit, self.target))
        return self._in_target[commit]


def unintegrated(ws: Workspace, batch: Batch, part: Part, facts: _BatchFacts | None = None,
                 head: str | None = None) -> list[str]:
    """Paths the part changed whose content is not what the main branch has now, nor
    what a join in the main branch's history took from the part (a join merged
    three-way with a main that had moved writes merges, not the part's own files).
    `head`: the worktree's HEAD when the caller has read it."""
    from hf_fanout.core.records import copied_paths
    from hf_fanout.orchestrator.joined_parts import join_results

    facts = facts or _BatchFacts(ws, batch)
    joined = None
    if part.joined_commit and facts.in_target(part.joined_commit):
        joined = join_results(ws, part.joined_commit).get(part.name)
    return unintegrated_work(ws, Path(part.worktree), ws.repo.ref_target(
        f"refs/heads/{part.branch}"), part_base(batch, part),  # base: where `hf sync` left it
        facts.target, exclude=copied_paths(part),
        joined=joined if joined and ws.repo.has_object(joined) else None, head=head)


def gc(ws: Workspace, batch_id: str | None, *, force: bool, dry_run: bool,
       wait: float = 30.0) -> GcReport:
    """Collect joined and dropped batches (one, or all and the queue): under the
    commit lock, so that no join, undo or other gc changes what a part's check
    saw before its worktree and branch go (a dry run changes nothing: no lock)."""
    if dry_run:
        return _collect(ws, batch_id, force=force, dry_run=True)
    refuse_inside_part("hf gc")
    with ws.store.commit_lock(wait):
        return _collect(ws, batch_id, force=force, dry_run=False)


def _collect(ws: Workspace, batch_id: str | None, *, force: bool, dry_run: bool) -> GcReport:
    report = GcReport()
    unreached: list[tuple[str, HfError]] = []  # batches whose remote refs could not go
    ids = [batch_id] if batch_id else ws.store.batch_ids()
    looked_at: list[Path] = []  # the parts' worktrees: git forgets those that are gone
    for bid in ids:
        batch = ws.store.load_batch(bid)
        where = None
        if batch.state == RUNNING and taken_gc.taken_remote(batch):
            # taken here from a remote: collected here once it is over where it was split
            where = taken_gc.elsewhere(ws, batch, ws.store.load_parts(batch))
            if not where.over:
                if batch_id:
                    source = taken_gc.taken_remote(batch)
                    raise HfError(f"batch {bid!r} was taken from {source}: {where.why}",
                                  f"`hf gc {bid}` again once {source} answers (`git "
                                  f"ls-remote {source}` tries it)" if where.unreached else
                                  "finish its parts with `hf done`; once the machine that "
                                  f"split it joined it, `hf gc {bid}` here removes it")
                continue
        elif batch.state not in (JOINED, DROPPED):
            if batch_id:
                raise HfError(f"batch {bid!r} is {batch.state}; gc only removes joined or "
                              "dropped batches",
                              f"join it (`hf join {bid}`) or abandon it (`hf drop {bid}`)")
            continue
        if collected(batch) and not batch_id:
            continue  # collected before: only its record is left, for `hf status --all`
        facts = _BatchFacts(ws, batch)
        parts = ws.store.load_parts(batch)
        looked_at += [Path(p.worktree) for p in parts]
        deletions = removal.Deletions()  # each part's files go while the next is checked
        try:
            cwds = working_dirs()
            done = [_gc_part(ws, batch, part, facts, deletions, cwds, force=force,
                             dry_run=dry_run, where=where) for part in parts]
            _count_freed(deletions, parts, done)
        finally:
            deletions.close()
        report.parts += done
        if not dry_run and done:
            ws.store.audit("gc", batch=bid, parts=[p.part for p in done],
                           actions={p.part: p.action for p in done},
                           freed_bytes=sum(p.freed_bytes for p in done))
        if where is not None and not dry_run and all(p.action in ("removed", "gone")
                                                     for p in done):
            _remove_batch_folder(batch)
            # its records go (the batch lives where it was split), through the one way
            # of forgetting a batch: its baseline, rescue refs kept aside if not in main
            from hf_fanout.orchestrator.forget import forget_batch

            forgotten = forget_batch(ws, batch, f"taken: {where.why}")
            report.refs_removed += forgotten.refs_removed
            report.refs_kept.update(forgotten.refs_kept)
            ws.store.audit("gc-taken", batch=bid, why=where.why)
            report.taken_removed.append(bid)
            continue
        if not dry_run and all(p.action in ("removed", "gone") for p in done):
            report.refs_removed += _stale_refs(ws, batch)
            # what hf wrote on the remotes of parts worked elsewhere (only that); a
            # remote that does not answer leaves them, and the batch uncollected, for
            # the next gc: the other batches are collected all the same
            try:
                removed = remote_parts.remove_remote_refs(ws, batch, dry_run=False,
                                                          force=force)
                report.refs_removed += removed.gone
                report.remote_moved.update(removed.moved)
            except HfError as exc:
                unreached.append((bid, exc))
                continue
            _remove_batch_folder(batch)
            if "gc_at" not in batch.extra:
                states.change_batch(ws, bid, None, action="gc-batch",
                                    update=lambda b: b.extra.__setitem__("gc_at", now()))
    if batch_id is None:
        report.queue = _gc_queue(ws, force=force, dry_run=dry_run)
    if not dry_run:
        _forget_old(ws, None if batch_id is None else [batch_id], report)
        ws.repo.forget_missing_worktrees(looked_at)
        refs.prune_empty_folders(ws.repo.common_dir, "refs/hf")  # (git leaves `refs/hf/`)
        _maybe_unregister(ws)
        mainhook.settle(ws)
    report.freed_bytes = sum(p.freed_bytes for p in report.parts + report.queue)
    if unreached:
        bid, why = unreached[0]
        others = f" (and {len(unreached) - 1} more batch(es))" if len(unreached) > 1 else ""
        raise HfError(f"batch {bid}'s refs on its remote are left{others}: {why.message}; "
                      "all else was collected",
                      f"once the remote answers (`git ls-remote` it), `hf gc {bid}` again "
                      "removes them")
    return report


def _gc_queue(ws: Workspace, *, force: bool, dry_run: bool) -> list[GcPart]:
    """The worktrees of queue entries: removed with their branch once nothing works in
    them and their work is in main (the same gate as a part's, `--force` the same)."""
    from hf_fanout.tabs import isolated, queue

    found = isolated.found(ws)
    if not found:
        return []
    states = {e.id: e.state for e in queue.entries(ws, tidy=False)}
    cwds = working_dirs()
    done = []
    for item in found:
        result = _gc_isolated(ws, item, states.get(item.entry), cwds, force=force,
                              dry_run=dry_run)
        if not dry_run and result.action != "kept":
            ws.store.audit("gc-queue", entry=item.entry, outcome=result.action,
                           freed_bytes=result.freed_bytes, rescue=result.rescue)
        done.append(result)
    return done


def working_dirs() -> list[tuple[int, Path, str]]:
    """(pid, working directory, name) of every other process we may look at (this
    one and those that started it left out)."""
    from hf_fanout import processes

    return [(pid, Path(cwd), name) for pid, cwd, name in processes.others_cwds()]


def user_of(cwds: list[tuple[int, Path, str]], folder: Path) -> str:
    """Why `folder` may not be removed now: a process works in it (a shell, an
    agent hf did not start, a build); "" when none does."""
    try:
        real = folder.resolve()
    except OSError:
        real = folder
    for pid, cwd, name in cwds:
        if cwd in (folder, real) or folder in cwd.parents or real in cwd.parents:
            return f"in use: pid {pid} ({name}) works in {folder}"
    return ""


def _gc_isolated(ws: Workspace, item: Isolated, state: str | None,
                 cwds: list[tuple[int, Path, str]], *, force: bool, dry_run: bool) -> GcPart:
    from hf_fanout.tabs import isolated

    repo = ws.repo
    path = item.worktree
    where = path if path is not None and path.exists() else None  # None: gone

    def kept(why: str) -> GcPart:
        return GcPart("queue", item.entry, "kept", why)

    if state == "spawned":
        return kept("a taker is opening its tab")
    head = None
    if where is not None:
        in_use = user_of(cwds, where)
        if in_use:
            return kept(in_use)
        head = repo.worktree(where).rev_parse("HEAD")
        if head is None:
            return kept(f"{where} is not a readable git worktree any more; look at its "
                        "files, then remove the directory yourself")
    target = ws.main.head()
    base = repo.merge_base(item.tip, target) if target else None
    if target is None or base is None:
        return kept("its branch shares no history with the main tree's HEAD")
    pending = unintegrated_work(ws, where, item.tip, base, target, head=head)
    if where is not None:
        only_here = _submodule_commits(ws, repo.worktree(where).git_dir, item.branch)
        if only_here:
            return kept(only_here)
    rescue_ref = None
    if pending:
        listing = ", ".join(pending[:5]) + (f" (+{len(pending) - 5} more)"
                                            if len(pending) > 5 else "")
        if not force:
            return kept(f"changes not in {ws.main.head_ref()}: {listing} (--force removes it "
                        "after saving a rescue ref)")
        if not dry_run:
            try:
                saved = rescue.save_worktree(
                    ws, where, item.branch, isolated.rescue_ref(item.entry), "gc --force",
                    f"hf rescue: queue entry {item.entry}", f"Hf-Queue-Entry: {item.entry}")
            except HfError as exc:
                return kept(f"could not save a rescue ref: {exc.message}")
            rescue_ref = saved["ref"]
            if not rescue_ref or not repo.ref_exists(rescue_ref):
                return kept("could not save a rescue ref")
            ws.store.audit("rescue", entry=item.entry, ref=rescue_ref,
                           commit=saved["commit"], uncommitted=saved["uncommitted"],
                           why="gc --force")
    why = "changes not in main; saved at " + str(rescue_ref) if pending else "integrated"
    locked = _branch_locked(repo, item.branch)
    if locked:
        return GcPart("queue", item.entry, "kept", locked, rescue=rescue_ref)
    if dry_run:
        return GcPart("queue", item.entry, "would-remove",
                      "changes not in main (forced)" if pending else "integrated",
                      removal.usage(where) if where is not None else 0)
    freed = 0
    if where is not None:
        freed = _remove_worktree(ws, where)
    else:  # its directory is gone (or is no worktree of this branch): only empty folders
        with contextlib.suppress(HfError):
            _remove_empty_folders(path or isolated.path_of(ws, item.entry))
    why += _branch_left(item.branch, repo.delete_branch(item.branch))
    return GcPart("queue", item.entry, "removed", why, freed, rescue_ref)


def _branch_locked(repo: Repository, branch: str) -> str:
    """Why a removal would stop at the branch (its lock file is there), or ''. The
    part is kept whole: the next gc removes it once the lock file is gone."""
    lock = repo.branch_lock(branch)
    if lock is None:
        return ""
    return (f"its branch {branch} is locked by {shown_path(str(lock))} (a git command "
            "updating it, or one killed there): once no git command runs there, delete "
            "that file, then `hf gc` again")


def _branch_left(branch: str, said: str | None) -> str:
    """What a removal says when git would not delete the branch after all."""
    if said is None:
        return ""
    return (f"; but its branch is still there (git said: {said.rstrip('.')}): once no "
            f"git command runs there, `git branch -D {branch}`")


def _nested_repositories(worktree: Path, pending: list[str]) -> list[str]:
    """The paths of `pending` that are git repositories inside `worktree` (a clone,
    a `git init` of the agent's): a rescue ref records each as a gitlink, a commit
    id this repository does not have."""
    return [path for path in pending
            if (worktree / path).is_dir() and not (worktree / path).is_symlink()
            and os.path.lexists(worktree / path / ".git")]


def _submodule_checkouts(worktree: Path, git_dir: Path, nested: list[str]) -> list[str]:
    """The paths of `nested` that are checkouts of the part's submodules: a `.git`
    file naming a repository below the part's git dir's `modules/`."""
    from hf_fanout.gitlink import gitdir_of

    modules = os.path.realpath(git_dir / "modules") + os.sep
    found = []
    for path in nested:
        try:
            inside = os.path.realpath(gitdir_of(worktree / path)).startswith(modules)
        except OSError:
            inside = False
        if inside and (worktree / path / ".git").is_file():
            found.append(path)
    return found


def _dirty(worktree: Path, checkouts: list[str]) -> list[str]:
    """The submodule checkouts of `checkouts` holding edited or untracked files."""
    if not checkouts:
        return []
    from hf_fanout.worktrees.status import changed

    dirty = {item.path.rstrip("/") for item in changed(worktree, exact=True)
             if item.dirty_submodule}
    return [path for path in checkouts if path in dirty]


def _submodule_commits(ws: Workspace, git_dir: Path, branch: str) -> str:
    """Why a part whose submodule repositories (in its own git dir) hold commits found
    nowhere else is kept, forced or not: removing the worktree would lose them, and
    a rescue ref records a submodule as a commit id only. '' when none do."""
    from hf_fanout.worktrees import submodules

    found = submodules.commits_only_here(git_dir, Path(ws.repo.common_dir))
    if not found:
        return ""
    first = found[0]
    if not first.commits:
        return (f"git cannot read its submodule repository {first.git_dir}; look at it (a "
                "commit there would go with the worktree), then remove the worktree yourself")
    count = len(first.commits)
    said = (f"its submodule {first.name} has {count} commit(s) found nowhere else (the "
            f"newest {first.commits[0][:12]}, in {first.git_dir})")
    if len(found) > 1:
        said += f", and {len(found) - 1} other submodule(s) too"
    main = Path(ws.main.path) / first.name
    if first.main_repository is not None:
        way = (f"keep them in the main tree's submodule, on a branch there (`git -C "
               f"{shell_word(str(main))} fetch {shell_word(str(first.git_dir))} "
               f"{first.commits[0]}:refs/heads/{branch}`)")
    else:
        way = (f"push them somewhere (`git --git-dir={shell_word(str(first.git_dir))} push "
               f"REMOTE {first.commits[0]}:refs/heads/BRANCH`)")
    return f"{said}: {way}, then `hf gc` again"


def _remove_worktree(ws: Workspace, path: Path) -> int:
    """A worktree and its files (git's record of it goes with the one forgetting at the end
    of gc), what earlier removals there left when cut short, and the folders above it
    it leaves empty (the batch's or the queue's, then the folder of worktrees beside
    the repository). Returns the bytes freed."""
    freed = ws.repo.remove_worktree(path) + removal.finish(path.parent)
    _remove_empty_folders(path)
    return freed


def _count_freed(deletions: removal.Deletions, parts: list[Part], done: list[GcPart]) -> None:
    """Once the batch's worktrees are deleted: the bytes each held, what earlier
    removals cut short left beside it, and the folders above it left empty."""
    freed = deletions.wait()
    for part, result in zip(parts, done, strict=True):
        path = Path(part.worktree)
        if path in freed:
            result.freed_bytes = freed[path] + removal.finish(path.parent)
            _remove_empty_folders(path)


def _remove_batch_folder(batch: Batch) -> None:
    """The batch's folder, and the folder of batches beside the repository when it was
    the last one there (only one hf names so, `<repo>.hf`: a worktree root the person
    gave is theirs); first what a removal cut short left in it."""
    if not batch.worktree_root:
        return
    root = Path(batch.worktree_root)
    removal.finish(root)
    for directory in (root, root.parent):
        if directory == root.parent and not directory.name.endswith(".hf"):
            break
        with contextlib.suppress(OSError):
            directory.rmdir()


def _remove_empty_folders(path: Path) -> None:
    """`path` and its batch's folder above it, each only if it is empty, and the
    folder above that if hf names it so (`<repo>.hf`): a worktree root the person
    gave (`--worktree-root`, `worktree_root`) may be theirs, made before hf."""
    for directory in (path, path.parent, path.parent.parent):
        if directory == path.parent.parent and not directory.name.endswith(".hf"):
            break
        with contextlib.suppress(OSError):
            directory.rmdir()


def _gc_part(ws: Workspace, batch: Batch, part: Part, facts: _BatchFacts,
             deletions: removal.Deletions, cwds: list[tuple[int, Path, str]], *,
             force: bool, dry_run: bool, where: taken_gc.Elsewhere | None = None) -> GcPart:
    """One part: kept (saying why), or removed: its worktree moved aside for
    `deletions` to delete (its freed bytes are counted once they are gone), its
    branch and heartbeat deleted, its record marked collected."""
    repo = ws.repo
    worktree = Path(part.worktree)
    has_branch = repo.ref_exists(f"refs/heads/{part.branch}")
    if not worktree.exists() and not has_branch:
        if not dry_run:
            from hf_fanout.guard import sandbox

            sandbox.forget_part(Path(repo.common_dir), part)
        # what a removal cut short left of its files (counted: they go now)
        left = removal.aside_of(worktree)
        if not os.path.lexists(left):
            return GcPart(batch.id, part.name, "gone", "already removed")
        freed = removal.usage(left) if dry_run else removal.delete_folder(left)
        return GcPart(batch.id, part.name, "gone", "already removed; what a removal cut "
                      "short left of its files " + ("would go" if dry_run else "went"), freed)
    if judge.worker_alive(part):
        return GcPart(batch.id, part.name, "kept", "its worker is alive; `hf stop` it first")
    in_use = user_of(cwds, worktree)
    if in_use:
        return GcPart(batch.id, part.name, "kept", in_use)

    def unreadable(said: str = "") -> GcPart:
        return GcPart(batch.id, part.name, "kept",
                      f"{worktree} is not a readable git worktree any more{said}; look at "
                      "its files, then remove the directory yourself")

    head = None
    if worktree.is_dir():
        checkout = ws.repo.worktree(worktree)
        if not checkout.is_linked_here():  # (no git runs there: its config runs programs)
            return unreadable(" (not linked to this repository: its .git is another "
                              "repository's, or gone)")
        head = checkout.head()

    if worktree.is_dir() and head is None:
        # files hf cannot read as a worktree (its git metadata is gone): they may
        # hold work nobody committed, and no rescue ref can be made of them
        return unreadable()
    try:
        # a taken part: its changes must be in what it pushed, or in the joined result
        pending = (taken_gc.not_elsewhere(ws, batch, part, where) if where is not None
                   else unintegrated(ws, batch, part, facts, head))
    except GitFailed as exc:
        if head is None:
            raise
        return unreadable(f" ({exc.message})")  # (its HEAD reads, git cannot read the rest)
    if worktree.is_dir():
        only_here = _submodule_commits(ws, checkout.git_dir, part.branch)
        if only_here:
            return GcPart(batch.id, part.name, "kept", only_here,
                          agent_hooks="" if dry_run else remove_agent_hooks(part))
    rescue_ref = None
    if pending:
        listing = ", ".join(pending[:5]) + (f" (+{len(pending) - 5} more)"
                                            if len(pending) > 5 else "")
        nested = _nested_repositories(worktree, pending)
        # a submodule's checkout (its repository in the part's git dir, whose commits
        # were looked at above): kept while it holds work of its own, uncommitted
        checkouts = _submodule_checkouts(worktree, checkout.git_dir, nested) if nested else []
        nested = [path for path in nested if path not in checkouts]
        checkouts = _dirty(worktree, checkouts)
        if checkouts:
            first = shell_word(str(worktree / checkouts[0]))
            return GcPart(batch.id, part.name, "kept",
                          f"work inside submodule checkout(s) {', '.join(checkouts[:5])}, "
                          "whose repository goes with the worktree: commit it there (`git "
                          f"-C {first} add -A && git -C {first} commit -qm 'work left in "
                          f"{part.batch}/{part.name}'`), then `hf gc` names how to keep "
                          "that commit",
                          agent_hooks="" if dry_run else remove_agent_hooks(part))
        if not force:
            return GcPart(batch.id, part.name, "kept",
                          (f"changes only here (not pushed by `hf done`, not in the joined "
                           f"result): {listing}" if where is not None else
                           f"changes not in {batch.target_ref}: {listing}")
                          + " (--force removes it after saving a rescue ref)",
                          agent_hooks="" if dry_run else remove_agent_hooks(part))
        if nested:
            return GcPart(batch.id, part.name, "kept",
                          f"it holds a git repository of its own ({', '.join(nested[:5])}): "
                          "a rescue ref cannot hold that repository's commits or files; move "
                          "it out of the worktree, then `hf gc --force` again",
                          agent_hooks="" if dry_run else remove_agent_hooks(part))
        filled = [p for p in filled_submodules(worktree) if p in pending]
        if filled:
            return GcPart(batch.id, part.name, "kept",
                          "files in the folder of submodule(s) "
                          f"{', '.join(shown_path(p) for p in filled[:5])}, which "
                          "is not checked out: a rescue ref records a submodule as its commit, "
                          "never files in its folder; move them out of the worktree, then "
                          "`hf gc --force` again",
                          agent_hooks="" if dry_run else remove_agent_hooks(part))
        if not dry_run:
            try:
                saved = rescue.rescue(ws, part, "gc --force")
            except HfError as exc:
                # no rescue ref, no removal; the other parts are still collected
                return GcPart(batch.id, part.name, "kept",
                              f"could not save a rescue ref: {exc.message}")
            rescue_ref = saved["ref"]
            if not rescue_ref or not repo.ref_exists(rescue_ref):
                return GcPart(batch.id, part.name, "kept", "could not save a rescue ref")
    locked = _branch_locked(repo, part.branch)
    if locked:
        return GcPart(batch.id, part.name, "kept", locked, rescue=rescue_ref,
                      agent_hooks="" if dry_run else remove_agent_hooks(part))
    if dry_run:
        return GcPart(batch.id, part.name, "would-remove",
                      "changes not in main (forced)" if pending else "integrated",
                      removal.usage(worktree))
    # what the part committed in its sandbox joins the shared object store first:
    # the join's commit and the rescue refs may need it
    from hf_fanout.guard import sandbox

    sandbox.forget_part(Path(repo.common_dir), part)
    deletions.start(worktree)
    branch_left = _branch_left(part.branch, repo.delete_branch(part.branch))
    with contextlib.suppress(FileNotFoundError):
        heartbeat.heartbeat_file(ws.store, batch.id, part.name).unlink()
    with ws.store.state_lock():
        fresh = ws.store.load_part(batch.id, part.name)
        fresh.extra["gc_at"] = now()
        ws.store.save_part(fresh)
    return GcPart(batch.id, part.name, "removed",
                  ("changes not in main; saved at " + str(rescue_ref) if pending
                   else "integrated") + branch_left, 0, rescue_ref)


def _forget_old(ws: Workspace, only: list[str] | None, report: GcReport) -> None:
    """The collected batches that ended more than `forget_after_days` (default 14)
    ago, forgotten (orchestrator/forget.py)."""
    from hf_fanout.orchestrator.forget import forget_batch

    days = ws.settings.number("forget_after_days", 14)
    cutoff = timefmt.now() - days * 86400
    for bid in only if only is not None else ws.store.batch_ids():
        with contextlib.suppress(HfError):
            batch = ws.store.load_batch(bid)
            ended = timefmt.parse_iso(ended_at(batch))
            if collected(batch) and ended is not None and ended < cutoff:
                done = forget_batch(ws, batch, f"ended over {days:g} days ago")
                report.forgotten.append(bid)
                report.refs_removed += done.refs_removed
                report.refs_kept.update(done.refs_kept)


def _stale_refs(ws: Workspace, batch: Batch) -> list[str]:
    """The join's result refs of a batch that is gone (rescue refs are kept)."""
    prefix = f"refs/hf/results/{batch.id}/"
    listing = ws.main.git(["for-each-ref", "--format=%(refname)", prefix])
    refs = [r for r in listing.decode().splitlines() if r]
    ws.repo.delete_refs(refs)
    return refs


def _maybe_unregister(ws: Workspace) -> None:
    from hf_fanout import registry

    for bid in ws.store.batch_ids():
        with contextlib.suppress(HfError):
            if ws.store.load_batch(bid).state == RUNNING:
                return
    registry.unregister(ws.repo.common_dir)
