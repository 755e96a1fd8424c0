"""A split plan: which parts, what each owns, what each is asked to do.

Pure: parsing and validation only. A plan comes from a TOML file or from
`hf split` flags and is fully checked before anything is created.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hf_fanout.core.ownership import Glob, Ownership, literal_segments, ownerships_overlap
from hf_fanout.core.records import check_slug
from hf_fanout.core.remote_refs import check_remote_name
from hf_fanout.errors import InvalidPlan, OwnershipOverlap


@dataclass(frozen=True)
class PartPlan:
    name: str
    owns: tuple[str, ...]
    task: str = ""
    estimate_minutes: float | None = None
    context: tuple[str, ...] = ()  # with a sparse checkout: what it needs beside its own
    remote: str | None = None  # worked on another machine, through this git remote

    @property
    def ownership(self) -> Ownership:
        return Ownership.parse(self.owns)


@dataclass(frozen=True)
class Plan:
    batch: str
    parts: tuple[PartPlan, ...]
    task: str = ""
    base: str | None = None
    auto_join: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # a sparse checkout per part (None: the settings say; `sparse` in .hf.toml)
    sparse: bool | None = None
    context: tuple[str, ...] = ()  # every part's context globs


_PLAN_KEYS = {"batch", "base", "task", "part", "auto_join", "sparse", "context"}
_PART_KEYS = {"name", "owns", "task", "estimate_minutes", "context", "remote"}
_PLAN_HINT = (
    'a plan looks like: batch = "b1", task = "...", then per part a [[part]] table with '
    'name = "api", owns = ["src/api/**"], task = "..." (see docs/cli.md)'
)


def parse_plan_toml(text: str, source: str) -> Plan:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidPlan(f"{source}: not valid TOML: {exc}", _PLAN_HINT) from None
    except RecursionError:  # tomllib reads nested tables and arrays recursively
        raise InvalidPlan(f"{source}: nested too deeply to be a plan", _PLAN_HINT) from None
    unknown = set(data) - _PLAN_KEYS
    if unknown:
        raise InvalidPlan(f"{source}: unknown key(s) {', '.join(sorted(unknown))}", _PLAN_HINT)
    batch = data.get("batch")
    if not isinstance(batch, str):
        raise InvalidPlan(f"{source}: `batch` (a string) is required", _PLAN_HINT)
    raw_parts = data.get("part")
    if not isinstance(raw_parts, list) or not raw_parts:
        raise InvalidPlan(f"{source}: at least one [[part]] table is required", _PLAN_HINT)
    parts = []
    for i, raw in enumerate(raw_parts, 1):
        if not isinstance(raw, dict):
            raise InvalidPlan(f"{source}: part #{i} is not a table", _PLAN_HINT)
        extra = set(raw) - _PART_KEYS
        if extra:
            raise InvalidPlan(f"{source}: part #{i}: unknown key(s) {', '.join(sorted(extra))}",
                              _PLAN_HINT)
        name, owns = raw.get("name"), raw.get("owns")
        if not isinstance(name, str):
            raise InvalidPlan(f"{source}: part #{i}: `name` (a string) is required", _PLAN_HINT)
        if isinstance(owns, str):
            owns = [owns]
        if not isinstance(owns, list) or not all(isinstance(g, str) for g in owns):
            raise InvalidPlan(f"{source}: part {name!r}: `owns` must be a list of globs",
                              _PLAN_HINT)
        task = raw.get("task", "")
        estimate = raw.get("estimate_minutes")
        if not isinstance(task, str):
            raise InvalidPlan(f"{source}: part {name!r}: `task` must be a string", _PLAN_HINT)
        if estimate is not None and (not isinstance(estimate, int | float)
                                     or isinstance(estimate, bool) or not 0 <= estimate < 1e6):
            raise InvalidPlan(f"{source}: part {name!r}: `estimate_minutes` must be a "
                              "number of minutes, e.g. 30 or 1.5", _PLAN_HINT)
        context = _globs(raw.get("context", []), f"{source}: part {name!r}: `context`")
        remote = raw.get("remote")
        if remote is not None and not isinstance(remote, str):
            raise InvalidPlan(f"{source}: part {name!r}: `remote` must be a remote's name",
                              _PLAN_HINT)
        parts.append(PartPlan(name, tuple(owns), task, estimate, context, remote))
    task, base, auto_join = data.get("task", ""), data.get("base"), data.get("auto_join", False)
    if not isinstance(task, str) or (base is not None and not isinstance(base, str)):
        raise InvalidPlan(f"{source}: `task` and `base` must be strings", _PLAN_HINT)
    if not isinstance(auto_join, bool):
        raise InvalidPlan(f"{source}: `auto_join` must be true or false", _PLAN_HINT)
    sparse = data.get("sparse")
    if sparse is not None and not isinstance(sparse, bool):
        raise InvalidPlan(f"{source}: `sparse` must be true or false", _PLAN_HINT)
    return validate(Plan(batch, tuple(parts), task, base, auto_join, sparse=sparse,
                         context=_globs(data.get("context", []), f"{source}: `context`")))


def _globs(raw: Any, where: str) -> tuple[str, ...]:
    """A list of globs (one string is a list of one)."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(g, str) for g in raw):
        raise InvalidPlan(f"{where} must be a list of globs", _PLAN_HINT)
    return tuple(raw)


