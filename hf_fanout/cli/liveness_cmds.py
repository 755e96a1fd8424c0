"""Liveness commands: run, heartbeat, sweep, stop, drop, gc, install, uninstall."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from hf_fanout.cli import output
from hf_fanout.cli.options import (
    DryRun,
    Json,
    PartOpt,
    RepoOpt,
    Wait,
    command,
    open_ws,
    split_spec,
)
from hf_fanout.cli.output import emit

# --------------------------------------------------------------------- run


@command(
    epilog="Example: hf run -- claude   |   hf run --done-on-success -- aider --yes -m 'fix'",
    context_settings={"allow_interspersed_args": False},
)
def run(
    command: Annotated[list[str] | None, typer.Argument(
        help="The agent command and its arguments (after --).")] = None,
    part: PartOpt = None,
    heartbeat_seconds: Annotated[float | None, typer.Option(
        "--heartbeat", help="Seconds between heartbeats (default 30, or "
        "heartbeat_seconds in .hf.toml).")] = None,
    done_on_success: Annotated[bool, typer.Option(
        "--done-on-success", help="Mark the part done when the command exits 0.")] = False,
    no_sandbox: Annotated[bool, typer.Option(
        "--no-sandbox", help="Run without the part's sandbox (said loudly; see "
        "docs/guard.md).")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Start even over max_live_agents (audited).")] = False,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Run the part's worker in its sandbox: own process group, HF_* marker,
    heartbeat, exit recorded."""
    from hf_fanout.errors import BadInput
    from hf_fanout.orchestrator.workers import heartbeat_interval, marker_env, run_worker

    if not command:
        raise BadInput("no command to run", "hf run -- CMD ARGS..., e.g. hf run -- claude")
    ws = open_ws(repo)
    target = ws.resolve_part(part, named_by="--part BATCH/PART")
    interval = heartbeat_interval(ws, heartbeat_seconds)
    if dry_run:
        emit({"command": command, "env": marker_env(ws, target), "heartbeat_seconds": interval,
              "dry_run": True},
             f"would run {' '.join(command)} as the worker of {target.batch}/{target.name}")
        return
    result = run_worker(ws, target, command, interval=interval, done_on_success=done_on_success,
                        sandboxed=False if no_sandbox else None, say=output.notice,
                        force=force)

    def human() -> None:
        ex = result["exit"] or {}
        how = f"signal {ex['signal']}" if ex.get("signal") else f"code {ex.get('code')}"
        done = "; part marked done" if result["done"] else ""
        print(f"hf run: {command[0]} ended with {how}{done}", file=sys.stderr)

    emit(result, human)
    if result["returncode"]:
        raise typer.Exit(int(result["returncode"]))


