"""Batch and part records: what hf remembers about a fan-out, as plain data.

Pure: no I/O here. `store.py` reads and writes these as versioned JSON.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Self

from hf_fanout import timefmt
from hf_fanout.errors import InvalidPlan, StateCorrupt

SCHEMA = 1
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,58}[a-z0-9]")

# Batch states
RUNNING = "running"
JOINED = "joined"
DROPPED = "dropped"

# Part states (the sweep adds derived ones: idle, orphan, missing); the
# transitions between them are orchestrator/states.py's
DONE = "done"
BLOCKED = "blocked"
PART_STATES = (RUNNING, DONE, BLOCKED, JOINED, DROPPED)
BATCH_STATES = (RUNNING, JOINED, DROPPED)


def now() -> str:
    return timefmt.iso()


def check_slug(kind: str, value: str) -> str:
    if not SLUG.fullmatch(value) or "--" in value:
        raise InvalidPlan(
            f"bad {kind} name {value!r}",
            f"a {kind} name is 2-60 characters of a-z, 0-9 and single '-', "
            "starting and ending with a letter or digit, e.g. api-tests",
        )
    return value


def branch_name(batch: str, part: str) -> str:
    return f"hf/{batch}/{part}"


class _Record:
    KIND = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]
        return {"schema": SCHEMA, "kind": self.KIND, **data}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Self:
        if not isinstance(data, dict):
            raise StateCorrupt(f"{where}: not a JSON object", _REPAIR_HINT)
        if data.get("schema") != SCHEMA or data.get("kind") != cls.KIND:
            raise StateCorrupt(
                f"{where}: unknown record (schema {data.get('schema')!r}, "
                f"kind {data.get('kind')!r})",
                "this record was written by another version of hf; upgrade hf, "
                "or run `hf doctor`",
            )
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        for name, value in data.items():
            f = known.get(name)
            if f is not None and not _type_ok(str(f.type), value):
                raise StateCorrupt(f"{where}: field {name!r} is not a {f.type} ({value!r:.60})",
                                   _REPAIR_HINT)
        from dataclasses import MISSING

        missing = [name for name, f in known.items() if name not in data
                   and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise StateCorrupt(f"{where}: fields missing: {', '.join(missing)}", _REPAIR_HINT)
        try:
            record = cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError):
            raise StateCorrupt(f"{where}: not a record hf can read", _REPAIR_HINT) from None
        problem = record._problem()
        if problem:
            raise StateCorrupt(f"{where}: {problem}", _REPAIR_HINT)
        return record

    def _problem(self) -> str:
        return ""


def _type_ok(annotation: str, value: Any) -> bool:
    """Whether a JSON value fits a record field's annotation (a small, closed set)."""
    options = [a.strip() for a in annotation.split("|")]
    for option in options:
        if option == "None" and value is None:
            return True
        if option == "str" and isinstance(value, str):
            return True
        if option == "bool" and isinstance(value, bool):
            return True
        if option == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if option == "float" and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if option == "list[str]" and isinstance(value, list) and all(
                isinstance(v, str) for v in value):
            return True
        if option == "dict[str, Any]" and isinstance(value, dict):
            return True
    return False


_REPAIR_HINT = "run `hf doctor` to see what is damaged; hf never overwrites it silently"


@dataclass
class Part(_Record):
    KIND = "part"

    batch: str
    name: str
    index: int
    branch: str
    worktree: str
    owns: list[str]
    task: str = ""
    estimate_minutes: float | None = None  # minutes, from the plan or `--estimate`
    state: str = RUNNING
    note: str | None = None
    reason: str | None = None
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    done_at: str | None = None
    blocked_at: str | None = None
    joined_commit: str | None = None
    worker: dict[str, Any] | None = None
    exit: dict[str, Any] | None = None
    # a sparse checkout: only the owned paths and `context` are in the worktree
    sparse: bool = False
    context: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def checkout_globs(self) -> list[str]:
        """What a sparse checkout of the part holds: its own paths, then its context."""
        return list(dict.fromkeys([*self.owns, *self.context]))

    def _problem(self) -> str:
        if not SLUG.fullmatch(self.name) or not SLUG.fullmatch(self.batch):
            return f"bad batch or part name {self.batch!r}/{self.name!r}"
        if self.state not in PART_STATES:
            return f"unknown part state {self.state!r}"
        if self.worker is not None and not all(
                isinstance(self.worker.get(k, 0), int | float) for k in ("pid", "started")):
            return "the worker's pid or start time is not a number"
        return ""


@dataclass
class Batch(_Record):
    KIND = "batch"

    id: str
    base: str
    target_ref: str
    parts: list[str]
    task: str = ""
    state: str = RUNNING
    worktree_root: str = ""
    auto_join: bool = False
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    joined_commit: str | None = None
    joined_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def _problem(self) -> str:
        if not SLUG.fullmatch(self.id) or not all(SLUG.fullmatch(p) for p in self.parts):
            return f"bad batch or part name in {self.id!r}: {self.parts!r}"
        if self.state not in BATCH_STATES:
            return f"unknown batch state {self.state!r}"
        return ""


def copied_paths(part: Part) -> list[str]:
    """The paths hf put into the part's worktree (`copy`'s files, the agent's hook
    settings): never part of its change.

    The join leaves them out of the part's tree and `hf status` out of its
    changes, ignored by git or not.
    """
    env = part.extra.get("environment")
    copied = env.get("copied") if isinstance(env, dict) else None
    found = [c["path"] for c in copied
             if isinstance(c, dict) and isinstance(c.get("path"), str) and c["path"]] \
        if isinstance(copied, list) else []
    # the agent's hook settings hf merged in (tabs/agent_hooks.py): hf's, not the part's
    hooks = part.extra.get("agent_hooks")
    if isinstance(hooks, dict) and isinstance(hooks.get("path"), str) and hooks["path"]:
        found.append(hooks["path"])
    return found


def collected(batch: Batch) -> bool:
    """`hf gc` removed every worktree and branch of the batch: only its record is left
    (shown by `hf status --all`, forgotten later; its id can be used again)."""
    return batch.state in (JOINED, DROPPED) and isinstance(batch.extra.get("gc_at"), str)


def ended_at(batch: Batch) -> str:
    """When a joined or dropped batch ended."""
    dropped = batch.extra.get("dropped_at")
    return batch.joined_at or (dropped if isinstance(dropped, str) else "") or batch.updated


def part_base(batch: Batch, part: Part) -> str:
    """The commit the part's work starts from: the batch's base, or where `hf sync`
    last brought it (main's tip then)."""
    moved = part.extra.get("base")
    return moved if isinstance(moved, str) and moved else batch.base
