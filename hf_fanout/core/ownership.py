r"""Ownership globs: which repository paths one part of a batch may change.

A glob is gitignore-style syntax over repo-relative POSIX paths, always anchored at the root
(like ``git ls-files ':(glob)PATTERN'``): ``*.py`` matches ``a.py`` but not ``src/a.py``. ``*``
and ``?`` never match ``/``; ``[a-z]``, ``[!x]``/``[^x]`` are classes; ``\`` escapes one char.
A whole-segment ``**`` spans zero or more directories (``a/**`` is everything inside ``a``);
a trailing ``/`` changes nothing; a glob that matches a directory owns everything beneath it.
Matching is case-sensitive; ``globs_overlap`` decides exactly whether two globs share a path.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from hf_fanout.errors import InvalidPlan
from hf_fanout.paths import path_problem

__all__ = ["Glob", "Ownership", "globs_overlap", "literal_segments", "ownerships_overlap",
           "validate_glob"]

_HINT: Final = (
    "globs are relative to the repository root, e.g. 'src/api/**', 'docs/' or '**/*_test.py'"
)
_MAX_CHAR: Final = 0x10FFFF


# --------------------------------------------------------------------------- character sets


@dataclass(frozen=True, slots=True)
class _CharSet:
    """A set of code points: sorted, disjoint, non-adjacent inclusive ranges (exact)."""

    ranges: tuple[tuple[int, int], ...]

    @staticmethod
    def of(*ranges: tuple[int, int]) -> _CharSet:
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(r for r in ranges if r[0] <= r[1]):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        return _CharSet(tuple(merged))

    @staticmethod
    def chars(text: str) -> _CharSet:
        return _CharSet.of(*((ord(c), ord(c)) for c in text))

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __contains__(self, char: str) -> bool:
        code = ord(char)
        return any(lo <= code <= hi for lo, hi in self.ranges)

    def __and__(self, other: _CharSet) -> _CharSet:
        out: list[tuple[int, int]] = []
        mine, theirs = self.ranges, other.ranges
        i = j = 0
        while i < len(mine) and j < len(theirs):
            lo = max(mine[i][0], theirs[j][0])
            hi = min(mine[i][1], theirs[j][1])
            if lo <= hi:
                out.append((lo, hi))
            if mine[i][1] < theirs[j][1]:
                i += 1
            else:
                j += 1
        return _CharSet(tuple(out))

    def __invert__(self) -> _CharSet:
        out: list[tuple[int, int]] = []
        start = 0
        for lo, hi in self.ranges:
            if lo > start:
                out.append((start, lo - 1))
            start = hi + 1
        if start <= _MAX_CHAR:
            out.append((start, _MAX_CHAR))
        return _CharSet(tuple(out))

    def __sub__(self, other: _CharSet) -> _CharSet:
        return self & ~other

    def pick(self) -> str:
        """A readable member: 'x' if possible, then letters, digits, punctuation, anything."""
        for preferred in _PREFERRED:
            common = self & preferred
            if common:
                return chr(common.ranges[0][0])
        raise ValueError("empty character set")

    def regex(self) -> str:
        if not self.ranges:
            return "(?!)"
        parts = []
        for lo, hi in self.ranges:
            parts.append(_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}")
        return "[" + "".join(parts) + "]"


def _class_char(code: int) -> str:
    char = chr(code)
    return char if char.isascii() and char.isalnum() else f"\\U{code:08x}"


_ALL: Final = _CharSet(((0, _MAX_CHAR),))
_SLASH: Final = _CharSet.chars("/")
_NOT_SLASH: Final = ~_SLASH
_NAME_CHAR: Final = ~_CharSet.chars("/\0")  # what a path segment may contain
_PREFERRED: Final = (
    _CharSet.chars("x"),
    _CharSet.of((ord("a"), ord("z"))),
    _CharSet.of((ord("0"), ord("9"))),
    _CharSet.of((ord("A"), ord("Z"))),
    _CharSet.chars("_-."),
    _CharSet.of((0x21, 0x7E)) - _SLASH,
    _CharSet.of((0xA1, _MAX_CHAR)),
    _NAME_CHAR,
    _ALL,
)


# --------------------------------------------------------------------------- parsing


class _Wild:
    """A wildcard token: `*` (STAR) or `?` (QMARK)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_STAR: Final = _Wild("*")
