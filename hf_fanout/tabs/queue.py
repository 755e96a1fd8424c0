"""The handoff queue: a finished tab writes the next task; a watcher opens it.

Layout under `<git common dir>/hf/queue/`:
    <id>.md               one entry: a small header between `---` lines, then the text
    acks/<id>.spawned     a watcher took the entry (created exclusively: the claim)
    acks/<id>.spawned.<n> the n-th claim after the one before it lapsed (n = 1, 2, ...)
    acks/<id>.submitted   its tab was opened with the task
    acks/<id>.failed      opening the tab failed (the error is inside)

Ids start with the creation time (UTC, nanoseconds), so sorting them sorts
the entries oldest first. Taking an entry is `link()` of a fully written
claim record: of any number of racing watchers exactly one gets it.

A claim is a lease held by a live process: it names its claimant (pid, start
time, host). While no `submitted` or `failed` ack exists and the claimant is
dead, the entry is pending again; the next taker links the claim of the next
generation, so taking back is as exclusive as taking, and every claim file is
made once and never renamed or removed (it stays as the record of who held it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import atomic, processes, timefmt
from hf_fanout.core.records import now
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, NotFound, StateCorrupt
from hf_fanout.faults import fault_point

FORMAT = 1
STATUSES = ("active", "done", "blocked")
OUTCOMES = ("submitted", "failed")
# A claim that names no claimant hf can check (not JSON, torn, or without a
# start time) is held: breaking it might open the entry twice. Past this age it
# lapses anyway: a live taker writes its outcome within minutes of claiming.
UNREADABLE_CLAIM_AGE = 24 * 3600.0
# `create_exclusive` temp files older than this were left by a killed writer.
STALE_TEMP_AGE = 3600.0
_CLAIM_NAME = re.compile(r"(?P<id>[^.].*)\.spawned(?:\.(?P<generation>[1-9][0-9]*))?")
# an entry is a page of Markdown: a larger one (or a FIFO, a device, a link put
# in the queue) is not read, and is malformed
ENTRY_MAX_BYTES = 1 << 20
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
    # the generation of its newest claim (0: `<id>.spawned`), None while unclaimed
    claim_generation: int | None = None
    # the newest claim and why it lapsed (its claimant died), while that makes it pending
    lapsed: dict[str, Any] | None = None

    @property
    def task(self) -> str:
        return self.header.get("task", "")

    @property
    def state(self) -> str:
        for ack in ("failed", "submitted"):
            if ack in self.acks:
                return ack
        if "spawned" in self.acks and self.lapsed is None:
            return "spawned"
        return "pending"

    def to_data(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "task": self.task,
                "status": self.header.get("status", ""), "state": self.state,
                "created": self.header.get("created", ""), "from": self.header.get("from", ""),
                "tests": self.header.get("tests", ""), "files": self.header.get("files", ""),
                "next": self.text, "acks": self.acks, "problem": self.problem,
                "lapsed_claim": self.lapsed}

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
                + f"{stamp % 10**9:09d}Z-{_slug(task)}-{os.urandom(2).hex()}")
    header = {"hf-handoff": str(FORMAT), "id": entry_id, "task": _one_line(task),
              "status": status, "created": now(), "from": _one_line(origin),
              "tests": _one_line(tests), "files": ", ".join(_one_line(f) for f in files or [])}
    path = queue_dir(ws) / f"{entry_id}.md"
    text_out = render(header, text)
    if len(text_out.encode("utf-8")) > ENTRY_MAX_BYTES:
        raise BadInput(f"the handoff is {len(text_out.encode('utf-8')) >> 10} KiB: a queue entry "
                       f"holds at most {ENTRY_MAX_BYTES >> 10} KiB",
                       "put the details in a file of the repository and name it in --next")
    if not dry_run and not atomic.create_exclusive(path, text_out.encode("utf-8")):
        raise BadInput(f"queue entry {entry_id} already exists", "try again")
    return Entry(entry_id, path, header, text.strip())


def _acks_dir(ws: Workspace) -> Path:
    return queue_dir(ws) / "acks"


def _ack_file(ws: Workspace, entry_id: str, ack: str) -> Path:
    return _acks_dir(ws) / f"{entry_id}.{ack}"


def claim_file(ws: Workspace, entry_id: str, generation: int) -> Path:
    """Where the claim of `generation` lives: `<id>.spawned`, then `<id>.spawned.<n>`."""
    suffix = f".{generation}" if generation else ""
    return _acks_dir(ws) / f"{entry_id}.spawned{suffix}"


def _ack_names(ws: Workspace) -> set[str]:
    try:
        return {path.name for path in _acks_dir(ws).iterdir()}
    except FileNotFoundError:
        return set()


def _newest_claims(names: set[str]) -> dict[str, int]:
    """Entry id -> the generation of its newest claim, from the names in `acks/`."""
    newest: dict[str, int] = {}
    for name in names:
        match = _CLAIM_NAME.fullmatch(name)
        if match:
            generation = int(match["generation"] or 0)
            newest[match["id"]] = max(generation, newest.get(match["id"], -1))
    return newest


def _read_record(path: Path) -> dict[str, Any] | None:
    """An ack's record; None when the file does not exist, `unreadable` when it is damaged."""
    try:
        data = atomic.read_json(path, "queue acknowledgement")
    except StateCorrupt:
        return {"unreadable": True}
    if data is None:
        return None
    return data if isinstance(data, dict) else {"unreadable": True}


