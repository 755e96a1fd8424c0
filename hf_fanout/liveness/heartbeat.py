"""Heartbeats: `<batch dir>/heartbeats/<part>`, beaten while a worker lives (`at`)
and when it shows a sign of work (`active`)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from hf_fanout import atomic
from hf_fanout.core.records import Part
from hf_fanout.core.store import Store

DEFAULT_HEARTBEAT_SECONDS = 30.0


def heartbeat_file(store: Store, batch: str, part: str) -> Path:
    return store.batch_dir(batch) / "heartbeats" / part


def beat(store: Store, batch: str, part: str, *, active: float | None, by: str) -> None:
    """Write the heartbeat: `at` (the beater lives) and `active` (last sign of work)."""
    path = heartbeat_file(store, batch, part)
    at = time.time()
    previous = read_heartbeat(store, batch, part)
    last_active = active if active is not None else (previous or {}).get("active")
    record = {"at": at, "active": last_active, "by": by, "pid": os.getpid()}
    atomic.atomic_write(path, (json.dumps(record) + "\n").encode())


def read_heartbeat(store: Store, batch: str, part: str) -> dict[str, Any] | None:
    """The part's heartbeat; None when it never beat. (Written whole each time: a
    damaged one is reported, StateCorrupt, like any record.)"""
    data = atomic.read_json(heartbeat_file(store, batch, part), "heartbeat")
    return data if isinstance(data, dict) else None


def last_activity(store: Store, part: Part) -> float | None:
    """The last sign of work from heartbeats (not from files: see `file_activity`)."""
    hb = read_heartbeat(store, part.batch, part.name)
    if not hb:
        return None
    active = hb.get("active")
    return float(active) if isinstance(active, int | float) else None
