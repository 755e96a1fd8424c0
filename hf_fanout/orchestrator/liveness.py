"""Liveness of a part: its worker's identity and exit, heartbeats, and the derived state.

States (see docs/liveness.md): running, idle (worker alive, no activity for
longer than the idle threshold), orphan (worker gone, part not done), missing
(worktree directory gone), done, blocked, joined.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import atomic
from hf_fanout.orchestrator import processes, states, status
from hf_fanout.orchestrator.records import BLOCKED, DONE, DROPPED, JOINED, RUNNING, Part, now
from hf_fanout.orchestrator.store import Store
from hf_fanout.orchestrator.workspace import Workspace

IDLE = "idle"
ORPHAN = "orphan"
MISSING = "missing"

DEFAULT_HEARTBEAT_SECONDS = 30.0
DEFAULT_IDLE_MINUTES = 20.0


def heartbeat_file(store: Store, batch: str, part: str) -> Path:
    return store.batch_dir(batch) / "heartbeats" / part


def beat(store: Store, batch: str, part: str, *, active: float | None, by: str) -> None:
    """Write the heartbeat: `at` (the beater lives) and `active` (last sign of work)."""
    path = heartbeat_file(store, batch, part)
    at = time.time()
    previous = read_heartbeat(store, batch, part)
    last_active = active if active is not None else (previous or {}).get("active")
    record = {"at": at, "active": last_active, "by": by, "pid": os.getpid()}
    atomic.atomic_write(path, (json.dumps(record) + "\n").encode())


def read_heartbeat(store: Store, batch: str, part: str) -> dict[str, Any] | None:
    path = heartbeat_file(store, batch, part)
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def last_activity(store: Store, part: Part) -> float | None:
    """The last sign of work from heartbeats (not from files: see `file_activity`)."""
    hb = read_heartbeat(store, part.batch, part.name)
    if not hb:
        return None
    active = hb.get("active")
    return float(active) if isinstance(active, int | float) else None


def file_activity(ws: Workspace, part: Part) -> float | None:
    """The newest mtime of any uncommitted file in the part's worktree (costs a git status)."""
    from hf_fanout.errors import GitFailed
    from hf_fanout.tabs.environment import copied_paths

    worktree = Path(part.worktree)
    try:
        paths = ws.repo.worktree(worktree).status_paths(exclude=copied_paths(part))
    except GitFailed:
        return None
    newest = None
    for path in paths:
        try:
            mtime = os.lstat(worktree / path).st_mtime
        except OSError:
            continue
        newest = mtime if newest is None else max(newest, mtime)
    return newest


# --- the worker record -------------------------------------------------------


def record_worker(ws: Workspace, part: Part, worker: dict[str, Any]) -> Part:
    """A new worker for the part (`hf run`): a blocked part runs again."""

    def start(fresh: Part) -> None:
        fresh.worker = worker
        fresh.exit = None

    fresh, _ = states.change(ws, part.batch, part.name,
                             RUNNING if part.state == BLOCKED else None, action="worker",
                             update=start, when=lambda p: p.state not in (JOINED, DROPPED),
                             pid=worker.get("pid"), command=worker.get("command"))
    return fresh


def record_exit(ws: Workspace, part: Part, code: int | None, sig: int | None, *,
                done: bool = False) -> tuple[Part, bool]:
    """The worker's exit, and with `done` (an exit of 0 under `--done-on-success`)
    the part marked done in the same change: no reader ever sees the exit
    without the done. Returns the part and whether it was marked done."""
    fresh = ws.store.load_part(part.batch, part.name)
    to_done = done and fresh.state in (RUNNING, BLOCKED)

    def finish(p: Part) -> None:
        p.exit = {"code": code, "signal": sig, "at": now(), "pid": (p.worker or {}).get("pid")}

    after, _ = states.change(ws, part.batch, part.name, DONE if to_done else None,
                             action="exit", update=finish, code=code, signal=sig,
                             done=to_done)
    return after, to_done and after.state == DONE


def worker_identity(part: Part) -> processes.Identity | None:
    if not part.worker:
        return None
    return processes.Identity.from_dict(part.worker)


def worker_alive(part: Part) -> bool | None:
    """True, False, or None when no worker is recorded (or it is on another host)."""
    ident = worker_identity(part)
    if ident is None:
        return None
    if part.exit is not None and part.exit.get("pid") == ident.pid:
        return False
    return processes.is_alive(ident)


def supervisor_alive(part: Part) -> bool:
    """Whether the `hf run` that supervises the worker still lives (pid + start
    time; a record from before supervisors were recorded: no)."""
    found = (part.worker or {}).get("supervisor")
    ident = processes.Identity.from_dict(found) if isinstance(found, dict) else None
    return ident is not None and processes.is_alive(ident) is True


