"""Find the part a directory belongs to, cheaply: no git process, a few file reads.

A part's worktree is a linked worktree whose own git dir holds hf's marker
`hf-part.json` (written when the guard is installed at split).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_fanout.atomic import read_json
from hf_fanout.errors import StateCorrupt
from hf_fanout.gitlink import PART_MARKER, enclosing_worktree

MARKER = PART_MARKER


@dataclass(frozen=True)
class Marker:
    batch: str
    part: str
    worktree: str
    git_dir: str
    common_dir: str
    main_workdir: str


def read_marker(git_dir: Path) -> Marker | None:
    """The part marker of a worktree's git dir; None when it has none. A damaged
    marker raises StateCorrupt: the guard then refuses instead of letting git
    run unguarded."""
    data = read_json(git_dir / MARKER, "part marker")
    if data is None:
        return None
    try:
        return Marker(**{k: str(data[k]) for k in Marker.__dataclass_fields__})
    except (KeyError, TypeError):
        raise StateCorrupt(f"{git_dir / MARKER} is not a part marker hf wrote",
                           "reinstall the guard there: hf guard install BATCH/PART") from None


def find_part(start: Path) -> Marker | None:
    found = enclosing_worktree(start)
    return read_marker(found[1]) if found else None


def load_part_record(marker: Marker) -> dict[str, Any] | None:
    """The part's record from the store, read directly (None when the part is gone)."""
    path = Path(marker.common_dir) / "hf" / "batches" / marker.batch / "parts" / \
        f"{marker.part}.json"
    data = read_json(path)
    return data if isinstance(data, dict) else None


def private_objects(marker: Marker) -> Path:
    """Where the part's new objects go while it works in a sandbox: a directory of
    hf's own in the common dir, listed in the repository's alternates, so the shared
    object store stays read-only to the part (see docs/guard.md)."""
    return Path(marker.common_dir) / "hf" / "objects" / marker.batch / marker.part
