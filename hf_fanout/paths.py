"""Repository-relative paths, validated once at the border.

Inside hf a path in a repository is a `RepoPath`: relative, POSIX, no `..`,
no `.git` component (in any case), no NUL. Git hands us bytes; they are
decoded with the filesystem encoding (surrogateescape), so no name is lost.
"""

from __future__ import annotations

import os
from typing import NewType

from hf_fanout.errors import InvalidPath

RepoPath = NewType("RepoPath", str)


def repo_path(raw: str | bytes) -> RepoPath:
    """Validate `raw` as a path inside a repository, or raise InvalidPath."""
    text = os.fsdecode(raw) if isinstance(raw, bytes) else raw
    problem = path_problem(text)
    if problem:
        raise InvalidPath(
            f"bad repository path {text!r}: {problem}",
            "paths are relative to the repository root, e.g. src/app.py",
        )
    return RepoPath(text)


def path_problem(text: str) -> str:
    """Why `text` is not a valid repository path ('' when it is)."""
    if not text:
        return "empty"
    if "\0" in text:
        return "contains NUL"
    if text.startswith("/"):
        return "absolute"
    parts = text.split("/")
    for part in parts:
        if part == "..":
            return "contains '..'"
        if part.lower() == ".git":
            return "inside .git"
    if any(part in ("", ".") for part in parts):
        return "empty or '.' component"
    return ""


def from_git(raw: bytes) -> RepoPath:
    """A path as git printed it (trusted: git never prints `..` or `.git`)."""
    return RepoPath(os.fsdecode(raw))
