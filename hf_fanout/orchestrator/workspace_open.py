"""Opening a repository for a command: the workspace, after settling what a killed
hf command left behind (a split that was cut off, an interrupted join)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hf_fanout.core import inbox
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError
from hf_fanout.paths import shown_path


def open_workspace(repo: Path | None = None, *, recover: bool = True) -> Workspace:
    """The workspace of `repo` (default: the current directory), recovered first
    unless `recover` is false (`hf doctor` recovers step by step itself)."""
    ws = Workspace.open(repo)
    refuse_unusable_audit_log(ws)
    if recover and not inbox.sandboxed():  # (inside a sandbox hf's records are read-only)
        settle(ws)
    return ws


def refuse_unusable_audit_log(ws: Workspace) -> None:
    """Refused before anything is done: the audit log is there as something else
    than a file (a folder, a link), so the command could not record what it did
    (and would fail after doing it)."""
    import os
    import stat
    from shlex import quote

    from hf_fanout.errors import FileNotUsable

    path = ws.store.audit_file
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        mode = 0
        why = exc.strerror
    else:
        why = "a folder" if stat.S_ISDIR(mode) else "a symbolic link" if stat.S_ISLNK(
            mode) else "not a regular file"
    if not stat.S_ISREG(mode):
        raise FileNotUsable(f"hf's audit log {path} is {why}: hf could not record what "
                            "this command does", f"move it aside (`mv {quote(str(path))} "
                            f"{quote(str(path) + '.aside')}`); hf then starts a new log")


def settle(ws: Workspace) -> None:
    """Finish or take back what a killed hf left: a split, a take, a join. What cannot be
    settled yet becomes a notice; a command that needs it meets it again."""
    try:  # one directory read: the journals of a split, a take or a join that may be cut off
        names = [entry.name for entry in (ws.store.root / "journal").iterdir()]
    except OSError:  # (none: nothing was ever cut off)
        return
    if any(n.startswith("take-") and n.endswith(".json") for n in names):
        from hf_fanout.orchestrator.take_journal import settle_takes

        settle_takes(ws)
    if any(n == ws.store.journal_file.name or (n.startswith("split-") and n.endswith(".json"))
           for n in names):
        settle_journals(ws)
    if any(n.startswith("index-lock-") for n in names):
        from hf_fanout.core.maintree import release_left_locks

        ws.notices += [(f"git's index lock {lock}, which a killed hf command left, was let go",
                        "") for lock in release_left_locks(ws)]


def settle_journals(ws: Workspace) -> None:
    """A split cut off, and the interrupted join (or undo)."""
    from hf_fanout.orchestrator.journal import read_journal, recover_join
    from hf_fanout.orchestrator.split_journal import recover_splits

    try:
        ws.notices += [(line, "") for line in recover_splits(ws)]
        journal = read_journal(ws)
        outcome = recover_join(ws, wait=0)
        if journal is not None and outcome is not None:
            ws.notices.append((f"an interrupted `hf {journal['action']}` of batch "
                               f"{journal['batch']} was {outcome.replace('-', ' ')}",
                               _abandoned_hint(journal) if outcome == "abandoned" else ""))
    except HfError as exc:
        ws.notices.append((exc.message, exc.hint))


def _abandoned_hint(journal: dict[str, Any]) -> str:
    """What a person should look at after a join (or undo) that was cut off and
    whose branch moved before hf could finish or take it back: a commit made
    meanwhile (git's own advice is to remove the lock hf left) may hold part of
    what it was writing."""
    paths = sorted(set(journal["old_entries"]) | set(journal["new_entries"]))
    shown = ", ".join(shown_path(p) for p in paths[:5]) + (
        f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    again = f"`hf join {journal['batch']}` joins it again" if journal["action"] == "join" \
        else f"`hf undo {journal['batch']}` runs it again"
    return (f"{journal['ref']} moved while it was cut off: a commit made since may hold "
            f"part of what it was writing ({shown}); `git log -p -3 -- <path>` shows "
            f"what; the files are as the index has them now, and {again}")
