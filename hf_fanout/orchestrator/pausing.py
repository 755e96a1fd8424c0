"""`hf pause` / `hf resume`: the kill switch. A pause stops anything new from
starting (core/pauses.py is checked where things start); running workers are
told through their handoff file and `hf status`, and with `stop` ended (as by
`hf stop`) or with `freeze` suspended (SIGSTOP to their process group) until
`hf resume` continues them (SIGCONT)."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Any

from hf_fanout import processes, timefmt
from hf_fanout.core import audit, pauses
from hf_fanout.core.records import JOINED, Part
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, HfError
from hf_fanout.liveness import judge
from hf_fanout.tabs.handoff import task_file


def _scope(batch: str | None, everywhere: bool) -> str:
    if batch and everywhere:
        raise BadInput("a batch and --all together", "name a batch, or pass --all alone")
    return pauses.USER if everywhere else (batch or pauses.REPO)


def _repos(ws: Workspace, scope: str) -> list[Workspace]:
    """The workspaces a pause of `scope` covers: this one, or every registered one."""
    if scope != pauses.USER:
        return [ws]
    from hf_fanout import registry

    found = [ws]
    for common in registry.registered():
        if Path(common) != ws.repo.common_dir and Path(common).is_dir():
            with contextlib.suppress(HfError, OSError):  # a gone repository: nothing runs
                found.append(Workspace.open(Path(common).parent))
    return found


def _live_parts(ws: Workspace, scope: str) -> list[Part]:
    batches = [scope] if scope not in (pauses.REPO, pauses.USER) else ws.store.batch_ids()
    found = []
    for batch_id in batches:
        if not ws.store.has_batch(batch_id):
            continue
        for part in ws.store.load_parts(ws.store.load_batch(batch_id)):
            if part.state != JOINED and judge.worker_alive(part):
                found.append(part)
    return found


def _group(part: Part) -> int:
    worker = part.worker or {}
    return int(worker.get("pgid") or worker.get("pid") or 0)


def pause(ws: Workspace, batch: str | None, *, everywhere: bool, reason: str,
          stop: bool, freeze: bool, dry_run: bool) -> dict[str, Any]:
    from hf_fanout.orchestrator.boundary import refuse_inside_part

    if stop and freeze:
        raise BadInput("--stop and --freeze together", "--stop ends the agents, --freeze "
                       "suspends them: choose one")
    scope = _scope(batch, everywhere)
    if batch:
        ws.store.load_batch(batch)  # a clear error for an unknown batch
    if not dry_run:
        refuse_inside_part("hf pause")
    who = audit.describe_actor(audit.actor())
    existing = pauses.read(ws, scope)
    made = pauses.Pause(scope=scope, by=who, reason=reason or (existing.reason if existing
                                                                  else ""),
                        at=existing.at if existing else timefmt.iso(timefmt.clock()),
                        frozen=freeze or bool(existing and existing.frozen))
    result: dict[str, Any] = {"pause": made.to_data(), "already": existing is not None,
                              "dry_run": dry_run, "parts": []}
    for each in _repos(ws, scope):
        for part in _live_parts(each, scope if scope != pauses.USER else pauses.REPO):
            entry: dict[str, Any] = {"batch": part.batch, "part": part.name,
                                     "group": _group(part), "action": "told"}
            if stop:
                entry["action"] = "stopped"
            elif freeze:
                entry["action"] = "frozen"
            result["parts"].append(entry)
    if dry_run:
        return result
    pauses.write(ws, made)
    ws.store.audit("pause", batch=batch, scope=scope, reason=made.reason,
                   stop=stop, freeze=freeze)
    for entry in result["parts"]:
        target = ws if entry["batch"] in ws.store.batch_ids() else None
        if entry["action"] == "stopped" and target is not None:
            from hf_fanout.orchestrator.workers import stop_parts

            stop_parts(target, entry["batch"], entry["part"], grace=5.0, dry_run=False)
        elif entry["action"] == "frozen" and entry["group"]:
            processes.signal_group(entry["group"], signal.SIGSTOP)
        _tell(ws if target is None else target, entry, made)
    return result


def resume(ws: Workspace, batch: str | None, *, everywhere: bool,
           dry_run: bool) -> dict[str, Any]:
    from hf_fanout.orchestrator.boundary import refuse_inside_part

    scope = _scope(batch, everywhere)
    existing = pauses.read(ws, scope)
    result: dict[str, Any] = {"scope": scope, "was_paused": existing is not None,
                              "dry_run": dry_run, "continued": []}
    if existing is not None and existing.frozen:
        for each in _repos(ws, scope):
            for part in _live_parts(each, scope if scope != pauses.USER else pauses.REPO):
                result["continued"].append({"batch": part.batch, "part": part.name,
                                            "group": _group(part)})
    if dry_run or existing is None:
        return result
    refuse_inside_part("hf resume")
    pauses.remove(ws, scope)
    for entry in result["continued"]:
        if entry["group"]:
            processes.signal_group(entry["group"], signal.SIGCONT)
    ws.store.audit("resume", batch=batch, scope=scope, continued=len(result["continued"]))
    return result


def _tell(ws: Workspace, entry: dict[str, Any], made: pauses.Pause) -> None:
    """Append a PAUSED line to the part's handoff file, where its agent reads."""
    with contextlib.suppress(HfError, OSError):
        part = ws.store.load_part(entry["batch"], entry["part"])
        handoff = task_file(Path(part.worktree))
        if handoff.is_file():
            with handoff.open("a", encoding="utf-8") as out:
                out.write(f"\n\nPAUSED: {made.describe()}. Finish the step you are in, "
                          "commit, and start nothing new until it is lifted.\n")