def context_globs(globs: Sequence[str]) -> tuple[str, ...]:
    """Context globs checked as ownership globs are (relative, nothing under .git),
    normalised; they may overlap anything: a context is only read."""
    return tuple(Ownership.parse(expanded(globs)).patterns()) if globs else ()


MAX_EXPANSIONS = 256  # globs one brace glob may stand for


def glob_list(text: str) -> list[str]:
    """`GLOB[,GLOB...]` as a flag gives it: split at the commas outside braces (so
    `src/**/*.{py,txt}` stays one glob, which `expanded` then makes two)."""
    return [item.strip() for item in _top_level(text, ",")]


def expanded(globs: Sequence[str]) -> list[str]:
    """Every glob with its braces expanded as a shell expands them: `*.{py,txt}` is
    `*.py` and `*.txt`, nested lists too; a brace with no comma at its level is a
    brace of the name (`a{b}`), `\\{` always is. An unclosed `{` is refused."""
    found: list[str] = []
    for glob in globs:
        found += _expand(glob)
        if len(found) > MAX_EXPANSIONS:
            raise InvalidPlan(f"the braces of {glob!r} stand for more than {MAX_EXPANSIONS} "
                              "globs", "list fewer alternatives, or own their folder")
    return list(dict.fromkeys(found))


def _expand(glob: str) -> list[str]:
    start = None  # where the brace open at the top level began
    for i, char, depth in _scanned(glob):
        if char == "{" and depth == 0:
            start = i
        elif char == "}" and depth == 1 and start is not None:
            choices = _top_level(glob[start + 1:i], ",")
            if len(choices) > 1:
                head, tail = glob[:start], glob[i + 1:]
                return [g for choice in choices for g in _expand(head + choice + tail)]
            start = None
    if start is not None:
        raise InvalidPlan(f"glob {glob!r} opens a brace it does not close",
                          "close it (`src/**/*.{py,txt}`), or write `\\{` for a brace of a name")
    return [glob]


def _top_level(text: str, separator: str) -> list[str]:
    """`text` split at `separator` where no brace is open."""
    items, begin = [], 0
    for i, char, depth in _scanned(text):
        if char == separator and depth == 0:
            items.append(text[begin:i])
            begin = i + 1
    return [*items, text[begin:]]