_QMARK: Final = _Wild("?")

# A token is a literal character, a wildcard, or a bracket class (already without '/').
_Token = str | _Wild | _CharSet


@dataclass(frozen=True, slots=True)
class _Segment:
    src: str
    tokens: tuple[_Token, ...]

    @property
    def dstar(self) -> bool:
        return self.src == "**"


def _bad(pattern: object, reason: str, hint: str = _HINT) -> InvalidPlan:
    return InvalidPlan(f"bad ownership glob {pattern!r}: {reason}", hint)


def _escaped(text: str, index: int) -> bool:
    """Whether text[index] is escaped by an odd run of backslashes before it."""
    run = 0
    while index - run - 1 >= 0 and text[index - run - 1] == "\\":
        run += 1
    return run % 2 == 1


def _class_member(text: str, i: int, unterminated: InvalidPlan) -> tuple[str, int]:
    """The character of a class at text[i] (`\\x` is x); returns it and the next index."""
    if text[i] == "\\":
        i += 1
        if i >= len(text):
            raise unterminated
    return text[i], i + 1


def _parse_class(text: str, start: int, pattern: str) -> tuple[_CharSet, int]:
    """Parse the class opening at text[start] == '['; return it and the index after ']'."""
    unterminated = _bad(
        pattern,
        "unterminated '[' character class",
        "close the class, e.g. 'src/[ab]*.py', or write '\\[' for a literal '['",
    )
    i = start + 1
    negated = i < len(text) and text[i] in "!^"
    if negated:
        i += 1
    ranges: list[tuple[int, int]] = []
    first = True
    while True:
        if i >= len(text):
            raise unterminated
        char = text[i]
        if char == "]" and not first:
            break
        first = False
        if char == "[" and re.match(r"\[:[A-Za-z]+:\]", text[i:]):
            raise _bad(
                pattern,
                "POSIX classes like [:alpha:] are not supported",
                "spell the class out with ranges, e.g. 'src/[a-zA-Z]*.py'",
            )
        char, i = _class_member(text, i, unterminated)
        high = char
        if i + 1 < len(text) and text[i] == "-" and text[i + 1] != "]":
            high, i = _class_member(text, i + 1, unterminated)
            if ord(high) < ord(char):
                raise _bad(pattern, f"reversed range {char}-{high} in a character class")
        if "/" in (char, high):
            raise _bad(pattern, "'/' inside [...] can never match: a '/' separates directories")
        ranges.append((ord(char), ord(high)))
    chosen = _CharSet.of(*ranges)
    return (~chosen if negated else chosen) & _NOT_SLASH, i + 1


def _split(text: str, pattern: str) -> list[_Segment]:
    segments: list[_Segment] = []
    tokens: list[_Token] = []
    start = i = 0
    while i < len(text):
        char = text[i]
        if char == "/":
            segments.append(_Segment(text[start:i], tuple(tokens)))
            tokens = []
            i += 1
            start = i
        elif char == "\\":
            if i + 1 >= len(text):
                raise _bad(
                    pattern,
                    "ends with a lone backslash",
                    "a backslash escapes the next character; write '\\\\' for a literal one",
                )
            if text[i + 1] == "/":
                raise _bad(pattern, "'\\/' (escaped '/'): a '/' always separates directories")
            tokens.append(text[i + 1])
            i += 2
        elif char == "*":
            if not (tokens and tokens[-1] is _STAR):
                tokens.append(_STAR)
            i += 1
        elif char == "?":
            tokens.append(_QMARK)
            i += 1
        elif char == "[":
            charset, i = _parse_class(text, i, pattern)
            tokens.append(charset)
        else:
            tokens.append(char)
            i += 1
    segments.append(_Segment(text[start:], tuple(tokens)))
    return segments


