"""The refs a part worked on another machine lives in, on a git remote the user
already has (docs/remote.md), and what hf's records say about such a part.

Pure: names, the task file's content and the heartbeat's name only; the git
calls are worktrees/remote.py's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hf_fanout import timefmt
from hf_fanout.core.records import Part, branch_name, check_slug
from hf_fanout.errors import BadInput, InvalidPlan

if TYPE_CHECKING:
    from hf_fanout.config import Settings

TASK_FILE = "TASK.md"  # in the task commit's tree: the handoff file
PART_FILE = "part.json"  # beside it: what `hf take` needs, as data
PART_SCHEMA = 1
# a remote worker updates its heartbeat ref at most this often
HEARTBEAT_EVERY = 60.0
# a remote part not seen for this long is stale (`remote_stale_after` in .hf.toml)
DEFAULT_STALE_AFTER = 600.0
# seconds a remote has to answer a read of its refs (`remote_timeout` in .hf.toml)
DEFAULT_READ_TIMEOUT = 30.0

_REMOTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_HOST = re.compile(r"[^A-Za-z0-9.-]+")


def read_timeout(settings: Settings) -> float:
    """How long a read of a remote's refs (`git ls-remote`) may take before hf
    gives up on that remote: `remote_timeout` in .hf.toml, in seconds."""
    return settings.number("remote_timeout", DEFAULT_READ_TIMEOUT)


def check_remote_name(value: str, where: str = "--remote") -> str:
    """A remote's name as `git remote` lists it (no URL: a split pushes to a remote
    the repository has configured, so every machine names the same place)."""
    if not _REMOTE_NAME.fullmatch(value) or value.endswith(".lock") or ".." in value:
        raise InvalidPlan(f"{where}: bad remote name {value!r}",
                          "name a remote of this repository (`git remote` lists them), "
                          "e.g. --remote origin")
    return value


def task_ref(batch: str, part: str) -> str:
    """The task: a commit whose tree holds TASK.md and part.json (written by the split)."""
    return f"refs/hf/task/{batch}/{part}"


def done_ref(batch: str, part: str) -> str:
    """Done: points at the part branch's tip when `hf done` pushed it (written by the
    worker's hf)."""
    return f"refs/hf/done/{batch}/{part}"


def claim_ref(batch: str, part: str) -> str:
    """The claim: a commit of `hf take`'s, pushed only if the ref was not there (a
    lease), so one machine holds the part (written by the taking machine's hf)."""
    return f"refs/hf/claim/{batch}/{part}"


def claimed_prefix(batch: str, part: str) -> str:
    return f"refs/hf/claimed/{batch}/{part}/"


def claimed_ref(batch: str, part: str, host: str, at: float) -> str:
    """`refs/hf/claimed/<batch>/<part>/<host>/<time>`, at the claim's commit, pushed with
    it: who holds the part since when, readable from the name alone."""
    return f"{claimed_prefix(batch, part)}{host_slug(host)}/{timefmt.compact(at)}"


def heartbeat_prefix(batch: str, part: str) -> str:
    return f"refs/hf/heartbeat/{batch}/{part}/"


def heartbeat_ref(batch: str, part: str, host: str, at: float) -> str:
    """`refs/hf/heartbeat/<batch>/<part>/<host>/<time>`: who was last seen and when,
    readable from the name alone (one `git ls-remote`, no object fetched)."""
    return f"{heartbeat_prefix(batch, part)}{host_slug(host)}/{timefmt.compact(at)}"


def host_slug(host: str) -> str:
    """A host name as one ref name component."""
    return _HOST.sub("-", host).strip(".-")[:63] or "unknown"


@dataclass(frozen=True)
class Sighting:
    host: str
    at: float


def last_sighting(batch: str, part: str, refs: dict[str, str]) -> Sighting | None:
    """The newest heartbeat of the part among the listed `refs`."""
    prefix = heartbeat_prefix(batch, part)
    found = []
    for name in refs:
        if not name.startswith(prefix):
            continue
        host, _, stamp = name[len(prefix):].rpartition("/")
        at = _parse_compact(stamp)
        if host and at is not None:
            found.append(Sighting(host, at))
    return max(found, key=lambda s: s.at, default=None)


def _parse_compact(stamp: str) -> float | None:
    if not re.fullmatch(r"\d{8}T\d{6}Z", stamp):
        return None
    return timefmt.parse_iso(f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:"
                             f"{stamp[11:13]}:{stamp[13:15]}Z")


@dataclass(frozen=True)
class Claim:
    commit: str  # what the claim ref points at
    host: str | None  # None: the claim's name ref is missing
    at: float | None


