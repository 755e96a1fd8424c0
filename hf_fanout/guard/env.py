"""The environment that puts the git wrapper first on PATH (for tabs and shells)."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from hf_fanout.errors import HfError


def bin_dir() -> Path:
    """The directory holding hf's `git` wrapper (made executable if it is not)."""
    directory = Path(__file__).resolve().parent / "bin"
    wrapper = directory / "git"
    if not os.access(wrapper, os.X_OK):
        try:
            wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError as exc:
            raise HfError(f"hf's git wrapper {wrapper} is not executable: {exc}",
                          f"chmod +x {wrapper}, or reinstall hf") from None
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
