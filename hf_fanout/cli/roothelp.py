"""`hf --help`, rendered ahead of time so it prints without loading typer.

`python -m hf_fanout.cli.roothelp` rewrites TEXT from the live command tree;
tests/test_cli.py fails when TEXT differs from what typer renders. The text is
click's rendering at 80 columns or more (click never formats wider than 78);
a narrower terminal gets the live rendering.
"""

from __future__ import annotations

TEXT = (
    'Usage: hf [OPTIONS] COMMAND [ARGS]...\n'
    '\n'
    '  Run one coding task as parallel parts, each in its own git worktree, and\n'
    '  join the results back as one safe commit.\n'
    '\n'
    "  Example: hf split b1 --part api='src/api/**' --part ui='src/ui/**' --task\n"
    "  'add search'\n"
    '\n'
    'Options:\n'
    "  --version   Print hf's version.\n"
    '  -h, --help  Show this message and exit.\n'
    '\n'
    'Commands:\n'
    '  split        Split a task into parts: a branch and a worktree per part,...\n'
    '  status       Show every part: state, branch, worktree, changed files,...\n'
    '  done         Mark a part done (idempotent).\n'
    '  blocked      Mark a part blocked, with the reason (idempotent).\n'
    "  join         Bring every part's owned files into the main tree as one...\n"
    "  undo         Take back a batch's last join; its parts are done again,...\n"
    '  sync         Bring parts up to date with main: rebase (or merge) in...\n'
    "  publish      Push a joined batch's commit to a remote branch; with --pr...\n"
    "  doctor       Check hf's state: settle what a killed command left,...\n"
    '  demo         Make a throwaway repo, split a task in three, let stand-in...\n'
    '  commit       Commit exactly the named files, under the commit lock;...\n'
    "  trust        Trust the repository's .hf.toml as it is now: its setup,...\n"
    '  open         Open a tab per part with its agent; a tab that is alive is...\n'
    "  task         Print the part's handoff file: its task, files, limits,...\n"
    '  handoff      Hand the next task on: write a queue entry that `hf next`...\n'
    '  queue        List the handoff queue: each entry with its state...\n'
    '  next         Take the oldest pending queue entry (exactly once) and...\n'
    '  take         Work a remote part on this machine: claimed on the remote,...\n'
    "  run          Run the part's worker in its sandbox: own process group,...\n"
    "  heartbeat    Say the part's agent is working (for agents not started...\n"
    '  sweep        Classify every part (running, idle, orphan, missing, done,...\n'
    "  stop         End a part's (or a batch's) workers; rescue their work...\n"
    '  drop         Abandon a batch, or leave one part out of it: it is never...\n'
    '  gc           Remove worktrees and branches of joined or dropped batches...\n'
    '  install      Run the sweep on a schedule (default: cron on Linux,...\n'
    "  uninstall    Remove the sweep's schedule (exactly what `hf install`...\n"
    "  cd           Print a part's worktree; with `hf shell-init` in the...\n"
    '  shell-init   Print shell completion for hf and hf-fanout, and the `hf...\n'
    "  agent-event  Record what the part's agent is doing (run by the agent's...\n"
    '  diff         Show what the join would bring per part, and what it would...\n'
    '  board        The live board: `hf status --watch`.\n'
    "  widen        Add files to a sparse part's checkout, to read (it still...\n"
    '  log          Show the audit log: every state change with its time,...\n'
    '  report       Report a batch: wall and serial time, speedup, efficiency,...\n'
    '  note         Record a decision of the part this runs in (its worktree,...\n'
    '  pause        Stop anything new from starting (open, run, next, split...\n'
    '  resume       Lift a pause; agents frozen by it continue (SIGCONT).\n'
    '  init         Write a commented .hf.toml: environment files to copy,...\n'
    '  guard        The git guard for part worktrees: the wrapper, hooks and...\n'
)


def render() -> str:
    """The root help as typer renders it (at 80 columns or more)."""
    import contextlib
    import io
    import os

    from typer.main import get_command

    from hf_fanout.cli import app

    buffer = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        with contextlib.redirect_stdout(buffer), contextlib.suppress(BaseException):
            get_command(app.build()).main(["--help"], prog_name="hf", standalone_mode=False)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return buffer.getvalue()


def _rewrite() -> None:
    from pathlib import Path

    source = Path(__file__)
    text = source.read_text()
    start = text.index("TEXT = ")
    end = text.index("\n\n\ndef render")
    lines = "".join(f"    {line!r}\n" for line in render().splitlines(keepends=True))
    source.write_text(text[:start] + f"TEXT = (\n{lines})" + text[end:])


if __name__ == "__main__":
    _rewrite()