def _scanned(text: str) -> Iterator[tuple[int, str, int]]:
    """Each character of `text` not escaped by a backslash: its index, itself, and
    how many braces are open before it."""
    depth, i = 0, 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        yield i, char, depth
        if char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        i += 1


def plan_from_flags(batch: str, part_specs: Sequence[str], task: str, base: str | None,
                    auto_join: bool = False) -> Plan:
    parts = []
    for spec in part_specs:
        name, sep, globs = spec.partition("=")
        if not sep or not globs.strip():
            raise InvalidPlan(f"bad --part {spec!r}",
                              "use --part NAME=GLOB[,GLOB...], e.g. --part api='src/api/**'")
        parts.append(PartPlan(name.strip(), tuple(glob_list(globs))))
    if not parts:
        raise InvalidPlan("no parts given", "add --part NAME=GLOB per part, or --plan FILE")
    return validate(Plan(batch, tuple(parts), task, base, auto_join))


def _utf8(text: str, where: str, hint: str = "give it in UTF-8") -> None:
    """Refuse text that is not UTF-8 (bytes a command line passed as they were):
    records, handoffs and refs are written in UTF-8."""
    if any("\udc80" <= c <= "\udcff" for c in text):
        raise InvalidPlan(f"{where} is not UTF-8 text: {text!r}", hint)


def validate(plan: Plan) -> Plan:
    """Names and globs (normalised), without looking at any tree."""
    _utf8(plan.task, "the task")
    for text in (*plan.context, *(g for p in plan.parts for g in (*p.owns, *p.context))):
        _utf8(text, "a glob", "give it in UTF-8; a file name that is not UTF-8 is matched "
              "by a glob with a wildcard in place of those bytes")
    for part in plan.parts:
        _utf8(part.task, f"part {part.name!r}: its task")
    check_slug("batch", plan.batch)
    seen: set[str] = set()
    parts = []
    for part in plan.parts:
        check_slug("part", part.name)
        if part.name in seen:
            raise InvalidPlan(f"part {part.name!r} appears twice", "give every part its own name")
        seen.add(part.name)
        if not part.owns:
            raise InvalidPlan(f"part {part.name!r} owns nothing",
                              "give it at least one glob, e.g. owns = [\"src/api/**\"]")
        ownership = Ownership.parse(expanded(part.owns))  # InvalidPlan on a bad glob
        remote = None if part.remote is None else check_remote_name(
            part.remote, f"part {part.name!r}: remote")
        parts.append(PartPlan(part.name, tuple(ownership.patterns()), part.task,
                              part.estimate_minutes, context_globs(part.context), remote))
    return Plan(plan.batch, tuple(parts), plan.task, plan.base, plan.auto_join, plan.extra,
                plan.sparse, context_globs(plan.context))


@dataclass(frozen=True)
class GlobReport:
    part: str
    glob: str
    matches: int


def _maybe_overlapping(ownerships: list[tuple[str, Ownership]]) -> list[tuple[int, int]]:
    """The pairs of parts (by index, in order) that could share a path, found by the
    globs' literal leading directories: a path a glob owns starts with them, so two
    globs can share one only if one's literal directories lead to the other's. A
    plan of thousands of parts in their own directories is so checked in about
    parts x globs, not parts squared; globs that start with a wildcard meet all."""
    exact: dict[tuple[str, ...], set[int]] = {}  # literal prefix -> parts with it
    below: dict[tuple[str, ...], set[int]] = {}  # a prefix -> parts with it or one under it
    prefixes: list[list[tuple[str, ...]]] = []
    for index, (_name, ownership) in enumerate(ownerships):
        mine = [literal_segments(glob.pattern) for glob in ownership.globs]
        prefixes.append(mine)
        for prefix in mine:
            exact.setdefault(prefix, set()).add(index)
            for k in range(len(prefix) + 1):
                below.setdefault(prefix[:k], set()).add(index)
    pairs: set[tuple[int, int]] = set()
    for index, mine in enumerate(prefixes):
        for prefix in mine:
            others = set(below.get(prefix, set()))
            for k in range(len(prefix)):
                others |= exact.get(prefix[:k], set())
            pairs.update((min(index, o), max(index, o)) for o in others if o != index)
    return sorted(pairs)


