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
from hf_fanout.tabs import handoff

PAUSE_LOCK_WAIT = 30.0  # s: another `hf pause` or `hf resume` is signalling its agents


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
    return [part for part in _parts(ws, scope) if judge.worker_alive(part)]


def _parts(ws: Workspace, scope: str) -> list[Part]:
    """The parts not yet joined that a pause of `scope` covers in `ws`."""
    batches = [scope] if scope not in (pauses.REPO, pauses.USER) else ws.store.batch_ids()
    found = []
    for batch_id in batches:
        if not ws.store.has_batch(batch_id):
            continue
        with contextlib.suppress(HfError):  # a damaged batch: hf doctor says so
            found += [part for part in ws.store.load_parts(ws.store.load_batch(batch_id))
                      if part.state != JOINED]
    return found


def _covered(ws: Workspace, scope: str) -> list[tuple[Workspace, Part]]:
    """Each live part a pause of `scope` covers, with the workspace it belongs to."""
    inner = scope if scope != pauses.USER else pauses.REPO
    return [(each, part) for each in _repos(ws, scope) for part in _live_parts(each, inner)]


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
    existing = pauses.read_damaged(ws, scope)
    since = existing.at if existing and existing.at else timefmt.iso(timefmt.clock())
    made = pauses.Pause(scope=scope, by=who, reason=reason or (existing.reason if existing
                                                                  else ""),
                        at=since,
                        frozen=freeze or bool(existing and existing.frozen))
    result: dict[str, Any] = {"pause": made.to_data(), "already": existing is not None,
                              "dry_run": dry_run, "parts": []}
    covered = _covered(ws, scope)
    action = "stopped" if stop else "frozen" if freeze else "told"
    for each, part in covered:
        result["parts"].append({"repo": str(each.main.path), "batch": part.batch,
                                "part": part.name, "group": _group(part), "action": action})
    if dry_run:
        return result
    with _changing():
        _apply_pause(ws, made, covered, batch=batch, stop=stop, freeze=freeze)
    return result


def _changing() -> Any:
    """Held while a pause is written and its agents signalled, or lifted and they
    continued: a `hf resume` racing a `hf pause --freeze` cannot continue the agents
    before the pause stops them (leaving them stopped with no pause to lift)."""
    from hf_fanout import locks
    from hf_fanout.config import user_state_dir

    return locks.hold(user_state_dir() / "locks" / "pause.lock", wait=PAUSE_LOCK_WAIT,
                      what="pause")


def _apply_pause(ws: Workspace, made: pauses.Pause, covered: list[tuple[Workspace, Part]],
                 *, batch: str | None, stop: bool, freeze: bool) -> None:
    from hf_fanout.faults import fault_point

    pauses.write(ws, made)
    ws.store.audit("pause", batch=batch, scope=made.scope, reason=made.reason,
                   stop=stop, freeze=freeze)
    fault_point("pause-written")
    for each, part in covered:
        if stop:
            from hf_fanout.orchestrator.workers import stop_parts

            stop_parts(each, part.batch, part.name, grace=5.0, dry_run=False)
        elif freeze and _group(part):
            processes.signal_group(_group(part), signal.SIGSTOP)
        _tell(part, _paused_note(made))


def resume(ws: Workspace, batch: str | None, *, everywhere: bool,
           dry_run: bool) -> dict[str, Any]:
    scope = _scope(batch, everywhere)
    if dry_run:
        return _resume(ws, batch, scope, dry_run=True)
    with _changing():
        return _resume(ws, batch, scope, dry_run=False)


def _resume(ws: Workspace, batch: str | None, scope: str, *, dry_run: bool) -> dict[str, Any]:
    from hf_fanout.orchestrator.boundary import refuse_inside_part

    existing = pauses.read_damaged(ws, scope)
    result: dict[str, Any] = {"scope": scope, "was_paused": existing is not None,
                              "dry_run": dry_run, "continued": []}
    if existing is not None and existing.frozen:
        for each, part in _covered(ws, scope):
            result["continued"].append({"repo": str(each.main.path), "batch": part.batch,
                                        "part": part.name, "group": _group(part)})
    if dry_run or existing is None:
        return result
    refuse_inside_part("hf resume")
    pauses.remove(ws, scope)
    for entry in result["continued"]:
        if entry["group"]:
            processes.signal_group(entry["group"], signal.SIGCONT)
    ws.store.audit("resume", batch=batch, scope=scope, continued=len(result["continued"]))
    who = audit.describe_actor(audit.actor())
    inner = scope if scope != pauses.USER else pauses.REPO
    for each in _repos(ws, scope):
        for part in _parts(each, inner):
            still = pauses.in_force(each, part.batch)  # a wider or narrower pause stays
            note = _paused_note(still[0]) if still else (
                f"RESUMED: {existing.where()} was lifted by {who} at "
                f"{timefmt.iso(timefmt.clock())}. Carry on with your task.")
            _tell(part, note, only_over_a_note=True)
    return result


def _paused_note(made: pauses.Pause) -> str:
    return (f"PAUSED: {made.describe()}. Finish the step you are in, commit, and start "
            "nothing new until it is lifted.")


def _tell(part: Part, note: str, *, only_over_a_note: bool = False) -> None:
    """Put `note` at the end of the part's handoff file, where its agent reads, in
    place of the PAUSED or RESUMED line put there before."""
    with contextlib.suppress(HfError, OSError):
        handoff.set_pause_note(Path(part.worktree), note, only_over_a_note=only_over_a_note)
