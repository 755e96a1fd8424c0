"""How a linked worktree names its git dir: the `.git` file, read without git.

A base module: the guard, the adapter and the process table's check for "inside
a part" all find a worktree's own git dir this one way.
"""

from __future__ import annotations

import os
from pathlib import Path

from hf_fanout.atomic import read_regular

# hf's mark in a part worktree's own git dir (batch, part, paths), written at split
PART_MARKER = "hf-part.json"


def gitdir_of(worktree: Path) -> Path:
    """A worktree's own git dir: `.git` itself when it is a directory (the main
    worktree), else the directory its `.git` file names. OSError when there is
    neither."""
    dotgit = worktree / ".git"
    if dotgit.is_dir():
        return dotgit
    line = read_regular(dotgit, limit=4096).decode("utf-8", "surrogateescape").strip()
    path = Path(line.removeprefix("gitdir:").strip())
    return path if path.is_absolute() else (worktree / path).resolve()


def enclosing_worktree(start: Path) -> tuple[Path, Path] | None:
    """(top, git dir) when `start` is inside a linked worktree (the nearest `.git`
    above it is a file); None inside a main worktree or outside any."""
    here = Path(os.path.abspath(start))
    for directory in (here, *here.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return None
        if dot_git.is_file():
            try:
                return directory, Path(os.path.realpath(gitdir_of(directory)))
            except OSError:
                return None
    return None
