"""The environment that puts the git wrapper first on PATH (for tabs and shells).

The wrapper a tab runs, the entry the git hooks call and the entry agents' hooks
call (`hf-agent-event`) live in a directory of the user's
(`config.guard_bin_dir()`), not inside one installation of hf: every hf command
that hands them out rewrites them when they differ (`hf doctor --fix` too), and
each entry finds hf where it was, else through the `hf` on PATH (a reinstall or
upgrade elsewhere), else says so. Open parts stay guarded, and their agents'
hooks keep working, across a reinstall."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from hf_fanout import atomic
from hf_fanout.config import guard_bin_dir
from hf_fanout.errors import HfError

ENTRY = "hf-guard-entry"
AGENT_EVENT = "hf-agent-event"
_PACKAGE_BIN = Path(__file__).resolve().parent / "bin"
# the fast `hf agent-event` of this installation (a script run with `python -S`)
_AGENT_EVENT_PROGRAM = _PACKAGE_BIN.parent.parent / "cli" / "bin" / AGENT_EVENT


_RUN_ENTRY = "import sys; from hf_fanout.guard.entry import main; sys.exit(main(sys.argv[1:]))"
_HAS_ENTRY = "import hf_fanout.guard.entry"


def entry_script() -> str:
    """The stable entry: the guard of this installation, else of the `hf` on PATH."""
    q = shlex.quote
    package_root = str(_PACKAGE_BIN.parent.parent.parent)
    guard = str(_PACKAGE_BIN / "hf-guard")
    return (
        "#!/bin/sh\n"
        "# hf's guard entry (wrapper slow path and hooks): written by hf, edits are\n"
        "# overwritten. It runs the guard of the hf installed where it was written, else\n"
        "# of the hf on PATH, else refuses rather than let git run unguarded.\n"
        f"if [ -x {q(sys.executable)} ] && [ -f {q(guard)} ]; then\n"
        f"    exec {q(sys.executable)} -S {q(guard)} \"$@\"\n"
        "fi\n"
        "hf=$(command -v hf 2>/dev/null) || hf=\n"
        'if [ -n "$hf" ] && IFS= read -r first < "$hf" && [ "${first#\\#!}" != "$first" ]; then\n'
        "    case ${first#\\#!} in *python*)\n"  # (a shell launcher, pyenv's or nix's, is not)
        f"        exec ${{first#\\#!}} -c {q(_RUN_ENTRY)} \"$@\" ;;\n"
        "    esac\n"
        "fi\n"
        "for py in python3 python; do  # (the python such a launcher runs hf with)\n"
        "    if command -v \"$py\" >/dev/null 2>&1 && "
        f"\"$py\" -c {q(_HAS_ENTRY)} 2>/dev/null; then\n"
        f"        exec \"$py\" -c {q(_RUN_ENTRY)} \"$@\"\n"
        "    fi\n"
        "done\n"
        f"echo \"hf guard: hf is no longer at {package_root} and no hf is on PATH; git is "
        "refused rather than run unguarded; instead: reinstall hf, then run \\`hf doctor "
        "--fix\\` in the main tree\" >&2\n"
        "exit 99\n")


def agent_event_script() -> str:
    """The stable entry of agents' hooks: `hf agent-event` of this installation (its
    fast form), else of the `hf` on PATH. Failing, it exits 1: a hook error the
    agent shows the person without stopping (2 would refuse the agent's step)."""
    q = shlex.quote
    program, package_root = str(_AGENT_EVENT_PROGRAM), str(_PACKAGE_BIN.parent.parent.parent)
    return (
        "#!/bin/sh\n"
        "# hf's entry for agents' hooks (`hf agent-event`): written by hf, edits are\n"
        "# overwritten. It runs the hf installed where it was written, else the hf on PATH.\n"
        f"if [ -x {q(sys.executable)} ] && [ -f {q(program)} ]; then\n"
        f"    exec {q(sys.executable)} -S {q(program)} \"$@\"\n"
        "fi\n"
        "if hf=$(command -v hf 2>/dev/null); then\n"
        '    exec "$hf" agent-event "$@"\n'
        "fi\n"
        f"echo \"hf agent-event: hf is no longer at {package_root}"
        " and no hf is on PATH; the agent's step was not recorded; instead: reinstall hf, "
        "then run \\`hf doctor --fix\\` in the main tree\" >&2\n"
        "exit 1\n")


def bin_dir() -> Path:
    """The directory holding hf's `git` wrapper, guard entry and agents' hook entry,
    brought up to date with this installation."""
    directory = guard_bin_dir()
    wanted = {"git": (_PACKAGE_BIN / "git").read_bytes(), ENTRY: entry_script().encode(),
              AGENT_EVENT: agent_event_script().encode()}
    for name, data in wanted.items():
        path = directory / name
        try:
            if path.read_bytes() == data and os.access(path, os.X_OK):
                continue
        except OSError:
            pass
        try:
            atomic.atomic_write(path, data, mode=0o755)
        except OSError as exc:
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise HfError(f"cannot write hf's git wrapper {path}: {exc.strerror}",
                              f"check the permissions of {directory}") from None
    return directory


def _strip(path: str, directory: Path) -> list[str]:
    return [d for d in path.split(os.pathsep) if d and Path(d).resolve() != directory]


def real_git(path: str | None = None) -> str:
    """The first `git` on PATH that is not hf's wrapper."""
    directory = bin_dir()
    search = os.pathsep.join(_strip(path if path is not None else os.environ.get("PATH", ""),
                                    directory))
    found = shutil.which("git", path=search)
    if found is None:
        raise HfError("no git on PATH", "install git first")
    return found


def guard_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a tab needs for the wrapper: PATH with it first, the real git, python."""
    env = dict(os.environ if base is None else base)
    directory = bin_dir()
    path = env.get("PATH", os.defpath)
    env["HF_REAL_GIT"] = real_git(path)
    env["HF_PYTHON"] = sys.executable
    env["PATH"] = os.pathsep.join([str(directory), *_strip(path, directory)])
    return env


def shell_lines() -> list[str]:
    """`export` lines for `eval "$(hf guard env)"` in a POSIX shell."""
    env = guard_env()
    return [f"export {key}={shlex.quote(env[key])}"
            for key in ("HF_REAL_GIT", "HF_PYTHON", "PATH")]