def still_orphan(ws: Workspace, seen: Part) -> states.Condition:
    """The condition the sweep blocks an orphan under: the record as it is now is
    the one the sweep judged (same worker, not marked done meanwhile), and it
    still judges orphan."""

    def holds(fresh: Part) -> bool:
        return (fresh.state == RUNNING and fresh.worker == seen.worker
                and classify(ws, fresh).state == ORPHAN)

    return holds


# --- classification ----------------------------------------------------------


@dataclass
class Verdict:
    state: str
    why: str
    alive: bool | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def idle_seconds(ws: Workspace) -> float:
    return ws.settings.number("idle_minutes", DEFAULT_IDLE_MINUTES) * 60


def classify(ws: Workspace, part: Part, *, at: float | None = None,
             idle_after: float | None = None) -> Verdict:
    at = time.time() if at is None else at
    if part.state == JOINED:
        return Verdict(JOINED, "joined")
    if not Path(part.worktree).is_dir():
        return Verdict(MISSING, f"worktree {part.worktree} is gone")
    if part.state in (DONE, BLOCKED):
        return Verdict(part.state, part.reason or part.state)
    alive = worker_alive(part)
    if alive is None:
        # No `hf run` recorded (a person, or an agent started by hand): nothing
        # to judge by but the record.
        return Verdict(RUNNING, "no worker recorded", None)
    worker = part.worker or {}
    if not alive and part.exit is None and supervisor_alive(part):
        # `hf run` is recording the exit (and, with --done-on-success, the done)
        return Verdict(RUNNING, "worker exited; its `hf run` is recording the exit", True)
    if not alive:
        how = "is gone"
        if part.exit is not None:
            if part.exit.get("signal"):
                how = f"was killed by signal {part.exit['signal']}"
            else:
                how = f"exited with code {part.exit.get('code')}"
        return Verdict(ORPHAN, f"worker pid {worker.get('pid')} {how} before `hf done`", False,
                       {"exit": part.exit})
    limit = idle_seconds(ws) if idle_after is None else idle_after
    started = _parse_iso(worker.get("since"))
    last = max(x for x in (last_activity(ws.store, part), started, 0.0) if x is not None)
    if at - last > limit:
        files = file_activity(ws, part)  # only now: it costs a git status
        if files is not None:
            last = max(last, files)
    if at - last > limit:
        return Verdict(IDLE, f"no activity for {int((at - last) // 60)} min", True,
                       {"last_activity": last})
    return Verdict(RUNNING, "worker alive", True, {"last_activity": last})


def _parse_iso(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    import calendar

    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def _refine(ws: Workspace, part: Part) -> str | None:
    verdict = classify(ws, part)
    return verdict.state if verdict.state in (IDLE, ORPHAN, MISSING) else None


def _activity(ws: Workspace, part: Part) -> float | None:
    return last_activity(ws.store, part)


if _refine not in status.STATE_REFINERS:
    status.STATE_REFINERS.append(_refine)
if _activity not in status.ACTIVITY_SOURCES:
    status.ACTIVITY_SOURCES.append(_activity)


# --- rescue ------------------------------------------------------------------


def rescue_ref(part: Part) -> str:
    return f"refs/hf/rescue/{part.batch}/{part.name}"


def rescue(ws: Workspace, part: Part, why: str) -> dict[str, Any]:
    """Save the worktree's full state (untracked files too) as a commit at the rescue ref.

    Reads the worktree as `git add -A` would record it: the worktree and its
    own index are never written. With nothing uncommitted the ref points at the branch tip, so
    a rescue ref always holds the part's whole work.
    """
    from hf_fanout.tabs.environment import copied_paths

    repo = ws.repo
    worktree = ws.worktree(part.worktree)
    head = worktree.rev_parse("HEAD") or repo.ref_target(f"refs/heads/{part.branch}")
    if head is None:
        return {"ref": None, "commit": None, "uncommitted": False, "why": "no commit to rescue"}
    tree = worktree.tree(repo.tree_of(head), exclude=copied_paths(part))
    uncommitted = tree != repo.tree_of(head)
    commit = head
    if uncommitted:
        message = (f"hf rescue: {part.batch}/{part.name}\n\n{why}\n\n"
                   f"Hf-Batch: {part.batch}\nHf-Part: {part.name} {head}\n")
        commit = repo.commit_tree(tree, [head], message)
    ref = rescue_ref(part)
    repo.git(["update-ref", "--create-reflog", "-m", f"hf rescue: {why}", ref, commit])
    ws.store.audit("rescue", batch=part.batch, part=part.name, ref=ref, commit=commit,
                   uncommitted=uncommitted, why=why)
    return {"ref": ref, "commit": commit, "uncommitted": uncommitted}