def current_claim(batch: str, part: str, refs: dict[str, str]) -> Claim | None:
    """Who holds the part among the listed `refs`: the claim ref, and the newest
    name ref at the same commit (a name ref of an older claim is ignored)."""
    commit = refs.get(claim_ref(batch, part))
    if commit is None:
        return None
    prefix = claimed_prefix(batch, part)
    named = []
    for name, oid in refs.items():
        if name.startswith(prefix) and oid == commit:
            host, _, stamp = name[len(prefix):].rpartition("/")
            at = _parse_compact(stamp)
            if host and at is not None:
                named.append(Sighting(host, at))
    newest = max(named, key=lambda s: s.at, default=None)
    return Claim(commit, newest.host if newest else None, newest.at if newest else None)


def part_refs(batch: str, part: str) -> tuple[str, str, str]:
    """The fixed refs of a remote part: its branch, its task, its done."""
    return f"refs/heads/{branch_name(batch, part)}", task_ref(batch, part), done_ref(batch, part)


def hf_created(batch: str, part: str, name: str) -> bool:
    """Whether the remote ref `name` is one hf writes for the part (a hosted agent's
    other branches are not)."""
    return name in (*part_refs(batch, part), claim_ref(batch, part)) or name.startswith(
        (heartbeat_prefix(batch, part), claimed_prefix(batch, part)))


def claim_patterns(batch: str, part: str) -> list[str]:
    """`git ls-remote` patterns of the part's claim refs."""
    return [claim_ref(batch, part), claimed_prefix(batch, part) + "*"]


# --------------------------------------------------------------------- records


def remote_of(part: Part) -> str | None:
    """The remote a part of this machine's batch is worked through (None: worked here)."""
    found = part.extra.get("remote")
    name = found.get("name") if isinstance(found, dict) else None
    return name if isinstance(name, str) and name else None


def refuse_remote_part(part: Part, doing: str) -> None:
    """A part worked through a remote has no worktree on the machine that split it:
    `doing` (what the command would do with the worktree) happens where it is
    taken."""
    where = remote_of(part)
    if where is not None:
        raise BadInput(f"{part.batch}/{part.name} is a remote part on {where}: {doing} on "
                       "the machine that works it",
                       f"there: `hf take {where} {part.batch}/{part.name}`")


def taken_from(part: Part) -> str | None:
    """The remote a part `hf take` brought to this machine came from (None: not taken)."""
    found = part.extra.get("taken")
    name = found.get("remote") if isinstance(found, dict) else None
    return name if isinstance(name, str) and name else None


# --------------------------------------------------------------------- the task


def part_data(part: Part, batch_id: str, base: str, batch_task: str) -> bytes:
    """part.json of the task commit: what a worker's hf needs to make the part."""
    data = {"schema": PART_SCHEMA, "batch": batch_id, "part": part.name, "base": base,
            "branch": part.branch, "owns": list(part.owns), "task": part.task,
            "batch_task": batch_task, "estimate_minutes": part.estimate_minutes,
            "sparse": part.sparse, "context": list(part.context)}
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class TaskData:
    batch: str
    part: str
    base: str
    owns: list[str]
    task: str
    batch_task: str
    estimate_minutes: float | None
    sparse: bool
    context: list[str]


def parse_part_data(raw: bytes, where: str) -> TaskData:
    hint = "the task ref was not written by hf (or by another version): split the part again"
    try:
        data: Any = json.loads(raw)
    except ValueError:
        raise BadInput(f"{where}: {PART_FILE} is not JSON", hint) from None
    if not isinstance(data, dict) or data.get("schema") != PART_SCHEMA:
        raise BadInput(f"{where}: unknown {PART_FILE} (schema {data.get('schema')!r})"
                       if isinstance(data, dict) else f"{where}: {PART_FILE} is not an object",
                       hint)
    strings = ("batch", "part", "base", "task", "batch_task")
    if not all(isinstance(data.get(k), str) for k in strings) or not _globs(data.get("owns")) \
            or not _globs(data.get("context"), empty=True):
        raise BadInput(f"{where}: {PART_FILE} lacks a field or has one of the wrong type", hint)
    check_slug("batch", data["batch"])
    check_slug("part", data["part"])
    if not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", data["base"]):
        raise BadInput(f"{where}: base {data['base']!r} is not a commit id", hint)
    estimate = data.get("estimate_minutes")
    return TaskData(data["batch"], data["part"], data["base"], list(data["owns"]),
                    data["task"], data["batch_task"],
                    float(estimate) if isinstance(estimate, (int, float))
                    and not isinstance(estimate, bool) else None,
                    bool(data.get("sparse")), list(data["context"]))


def _globs(value: Any, empty: bool = False) -> bool:
    return isinstance(value, list) and (empty or bool(value)) and all(
        isinstance(v, str) for v in value)
