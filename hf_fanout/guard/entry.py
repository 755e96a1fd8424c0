"""The guard's processes: `hf-guard wrap ARGV` (the wrapper's slow path inside a part)
and `hf-guard hook NAME ARGS` (the part hooks). Both run the real git only through
`worktrees/process.py`, and never raise: a refusal is one line and an exit code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hf_fanout.errors import EXIT_GUARD

if TYPE_CHECKING:
    from hf_fanout.guard.wrapper import PartContext


class GitProbe:
    """The wrapper policy's questions, answered by the real git in `cwd`."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def alias(self, name: str, config_args: list[str]) -> str | None:
        from hf_fanout.worktrees import process as git

        proc = git.run([*config_args, "config", "--get", f"alias.{name}"], self.cwd,
                       check=False)
        if proc.returncode != 0:
            return None
        return proc.stdout.decode("utf-8", "surrogateescape").strip()

    def is_revision(self, word: str) -> bool:
        from hf_fanout.worktrees import process as git

        proc = git.run(["rev-parse", "--verify", "--quiet", "--end-of-options",
                        f"{word}^{{tree}}"], self.cwd, check=False)
        return proc.returncode == 0

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.cwd / path)


def context_for(cwd: Path, top: Path | None = None) -> PartContext | None:
    """The PartContext for a command run in `cwd`, or None outside any part."""
    from hf_fanout.config import Settings
    from hf_fanout.gitlink import enclosing_worktree
    from hf_fanout.guard import fast, locate
    from hf_fanout.guard.wrapper import PartContext, Rules

    found = enclosing_worktree(top or cwd)
    if found is None:
        return None
    marker = locate.read_marker(found[1])
    if marker is None:
        return None
    record = locate.load_part_record(marker)
    if record is None or record.get("state") == "joined":
        return None
    rules = Rules.from_settings(Settings.load(Path(marker.main_workdir)).get("guard"))
    fast.refresh(str(found[1]), marker.main_workdir, record)
    return PartContext(
        batch=marker.batch, part=marker.part, branch=str(record.get("branch", "")),
        worktree=os.path.realpath(found[0]), git_dir=os.path.realpath(found[1]),
        cwd=os.path.realpath(cwd), owns_globs=tuple(record.get("owns", [])),
        rules=rules, env=dict(os.environ), common_dir=os.path.realpath(marker.common_dir),
        private_objects=os.path.realpath(locate.private_objects(marker)))


def wrap(argv: list[str]) -> int:
    from hf_fanout.errors import HfError
    from hf_fanout.guard.wrapper import decide

    real = os.environ.get("HF_REAL_GIT") or "git"
    top = os.environ.pop("HF_GUARD_TOP", None)
    cwd = Path.cwd()
    try:
        ctx = context_for(cwd, Path(top) if top else None)
        if ctx is not None:
            decision = decide(argv, ctx, GitProbe(cwd))
            if not decision.allowed:
                print(decision.line(ctx), file=sys.stderr)
                return EXIT_GUARD
    except HfError as exc:  # e.g. a broken [guard] table: fail closed, say why
        print(f"hf guard: refused `git {' '.join(argv[:3])}`: {exc.message}; "
              f"instead: {exc.hint}", file=sys.stderr)
        return EXIT_GUARD
    os.execv(real, [real, *argv])
    return 127  # not reached


def main(argv: list[str]) -> int:
    if argv and argv[0] == "wrap":
        return wrap(argv[1:])
    if len(argv) >= 2 and argv[0] == "hook":
        from hf_fanout.guard.hooks import run_hook

        return run_hook(argv[1], argv[2:])
    print("usage: hf-guard wrap GIT-ARGS... | hf-guard hook NAME ARGS...", file=sys.stderr)
    return 2