def _names_dot_git(segment: _Segment) -> bool:
    """A star-free, `?`-free segment that matches `.git` in some letter case."""
    if len(segment.tokens) != 4:
        return False
    for token, want in zip(segment.tokens, ".git", strict=True):
        if isinstance(token, str):
            if token.lower() != want:
                return False
        elif isinstance(token, _CharSet):
            if want not in token and want.upper() not in token:
                return False
        else:
            return False
    return True


def _segment_problem(segment: _Segment) -> str:
    if segment.src == "":
        return "empty path segment ('//')"
    if all(isinstance(t, str) for t in segment.tokens):
        literal = "".join(t for t in segment.tokens if isinstance(t, str))
        if literal in (".", ".."):
            return f"'{literal}' segment (globs never leave or re-enter a directory)"
    if _names_dot_git(segment):
        return "names .git (git's own directory cannot be owned)"
    return ""


def _parse(pattern: str) -> tuple[str, list[_Segment]]:
    if not isinstance(pattern, str):
        raise _bad(pattern, f"not a string but {type(pattern).__name__}")
    if "\0" in pattern:
        raise _bad(pattern, "contains NUL")
    text = pattern.lstrip()
    while text and text[-1].isspace() and not _escaped(text, len(text) - 1):
        text = text[:-1]
    if not text:
        raise _bad(pattern, "empty")
    if text.startswith("/"):
        raise _bad(pattern, "absolute; globs are relative to the repository root")
    segments = _split(text, pattern)
    while len(segments) > 1 and segments[-1].src == "":  # trailing '/' means nothing
        segments.pop()
    while len(segments) > 1 and segments[0].src == ".":  # leading './'
        segments.pop(0)
    if len(segments) == 1 and segments[0].src == ".":
        raise _bad(pattern, "'.' is the whole repository", "use '**' to own every path")
    for segment in segments:
        problem = _segment_problem(segment)
        if problem:
            raise _bad(pattern, problem)
    return "/".join(s.src for s in segments), segments


def validate_glob(pattern: str) -> str:
    """The normalised glob (no leading './', no trailing '/'), or raise InvalidPlan."""
    return _parse(pattern)[0]


# --------------------------------------------------------------------------- matching


def _regex_source(segments: list[_Segment]) -> str:
    """A regex (DOTALL, fullmatch) for the paths the glob matches, not yet those beneath."""
    out: list[str] = []
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if i > 0 and not segments[i - 1].dstar:
            out.append("/")
        if segment.dstar:
            out.append(".+" if i == last else "(?:[^/]+/)*")
            continue
        for token in segment.tokens:
            if token is _STAR:
                out.append("[^/]*")
            elif token is _QMARK:
                out.append("[^/]")
            elif isinstance(token, _CharSet):
                out.append(token.regex())
            elif isinstance(token, str):
                out.append(re.escape(token))
    return "".join(out)


