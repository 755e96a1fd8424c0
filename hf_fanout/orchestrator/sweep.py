"""`hf sweep`: classify every part of every registered repo and act on the dead.

Actions: rescue an orphan's work to `refs/hf/rescue/<batch>/<part>` then mark
it blocked; mark a missing worktree and drop git's record of it; join a
batch that asked for `auto_join` once every part is done. A running or idle
part's worktree is never written. One sweep per repo at a time (a lock).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import atomic, processes, timefmt
from hf_fanout.config import user_state_dir
from hf_fanout.core import audit, pauses, states
from hf_fanout.core.records import DONE, RUNNING, Batch, Part
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError, LockBusy
from hf_fanout.guard import fingerprint
from hf_fanout.liveness import judge, rescue
from hf_fanout.orchestrator.lifecycle import mark_blocked
from hf_fanout.orchestrator.workspace_open import open_workspace


@dataclass
class PartReport:
    batch: str
    part: str
    state: str
    why: str
    worktree: str


@dataclass
class RepoReport:
    repo: str
    parts: list[PartReport] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    unknown_processes: list[dict[str, Any]] = field(default_factory=list)
    tamper: list[dict[str, str]] = field(default_factory=list)
    skipped: str | None = None
    errors: list[str] = field(default_factory=list)


@dataclass
class SweepReport:
    dry_run: bool
    repos: list[RepoReport]
    # registered repositories whose directory is gone: dropped from the registry
    forgotten: list[str] = field(default_factory=list)
    seconds: float = 0.0
    psutil_seconds: float = 0.0

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def actions(self) -> list[dict[str, Any]]:
        return [a for r in self.repos for a in r.actions]


def last_sweep_file() -> Path:
    return user_state_dir() / "last-sweep.json"


def last_sweep() -> dict[str, Any] | None:
    data = atomic.read_json(last_sweep_file(), "last-sweep record")
    return data if isinstance(data, dict) else None


def workdir_of(common_dir: Path) -> Path:
    """The main worktree of a repository named by its common dir (the registry's key)."""
    return common_dir.parent if common_dir.name == ".git" else common_dir


def sweep(repos: list[Path] | None, *, dry_run: bool = False,
          scan_processes: bool = True) -> SweepReport:
    """Every registered repository (or `repos`) swept; what it does is audited as
    the sweep's."""
    with audit.acting_as("sweep"):
        return _sweep(repos, dry_run=dry_run, scan_processes=scan_processes)


def _sweep(repos: list[Path] | None, *, dry_run: bool, scan_processes: bool) -> SweepReport:
    from hf_fanout import registry

    started = time.perf_counter()
    report = SweepReport(dry_run, [])
    if repos is None:
        targets = []
        for common in map(Path, registry.registered()):
            if common.is_dir():
                targets.append(workdir_of(common))
                continue
            # gone (a removed clone, a demo's temporary repository): said once, then forgotten
            report.forgotten.append(str(workdir_of(common)))
            if not dry_run:
                registry.unregister(common)
    else:
        targets = repos
    cwd_table: list[tuple[int, str, str]] | None = None
    if scan_processes:
        t = time.perf_counter()
        cwd_table = processes.cwds()
        report.psutil_seconds += time.perf_counter() - t
    for target in targets:
        rr = RepoReport(str(target))
        report.repos.append(rr)
        try:
            ws = open_workspace(target)
        except HfError as exc:
            rr.skipped = exc.message
            continue
        rr.repo = str(ws.main.path)
        try:
            with _sweep_lock(ws):
                sweep_repo(ws, rr, dry_run=dry_run, cwd_table=cwd_table, report=report)
        except LockBusy as exc:
            rr.skipped = f"another sweep is running ({exc.message})"
    report.seconds = time.perf_counter() - started
    if not dry_run:
        atomic.atomic_write_json(last_sweep_file(), {
            "at": timefmt.iso(),
            "repos": len(report.repos), "actions": len(report.actions),
            "seconds": round(report.seconds, 3)})
        if report.actions:
            notify(report)
    return report


def _sweep_lock(ws: Workspace) -> Any:
    from hf_fanout import locks

    return locks.hold(ws.store.lock_file("sweep"), wait=0, what="sweep")


def sweep_repo(ws: Workspace, rr: RepoReport, *, dry_run: bool,
               cwd_table: list[tuple[int, str, str]] | None, report: SweepReport) -> None:
    from hf_fanout.orchestrator.inbox import apply_all

    store = ws.store
    if not dry_run:
        apply_all(ws)  # what sandboxed parts asked for (a done whose `hf run` died)
    now = time.time()
    known_pids: set[int] = set()
    worktrees: dict[str, tuple[str, str]] = {}
    missing_seen = False
    for batch_id in store.batch_ids():
        try:
            batch = store.load_batch(batch_id)
            parts = store.load_parts(batch)
        except HfError as exc:
            rr.errors.append(exc.message)
            continue
        if batch.state != RUNNING:
            continue
        # what changed behind hf's back: reported and audited, never acted on
        for finding in fingerprint.check(ws, batch):
            rr.tamper.append({"batch": batch.id, "finding": finding.line()})
            if not dry_run:
                store.audit("sweep-tamper", batch=batch.id, finding=finding.line())
        remote = _remote_sightings(ws, batch, parts)
        for part in parts:
            if part.name in remote:  # worked elsewhere: shown, never rescued here
                rr.parts.append(PartReport(batch.id, part.name, remote[part.name].state,
                                           remote[part.name].describe(timefmt.now()), ""))
                continue
            t = time.perf_counter()
            verdict = judge.classify(ws, part, at=now)
            if part.worker:
                report.psutil_seconds += time.perf_counter() - t
                known_pids.add(int(part.worker.get("pid", 0)))
                known_pids.add(int(part.worker.get("supervisor_pid", 0)))
            worktrees[part.worktree] = (batch.id, part.name)
            rr.parts.append(PartReport(batch.id, part.name, verdict.state, verdict.why,
                                       part.worktree))
            if verdict.state == judge.ORPHAN:
                rr.actions.append(_orphan(ws, part, verdict, dry_run))
            elif verdict.state == judge.MISSING and not part.extra.get("missing_at"):
                missing_seen = True
                rr.actions.append(_missing(ws, part, dry_run))
        if batch.auto_join and parts and all(
                p.state == DONE or getattr(remote.get(p.name), "state", "") == DONE
                for p in parts) \
                and not pauses.in_force(ws, batch.id):
            action = _auto_join(ws, batch, dry_run)
            if action:
                rr.actions.append(action)
    if missing_seen and not dry_run:
        ws.repo.forget_missing_worktrees([Path(w) for w in worktrees])
    if cwd_table is not None and worktrees:
        t = time.perf_counter()
        rr.unknown_processes = _unknown(cwd_table, worktrees, known_pids)
        report.psutil_seconds += time.perf_counter() - t


def _remote_sightings(ws: Workspace, batch: Batch, parts: list[Part]) -> dict[str, Any]:
    """The batch's remote parts as their remotes show them (none: no git call)."""
    if not any(p.extra.get("remote") for p in parts):
        return {}
    from hf_fanout.orchestrator.remote_parts import sightings

    return sightings(ws, batch, parts)


def _unknown(cwd_table: list[tuple[int, str, str]], worktrees: dict[str, tuple[str, str]],
             known: set[int]) -> list[dict[str, Any]]:
    """Processes working inside a part worktree that hf did not start."""
    found = []
    roots = sorted(worktrees, key=len, reverse=True)
    for pid, cwd, name in cwd_table:
        if pid in known:
            continue
        for root in roots:
            if cwd == root or cwd.startswith(root + "/"):
                batch, part = worktrees[root]
                found.append({"pid": pid, "name": name, "cwd": cwd, "batch": batch,
                              "part": part})
                break
    return found


def _orphan(ws: Workspace, part: Part, verdict: judge.Verdict,
            dry_run: bool) -> dict[str, Any]:
    action: dict[str, Any] = {"action": "rescue+block", "batch": part.batch, "part": part.name,
                              "why": verdict.why, "ref": rescue.rescue_ref(part)}
    if dry_run:
        return action
    try:
        saved = rescue.rescue(ws, part, f"orphan: {verdict.why}")
    except HfError as exc:
        # Never mark a part whose work could not be saved as handled: the next
        # sweep tries again, and the person is told.
        action.update(error=exc.message, action="rescue-failed")
        ws.store.audit("sweep-rescue-failed", batch=part.batch, part=part.name,
                       error=exc.message)
        return action
    action.update(saved)
    reason = f"orphan: {verdict.why}; work saved to {saved['ref']}"
    # decided on the record as it is now, under the state lock: a part marked done
    # (or given a new worker) since this sweep read it is left as it is
    _, blocked = mark_blocked(ws, part, reason, when=judge.still_orphan(ws, part))
    if not blocked:
        action.update(action="rescued", why=f"{verdict.why}; no longer an orphan when marked")
        return action
    ws.store.audit("sweep-orphan", batch=part.batch, part=part.name, **saved)
    from hf_fanout.tabs import window_marks

    window_marks.show(part.batch, part.name, "orphan")
    return action


def _missing(ws: Workspace, part: Part, dry_run: bool) -> dict[str, Any]:
    action = {"action": "mark-missing", "batch": part.batch, "part": part.name,
              "worktree": part.worktree, "branch": part.branch}
    if dry_run:
        return action
    from hf_fanout.core import states
    from hf_fanout.core.records import BLOCKED, now

    def note(fresh: Part) -> None:
        fresh.extra["missing_at"] = now()
        if fresh.state == BLOCKED:
            fresh.reason = (f"missing: worktree {part.worktree} is gone; its branch "
                            f"{part.branch} is kept")

    fresh = ws.store.load_part(part.batch, part.name)
    states.change(ws, part.batch, part.name, BLOCKED if fresh.state == RUNNING else None,
                  action="sweep-missing", update=note,
                  when=lambda p: not Path(p.worktree).is_dir(), worktree=part.worktree)
    return action


def _auto_join(ws: Workspace, batch: Batch, dry_run: bool) -> dict[str, Any] | None:
    from hf_fanout.orchestrator.join import join_batch

    action: dict[str, Any] = {"action": "auto-join", "batch": batch.id}
    try:
        outcome = join_batch(ws, batch.id, wait=5, dry_run=dry_run)
        if outcome.plan.noop:
            return None
        if dry_run:
            return action
        commit = outcome.commit
    except HfError as exc:
        action.update(action="auto-join-failed", error=exc.message, hint=exc.hint)
        if dry_run:
            return action
        previous = batch.extra.get("auto_join_error")

        failure = {"error": exc.message, "hint": exc.hint, "at": timefmt.iso()}

        def note(fresh: Batch) -> None:
            fresh.extra["auto_join_error"] = failure

        states.change_batch(ws, batch.id, None, action="sweep-auto-join-failed", update=note,
                            error=exc.message)
        if previous and previous.get("error") == exc.message:
            action["repeat"] = True  # said already; not notified again
        return action
    action["commit"] = commit
    ws.store.audit("sweep-auto-join", batch=batch.id, commit=commit)
    return action


def notify(report: SweepReport) -> None:
    """A desktop notification where notify-send or osascript exists; silent elsewhere."""
    fresh = [a for a in report.actions if not a.get("repeat")]
    tamper = [t for r in report.repos for t in r.tamper]
    if not fresh and not tamper:
        return
    lines = [f"tamper in {t['batch']}: {t['finding']}" for t in tamper[:2]]
    for a in fresh[:5]:
        lines.append(f"{a['action']} {a['batch']}" + (f"/{a['part']}" if "part" in a else ""))
    message = "; ".join(lines) + (f" (+{len(fresh) - 5} more)" if len(fresh) > 5 else "")
    if shutil.which("notify-send"):
        argv = ["notify-send", "hf sweep", message]
    elif sys.platform == "darwin" and shutil.which("osascript"):
        text = message.replace('"', "'")
        argv = ["osascript", "-e", f'display notification "{text}" with title "hf sweep"']
    else:
        return
    try:
        subprocess.run(argv, capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return

