"""A batch `hf take` brought to this machine, once it is over on the machine that
split it (docs/remote.md, cleanup): whether it is, read from its remote, and which
of a taken part's changes are nowhere else (the gate `hf gc` asks before removing
the part here)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from hf_fanout.core.records import Batch, Part, copied_paths, part_base
from hf_fanout.core.remote_refs import read_timeout, task_ref
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError
from hf_fanout.orchestrator.safety import unintegrated_work
from hf_fanout.worktrees import remote as remotes


@dataclass(frozen=True)
class Elsewhere:
    """How a taken batch stands on its remote."""

    over: bool
    why: str  # said for people: why it is over, or why not yet
    target: str | None = None  # the remote's target branch tip (fetched), if any
    unreached: bool = False  # the remote did not answer: nothing is known


def taken_remote(batch: Batch) -> str | None:
    taken = batch.extra.get("taken")
    name = taken.get("remote") if isinstance(taken, dict) else None
    return name if isinstance(name, str) and name else None


def elsewhere(ws: Workspace, batch: Batch, parts: list[Part]) -> Elsewhere:
    """Over once the machine that split the batch collected it (`hf gc` there removed
    the parts' task refs from the remote), or joined it and published the result (the
    remote's target branch has every part's pushed work). One `git ls-remote`, and a
    fetch of that branch into objects only (its scratch ref removed)."""
    remote = taken_remote(batch)
    assert remote is not None
    try:
        refs = remotes.list_refs(ws.main.path, remote, [
            batch.target_ref, *(task_ref(batch.id, p.name) for p in parts)],
                timeout=read_timeout(ws.settings))
    except HfError as exc:
        return Elsewhere(False, f"cannot tell whether it is over: {exc.message}",
                         unreached=True)
    target = _fetched_target(ws, batch, remote, refs)
    if not any(task_ref(batch.id, p.name) in refs for p in parts):
        return Elsewhere(True, f"collected on the machine that split it (its refs are gone "
                         f"from {remote})", target)
    branch = batch.target_ref.removeprefix("refs/heads/")
    tips = [(p, _done_tip(p)) for p in parts]
    if target is not None and all(
            tip is not None and not unintegrated_work(ws, None, tip, part_base(batch, p), target)
            for p, tip in tips):
        return Elsewhere(True, f"joined: {remote}'s {branch} has every part's pushed work",
                         target)
    return Elsewhere(False, f"not over where it was split yet (its parts' refs are on "
                     f"{remote}, and {remote}'s {branch} has not all their work)")


def _fetched_target(ws: Workspace, batch: Batch, remote: str,
                    refs: dict[str, str]) -> str | None:
    oid = refs.get(batch.target_ref)
    if oid is None:
        return None
    scratch = remotes.scratch_ref("incoming-target", batch.id)
    try:
        remotes.fetch_refs(ws.main.path, remote, [f"+{batch.target_ref}:{scratch}"])
        return ws.repo.ref_target(scratch)
    except HfError:
        return None
    finally:
        with contextlib.suppress(HfError):
            ws.repo.git(["update-ref", "-d", scratch])


def _done_tip(part: Part) -> str | None:
    found = (part.extra.get("taken") or {}).get("done_tip")
    return found if isinstance(found, str) else None


def not_elsewhere(ws: Workspace, batch: Batch, part: Part, where: Elsewhere) -> list[str]:
    """The paths the taken part changed (committed or not, as `git add -A` sees its
    worktree) whose content is neither in what its `hf done` pushed nor in the
    remote's target branch: work that is only here."""
    tip = ws.repo.ref_target(f"refs/heads/{part.branch}")
    worktree = Path(part.worktree)
    base = part_base(batch, part)
    pending: set[str] | None = None
    for target in (_done_tip(part), where.target):
        if target is None:
            continue
        found = set(unintegrated_work(ws, worktree, tip, base, target,
                                      exclude=copied_paths(part)))
        pending = found if pending is None else pending & found
    if pending is None:  # nothing pushed, no joined result: all its changes are only here
        return unintegrated_work(ws, worktree, tip, base, base, exclude=copied_paths(part))
    return sorted(pending)