def _owning_regex(sources: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(f"(?:{s})" for s in sources) or "(?!)"
    return re.compile(f"(?:{alternatives})(?:/.*)?", re.DOTALL)


# Labels are interned as small integers so that the product search can cache
# intersections; id 0 is the empty set.
_LABELS: list[_CharSet] = []
_LABEL_IDS: dict[_CharSet, int] = {}
_MEETS: dict[tuple[int, int], int] = {}


def _label(charset: _CharSet) -> int:
    found = _LABEL_IDS.get(charset)
    if found is None:
        found = _LABEL_IDS[charset] = len(_LABELS)
        _LABELS.append(charset)
    return found


def _meet(a: int, b: int) -> int:
    key = (a, b) if a <= b else (b, a)
    found = _MEETS.get(key)
    if found is None:
        found = _MEETS[key] = _label(_LABELS[a] & _LABELS[b])
    return found


_EMPTY: Final = _label(_CharSet(()))


class _Nfa:
    """Glob plus directory ownership as an NFA over characters, epsilons closed away."""

    __slots__ = ("accepting", "edges", "eps", "start")

    def __init__(self, segments: list[_Segment]) -> None:
        self.edges: list[list[tuple[int, int]]] = []  # (label id, target) per state
        self.eps: list[list[int]] = []
        self.start = cur = self._state()
        last = len(segments) - 1
        for i, segment in enumerate(segments):
            if i > 0 and not segments[i - 1].dstar:
                cur = self._step(cur, _SLASH)
            if not segment.dstar:
                for token in segment.tokens:
                    cur = self._token(cur, token)
            elif i == last:  # one or more characters, '/' included
                cur = self._loop(self._step(cur, _ALL), _ALL)
            else:  # (?:[^/]+/)*
                cur = self._loop(cur, None)
                inner = self._loop(self._step(cur, _NOT_SLASH), _NOT_SLASH)
                self.edges[inner].append((_label(_SLASH), cur))
        beneath = self._loop(self._step(cur, _SLASH), _ALL)  # all under a matched directory
        self._close({cur, beneath})

    def _state(self) -> int:
        self.edges.append([])
        self.eps.append([])
        return len(self.edges) - 1

    def _step(self, source: int, label: _CharSet) -> int:
        target = self._state()
        self.edges[source].append((_label(label), target))
        return target

    def _loop(self, source: int, label: _CharSet | None) -> int:
        """A fresh state reached by epsilon from `source`, looping on `label`."""
        target = self._state()
        self.eps[source].append(target)
        if label is not None:
            self.edges[target].append((_label(label), target))
        return target

    def _token(self, cur: int, token: _Token) -> int:
        if token is _STAR:
            return self._loop(cur, _NOT_SLASH)
        if token is _QMARK:
            return self._step(cur, _NOT_SLASH)
        if isinstance(token, _CharSet):
            return self._step(cur, token)
        return self._step(cur, _CharSet.chars(str(token)))

    def _close(self, accept: set[int]) -> None:
        """Fold epsilon moves into the edges and accepting flags."""
        edges: list[list[tuple[int, int]]] = []
        self.accepting: list[bool] = []
        for state in range(len(self.edges)):
            closure = {state}
            todo = [state]
            while todo:
                for nxt in self.eps[todo.pop()]:
                    if nxt not in closure:
                        closure.add(nxt)
                        todo.append(nxt)
            edges.append([e for c in sorted(closure) for e in self.edges[c]])
            self.accepting.append(bool(closure & accept))
        self.edges = edges


# Valid repository paths (see hf_fanout.paths): non-empty segments without NUL, never
# '.', '..' or '.git' in any case. A DFA whose states track a segment's prefix.
_V_START, _V_DOT, _V_DOTDOT, _V_G, _V_GI, _V_GIT, _V_NAME = range(7)
_V_ACCEPTING: Final = frozenset({_V_G, _V_GI, _V_NAME})


def _valid_path_dfa() -> tuple[tuple[tuple[int, int], ...], ...]:
    dot, g, i, t = (_CharSet.chars(c) for c in (".", "gG", "iI", "tT"))
    name = _NAME_CHAR
    table = (
        ((dot, _V_DOT), (name - dot, _V_NAME)),  # start of a segment
        ((dot, _V_DOTDOT), (g, _V_G), (name - dot - g, _V_NAME)),  # "."
        ((name, _V_NAME),),  # ".."
        ((i, _V_GI), (name - i, _V_NAME), (_SLASH, _V_START)),  # ".g"
        ((t, _V_GIT), (name - t, _V_NAME), (_SLASH, _V_START)),  # ".gi"
        ((name, _V_NAME),),  # ".git"
        ((name, _V_NAME), (_SLASH, _V_START)),  # any other non-empty name
    )
    return tuple(tuple((_label(cs), target) for cs, target in row) for row in table)


_VALID_PATH: Final = _valid_path_dfa()


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class Glob:
    """One validated ownership glob; `pattern` is normalised by `validate_glob`."""

    pattern: str
    _source: str = field(init=False, repr=False, compare=False)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _nfa: _Nfa = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        normal, segments = _parse(self.pattern)
        source = _regex_source(segments)
        object.__setattr__(self, "pattern", normal)
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_regex", _owning_regex([source]))
        object.__setattr__(self, "_nfa", _Nfa(segments))

    def __str__(self) -> str:
        return self.pattern

    def matches(self, path: str) -> bool:
        """Whether the glob matches `path` or a directory above it."""
        return self._regex.fullmatch(path) is not None


@dataclass(frozen=True)
class Ownership:
    """The globs one part owns; a path is owned when any glob matches it."""

    globs: tuple[Glob, ...]
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _owning_regex(g._source for g in self.globs))

    @classmethod
    def parse(cls, patterns: Iterable[str]) -> Ownership:
        """Validate and normalise each pattern; exact duplicates are kept once."""
        if isinstance(patterns, str):
            raise _bad(patterns, "ownership is a list of globs, not one string")
        globs: dict[str, Glob] = {}
        for pattern in patterns:
            glob = Glob(pattern)
            globs.setdefault(glob.pattern, glob)
        return cls(tuple(globs.values()))

    def owns(self, path: str) -> bool:
        return self._regex.fullmatch(path) is not None

    def owned(self, paths: Iterable[str]) -> list[str]:
        match = self._regex.fullmatch
        # Only a path that starts with a glob's literal leading segments can
        # match it: a cheap string test first, the regex on what passes.
        prefixes = tuple(_literal_prefix(g.pattern) for g in self.globs)
        if all(prefixes):
            return [p for p in paths if p.startswith(prefixes) and match(p) is not None]
        return [p for p in paths if match(p) is not None]

    def patterns(self) -> list[str]:
        return [g.pattern for g in self.globs]


