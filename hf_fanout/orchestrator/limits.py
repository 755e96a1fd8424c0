"""Limits on how much runs at once (the settings and the refusal: core/limits.py).

- `max_live_agents` (per repository) and `max_live_agents_per_user` (across
  every repository of the user's registry) are checked by `hf run` before it
  starts a worker, holding the user's agents lock until the worker is
  recorded (`agent_slot`): two `hf run`s started at once cannot both take the
  last place.
- `max_parts_per_batch` is checked by `hf split`.
- `max_spawns_per_hour` is checked by the queue's takers (tabs/opening.py),
  counted under a lock with the reservations of racing takers (tabs/spawns.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_fanout import locks, registry
from hf_fanout.config import user_state_dir
from hf_fanout.core import limits
from hf_fanout.core.records import JOINED
from hf_fanout.core.store import Store
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError

AGENTS_LOCK_WAIT = 30.0  # seconds: another `hf run` is between its check and its start


def live_agents(store: Store) -> int:
    """Parts of the repository of `store` whose recorded worker is alive."""
    count = 0
    for batch_id in store.batch_ids():
        try:
            parts = store.load_parts(store.load_batch(batch_id))
        except HfError:
            continue  # a damaged batch is `hf doctor`'s to report
        from hf_fanout.liveness import judge  # (here: `hf status` with no batch stays light)

        count += sum(1 for p in parts if p.state != JOINED and judge.worker_alive(p))
    return count


def user_live_agents(ws: Workspace) -> int:
    """Live agents of every repository in the user's registry (and this one)."""
    try:
        known = registry.registered()
    except HfError:
        known = []  # a damaged registry is `hf doctor`'s to report
    commons = dict.fromkeys([str(ws.repo.common_dir), *known])
    return sum(live_agents(Store(Path(common))) for common in commons
               if (Path(common) / "hf").is_dir())


def check_live_agents(ws: Workspace, what: str, *, force: bool) -> None:
    """Refuse `what` when one more live agent would go over `max_live_agents` or
    `max_live_agents_per_user`."""
    hint = "wait for one to end"
    limits.refuse_over(ws, limits.MAX_LIVE_AGENTS, live_agents(ws.store), what,
                       "agents are live", hint, force=force)
    limits.refuse_over(ws, limits.MAX_LIVE_AGENTS_PER_USER, user_live_agents(ws), what,
                       "agents are live across your repositories", hint, force=force)


@contextlib.contextmanager
def agent_slot(ws: Workspace, what: str, *, force: bool) -> Iterator[None]:
    """Check the live-agent limits holding the user's agents lock, and hold it
    while the block starts the worker and records it."""
    with locks.hold(user_state_dir() / "locks" / "agents.lock", wait=AGENTS_LOCK_WAIT,
                    what="agents"):
        check_live_agents(ws, what, force=force)
        yield


def check_parts(ws: Workspace, batch: str, count: int, *, force: bool, dry_run: bool) -> None:
    """`hf split` of `count` parts: refused over `max_parts_per_batch`."""
    limits.refuse_over(ws, limits.MAX_PARTS_PER_BATCH, count, f"hf split {batch}",
                       "parts in the plan",
                       "split it into fewer parts (or into two batches)", force=force,
                       adding=0, dry_run=dry_run)


@dataclass
class Usage:
    """One limit, its setting and what it is at now."""

    limit: str
    max: int
    count: int
    counts: str

    def to_data(self) -> dict[str, Any]:
        return {"limit": self.limit, "max": self.max, "count": self.count,
                "counts": self.counts}

    def line(self) -> str:
        return f"{self.limit} {self.count}/{self.max} ({self.counts})"


def usage(ws: Workspace) -> list[Usage]:
    """Every limit with its current count (for `hf status` and `hf doctor`)."""
    running = []
    for batch_id in ws.store.batch_ids():
        with contextlib.suppress(HfError):
            batch = ws.store.load_batch(batch_id)
            if batch.state == "running":
                running.append(len(batch.parts))
    return [
        Usage(limits.MAX_LIVE_AGENTS, limits.maximum(ws, limits.MAX_LIVE_AGENTS),
              live_agents(ws.store), "live agents in this repository"),
        Usage(limits.MAX_LIVE_AGENTS_PER_USER,
              limits.maximum(ws, limits.MAX_LIVE_AGENTS_PER_USER), user_live_agents(ws),
              "live agents in all your repositories"),
        Usage(limits.MAX_SPAWNS_PER_HOUR, limits.maximum(ws, limits.MAX_SPAWNS_PER_HOUR),
              limits.spawns_in_last_hour(ws), "tabs the queue opened in the last hour"),
        Usage(limits.MAX_PARTS_PER_BATCH, limits.maximum(ws, limits.MAX_PARTS_PER_BATCH),
              max(running, default=0), "parts of the largest running batch"),
    ]
