"""`hf status`: what every part of every batch has done so far.

Cheap by design: committed work is a tree diff against the base (it grows
with the change); uncommitted work is `git status` of the worktree, which
trusts the index's stat cache and re-hashes nothing that did not change.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hf_fanout import timefmt
from hf_fanout.core import pauses
from hf_fanout.core.records import (
    BLOCKED,
    DONE,
    DROPPED,
    JOINED,
    RUNNING,
    Batch,
    Part,
    collected,
    copied_paths,
    part_base,
)
from hf_fanout.core.remote_refs import remote_of, taken_from
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import GitFailed, StateCorrupt
from hf_fanout.paths import RepoPath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hf_fanout.core.ownership import Ownership

# (what only a batch needs is imported where it is used: `hf status` with no
# batch stays light; tests/test_cli_light.py pins what it loads)


@dataclass
class PartStatus:
    name: str
    state: str
    branch: str
    worktree: str
    changed: int
    outside: int
    outside_paths: list[str]
    last_activity: str
    note: str | None
    reason: str | None
    behind: int = 0  # commits main has that the part's base has not ("main +3")
    since: str = ""  # when the part entered `state`
    agent: dict[str, Any] | None = None  # what the agent last reported (liveness.agent)
    sparse: bool = False  # a sparse checkout: its own files and `context` only
    context: list[str] | None = None
    owned: int | None = None  # files it owns, at its base and added (the board asks)
    # a part worked on another machine: how its remote shows it (remote_parts.Seen)
    remote: dict[str, Any] | None = None
    sync_stopped: bool = False  # its `hf sync` stopped (a conflict, or cut off)
    sync_running: bool = False  # an `hf sync` of it runs right now
    # joined, then committed on: those commits (not in main) and how to bring them
    after_join: int = 0
    after_join_hint: str = ""
    # joined, then its owned files changed in its worktree without a commit
    work_after_join: bool = False
    # its worktree's HEAD is on another branch than its own: that branch
    off_branch: str | None = None


@dataclass
class BatchStatus:
    id: str
    state: str
    base: str
    created: str
    parts: list[PartStatus]
    error: str | None = None
    collected: bool = False  # `hf gc` removed its worktrees and branches
    paused: str | None = None  # the pause in force over it (`hf pause`), described
    # joined, but its join commit is no longer in the target branch's history
    join_left_history: bool = False
    # taken here from this remote (`hf take`): it joins on the machine that split it
    taken_from: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}

    def summary(self) -> str:
        """One line on the whole batch: `2/3 done · 1 waiting · next: hf join b1`."""
        live = [p for p in self.parts if p.state != DROPPED]
        finished = sum(p.state in (DONE, JOINED) for p in live)
        counts: dict[str, int] = {}
        for p in live:
            if p.state not in (DONE, JOINED):
                counts[p.state] = counts.get(p.state, 0) + 1
        words = [f"{finished}/{len(live)} done"] + [f"{n} {state}" for state, n in
                                                     sorted(counts.items())]
        if self.state == JOINED:
            words.append("joined" + (
                f" · its join commit is not in its branch's history any more: `hf undo "
                f"{self.id}` makes its parts done again" if self.join_left_history else ""))
        elif self.state == DROPPED and self.collected:
            words.append("dropped · collected")
        elif self.state == DROPPED:  # (no join takes it: gc keeps what holds work)
            words.append(f"dropped · next: `hf gc {self.id}` removes what is not needed")
        elif live and finished == len(live):
            stray = next((p for p in live if p.outside), None)
            stopped = next((p for p in live if p.sync_stopped or p.sync_running), None)
            if stopped is not None:
                words.append(f"next: part {stopped.name}'s `hf sync` is " + (
                    "running; then `hf join`" if stopped.sync_running else
                    f"stopped: `hf sync {self.id}/{stopped.name} --continue` once its "
                    "files are resolved (or --abort), then `hf join`"))
            elif self.taken_from is not None:
                words.append(f"next: `hf join {self.id}` on the machine that split it (its "
                             f"parts are done on {self.taken_from})")
            else:
                words.append(f"next: `hf join {self.id}`" if stray is None else
                             f"next: part {stray.name} changed {stray.outside} file(s) it "
                             f"does not own; revert them in its worktree, then `hf join "
                             f"{self.id}`")
        elif counts.get("waiting"):
            first = next(p.name for p in live if p.state == "waiting")
            words.append(f"next: part {first} waits for you (`hf open {self.id}/{first}`)")
        return " · ".join(words)


def part_status(ws: Workspace, batch: Batch, part: Part,
                committed: Callable[[], list[RepoPath]],
                output_at: float | None = None, *, owned: bool = False) -> PartStatus:
    """`part`'s status, given the paths its branch changed since the base (asked for
    once its worktree's status is read, so that they can be found meanwhile): what it
    changed (committed and not), what of that it does not own, its state as
    liveness judges it (idle, orphan, missing beside the recorded ones), its
    last activity (files, heartbeats, its tmux tab's output: `output_at`)."""
    from hf_fanout.core.ownership import Ownership
    from hf_fanout.liveness import agent, heartbeat, judge
    from hf_fanout.worktrees.scan import filled_submodules

    worktree = Path(part.worktree)
    changed: set[RepoPath] = set()
    off_branch = None
    last = timefmt.parse_iso(part.updated) or 0.0
    state = part.state
    if collected(batch):  # (gc removed its worktrees and branches: nothing to look at)
        state = DROPPED if batch.state == DROPPED else part.state
    elif part.state not in (JOINED, DROPPED):
        # (no git runs in a folder that is no longer this repository's worktree: its
        # own configuration would run programs; the join refuses it by name)
        if worktree.is_dir() and ws.worktree(worktree).is_linked_here():
            with contextlib.suppress(GitFailed):
                changed.update(ws.worktree(worktree).status_paths(exclude=copied_paths(part)))
                # (files in a submodule's folder that is not checked out: git's status
                # shows none, the join refuses them; asked only where there are
                # submodules to ask of, no git process otherwise)
                if (worktree / ".gitmodules").is_file():
                    changed.update(filled_submodules(worktree))
            on = ws.worktree(worktree).head_branch()
            if on and on != f"refs/heads/{part.branch}":
                off_branch = on.removeprefix("refs/heads/")
        changed.update(committed())
        if worktree.is_dir():
            root = os.fsencode(worktree) + b"/"  # (no Path per file: 125 files a part)
            for path in changed:
                try:
                    last = max(last, os.lstat(root + os.fsencode(path)).st_mtime)
                except OSError:
                    continue
        verdict = judge.classify(ws, part, output_at=output_at)
        if verdict.state in (judge.IDLE, judge.ORPHAN, judge.MISSING):
            state = verdict.state
        last = max(last, heartbeat.last_activity(ws.store, part) or 0.0, output_at or 0.0)
    reported = agent.read_state(ws.store.batch_dir(batch.id), part.name)
    if state == RUNNING and part.state == RUNNING:
        reported = screen_state(ws, part, reported)
    if reported is not None:
        last = max(last, timefmt.parse_iso(reported.get("at")) or 0.0)
    state, since = shown_state(part, state, reported, last)
    syncing = isinstance(part.extra.get("sync"), dict)
    running = syncing and _sync_running(ws, part)
    after = None
    work_after = False
    if part.state == JOINED:
        from hf_fanout.orchestrator.joined_parts import commits_after_join, work_after_join

        after = commits_after_join(ws, part)
        work_after = after is None and work_after_join(ws, part) is not None
    ownership = Ownership.parse(part.owns)
    if syncing:
        changed -= _brought_by_sync(ws, batch, part, ownership)
    outside: list[str] = sorted(p for p in changed if not ownership.owns(p))
    return PartStatus(part.name, state, part.branch, part.worktree, len(changed), len(outside),
                      outside[:20], timefmt.iso(last), part.note, part.reason,
                      sparse=part.sparse,
                      context=list(part.context) if part.sparse else None,
                      since=since, agent=reported,
                      sync_stopped=syncing and not running, sync_running=running,
                      after_join=after.count if after else 0,
                      after_join_hint=after.hint(batch.id) if after else "",
                      work_after_join=work_after, off_branch=off_branch,
                      owned=owned_count(ws, part_base(batch, part), ownership,
                                        changed.difference(outside)) if owned else None)


def _brought_by_sync(ws: Workspace, batch: Batch, part: Part,
                     ownership: Ownership) -> set[RepoPath]:
    """While the part's `hf sync` is stopped its worktree holds main's changes
    (staged by a merge, or under a rebased HEAD) and its base is still the old one:
    the paths main changed on the way to the sync's target that the part does not
    own are main's, not the part's (telling to revert them would undo main's
    work)."""
    onto = part.extra["sync"].get("onto")
    if not isinstance(onto, str) or not onto:
        return set()
    try:
        return {c.path for c in ws.repo.diff_trees(part_base(batch, part), onto)
                if not ownership.owns(c.path)}
    except GitFailed:
        return set()


def _sync_running(ws: Workspace, part: Part) -> bool:
    from hf_fanout import locks

    return locks.is_held(ws.store.sync_lock_file(part.batch, part.name))


def owned_count(ws: Workspace, base: str, ownership: Ownership,
                changed_owned: set[RepoPath]) -> int:
    """How many files the part owns: those of its base it owns (counted once per
    process: the board asks every few seconds), and the owned ones it added."""
    try:
        at_base = ws.repo.ls_tree(base)
    except GitFailed:
        return len(changed_owned)
    key = (base, tuple(ownership.patterns()))
    if key not in _OWNED_AT_BASE:
        _OWNED_AT_BASE[key] = len(ownership.owned(at_base))
    return _OWNED_AT_BASE[key] + len(changed_owned - set(at_base))


_OWNED_AT_BASE: dict[tuple[str, tuple[str, ...]], int] = {}  # filled as counted


def screen_state(ws: Workspace, part: Part,
                 reported: dict[str, Any] | None) -> dict[str, Any] | None:
    """For an agent without hooks (Aider, anything else) in a tmux tab: the last line
    the tab shows against `waiting_pattern` (a regex from the settings) -> waiting; output
    that no longer matches -> working again. An agent's own report wins."""
    import re

    from hf_fanout.liveness import agent

    pattern = ws.settings.text("waiting_pattern", "'\\? \\(y/n\\)'")
    tab = part.extra.get("tab") or {}
    if not pattern or tab.get("launcher") != "tmux" or not tab.get("target"):
        return reported
    if reported is not None and reported.get("event") not in ("pattern", "output"):
        return reported
    from hf_fanout.tabs.launchers import Tmux, all_launchers

    tmux = all_launchers(ws.settings)["tmux"]
    screen = tmux.capture(str(tab["target"])) if isinstance(tmux, Tmux) else None
    if screen is None:
        return reported
    # the last line shown: a prompt waits there; once answered, it scrolls up
    last = next((line for line in reversed(screen.splitlines()) if line.strip()), "")
    try:
        matched = re.search(pattern, last, flags=re.MULTILINE) is not None
    except re.error as exc:
        from hf_fanout.errors import BadInput

        raise BadInput(f"waiting_pattern {pattern!r} is not a regular expression: {exc}",
                       "e.g. waiting_pattern = '\\(y/n\\)' in .hf.toml") from None
    event = "pattern" if matched else "output"
    if reported is None and not matched:
        return reported
    if reported is None or agent.EVENTS[event] != reported.get("state"):
        found = agent.record(ws.store.batch_dir(part.batch), part.name, event,
                             detail="the tab's output" if matched else "")
        if found["changed"]:
            from hf_fanout.orchestrator.agents import notify_transition

            notify_transition(ws.repo.common_dir, part.batch, part.name,
                              str(found["state"]), str(found["detail"]))
        return {k: v for k, v in found.items() if k != "changed"}
    return reported


def shown_state(part: Part, judged: str, reported: dict[str, Any] | None,
                last: float) -> tuple[str, str]:
    """The state a person sees and since when: what a person recorded (done,
    blocked, joined, dropped) and what liveness found (missing, orphan) first;
    then what the agent says (waiting before idle: it needs the person; working
    unless liveness judged it idle); else running."""
    from hf_fanout.liveness import agent, judge

    if judged == part.state and part.state != RUNNING:
        since = {DONE: part.done_at, BLOCKED: part.blocked_at}.get(part.state) or part.updated
        return part.state, since
    if judged in (judge.MISSING, judge.ORPHAN):
        return judged, str((part.exit or {}).get("at") or timefmt.iso(last))
    if reported is not None and (reported["state"] != agent.WORKING or judged != judge.IDLE):
        return str(reported["state"]), str(reported.get("since") or "")
    if judged == judge.IDLE:
        return judged, timefmt.iso(last)
    return judged, str((part.worker or {}).get("since") or part.created)


def tab_output(ws: Workspace, batch_id: str, parts: list[Part]) -> dict[str, float]:
    """part -> when its tmux window last showed output, for the running parts hf
    opened in tmux: one `list-windows` for the batch's session."""
    running = [p for p in parts if p.state == RUNNING
               and (p.extra.get("tab") or {}).get("launcher") == "tmux"]
    if not running:
        return {}
    from hf_fanout.tabs import window_marks
    from hf_fanout.tabs.launchers import Tmux, all_launchers

    tmux = all_launchers(ws.settings)["tmux"]
    if not isinstance(tmux, Tmux) or not tmux.available():
        return {}
    found = tmux.activity(window_marks.session(batch_id))
    return {p.name: found[p.name] for p in running if p.name in found}


def batch_status(ws: Workspace, batch_id: str, *, owned: bool = False) -> BatchStatus:
    batch = ws.store.load_batch(batch_id)
    parts = ws.store.load_parts(batch)
    if not collected(batch) and any(p.state == JOINED and remote_of(p)
                                    for p in parts):
        from hf_fanout.orchestrator import remote_parts

        remote_parts.bring_after_join(ws, parts)  # (commits there after their join)
    # what each live part committed: its branch read from git's ref files, and
    # one `diff-tree` for all of them
    tips = {p.name: ws.repo.ref_target(f"refs/heads/{p.branch}")
            for p in parts if p.state != JOINED}
    # one `diff-tree` per base (a part `hf sync` moved has its own)
    bases = {p.name: part_base(batch, p) for p in parts}
    diffs: dict[str, dict[str, Any]] = {}
    for base in set(bases.values()):
        diffs[base] = ws.repo.diff_commits(base, [
            tip for name, tip in tips.items() if tip is not None and tip != base
            and bases[name] == base])

    def committed(part: Part) -> list[RepoPath]:
        tip = tips.get(part.name)
        return [c.path for c in diffs[bases[part.name]].get(tip, [])] if tip else []

    for base in set(bases.values()) if owned else ():  # once, not by each part's thread
        with contextlib.suppress(GitFailed):
            ws.repo.ls_tree(base)
    outputs = tab_output(ws, batch.id, parts)
    statuses = _in_threads(
        lambda p: part_status(ws, batch, p, lambda: committed(p), outputs.get(p.name),
                              owned=owned), parts)
    if any(p.extra.get("remote") for p in parts):
        _show_remote(ws, batch, parts, statuses)
    if batch.state == "running":
        behind = _behind(ws, batch, set(bases.values()))
        for status, part in zip(statuses, parts, strict=True):
            if part.state not in (JOINED, DROPPED):
                status.behind = behind.get(bases[part.name], 0)
    pause = next(iter(pauses.in_force(ws, batch.id)), None)
    left = False
    if batch.state == JOINED and not collected(batch):
        from hf_fanout.orchestrator.joined_parts import join_left_history

        left = join_left_history(ws, batch)
    return BatchStatus(batch.id, batch.state, batch.base, batch.created, statuses,
                       collected=collected(batch),
                       paused=pause.describe() if pause else None, join_left_history=left,
                       taken_from=next((taken_from(p) for p in parts if taken_from(p)), None))


def _show_remote(ws: Workspace, batch: Batch, parts: list[Part],
                 statuses: list[PartStatus]) -> None:
    """Remote parts as their remote shows them (one `git ls-remote` per remote): last
    seen when and where, stale, done there; never orphan or missing here."""
    from hf_fanout.orchestrator import remote_parts

    now = timefmt.now()
    seen = remote_parts.sightings(ws, batch, parts)
    for status, part in zip(statuses, parts, strict=True):
        found = seen.get(part.name)
        if found is None:
            if remote_of(part) is not None:  # (joined or dropped: no worktree here either)
                status.worktree = f"(on {remote_of(part)})"
            continue
        status.remote = {**found.to_data(), "seen": found.describe(now)}
        status.worktree = f"(on {found.remote})"
        if part.state == RUNNING:
            status.state, status.since = found.state, found.at or status.since
        if found.at:
            status.last_activity = max(status.last_activity, found.at)


def _behind(ws: Workspace, batch: Batch, bases: set[str]) -> dict[str, int]:
    """How many commits main's tip has that each base has not."""
    tip = ws.repo.ref_target(batch.target_ref)
    if tip is None:
        return {}
    counts = {}
    for base in bases:
        if base == tip:
            counts[base] = 0
            continue
        with contextlib.suppress(GitFailed):
            counts[base] = int(ws.repo.git(["rev-list", "--count", f"{base}..{tip}"]).strip())
    return counts


@dataclass
class QueueWorktreeStatus:
    """A worktree `hf next --isolated` made for a queue entry, until `hf gc` takes it."""

    entry: str
    task: str
    entry_state: str  # the entry's state in the queue (submitted, failed...), or "gone"
    branch: str
    worktree: str  # "" when only the branch is left
    changed: int  # paths that differ from main's history (committed or not)
    last_activity: str
    missing: bool = False  # its worktree directory is gone, the branch is not


def queue_status(ws: Workspace) -> list[QueueWorktreeStatus]:
    """Every queue entry's own worktree (and branch left without one)."""
    from hf_fanout.tabs import isolated, queue

    found = isolated.found(ws)
    if not found:
        return []
    entries = {e.id: e for e in queue.entries(ws, tidy=False)}
    head = ws.main.head()
    result = []
    for item in found:
        entry = entries.get(item.entry)
        changed: set[RepoPath] = set()
        last = 0.0
        base = ws.repo.merge_base(item.tip, head) if head else None
        if base is not None and base != item.tip:
            changed.update(c.path for c in ws.repo.diff_trees(base, item.tip))
        here = item.worktree is not None and item.worktree.is_dir()
        if item.worktree is not None and here:
            with contextlib.suppress(GitFailed):
                changed.update(ws.worktree(item.worktree).status_paths())
            for where in [item.worktree, *(item.worktree / path for path in changed)]:
                with contextlib.suppress(OSError):
                    last = max(last, os.lstat(where).st_mtime)
        result.append(QueueWorktreeStatus(
            item.entry, entry.task if entry else "", entry.state if entry else "gone",
            item.branch, str(item.worktree or ""), len(changed),
            timefmt.iso(last) if last else "", missing=not here))
    return result


def all_status(ws: Workspace, batch_id: str | None, *, everything: bool = False,
               owned: bool = False) -> tuple[list[BatchStatus], int]:
    """The batches to show and how many finished ones were left out: without
    `everything`, only the running (and damaged) ones; a named batch always.
    `owned`: count each part's owned files (the board's column; it reads the
    base's whole listing)."""
    if batch_id:
        return [batch_status(ws, batch_id, owned=owned)], 0
    result = []
    hidden = 0
    for b in ws.store.batch_ids():
        try:
            if not everything and ws.store.load_batch(b).state != RUNNING:
                hidden += 1
                continue
            result.append(batch_status(ws, b, owned=owned))
        except StateCorrupt as exc:  # one damaged batch must not hide the others
            result.append(BatchStatus(b, "damaged", "", "", [], error=exc.message))
    return result, hidden


def focus_part(ws: Workspace, batch_id: str, name: str) -> str:
    """Bring the part's tmux window to the front (the board's Enter); what happened."""
    import os

    from hf_fanout.tabs.launchers import Tmux, all_launchers
    from hf_fanout.tabs.opening import part_tab

    batch = ws.store.load_batch(batch_id)
    part = ws.store.load_part(batch_id, name)
    tmux = all_launchers(ws.settings)["tmux"]
    tab = part_tab(ws, batch, part, supervise=True)
    if not isinstance(tmux, Tmux) or not tmux.available() or not tmux.alive(tab):
        return f"{batch_id}/{name} has no tmux window (`hf open {batch_id}/{name}` opens one)"
    if not os.environ.get("TMUX"):
        return f"outside tmux: `tmux attach -t {tmux.session(tab)}` shows {name}"
    tmux.focus(tab)
    return f"went to {tmux.session(tab)}:{name}"


def _in_threads(fn: Callable[[Part], PartStatus], parts: list[Part],
                workers: int = 4) -> list[PartStatus]:
    """`fn` of every part, `workers` at a time (each mostly waits on its `git status`),
    in the parts' order; the first error is raised once all are done. Plain threads:
    `concurrent.futures` imports `logging`, about a tenth of `hf status`'s start-up."""
    import threading

    results: list[PartStatus | None] = [None] * len(parts)
    errors: list[BaseException] = []
    queue = iter(range(len(parts)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(queue, None)
            if index is None:
                return
            try:
                results[index] = fn(parts[index])
            except BaseException as exc:  # (raised in the calling thread below)
                errors.append(exc)
                return

    threads = [threading.Thread(target=work, daemon=True)
               for _ in range(min(workers, len(parts)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]