def literal_segments(pattern: str) -> tuple[str, ...]:
    """The leading segments of a normalised glob that hold no metacharacter (and
    no escape): every path the glob owns starts with them."""
    literal = []
    for segment in pattern.split("/"):
        if any(c in segment for c in "*?[\\"):
            break
        literal.append(segment)
    return tuple(literal)


def _literal_prefix(pattern: str) -> str:
    """`literal_segments` joined ('' when the first segment has a metacharacter)."""
    return "/".join(literal_segments(pattern))


_State = tuple[int, int, int]  # (state of a, state of b, state of _VALID_PATH)


def _overlap(a: Glob, b: Glob) -> str | None:
    """Breadth-first search of (NFA a) x (NFA b) x (valid paths): a shortest shared path."""
    na, nb = a._nfa, b._nfa
    first: _State = (na.start, nb.start, _V_START)
    parent: dict[_State, tuple[_State, int] | None] = {first: None}
    queue = deque([first])
    while queue:
        here = queue.popleft()
        p, q, v = here
        if na.accepting[p] and nb.accepting[q] and v in _V_ACCEPTING:
            chars: list[str] = []
            link = parent[here]
            while link is not None:
                here, label = link
                chars.append(_LABELS[label].pick())
                link = parent[here]
            return _readable("".join(reversed(chars)), a, b)
        for label_a, pa in na.edges[p]:
            for label_b, qb in nb.edges[q]:
                both = _meet(label_a, label_b)
                if both == _EMPTY:
                    continue
                for label_v, vn in _VALID_PATH[v]:
                    common = _meet(both, label_v)
                    if common != _EMPTY:
                        nxt = (pa, qb, vn)
                        if nxt not in parent:
                            parent[nxt] = (here, common)
                            queue.append(nxt)
    return None


def _readable(example: str, a: Glob, b: Glob) -> str:
    """Prefer `src/x.py` to `src/.py`: put an 'x' before a '.' a `*` left bare."""
    i = 0
    while i < len(example):
        if example[i] == "." and (i == 0 or example[i - 1] in "/_-"):
            candidate = example[:i] + "x" + example[i:]
            if not path_problem(candidate) and a.matches(candidate) and b.matches(candidate):
                example = candidate
                i += 1
        i += 1
    return example


def globs_overlap(a: str, b: str) -> str | None:
    """None when no repository path is owned by both globs, else an example path."""
    return _overlap(Glob(a), Glob(b))


def ownerships_overlap(a: Ownership, b: Ownership) -> tuple[str, str, str] | None:
    """(glob of a, glob of b, example path) for the first pair sharing a path, or None."""
    for glob_a in a.globs:
        for glob_b in b.globs:
            example = _overlap(glob_a, glob_b)
            if example is not None:
                return glob_a.pattern, glob_b.pattern, example
    return None