def check_ownership(plan: Plan, base_paths: Sequence[str], *, count: bool) -> list[GlobReport]:
    """Refuse any path two parts could both own; with `count`, report glob hit counts.

    The glob-against-glob check is exact (it never calls two globs disjoint
    when they share a path), so it covers every path of the base tree as well
    as paths that do not exist yet; on a clash a real base-tree path is shown
    as the example when there is one.
    """
    ownerships = [(p.name, p.ownership) for p in plan.parts]
    for i, j in _maybe_overlapping(ownerships):
        (name_a, own_a), (name_b, own_b) = ownerships[i], ownerships[j]
        clash = ownerships_overlap(own_a, own_b)
        if clash is None:
            continue
        glob_a, glob_b, example = clash
        real = next((p for p in base_paths if own_a.owns(p) and own_b.owns(p)), None)
        where = (f"both own {real!r}" if real else
                 f"could both own a new file such as {example!r}")
        raise OwnershipOverlap(
            f"parts {name_a!r} ({glob_a}) and {name_b!r} ({glob_b}) {where}",
            "make their globs disjoint; every path may belong to one part only",
            details={"parts": [name_a, name_b], "globs": [glob_a, glob_b],
                     "example": real or example},
        )
    if not count:
        return []
    return [
        GlobReport(name, glob.pattern, sum(1 for path in base_paths if glob.matches(path)))
        for name, ownership in ownerships
        for glob in ownership.globs
    ]


def matching_nothing(plan: Plan, base_paths: Sequence[str]) -> list[tuple[str, str]]:
    """(part, glob) for each glob no path of the base tree matches (it can own new
    files only): what a split warns of without counting every glob's files."""
    return [(part.name, glob.pattern) for part in plan.parts
            for glob in part.ownership.globs
            if count_matching(glob.pattern, base_paths, first=True) == 0]


def count_matching(pattern: str, base_paths: Sequence[str], *, first: bool = False) -> int:
    """How many of `base_paths` the glob `pattern` owns (with `first`: 1 once one
    does); only the paths under its literal leading folders are tried."""
    glob = Glob(pattern)
    prefix = "/".join(literal_segments(glob.pattern))
    found = 0
    for path in base_paths:
        if path.startswith(prefix) and glob.matches(path):
            found += 1
            if first:
                break
    return found


def with_estimates(plan: Plan, specs: Sequence[str]) -> Plan:
    """The plan with `hf split --estimate` applied: `MIN` sets every part's estimate,
    `NAME=MIN` one part's (over `MIN`); minutes, e.g. 30 or 1.5. Over a plan file's
    `estimate_minutes`."""
    hint = "use --estimate MIN for every part or --estimate NAME=MIN for one, e.g. api=30"
    estimates: dict[str | None, float] = {}
    names = {p.name for p in plan.parts}
    for spec in specs:
        name, sep, value = spec.rpartition("=")
        try:
            minutes = float(value)
        except ValueError:
            minutes = -1.0
        if not 0 <= minutes < 1e6:
            raise InvalidPlan(f"bad --estimate {spec!r}: not a number of minutes", hint)
        if sep and name.strip() not in names:
            raise InvalidPlan(f"--estimate {spec!r}: the plan has no part {name.strip()!r}",
                              hint + f"; parts: {', '.join(sorted(names))}")
        estimates[name.strip() if sep else None] = minutes
    if not estimates:
        return plan
    parts = tuple(dataclasses.replace(p, estimate_minutes=estimates.get(
        p.name, estimates.get(None, p.estimate_minutes))) for p in plan.parts)
    return dataclasses.replace(plan, parts=parts)
