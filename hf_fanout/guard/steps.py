"""The guard's part in `hf split` and `hf join` (imported by the guard's CLI module)."""

from __future__ import annotations

from pathlib import Path

from hf_fanout.orchestrator import join, split, sweep
from hf_fanout.orchestrator.records import Batch, Part
from hf_fanout.orchestrator.workspace import Workspace


def install_step(ws: Workspace, batch: Batch, part: Part) -> None:
    """split.PREPARE_STEPS: hooks and marker in each new worktree."""
    from hf_fanout.guard import fingerprint, hooks

    if hooks.install(ws.repo, Path(part.worktree), batch.id, part.name):
        # hf rewrote its own hooks (another python or hf path): not tampering
        fingerprint.rebaseline_guard_files(ws)


def fingerprint_step(ws: Workspace, batch: Batch, parts: list[Part]) -> None:
    from hf_fanout.guard import fingerprint

    fingerprint.finish_step(ws, batch, parts)


def tamper_check(ws: Workspace, batch: Batch) -> None:
    from hf_fanout.guard import fingerprint

    fingerprint.verify(ws, batch)


def sweep_check(ws: Workspace, batch: Batch) -> list[str]:
    """sweep.SWEEP_CHECKS: what changed behind hf's back, as lines."""
    from hf_fanout.guard import fingerprint

    return [f.line() for f in fingerprint.check(ws, batch)]


def register() -> None:
    """Idempotent: add the guard's steps to split and join once."""
    if install_step not in split.PREPARE_STEPS:
        split.PREPARE_STEPS.append(install_step)
    if fingerprint_step not in split.FINISH_STEPS:
        split.FINISH_STEPS.append(fingerprint_step)
    if tamper_check not in join.PRE_JOIN_CHECKS:
        join.PRE_JOIN_CHECKS.append(tamper_check)
    if sweep_check not in sweep.SWEEP_CHECKS:
        sweep.SWEEP_CHECKS.append(sweep_check)


register()
