"""`hf cd`: the directory of a part's worktree, named as PART or BATCH/PART."""

from __future__ import annotations

from pathlib import Path

from hf_fanout.core.records import DROPPED, JOINED
from hf_fanout.core.remote_refs import refuse_remote_part
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, NotFound


def worktree_of(ws: Workspace, spec: str | None) -> Path:
    """The worktree of part `spec` (BATCH/PART, or a PART name that one live batch
    has); without `spec`, the main tree."""
    if not spec:
        return ws.main.path
    if "/" in spec:
        part = ws.resolve_part(spec, named_by="hf cd BATCH/PART")
    else:
        found = []
        for batch_id in ws.store.batch_ids():
            batch = ws.store.load_batch(batch_id)
            if spec in batch.parts:
                candidate = ws.store.load_part(batch_id, spec)
                if candidate.state not in (JOINED, DROPPED):
                    found.append(candidate)
        if not found:
            raise NotFound(f"no live part named {spec!r}",
                           "`hf status` lists the parts; name one as BATCH/PART")
        if len(found) > 1:
            names = ", ".join(f"{p.batch}/{p.name}" for p in found)
            raise BadInput(f"{len(found)} batches have a part {spec!r}: {names}",
                           f"name it as BATCH/PART, e.g. hf cd {found[0].batch}/{spec}")
        part = found[0]
    refuse_remote_part(part, "its worktree is")
    path = Path(part.worktree)
    if not path.is_dir():
        raise NotFound(f"the worktree of {part.batch}/{part.name} is missing ({path})",
                       "`hf status` shows the part; `hf doctor` what is damaged")
    return path
