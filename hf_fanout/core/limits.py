"""The limits' settings, and how going over one is refused: one line naming the
limit and the current count; `force` goes over it for one call. Both are
audited (`limit-refused`, `limit-forced`). What is counted is the caller's
(`orchestrator/limits.py`: live agents, parts of a batch; the queue's takers:
spawns, counted here from the audit log)."""

from __future__ import annotations

import math
import os
import time

from hf_fanout.config import user_config_dir
from hf_fanout.core import audit
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, LimitReached

MAX_LIVE_AGENTS = "max_live_agents"  # per repository
MAX_LIVE_AGENTS_PER_USER = "max_live_agents_per_user"  # across the user's repositories
MAX_SPAWNS_PER_HOUR = "max_spawns_per_hour"  # tabs the handoff queue's takers open
MAX_PARTS_PER_BATCH = "max_parts_per_batch"
SPAWN_WINDOW = 3600.0  # seconds: "per hour" is the last hour, not the clock's hour


def default(key: str) -> int:
    """A limit when the settings do not set it: a laptop's worth. Live agents: the
    number of CPU cores, at least 4 (a batch of three on a two-core laptop is
    normal)."""
    if key in (MAX_LIVE_AGENTS, MAX_LIVE_AGENTS_PER_USER):
        return max(4, os.cpu_count() or 1)
    return {MAX_SPAWNS_PER_HOUR: 20, MAX_PARTS_PER_BATCH: 32}[key]


def maximum(ws: Workspace, key: str) -> int:
    """The limit `key` as the settings (`.hf.toml`, the user's config) set it: a
    whole number, at least 1 (`inf` or `2.5` is one clear error, not a crash or a
    limit silently rounded down)."""
    value = ws.settings.number(key, float(default(key)))
    if not (math.isfinite(value) and value.is_integer()):
        raise BadInput(f"{key} = {value:g} in the settings is not a whole number",
                       f"e.g. {key} = {default(key)} in .hf.toml (or in "
                       f"{user_config_dir() / 'config.toml'})")
    return int(value)


def refuse_over(ws: Workspace, key: str, count: int, what: str, counted: str, hint: str, *,
                force: bool, adding: int = 1, dry_run: bool = False) -> None:
    """Refuse `what` when `adding` more to `count` (what there is: `counted` says
    what, e.g. "agents are live") would go over the limit `key`. With `force`
    it goes on, audited; a dry run audits nothing."""
    limit = maximum(ws, key)
    if count + adding <= limit:
        return
    fields = {"limit": key, "max": limit, "count": count, "what": what}
    if force:
        if not dry_run:
            ws.store.audit("limit-forced", **fields)
        return
    if not dry_run:
        ws.store.audit("limit-refused", **fields)
    raise LimitReached(f"{what} refused: {count} {counted} and {key} is {limit}",
                       f"{hint}, raise {key} in .hf.toml, or pass --force for this one",
                       details=fields)


def spawns_in_last_hour(ws: Workspace, now: float | None = None) -> int:
    """Tabs the queue's takers (`hf next`, `hf next --watch`) opened in the last
    hour: their `spawn` lines in the audit log."""
    since = (time.time() if now is None else now) - SPAWN_WINDOW
    return sum(1 for event in audit.recent(ws.store.audit_file, since)
               if event.action == "spawn")
