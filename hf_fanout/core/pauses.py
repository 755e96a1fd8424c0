"""Pauses: while one is in force nothing new starts in its batch (or anywhere in
the repository, or, user-wide, in any repository). A pause is a small JSON file:
`<common>/hf/pauses/<BATCH>.json` or `<common>/hf/pauses/_repo.json` for the
repository, `<state>/pause.json` for the user; it survives a reboot because it is
only a file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_fanout import atomic
from hf_fanout.config import user_state_dir
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import Paused, StateCorrupt

REPO = "_repo"  # the file name of a repository-wide pause
USER = "_all"  # the scope name of a user-wide pause


def label(scope: str) -> str:
    """A scope as a user reads it: the batch id, `the repository`, `every repository`."""
    return {REPO: "the repository", USER: "every repository"}.get(scope, scope)


@dataclass(frozen=True)
class Pause:
    scope: str  # a batch id, REPO or USER
    by: str
    reason: str
    at: str
    frozen: bool = False

    def where(self) -> str:
        """What it covers: `batch b1`, `the repository`, `every repository (...)`."""
        return {REPO: "the repository", USER: "every repository (hf pause --all)"}.get(
            self.scope, f"batch {self.scope}")

    def describe(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"{self.where()} is paused by {self.by} since {self.at}{why}"

    def to_data(self) -> dict[str, Any]:
        return {"scope": self.scope, "by": self.by, "reason": self.reason, "at": self.at,
                "frozen": self.frozen}


def pause_file(ws: Workspace | None, scope: str) -> Path:
    if scope == USER or ws is None:
        return user_state_dir() / "pause.json"
    return ws.store.root / "pauses" / f"{scope}.json"


def resume_command(scope: str) -> str:
    """The command that lifts a pause of `scope`."""
    return "hf resume --all" if scope == USER else (
        "hf resume" if scope == REPO else f"hf resume {scope}")


def read(ws: Workspace | None, scope: str) -> Pause | None:
    """The pause of `scope`, or None. A damaged pause file refuses (what it paused
    stays paused), with the hint that lifts it: torn, or any JSON that is not a
    pause (`null`, a list, a record without its time); the file exists exactly
    while the pause is in force, so whatever is there holds."""
    path = pause_file(ws, scope)
    hint = f"`{resume_command(scope)}` lifts it (and removes the file)"
    data = atomic.read_json(path, "pause", hint)
    if data is None and not os.path.lexists(path):
        return None
    if not isinstance(data, dict) or not data.get("at"):
        raise StateCorrupt(f"{path} is not a pause (edited or damaged pause)", hint)
    return Pause(scope=scope, by=str(data.get("by", "")), reason=str(data.get("reason", "")),
                 at=str(data.get("at", "")), frozen=bool(data.get("frozen", False)))


def read_damaged(ws: Workspace | None, scope: str) -> Pause | None:
    """The pause of `scope` as `hf pause` and `hf resume` see it: a damaged pause
    file is a pause that may have frozen its agents (resuming continues them, a
    continue to a running process does nothing), so that either command can
    replace or lift it."""
    try:
        return read(ws, scope)
    except StateCorrupt:
        return Pause(scope=scope, by="unknown (its file was damaged)", reason="",
                     at="", frozen=True)


def write(ws: Workspace | None, pause: Pause) -> None:
    atomic.atomic_write_json(pause_file(ws, pause.scope), {"schema": 1, **pause.to_data()})


def remove(ws: Workspace | None, scope: str) -> bool:
    path = pause_file(ws, scope)
    if not path.exists():
        return False
    atomic.remove_durably(path)
    return True


def in_force(ws: Workspace, batch: str | None = None) -> list[Pause]:
    """Every pause covering `batch` (None: the repository as a whole), widest first."""
    scopes = [USER, REPO] + ([batch] if batch else [])
    return [p for p in (read(ws, s) for s in scopes) if p is not None]


def all_in_force(ws: Workspace) -> list[Pause]:
    """Every pause in this repository and the user's, for `hf status` and `hf doctor`."""
    found = [p for p in (read(ws, USER), read(ws, REPO)) if p is not None]
    base = ws.store.root / "pauses"
    if base.is_dir():
        for path in sorted(base.glob("*.json")):
            if path.stem != REPO:
                pause = read(ws, path.stem)
                if pause is not None:
                    found.append(pause)
    return found


def refuse_if_paused(ws: Workspace, what: str, batch: str | None = None) -> None:
    """Refuse `what` (e.g. `hf run b1/api`) with one line naming the pause."""
    pauses = in_force(ws, batch)
    if pauses:
        pause = pauses[0]
        ws.store.audit("refused-paused", what=what, scope=pause.scope, batch=batch)
        resume = resume_command(pause.scope)
        raise Paused(f"{what} refused: {pause.describe()}", f"lift it with `{resume}`")
