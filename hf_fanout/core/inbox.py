"""A sandboxed part's requests to hf outside its sandbox.

Inside a part's sandbox hf's records are read-only. What hf does there on the
part's behalf (`hf done`, `hf blocked`, `hf heartbeat`, `hf note --decision`,
`hf handoff`, the audit lines of `hf commit` and of the agent's state) becomes
one request file in the part's inbox,
`<common>/hf/inbox/<batch>/<part>/`, the one place of hf's the sandbox may
write. hf outside (the part's `hf run`, the sweep, `hf status`, `hf join`)
validates each request against the part's record and applies it through the
same state machine as any other change (`orchestrator/inbox.py`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from hf_fanout import atomic
from hf_fanout.atomic import read_regular
from hf_fanout.errors import NotRegularFile

SANDBOX_VAR = "HF_SANDBOX"
ACTIONS = ("done", "blocked", "heartbeat", "audit", "decision", "handoff")
MAX_BYTES = 16 * 1024  # a request larger than this is not one hf wrote
MAX_TEXT = 4000  # a note or reason longer than this is cut
MAX_HANDOFF = 12 * 1024  # the longest handoff text (with its state summary) passed out
HANDOFF_FIELDS = ("task", "status", "tests", "files")  # beside its text


def sandboxed() -> bool:
    """Whether this process runs inside a part's sandbox (hf's records read-only)."""
    return os.environ.get(SANDBOX_VAR) == "1"


def inbox_dir(common_dir: Path, batch: str, part: str) -> Path:
    return common_dir / "hf" / "inbox" / batch / part


def post(common_dir: Path, batch: str, part: str, action: str, **fields: Any) -> Path:
    """Leave a request for hf outside; the file's name orders requests by time."""
    directory = inbox_dir(common_dir, batch, part)
    name = f"{time.time_ns():020d}-{os.getpid()}.json"
    path = directory / name
    atomic.atomic_write_json(path, {"action": action, "at": time.time(), **fields})
    return path


def pending(common_dir: Path, batch: str, part: str) -> list[tuple[Path, Any]]:
    """The requests waiting, oldest first: (path, data); data is None when the file is
    not a request hf could have written (too big, not JSON, not an object)."""
    directory = inbox_dir(common_dir, batch, part)
    try:
        names = sorted(p.name for p in directory.iterdir() if p.name.endswith(".json"))
    except OSError:
        return []
    found: list[tuple[Path, Any]] = []
    for name in names:
        path = directory / name
        try:
            raw = _read_request(path)
            data = None if raw is None else json.loads(raw)
        except FileNotFoundError:
            continue  # applied by another process meanwhile
        except (OSError, ValueError):
            data = None
        found.append((path, data if isinstance(data, dict) else None))
    return found


def _read_request(path: Path) -> bytes | None:
    """A request file's bytes; None when it is not a regular file of at most
    MAX_BYTES (`atomic.read_regular`, no link followed: a FIFO an agent made
    there would block a plain read forever)."""
    try:
        return read_regular(path, limit=MAX_BYTES, follow=False)
    except NotRegularFile:
        return None


def wait_applied(path: Path, timeout: float = 3.0) -> bool:
    """Inside a sandbox: wait (bounded) until hf outside took the request."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not path.exists():
            return True
        time.sleep(0.05)
    return not path.exists()
