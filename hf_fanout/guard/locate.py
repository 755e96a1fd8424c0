"""Find the part a directory belongs to, cheaply: no git process, a few file reads.

A part's worktree is a linked worktree whose own git dir holds hf's marker
`hf-part.json` (written when the guard is installed at split).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "hf-part.json"


@dataclass(frozen=True)
class Marker:
    batch: str
    part: str
    worktree: str
    git_dir: str
    common_dir: str
    main_workdir: str


def find_worktree(start: Path) -> tuple[Path, Path] | None:
    """(top, git dir) when `start` is inside a linked worktree (its `.git` is a file)."""
    here = Path(os.path.abspath(start))
    for directory in (here, *here.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return None
        if dot_git.is_file():
            try:
                line = dot_git.read_text(encoding="utf-8", errors="surrogateescape")
            except OSError:
                return None
            target = line.strip().removeprefix("gitdir:").strip()
            git_dir = Path(target) if os.path.isabs(target) else directory / target
            return directory, Path(os.path.realpath(git_dir))
    return None


def read_marker(git_dir: Path) -> Marker | None:
    try:
        data = json.loads((git_dir / MARKER).read_bytes())
        return Marker(**{k: str(data[k]) for k in Marker.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_part(start: Path) -> Marker | None:
    found = find_worktree(start)
    return read_marker(found[1]) if found else None


def load_part_record(marker: Marker) -> dict[str, Any] | None:
    """The part's record from the store, read directly (None when the part is gone)."""
    path = Path(marker.common_dir) / "hf" / "batches" / marker.batch / "parts" / \
        f"{marker.part}.json"
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
