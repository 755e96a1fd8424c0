"""What every command module shares: the option types, the mark that says how a
function is shown as a command (read by `app.py`, which adds them), and opening
the workspace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from hf_fanout.cli.light import open_ws

__all__ = ["BranchOpt", "DryRun", "ForceWithLeaseOpt", "Json", "LauncherOpt", "PartArg",
           "PartOpt", "PrOpt", "RemoteOpt", "RepoOpt", "Wait", "command", "open_ws",
           "split_spec"]

Json = Annotated[bool, typer.Option("--json", help="Print one JSON envelope (for agents).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would happen; change nothing.")]
RepoOpt = Annotated[
    Path | None,
    typer.Option("--repo", "-C", help="The repository (default: the current directory)."),
]
Wait = Annotated[
    float, typer.Option("--wait", min=0,
                        help="Seconds to wait for the commit lock before giving up.")
]
# where `hf publish` and `hf join --push` push: the same options, one meaning
RemoteOpt = Annotated[str | None, typer.Option(
    "--remote", help="The remote (default: the branch's upstream's, else origin).",
    metavar="NAME")]
BranchOpt = Annotated[str | None, typer.Option(
    "--branch", help="Push to the branch NAME of its own, e.g. hf/BATCH (default: the "
    "upstream of the branch the batch was joined into).", metavar="NAME")]
ForceWithLeaseOpt = Annotated[bool, typer.Option(
    "--force-with-lease", help="Replace the remote branch if it is still where it was "
    "last fetched.")]
PrOpt = Annotated[bool, typer.Option(
    "--pr", help="With --branch: open a pull request (gh or glab; else print the forge's "
    "page for one).")]


def batch_names(incomplete: str) -> list[str]:
    """Shell completion: the batch ids of the repository the shell is in."""
    try:
        from hf_fanout.core.workspace import Workspace

        return [b for b in Workspace.open().store.batch_ids() if b.startswith(incomplete)]
    except Exception:  # completion must never print a traceback
        return []


def part_names(incomplete: str) -> list[str]:
    """Shell completion: BATCH/PART of every part (and the batch ids)."""
    try:
        from hf_fanout.core.workspace import Workspace

        store = Workspace.open().store
        found = []
        for batch in store.batch_ids():
            found.append(batch)
            found += [f"{batch}/{p}" for p in store.load_batch(batch).parts]
        return [name for name in found if name.startswith(incomplete)]
    except Exception:  # completion must never print a traceback
        return []


PartArg = Annotated[str | None, typer.Argument(
    help="BATCH/PART (default: the part of the current worktree).",
    autocompletion=part_names)]
PartOpt = Annotated[str | None, typer.Option(
    "--part", help="BATCH/PART (default: the part of the current worktree).")]
LauncherOpt = Annotated[str | None, typer.Option(
    "--launcher", help="tmux, vscode, cursor, terminal, print, custom, or a command template "
    "with {worktree} {branch} {batch} {part} {handoff} (default: `launcher` in the config, "
    "else tmux when installed, else print).")]

F = TypeVar("F", bound=Callable[..., Any])


def command(*, epilog: str, name: str | None = None,
            context_settings: dict[str, Any] | None = None) -> Callable[[F], F]:
    """How `app.py` shows the function as a command: its example line (epilog), its
    name when it is not the function's, and click context settings. Only marks
    the function; adding it to the app is `app.py`'s, in one list."""

    def mark(function: F) -> F:
        shown = {"epilog": epilog, "name": name or function.__name__.rstrip("_"),
                 "context_settings": context_settings}
        setattr(function, "hf_command", shown)  # noqa: B010 (a function attribute, typed Any)
        return function

    return mark


def split_spec(spec: str) -> tuple[str, str | None]:
    """`BATCH` or `BATCH/PART`."""
    batch, _, part = spec.partition("/")
    return batch, part or None
