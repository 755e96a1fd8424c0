"""Limits on how much runs at once: `max_live_agents` (per repository; default
the number of CPU cores, at least 4) is checked before `hf run` starts a worker. Going over
refuses with the limit and the current count; `force` overrides it for one
call, and the override is audited."""

from __future__ import annotations

import os

from hf_fanout.core.records import JOINED
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError, LimitReached
from hf_fanout.liveness import judge


def live_agents(ws: Workspace) -> int:
    """Parts of this repository whose recorded worker is alive."""
    count = 0
    for batch_id in ws.store.batch_ids():
        try:
            parts = ws.store.load_parts(ws.store.load_batch(batch_id))
        except HfError:
            continue  # a damaged batch is `hf doctor`'s to report
        count += sum(1 for p in parts if p.state != JOINED and judge.worker_alive(p))
    return count


def max_live_agents(ws: Workspace) -> int:
    return int(ws.settings.number("max_live_agents", float(max(4, os.cpu_count() or 1))))


def check_live_agents(ws: Workspace, what: str, *, force: bool) -> None:
    """Refuse `what` when one more live agent would exceed `max_live_agents`."""
    limit, count = max_live_agents(ws), live_agents(ws)
    if count < limit:
        return
    if force:
        ws.store.audit("limit-forced", limit="max_live_agents", max=limit, count=count,
                       what=what)
        return
    ws.store.audit("limit-refused", limit="max_live_agents", max=limit, count=count,
                   what=what)
    raise LimitReached(f"{what} refused: {count} agents are live and max_live_agents is "
                       f"{limit}", "wait for one to end, raise max_live_agents in .hf.toml, "
                       "or pass --force for this one")
