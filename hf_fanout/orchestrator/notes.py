"""`hf note --decision TEXT`: a part records a decision it took, for whoever
carries the batch on (`hf report --state` lists them). One audit line
(`decision`, with the part and the text); inside a sandbox asked of hf outside
it, as `hf done` is."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from hf_fanout.core import inbox
from hf_fanout.core.records import Part
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, HfError


class NotInPart(HfError):
    code = "not_in_part"


@dataclass
class Noted:
    part: Part
    text: str
    dry_run: bool
    waiting: bool = False  # asked from a sandbox, not applied yet

    def to_data(self) -> dict[str, Any]:
        return {"batch": self.part.batch, "part": self.part.name, "decision": self.text,
                "dry_run": self.dry_run, "waiting": self.waiting}


def note_decision(ws: Workspace, text: str, *, dry_run: bool = False) -> Noted:
    """Record `text` as a decision of the part this runs in (its worker's marker,
    or the worktree of the current directory); refused anywhere else."""
    text = " ".join(text.split())[:inbox.MAX_TEXT]
    if not text:
        raise BadInput("the decision is empty", "hf note --decision 'use sqlite, not files'")
    part = _own_part(ws)
    noted = Noted(part, text, dry_run)
    if dry_run:
        return noted
    if inbox.sandboxed():
        path = inbox.post(ws.repo.common_dir, part.batch, part.name, "decision", text=text,
                          pid=os.getpid())
        noted.waiting = not inbox.wait_applied(path)
        return noted
    ws.store.audit("decision", batch=part.batch, part=part.name, text=text)
    return noted


def _own_part(ws: Workspace) -> Part:
    batch, name = os.environ.get("HF_BATCH"), os.environ.get("HF_PART")
    if batch and name:
        return ws.store.load_part(batch, name)
    part = ws.current_part()
    if part is None:
        raise NotInPart("hf note --decision is for a part, and this is not a part's worktree",
                        "run it where the part's agent works (its worktree): "
                        "cd \"$(hf cd BATCH/PART)\" && hf note --decision 'TEXT'")
    return part