def _read_outcomes(ws: Workspace, entry_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for ack in OUTCOMES:
        record = _read_record(_ack_file(ws, entry_id, ack))
        if record is not None:
            found[ack] = record
    return found


def _file_age(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return None


def _why_lapsed(path: Path, record: dict[str, Any]) -> str | None:
    """Why the claim in `path` no longer holds its entry, or None while it holds.

    A claimant on another host cannot be checked from here: its claim holds.
    """
    claimant = processes.Identity.from_dict(record)
    if claimant is None:
        age = _file_age(path)
        if age is not None and age > UNREADABLE_CLAIM_AGE:
            return (f"its claim cannot be read (no claimant to check) and is "
                    f"{age / 3600:.0f} h old")
        return None
    if processes.is_alive(claimant) is False:
        started = timefmt.iso(claimant.started)
        return f"its claimant, pid {claimant.pid} on {claimant.host} (started {started}), has died"
    return None


def _settle(ws: Workspace, entry: Entry, newest: dict[str, int]) -> None:
    """Fill in `entry`'s acks, and when its claim lapsed, why it is pending again.

    The claimant is judged dead *before* the last look for an outcome or a newer
    claim: a dead process writes nothing more, so what that look finds is final.
    """
    entry.acks, entry.claim_generation, entry.lapsed = _read_outcomes(ws, entry.id), None, None
    generation = newest.get(entry.id)
    if generation is None:
        return
    path = claim_file(ws, entry.id, generation)
    record = _read_record(path) or {"unreadable": True}
    entry.acks["spawned"], entry.claim_generation = record, generation
    if entry.state != "spawned":
        return
    reason = _why_lapsed(path, record)
    if reason is None:
        return
    if _read_outcomes(ws, entry.id) or claim_file(ws, entry.id, generation + 1).exists():
        _refresh(ws, entry)  # it moved on meanwhile: look again
        return
    entry.lapsed = {"claim": path.name, "reason": reason,
                    **{k: record[k] for k in ("pid", "host", "started", "at") if k in record}}


def _refresh(ws: Workspace, entry: Entry) -> None:
    _settle(ws, entry, _newest_claims(_ack_names(ws)))


def _remove_stale_temps(ws: Workspace) -> None:
    for directory in (queue_dir(ws), _acks_dir(ws)):
        atomic.remove_stale_temps(directory, STALE_TEMP_AGE)


def entries(ws: Workspace, *, tidy: bool = True) -> list[Entry]:
    """Every entry, oldest first, with its acknowledgements.

    With `tidy`, temp files killed writers left in the queue are removed first.
    """
    directory = queue_dir(ws)
    if not directory.is_dir():
        return []
    if tidy:
        _remove_stale_temps(ws)
    newest = _newest_claims(_ack_names(ws))
    found: list[Entry] = []
    for path in sorted(directory.glob("*.md")):
        try:
            raw = atomic.read_regular(path, limit=ENTRY_MAX_BYTES, follow=False)
            entry = parse(path, raw.decode("utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            entry = Entry(path.stem, path, {"task": f"(unreadable: {exc})"}, "",
                          problem=f"unreadable: {exc}")
        _settle(ws, entry, newest)
        found.append(entry)
    return found


def get(ws: Workspace, entry_id: str) -> Entry:
    for entry in entries(ws, tidy=False):
        if entry.id == entry_id:
            return entry
    raise NotFound(f"no queue entry {entry_id!r}", "`hf queue` lists the entries")


def _stamp(**fields: Any) -> bytes:
    record = {"at": now(), "pid": os.getpid(), "host": processes.host(), **fields}
    return (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")


def _claim_record(generation: int, lapsed: dict[str, Any] | None) -> bytes:
    """The claimant's identity (pid, start time, host) and the claim it takes over."""
    me = processes.identity_of(os.getpid())
    fields: dict[str, Any] = {"generation": generation, **(me.to_dict() if me else {})}
    if lapsed is not None:
        fields["takes_over"] = lapsed
    return _stamp(**fields)


def claim(ws: Workspace, entry: Entry) -> bool:
    """Take the pending `entry` for this process; True for exactly one of any racing callers.

    An entry whose claim lapsed is taken by linking the claim of the next
    generation: link() fails when the name exists, so whoever saw the same
    lapsed claim races for the same name and exactly one wins.
    """
    if entry.state != "pending":
        return False
    generation = 0 if entry.claim_generation is None else entry.claim_generation + 1
    path = claim_file(ws, entry.id, generation)
    if entry.lapsed is not None:
        fault_point("takeover")
    if not atomic.create_exclusive(path, _claim_record(generation, entry.lapsed)):
        return False
    if entry.lapsed is not None:
        ws.store.audit("queue-takeover", entry=entry.id, claim=path.name, lapsed=entry.lapsed)
    return True


def acknowledge(ws: Workspace, entry: Entry, ack: str, **fields: Any) -> None:
    if ack not in OUTCOMES:  # a claim is made by `claim` only, and never rewritten
        raise BadInput(f"unknown acknowledgement {ack!r}", f"one of {', '.join(OUTCOMES)}")
    atomic.atomic_write(_ack_file(ws, entry.id, ack), _stamp(**fields))
    _refresh(ws, entry)


def has_pending(ws: Workspace) -> bool:
    """Whether an entry waits to be taken."""
    return any(entry.state == "pending" for entry in entries(ws, tidy=False))


def take_oldest(ws: Workspace) -> Entry | None:
    """Claim the oldest pending entry, or None when none is pending.

    The entry returned says in `acks["spawned"]["takes_over"]` whose lapsed claim it took.
    """
    for entry in entries(ws):
        if entry.state == "pending" and claim(ws, entry):
            fault_point("claimed")
            _refresh(ws, entry)
            return entry
    return None


def watchers(ws: Workspace) -> list[dict[str, Any]]:
    """The watchers that announced themselves (`watchers/<pid>.json`), oldest first.
    The note of a watcher of this host that is gone (killed: it could not remove
    it) is removed, not listed."""
    found = []
    for path in sorted((queue_dir(ws) / "watchers").glob("*.json")):
        try:
            data = atomic.read_json(path, "watcher's note")
        except StateCorrupt:
            continue  # (a note a watcher left while it was killed)
        if not isinstance(data, dict):
            continue
        if _watcher_gone(data):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        found.append(data)
    return found


def _watcher_gone(note: dict[str, Any]) -> bool:
    """Whether the watcher a note names is known dead: by its identity (pid and
    start time) on this host; a note without one, by its pid alone."""
    ident = processes.Identity.from_dict(note)
    if ident is not None:
        return processes.is_alive(ident) is False
    pid = note.get("pid")
    if note.get("host") != processes.host() or not isinstance(pid, int):
        return False
    return processes.identity_of(pid) is None


def watch(ws: Workspace, take: Callable[[], Entry | None], *, max_entries: int | None,
          idle_timeout: float | None, interval: float = 0.25,
          clock: Callable[[], float] = time.monotonic) -> int:
    """Call `take` until `max_entries` were taken, or nothing came for `idle_timeout` s.

    While it watches, `watchers/<pid>.json` says so (for `hf queue`).
    """
    marker = queue_dir(ws) / "watchers" / f"{os.getpid()}.json"
    me = processes.identity_of(os.getpid())
    atomic.atomic_write(marker, _stamp(**(me.to_dict() if me else {})))
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
