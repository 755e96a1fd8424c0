"""`hf heartbeat`: an agent says it is working. Apart from the workers' other
steps (orchestrator/workers.py), so that the most frequent command loads only this."""

from __future__ import annotations

import time
from typing import Any

from hf_fanout.core import inbox
from hf_fanout.core.records import Part
from hf_fanout.core.remote_refs import taken_from
from hf_fanout.core.workspace import Workspace
from hf_fanout.liveness import heartbeat


def beat_for(ws: Workspace, part: Part) -> dict[str, Any]:
    """The heartbeat written for `part` (inside a sandbox: asked of hf outside it,
    which beats when it takes the request)."""
    if inbox.sandboxed():
        inbox.post(ws.repo.common_dir, part.batch, part.name, "heartbeat")
        return {"queued": True, "at": time.time()}
    heartbeat.beat(ws.store, part.batch, part.name, active=time.time(), by="hf heartbeat")
    found = heartbeat.read_heartbeat(ws.store, part.batch, part.name) or {}
    if taken_from(part) is not None:  # a part taken from a remote: seen there too
        from hf_fanout.orchestrator.take import beat_remote

        found = {**found, "remote": beat_remote(ws, part)}
    return found