@command(epilog="Example: hf heartbeat   |   hf heartbeat --part b1/api --json")
def heartbeat(
    part: PartOpt = None,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Say the part's agent is working (for agents not started with `hf run`)."""
    from hf_fanout.cli import light

    light.heartbeat(part, dry_run, repo)


# --------------------------------------------------------------------- sweep


@command(epilog="Example: hf sweep   |   hf sweep --dry-run   |   hf sweep --repo . --json")
def sweep(
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Classify every part (running, idle, orphan, missing, done, blocked) and act on the dead."""
    from hf_fanout.orchestrator.sweep import sweep as do_sweep

    report = do_sweep([repo] if repo else None, dry_run=dry_run)

    def human() -> None:
        for gone in report.forgotten:
            verb = "would remove" if dry_run else "removed"
            print(f"{gone}: no longer exists; {verb} from the registry")
        if not report.repos and not report.forgotten:
            print("no repositories with batches (the registry is empty)")
        for r in report.repos:
            print(f"{r.repo}: " + (f"skipped: {r.skipped}" if r.skipped else
                                   f"{len(r.parts)} part(s)"))
            for p in r.parts:
                print(f"  {p.batch}/{p.part}: {p.state} ({p.why})")
            for a in r.actions:
                verb = "would " if dry_run else ""
                where = f"{a['batch']}/{a['part']}" if "part" in a else a["batch"]
                extra = f": {a['error']}" if a.get("error") else ""
                print(f"  {verb}{a['action']} {where}{extra}")
            for t in r.tamper:
                print(f"  tamper {t['batch']}: {t['finding']} (after a look: hf doctor --accept)")
            for u in r.unknown_processes:
                print(f"  unknown process {u['pid']} ({u['name']}) in {u['batch']}/{u['part']}")
            for e in r.errors:
                print(f"  error: {e}")

    errors = [e for r in report.repos for e in r.errors]
    if errors:  # the rest was swept; what could not be read is the command's failure
        from hf_fanout.errors import StateCorrupt

        if not json:
            human()
        raise StateCorrupt(f"hf sweep could not read {len(errors)} record(s): {errors[0]}",
                           "`hf doctor` shows every damaged record; hf leaves them as they "
                           "are", details=report.to_data())
    emit(report.to_data(), human)


# --------------------------------------------------------------------- stop


@command(epilog="Example: hf stop b1   |   hf stop b1/api --grace 10")
def stop(
    target: Annotated[str, typer.Argument(help="BATCH or BATCH/PART.")],
    grace: Annotated[float, typer.Option(
        "--grace", help="Seconds between SIGTERM and SIGKILL.")] = 5.0,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """End a part's (or a batch's) workers; rescue their work first; parts become blocked."""
    from hf_fanout.orchestrator.workers import stop_parts

    batch, part = split_spec(target)
    ws = open_ws(repo)
    results = stop_parts(ws, batch, part, grace=grace, dry_run=dry_run)

    def human() -> None:
        for r in results:
            where = f"{r['batch']}/{r['part']}"
            if dry_run:
                print(f"would stop {where}: {_would_stop(r)}")
                continue
            if r.get("remote"):
                print(f"{where} is worked through {r['remote']}, on another machine: nothing "
                      f"was stopped there; here it is {r['state']} (its `hf done` there "
                      "still reaches the join)")
                continue
            rescue = r.get("rescue") or {}
            saved = f", work saved at {rescue['ref']}" if rescue.get("ref") else ""
            print(f"stopped {where}: {r['state']}{saved}, "
                  f"{len(r.get('killed') or [])} process(es) needed SIGKILL")

    emit({"parts": results, "dry_run": dry_run}, human)


def _would_stop(result: dict[str, Any]) -> str:
    """One readable line for what `hf stop` would do to a part."""
    would = result.get("would_signal") or {}
    groups = [str(g) for g in would.get("groups") or []]
    marked = [str(p) for p in would.get("marked") or []]
    said = []
    if groups:
        said.append(f"signal the worker's process group {', '.join(groups)}")
    if marked:
        said.append(f"end {len(marked)} process(es) of the part (pid {', '.join(marked)})")
    if not said:
        said.append("no running process to end")
    state = result.get("state")
    if state != "joined":
        said.append("save its work at a rescue ref")
    if state not in ("joined", "done"):
        said.append("mark it blocked")
    return "; ".join(said)


# --------------------------------------------------------------------- drop / gc


@command(epilog="Example: hf drop b1   |   hf drop b1/api   |   hf drop b1 --dry-run")
def drop(
    target: Annotated[str, typer.Argument(
        help="BATCH (abandon it) or BATCH/PART (leave that part out of the batch).")],
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Abandon a batch, or leave one part out of it: it is never joined; `hf gc` may
    then remove it."""
    from hf_fanout.orchestrator.gc import drop as do_drop
    from hf_fanout.orchestrator.gc import drop_part

    batch, part = split_spec(target)
    ws = open_ws(repo)
    verb = "would drop" if dry_run else "dropped"
    if part is not None:
        dropped = drop_part(ws, batch, part, dry_run=dry_run)
        emit({"part": dropped.to_dict(), "dry_run": dry_run},
             f"{verb} part {batch}/{part}: the join goes on without it; its worktree and "
             "branch stay until `hf gc` collects the batch")
        return
    result = do_drop(ws, batch, dry_run=dry_run)
    emit({"batch": result.to_dict(), "dry_run": dry_run},
         f"{verb} batch {batch}; `hf gc` removes its worktrees and branches")


@command(epilog="Example: hf gc --dry-run   |   hf gc b1 --force")
def gc(
    batch: Annotated[str | None, typer.Argument(
        help="One batch (default: every joined or dropped batch, and queue worktrees).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Also remove parts whose changes are not in main (after a rescue "
        "ref holds them).")] = False,
    wait: Wait = 30.0,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Remove worktrees and branches of joined or dropped batches (and of queue entries
    whose work is in main, and taken batches over where they were split); report the
    space freed."""
    from hf_fanout.orchestrator.gc import gc as do_gc

    ws = open_ws(repo)
    report = do_gc(ws, batch, force=force, dry_run=dry_run, wait=wait)

    def human() -> None:
        if not report.parts and not report.queue:
            print("nothing to collect (no joined or dropped batch)")
        for p in report.parts + report.queue:
            print(f"{p.batch}/{p.part}: {p.action} ({p.why})")
        for ref in report.refs_removed:
            print(f"removed ref {ref}")
        for bid in report.forgotten:
            print(f"forgot batch {bid} (collected, ended over forget_after_days ago)")
        for bid in report.taken_removed:
            print(f"removed taken batch {bid} here (over where it was split)")
        for old, new in report.refs_kept.items():
            print(f"kept {old} as {new}: it holds work that is not in main")
        for where, tip in report.remote_moved.items():
            remote, _, ref = where.partition(":")
            print(f"kept {ref} on {remote} (and the part's other refs there): it is at "
                  f"{tip[:12]}, commits no join of the batch took; `git fetch {remote} "
                  f"{ref}` brings them here (a dropped part's go with `hf gc --force`, "
                  "which keeps them at its rescue ref here)")
        verb = "would free" if dry_run else "freed"
        print(f"{verb} {_size(report.freed_bytes)}")

    emit({**report.to_data(), "dry_run": dry_run}, human)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


# --------------------------------------------------------------------- schedule


@command(epilog="Example: hf install --cron   |   hf install --systemd --every 5")
def install(
    cron: Annotated[bool, typer.Option("--cron", help="A line in your crontab.")] = False,
    systemd: Annotated[bool, typer.Option(
        "--systemd", help="A systemd user service and timer.")] = False,
    launchd: Annotated[bool, typer.Option("--launchd", help="A LaunchAgent (macOS).")] = False,
    every: Annotated[int, typer.Option("--every", help="Minutes between sweeps.")] = 1,
    dry_run: DryRun = False,
    json: Json = False,
) -> None:
    """Run the sweep on a schedule (default: cron on Linux, launchd on macOS)."""
    from hf_fanout.errors import BadInput
    from hf_fanout.liveness import schedule

    chosen = [k for k, on in (("cron", cron), ("systemd", systemd), ("launchd", launchd)) if on]
    if len(chosen) > 1:
        raise BadInput("pick one schedule", "one of --cron, --systemd, --launchd")
    kind = chosen[0] if chosen else schedule.default_kind()
    result = schedule.install(kind, every, dry_run=dry_run)

    def human() -> None:
        verb = "would install" if dry_run else "installed" if result["changed"] else \
            "already installed"
        print(f"{verb}: the sweep via {kind}, every {every} min")
        if result.get("line"):
            print(f"  crontab: {result['line']}")
        for f in result.get("files", []):
            print(f"  {f}")

    emit(result, human)


@command(epilog="Example: hf uninstall   |   hf uninstall --dry-run")
def uninstall(
    dry_run: DryRun = False,
    json: Json = False,
) -> None:
    """Remove the sweep's schedule (exactly what `hf install` added)."""
    from hf_fanout.liveness import schedule

    result = schedule.uninstall(dry_run=dry_run)

    def human() -> None:
        if not result["removed"]:
            print("no hf schedule was installed")
        verb = "would remove" if dry_run else "removed"
        for item in result["removed"]:
            print(f"{verb} {item}")

    emit(result, human)
