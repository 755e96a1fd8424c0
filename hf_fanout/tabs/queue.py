"""The handoff queue: a finished tab writes the next task; a watcher opens it.

Layout under `<git common dir>/hf/queue/`:
    <id>.md               one entry: a small header between `---` lines, then the text
    acks/<id>.spawned     a watcher took the entry (created exclusively: the claim)
    acks/<id>.submitted   its tab was opened with the task
    acks/<id>.failed      opening the tab failed (the error is inside)

Ids start with the creation time (UTC, nanoseconds), so sorting them sorts
the entries oldest first. Taking an entry is `link()` of a fully written
claim record: of any number of racing watchers exactly one gets it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import atomic
from hf_fanout.errors import BadInput, NotFound
from hf_fanout.orchestrator.records import now
from hf_fanout.orchestrator.workspace import Workspace

FORMAT = 1
STATUSES = ("active", "done", "blocked")
ACKS = ("spawned", "submitted", "failed")
HEADER_KEYS = ("hf-handoff", "id", "task", "status", "created", "from", "tests", "files")


def queue_dir(ws: Workspace) -> Path:
    return ws.store.root / "queue"


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:40].strip("-") or "task"


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Entry:
    id: str
    path: Path
    header: dict[str, str]
    text: str
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # why the entry cannot be opened (no header, no task, unreadable), or None
    problem: str | None = None

    @property
    def task(self) -> str:
        return self.header.get("task", "")

    @property
    def state(self) -> str:
        for ack in ("failed", "submitted", "spawned"):
            if ack in self.acks:
                return ack
        return "pending"

    def to_data(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "task": self.task,
                "status": self.header.get("status", ""), "state": self.state,
                "created": self.header.get("created", ""), "from": self.header.get("from", ""),
                "tests": self.header.get("tests", ""), "files": self.header.get("files", ""),
                "next": self.text, "acks": self.acks, "problem": self.problem}

    def check(self) -> None:
        """Refuse to open a malformed entry (BadInput naming the entry and the reason)."""
        if self.problem:
            raise BadInput(f"queue entry {self.id} is malformed: {self.problem}; not opened",
                           "write entries with `hf handoff`; this one is marked failed")


def render(header: dict[str, str], text: str) -> str:
    lines = ["---", *(f"{k}: {header[k]}" for k in HEADER_KEYS if header.get(k)), "---", ""]
    return "\n".join(lines) + f"\n# Next task\n\n{text.strip()}\n"


def parse(path: Path, raw: str) -> Entry:
    lines = raw.splitlines()
    header: dict[str, str] = {}
    body_start = 0
    problem = None
    if lines and lines[0] == "---":
        for i, line in enumerate(lines[1:], start=1):
            if line == "---":
                body_start = i + 1
                break
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
        else:
            header, problem = {}, "its header has no closing `---` line"
    else:
        problem = "no header (it must start with a `---` line, as `hf handoff` writes it)"
    body = "\n".join(lines[body_start:]).strip()
    body = body.removeprefix("# Next task").strip()
    if problem is None and not header.get("task"):
        problem = "its header names no task"
    elif problem is None and not body:
        problem = "it has no text after the header"
    return Entry(header.get("id", path.stem), path, header, body, problem=problem)


def write_entry(ws: Workspace, *, task: str, text: str, status: str = "done",
                tests: str = "", files: list[str] | None = None, origin: str = "",
                dry_run: bool = False) -> Entry:
    """A new queue entry, written atomically (a watcher sees all of it or nothing)."""
    if not task.strip():
        raise BadInput("--task is required", "name the task this tab worked, e.g. --task login")
    if not text.strip():
        raise BadInput("--next is required", "say what the next tab should do")
    if status not in STATUSES:
        raise BadInput(f"bad --status {status!r}", f"use one of {', '.join(STATUSES)}")
    stamp = time.time_ns()
    entry_id = (time.strftime("%Y%m%dT%H%M%S", time.gmtime(stamp // 10**9))
                + f"{stamp % 10**9:09d}Z-{_slug(task)}-{secrets.token_hex(2)}")
    header = {"hf-handoff": str(FORMAT), "id": entry_id, "task": _one_line(task),
              "status": status, "created": now(), "from": _one_line(origin),
              "tests": _one_line(tests), "files": ", ".join(_one_line(f) for f in files or [])}
    path = queue_dir(ws) / f"{entry_id}.md"
    text_out = render(header, text)
    if not dry_run and not atomic.create_exclusive(path, text_out.encode("utf-8")):
        raise BadInput(f"queue entry {entry_id} already exists", "try again")
    return Entry(entry_id, path, header, text.strip())


def _ack_file(ws: Workspace, entry_id: str, ack: str) -> Path:
    return queue_dir(ws) / "acks" / f"{entry_id}.{ack}"


def _read_acks(ws: Workspace, entry_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for ack in ACKS:
        try:
            data = json.loads(_ack_file(ws, entry_id, ack).read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except ValueError:
            data = {"unreadable": True}
        found[ack] = data if isinstance(data, dict) else {}
    return found


def entries(ws: Workspace) -> list[Entry]:
    """Every entry, oldest first, with its acknowledgements."""
    directory = queue_dir(ws)
    if not directory.is_dir():
        return []
    found: list[Entry] = []
    for path in sorted(directory.glob("*.md")):
        try:
            entry = parse(path, path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            entry = Entry(path.stem, path, {"task": f"(unreadable: {exc})"}, "",
                          problem=f"unreadable: {exc}")
        entry.acks = _read_acks(ws, entry.id)
        found.append(entry)
    return found


def get(ws: Workspace, entry_id: str) -> Entry:
    for entry in entries(ws):
        if entry.id == entry_id:
            return entry
    raise NotFound(f"no queue entry {entry_id!r}", "`hf queue` lists the entries")


def _stamp(**fields: Any) -> bytes:
    record = {"at": now(), "pid": os.getpid(), "host": socket.gethostname(), **fields}
    return (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")


def claim(ws: Workspace, entry: Entry) -> bool:
    """Take `entry` for this process; True for exactly one of any racing callers."""
    return atomic.create_exclusive(_ack_file(ws, entry.id, "spawned"), _stamp())


def acknowledge(ws: Workspace, entry: Entry, ack: str, **fields: Any) -> None:
    if ack not in ACKS:
        raise BadInput(f"unknown acknowledgement {ack!r}", f"one of {', '.join(ACKS)}")
    atomic.atomic_write(_ack_file(ws, entry.id, ack), _stamp(**fields))
    entry.acks = _read_acks(ws, entry.id)


def take_oldest(ws: Workspace) -> Entry | None:
    """Claim the oldest pending entry, or None when none is pending."""
    for entry in entries(ws):
        if entry.state == "pending" and claim(ws, entry):
            entry.acks = _read_acks(ws, entry.id)
            return entry
    return None


def watchers(ws: Workspace) -> list[dict[str, Any]]:
    """The watchers that announced themselves (`watchers/<pid>.json`), oldest first."""
    found = []
    for path in sorted((queue_dir(ws) / "watchers").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found.append(data)
    return found


def watch(ws: Workspace, take: Callable[[], Entry | None], *, max_entries: int | None,
          idle_timeout: float | None, interval: float = 0.25,
          clock: Callable[[], float] = time.monotonic) -> int:
    """Call `take` until `max_entries` were taken, or nothing came for `idle_timeout` s.

    While it watches, `watchers/<pid>.json` says so (for `hf queue`).
    """
    marker = queue_dir(ws) / "watchers" / f"{os.getpid()}.json"
    atomic.atomic_write(marker, _stamp())
    taken = 0
    last = clock()
    try:
        while max_entries is None or taken < max_entries:
            if take() is not None:
                taken += 1
                last = clock()
                continue
            if idle_timeout is not None and clock() - last >= idle_timeout:
                break
            time.sleep(interval)  # polling the queue directory works on any filesystem
    finally:
        atomic.remove_durably(marker)
    return taken
