"""The guard's commands: `hf guard env|explain|install` and `hf commit`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hf_fanout.cli import output
from hf_fanout.cli.options import DryRun, Json, RepoOpt, Wait, command, open_ws
from hf_fanout.cli.output import emit

GROUP_HELP = ("The git guard for part worktrees: the wrapper, hooks and the policy. "
              "Every subcommand takes --json.\n\n"
              "Example: eval \"$(hf guard env)\"   |   hf guard explain reset --hard")


def _subcommand(name: str) -> None:
    """The envelope names the subcommand (`guard explain`), not just the group."""
    output.CURRENT.command = f"guard {name}"


@command(name="env", epilog="Example: eval \"$(hf guard env)\"")
def guard_env_cmd(json: Json = False) -> None:
    """Print shell lines that put hf's git wrapper first on PATH (for eval)."""
    _subcommand("env")
    from hf_fanout.guard.env import guard_env, shell_lines

    lines = shell_lines()
    env = guard_env()
    emit({"env": {k: env[k] for k in ("HF_REAL_GIT", "HF_PYTHON", "PATH")}, "lines": lines},
         "\n".join(lines))


@command(
    name="explain",
    epilog="Example: hf guard explain reset --hard   |   hf guard explain --part b1/api "
    "checkout main -- src/ui/app.js",
    context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
)
def explain(
    command: Annotated[list[str], typer.Argument(
        help="The git command, without `git` (hf's own options go before it).")],
    part: Annotated[str | None, typer.Option(
        "--part", help="Judge as inside BATCH/PART (default: the part of this directory).")]
    = None,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Say what the guard would do with a git command, and why."""
    _subcommand("explain")
    import os

    from hf_fanout.guard.entry import GitProbe, context_for
    from hf_fanout.guard.wrapper import PartContext, Rules, decide

    argv = command[1:] if command and command[0] == "git" else list(command)
    cwd = (repo or Path.cwd()).resolve()
    ws = open_ws(repo)
    rules = Rules.from_settings(ws.settings.get("guard"))
    ctx: Any = None
    if part:
        target = ws.resolve_part(part)
        ctx = context_for(Path(target.worktree))
        if isinstance(ctx, PartContext):
            ctx = PartContext(**{**ctx.__dict__, "cwd": ctx.worktree})
    else:
        ctx = context_for(cwd)
    here_in_part = isinstance(ctx, PartContext) and not part
    if not isinstance(ctx, PartContext):
        # No part to judge against: a part that owns nothing, in this directory.
        real = os.path.realpath(cwd)
        ctx = PartContext(batch="BATCH", part="PART", branch="hf/BATCH/PART", worktree=real,
                          git_dir=str(Path(real) / ".git"), cwd=real,
                          owns_globs=(), rules=rules)
    decision = decide(argv, ctx, GitProbe(Path(ctx.cwd)))
    where = f"{ctx.batch}/{ctx.part}" if ctx.batch != "BATCH" else "any part"
    data = {"argv": argv, "in_part": here_in_part, "part": where if where != "any part"
            else None, "allowed": decision.allowed, "rule": decision.rule,
            "reason": decision.reason, "instead": decision.instead}

    def human() -> None:
        if not here_in_part and not part:
            print("here (not a part's worktree): passes through to the real git unchanged")
        if decision.allowed:
            print(f"in {where}: allowed, runs the real git unchanged")
        else:
            print(f"in {where}: refused (exit 99), rule {decision.rule!r}")
            print(decision.line(ctx))

    emit(data, human)


@command(name="install", epilog="Example: hf guard install   |   hf guard install b1/api")
def install_cmd(
    part: Annotated[str | None, typer.Argument(
        help="BATCH/PART (default: this part, or every part of every running batch).")]
    = None,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """(Re)install the guard hooks in part worktrees (split does this already)."""
    _subcommand("install")
    from hf_fanout.guard import fingerprint, hooks

    ws = open_ws(repo)
    if part or ws.current_part() is not None:
        targets = [ws.resolve_part(part)]
    else:
        targets = [p for b in fingerprint.running_batches(ws) for p in ws.store.load_parts(b)]
    targets = [p for p in targets if Path(p.worktree).is_dir()]
    names = [f"{p.batch}/{p.name}" for p in targets]
    if not dry_run:
        for p in targets:
            hooks.install(ws.repo, Path(p.worktree), p.batch, p.name)
        fingerprint.rebaseline_guard_files(ws)
    verb = "would install" if dry_run else "installed"
    emit({"parts": names, "hooks": str(hooks.hooks_dir(ws.repo.common_dir)),
          "dry_run": dry_run},
         f"{verb} the guard hooks in {len(names)} part(s): {', '.join(names) or 'none'}")


@command(epilog="Example: hf commit -m 'fix the parser' src/parse.py tests/test_parse.py")
def commit(
    paths: Annotated[list[str], typer.Argument(help="Exactly the files to commit.")],
    message: Annotated[str, typer.Option("--message", "-m", help="The commit message.")],
    no_verify: Annotated[bool, typer.Option(
        "--no-verify", help="Skip the pre-commit and commit-msg hooks.")] = False,
    wait: Wait = 30.0,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Commit exactly the named files, under the commit lock; other staged files stay staged."""
    from hf_fanout.guard.commit import commit_paths

    ws = open_ws(repo)
    result = commit_paths(ws, message, paths, cwd=Path.cwd(), wait=wait,
                          verify=not no_verify, dry_run=dry_run)

    def human() -> None:
        if dry_run:
            print(f"would commit {len(result.paths)} path(s) on {result.ref}: "
                  f"{', '.join(result.paths)}")
        else:
            print(f"committed {result.commit[:12]} on {result.ref}: "
                  f"{', '.join(result.paths)}")
        if result.still_staged:
            print(f"still staged, not committed: {', '.join(result.still_staged)}")

    emit(result.to_data(), human)


@command(epilog="Example: hf trust   |   hf trust --dry-run   |   hf trust --revoke")
def trust(
    revoke: Annotated[bool, typer.Option(
        "--revoke", help="Stop trusting this repository's .hf.toml.")] = False,
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Trust the repository's .hf.toml as it is now: its setup, agent, launcher_command
    and loosened guard or sandbox settings are used (any later change needs trust again)."""
    from hf_fanout.orchestrator.trusting import trust_repository

    result = trust_repository(open_ws(repo), revoke=revoke, dry_run=dry_run)

    def human() -> None:
        verb = ("would " if dry_run else "") + ("stop trusting" if revoke else "trust")
        if not dry_run:
            verb = "no longer trusted" if revoke else "trusted"
        print(f"{verb}: {result['file']} (sha256 {result['digest'][:12]})")
        for key, value in result["settings"].items():
            print(f"  {key} = {value!r}")
        if not result["keys"]:
            print("  it sets nothing that needs trust")

    emit(result, human)
