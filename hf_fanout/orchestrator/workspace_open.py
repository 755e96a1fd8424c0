"""Opening a repository for a command: the workspace, after settling what a killed
hf command left behind (a split that was cut off, an interrupted join)."""

from __future__ import annotations

from pathlib import Path

from hf_fanout.core import inbox
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError


def open_workspace(repo: Path | None = None, *, recover: bool = True) -> Workspace:
    """The workspace of `repo` (default: the current directory), recovered first
    unless `recover` is false (`hf doctor` recovers step by step itself)."""
    ws = Workspace.open(repo)
    if recover and not inbox.sandboxed():  # (inside a sandbox hf's records are read-only)
        settle(ws)
    return ws


def settle(ws: Workspace) -> None:
    """Finish or take back what a killed hf left: a split, a join. What cannot be
    settled yet becomes a notice; a command that needs it meets it again."""
    if not (ws.store.root / "journal").is_dir():  # one stat: nothing was ever cut off
        return
    from hf_fanout.orchestrator.journal import recover_join
    from hf_fanout.orchestrator.split_journal import recover_splits

    try:
        ws.notices += [(line, "") for line in recover_splits(ws)]
        recover_join(ws, wait=0)
    except HfError as exc:
        ws.notices.append((exc.message, exc.hint))
