"""Commands of tabs and handoffs: open, task, handoff, queue, next."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from hf_fanout.cli import output
from hf_fanout.cli.options import DryRun, Json, LauncherOpt, RepoOpt, command, open_ws
from hf_fanout.cli.output import emit
from hf_fanout.cli.render import print_opened

# --------------------------------------------------------------------- open


@command(name="open", epilog="Example: hf open b1   |   hf open b1/api --launcher print")
def open_(
    target: Annotated[str | None, typer.Argument(
        help="BATCH or BATCH/PART (default: the part of the current worktree).")] = None,
    launcher: LauncherOpt = None,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Open a tab per part with its agent; a tab that is alive is focused, not doubled."""
    from hf_fanout.tabs.launchers import choose
    from hf_fanout.tabs.opening import open_parts

    ws = open_ws(repo)
    if target is None:
        part = ws.resolve_part(None)
        target = f"{part.batch}/{part.name}"
    chosen = choose(ws.settings, launcher)
    results = open_parts(ws, target, chosen, supervise=True, dry_run=dry_run)
    emit({"launcher": chosen.name, "tabs": [r.to_data() for r in results],
          "dry_run": dry_run}, lambda: print_opened(results))


# --------------------------------------------------------------------- task


@command(epilog="Example: hf task   |   hf task b1/api --json   |   hf task b1/api --prompt")
def task(
    part: Annotated[str | None, typer.Argument(
        help="BATCH/PART (default: the part of the current worktree).")] = None,
    prompt: Annotated[bool, typer.Option(
        "--prompt", help="A self-contained prompt for an agent without hf (a hosted one): "
        "the task, the owned globs, the one branch to push.")] = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Print the part's handoff file: its task, files, limits, how to finish, its state."""
    from hf_fanout.orchestrator.remote_split import task_text

    ws = open_ws(repo)
    target = ws.resolve_part(part)
    path, text = task_text(ws, target, as_prompt=prompt)
    emit({"part": f"{target.batch}/{target.name}", "path": path, "text": text},
         lambda: print(text, end=""))


# --------------------------------------------------------------------- handoff / queue / next


@command(epilog="Example: hf handoff --task login --status done --next 'add logout' "
             "--tests 'pytest: 40 passed' --files src/auth.py")
def handoff(
    task_id: Annotated[str, typer.Option("--task", help="The task this tab worked on.")] = "",
    next_text: Annotated[str, typer.Option("--next", help="What the next tab should do.")] = "",
    status: Annotated[str, typer.Option(
        "--status", help="Where this tab's task stands: active, done or blocked.")] = "done",
    tests: Annotated[str, typer.Option("--tests", help="Test state, e.g. '40 passed'.")] = "",
    files: Annotated[list[str] | None, typer.Option(
        "--files", help="A file involved; repeat the option.")] = None,
    report: Annotated[str | None, typer.Option(
        "--report", help="Attach BATCH's state summary (`hf report BATCH --state`) to "
        "the entry.")] = None,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Hand the next task on: write a queue entry that `hf next` opens in a new tab."""
    from hf_fanout.orchestrator.report import handoff_entry

    ws = open_ws(repo)
    origin = str(ws.here.path)
    if os.environ.get("HF_BATCH") and os.environ.get("HF_PART"):
        origin += f" ({os.environ['HF_BATCH']}/{os.environ['HF_PART']})"
    made = handoff_entry(ws, task=task_id, text=next_text, status=status, tests=tests,
                         files=files or [], origin=origin, dry_run=dry_run, report=report)
    entry = made.entry
    data = {**entry.to_data(), "dry_run": dry_run, "requested": made.requested,
            "waiting": made.waiting}
    if made.requested:
        data.update(id=None, path=None)  # hf outside names the entry it writes
        said = ("would ask hf outside the sandbox to queue it" if dry_run else
                "asked hf outside the sandbox to queue it: not taken yet (the part's "
                "`hf run` takes it)" if made.waiting else
                "queued by hf outside the sandbox (`hf queue` lists it)")
        emit(data, f"handoff of {entry.task}: {said}")
        return
    verb = "would write" if dry_run else "queued"
    emit(data, f"{verb} {entry.id}: {entry.path}")


@command(epilog="Example: hf queue   |   hf queue --json")
def queue(
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """List the handoff queue: each entry with its state (pending, spawned, submitted, failed)."""
    from hf_fanout.tabs.queue import entries, watchers

    ws = open_ws(repo)
    found = entries(ws)
    watching = watchers(ws)

    def human() -> None:
        from hf_fanout.paths import shown_text

        for w in watching:
            print(f"watcher: pid {w.get('pid')} on {w.get('host')} since {w.get('at')}")
        if not found:
            print("the handoff queue is empty (`hf handoff` adds to it)")
            return
        # (a cell's width is its column's: a long task, or an unreadable entry's
        # reason, would widen every row; `--json` has them whole)
        rows = [[e.id, e.state, _cut(e.task, 60), e.header.get("status", ""),
                 _cut((e.text.splitlines() or [""])[0], 60)] for e in found]
        output.table(["entry", "state", "task", "status", "next"], rows)
        for e in found:
            if e.lapsed:
                print(f"{e.id}: pending again: {shown_text(str(e.lapsed['reason']))}")

    emit({"entries": [e.to_data() for e in found], "watchers": watching}, human)


@command(name="next", epilog="Example: hf next   |   hf next --watch --launcher tmux   |   "
             "hf next --watch --max 3 --timeout 600 --isolated")
def next_(
    watch: Annotated[bool, typer.Option(
        "--watch", help="Keep taking entries as they arrive (Ctrl-C stops).")] = False,
    isolated: Annotated[bool, typer.Option(
        "--isolated", help="Open each in a worktree of its own instead of the main tree.")]
    = False,
    max_entries: Annotated[int | None, typer.Option(
        "--max", min=1, help="With --watch: stop after taking this many.")] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0, help="With --watch: stop after this many seconds with nothing "
        "new.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Take entries even over max_spawns_per_hour (audited).")] = False,
    launcher: LauncherOpt = None,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Take the oldest pending queue entry (exactly once) and open a tab for it."""
    from hf_fanout.tabs.opening import preview_next, take_queue

    ws = open_ws(repo)
    if dry_run:
        preview = preview_next(ws, launcher, isolated=isolated)
        emit(preview.to_data(), preview.line())
        return
    quiet = output.CURRENT.json
    report = take_queue(ws, launcher, watch=watch, isolated=isolated, max_entries=max_entries,
                        idle_timeout=timeout, force=force,
                        say=None if quiet else print,
                        opened=None if quiet else lambda tab: print_opened([tab]))
    if not report.taken and not watch and not quiet:
        print("no pending entry in the handoff queue")
    emit(report.to_data())


def _cut(text: str, width: int) -> str:
    """`text` in at most `width` characters, `...` saying it was cut."""
    return text if len(text) <= width else text[:width - 3] + "..."
