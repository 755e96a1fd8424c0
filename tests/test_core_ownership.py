"""Ownership globs: matching rules, validation, and exact overlap detection."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hf_fanout.core.ownership import (
    Glob,
    Ownership,
    globs_overlap,
    ownerships_overlap,
    validate_glob,
)
from hf_fanout.errors import InvalidPlan
from hf_fanout.paths import path_problem


def m(pattern: str, path: str) -> bool:
    return Glob(pattern).matches(path)


# --------------------------------------------------------------------------- plain rules


def test_anchored_at_root() -> None:
    assert m("*.py", "a.py")
    assert not m("*.py", "src/a.py")
    assert m("**/*.py", "src/a.py")
    assert m("**/*.py", "a.py")
    assert not m("a.py", "src/a.py")
    assert m("src/a.py", "src/a.py")


def test_star_never_crosses_slash() -> None:
    assert m("src/*.py", "src/a.py")
    assert m("src/*.py", "src/.py")
    assert not m("src/*.py", "src/x/a.py")
    assert m("s*c/a", "src/a")
    assert not m("s*a", "src/a")
    assert m("a**b", "ab")  # ** inside a segment is a plain *
    assert not m("a**b", "a/b")
    assert m("***/x", "a/x")
    assert not m("***/x", "a/b/x")


def test_question_mark() -> None:
    assert m("a?c", "abc")
    assert not m("a?c", "ac")
    assert not m("a?c", "a/c")
    assert m("src/??.py", "src/ab.py")
    assert not m("src/??.py", "src/abc.py")


def test_character_classes() -> None:
    assert m("[ab].py", "a.py")
    assert not m("[ab].py", "c.py")
    assert m("[a-c]x", "bx")
    assert not m("[a-c]x", "dx")
    assert m("[!a]x", "bx")
    assert not m("[!a]x", "ax")
    assert m("[^a]x", "bx")
    assert not m("[^a]x", "ax")
    assert not m("a[!x]b", "a/b")  # a negated class never matches '/'
    assert m("[]]", "]")  # ']' first is literal
    assert m("[!]]", "a")
    assert not m("[!]]", "]")
    assert m("[a-]", "-")
    assert m("[\\]]", "]")
    assert not m("[!-0]", "/")  # a range spanning '/' still never matches it


def test_escapes() -> None:
    assert m("\\*", "*")
    assert not m("\\*", "a")
    assert m("a\\?", "a?")
    assert not m("a\\?", "ab")
    assert m("\\[x]", "[x]")
    assert m("\\\\", "\\")


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        ("a/**/b", ["a/b", "a/x/b", "a/x/y/b", "a/b/c"], ["b", "ab", "x/a/b", "a/xb"]),
        ("**/b", ["b", "x/b", "x/y/b", "b/c"], ["xb", "a", "b.c"]),
        ("a/**", ["a/b", "a/x/y"], ["a", "b/a", "ab"]),
        ("**", ["a", "a/b/c", ".hidden"], []),
        ("**/**", ["a", "a/b"], []),
        ("a/**/**/b", ["a/b", "a/x/y/b"], ["b"]),
    ],
)
def test_double_star(pattern: str, yes: list[str], no: list[str]) -> None:
    for path in yes:
        assert m(pattern, path), (pattern, path)
    for path in no:
        assert not m(pattern, path), (pattern, path)


def test_directory_ownership_and_trailing_slash() -> None:
    for pattern in ("src", "src/"):
        assert m(pattern, "src")
        assert m(pattern, "src/a.py")
        assert m(pattern, "src/x/y.py")
        assert not m(pattern, "srcx/a.py")
        assert not m(pattern, "x/src/a.py")
    assert m("s?c", "src/a")
    assert m("src/*", "src/x/y.py")
    assert m("*", "anything/at/all")
    assert Glob("src/").pattern == "src"


def test_case_sensitive() -> None:
    assert not m("src", "SRC/a")
    assert not m("*.py", "a.PY")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("src/", "src"),
        ("./src/*.py", "src/*.py"),
        ("././a", "a"),
        ("  docs/  ", "docs"),
        ("a\\ ", "a\\ "),
        ("**/.gitignore", "**/.gitignore"),
        ("**/.github/**", "**/.github/**"),
        (".gi?", ".gi?"),
        ("a/**", "a/**"),
    ],
)
def test_validate_normalises(raw: str, normal: str) -> None:
    assert validate_glob(raw) == normal


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("./", "whole repository"),
        (".", "whole repository"),
        ("/src", "absolute"),
        ("//src", "absolute"),
        ("../x", "'..'"),
        ("a/../b", "'..'"),
        ("a/..", "'..'"),
        ("a/./b", "'.'"),
        ("a//b", "empty path segment"),
        (".git/**", ".git"),
        (".GIT/x", ".git"),
        ("a/.git", ".git"),
        ("a/.Git/", ".git"),
        ("**/.git", ".git"),
        (".[gG]it", ".git"),
        ("a\0b", "NUL"),
        ("src/[ab", "unterminated"),
        ("[]", "unterminated"),
        ("[!]", "unterminated"),
        ("src\\", "lone backslash"),
        ("a\\/b", "separates directories"),
        ("[a/b]", "separates directories"),
        ("[z-a]", "reversed range"),
        ("[[:alpha:]]", "POSIX"),
    ],
)
def test_validate_rejects(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPlan) as info:
        validate_glob(raw)
    assert repr(raw) in info.value.message
    assert reason in info.value.message
    assert info.value.hint
    with pytest.raises(InvalidPlan):
        Glob(raw)


def test_ownership_api() -> None:
    own = Ownership.parse(["src/", "docs/**", "./src", "*.md"])
    assert own.patterns() == ["src", "docs/**", "*.md"]
    assert [g.pattern for g in own.globs] == own.patterns()
    paths = ["README.md", "src/a.py", "docs", "docs/x.md", "lib/a.md", "srcx"]
    assert own.owned(paths) == ["README.md", "src/a.py", "docs/x.md"]
    assert own.owns("src/deep/er.py")
    assert not own.owns("lib/a.md")
    assert not Ownership.parse([]).owns("a")
    with pytest.raises(InvalidPlan, match="not one string"):
        Ownership.parse("src/**")
    with pytest.raises(InvalidPlan, match="'\\.\\.'"):
        Ownership.parse(["src", "../etc"])


def test_ownerships_overlap() -> None:
    a = Ownership.parse(["docs/**", "src/new_*.py"])
    b = Ownership.parse(["tests/**", "src/*_test.py"])
    found = ownerships_overlap(a, b)
    assert found is not None
    glob_a, glob_b, example = found
    assert (glob_a, glob_b) == ("src/new_*.py", "src/*_test.py")
    assert a.owns(example)
    assert b.owns(example)
    assert ownerships_overlap(a, Ownership.parse(["tests/**", "lib"])) is None


# --------------------------------------------------------------------------- overlap examples


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("src/new_*.py", "src/new_*.py"),
        ("src/new_*.py", "src/*_test.py"),
        ("src", "src/a/*.py"),
        ("src/", "src/**"),
        ("**", "deep/down/x.txt"),
        ("**/*.py", "src/*"),
        ("a/**/b", "a/*/*/b"),
        ("*", "x/y"),
        ("a/**", "a/b"),
        ("[a-c]*", "b?d"),
        ("\\*", "?"),
        ("**/.gitignore", "**/.g*"),
    ],
)
def test_overlapping(a: str, b: str) -> None:
    example = globs_overlap(a, b)
    assert example is not None
    assert m(a, example)
    assert m(b, example)
    assert path_problem(example) == ""
    assert globs_overlap(b, a) is not None


def test_overlap_examples_are_readable() -> None:
    assert globs_overlap("src/new_*.py", "src/*_test.py") == "src/new_test.py"
    assert globs_overlap("src/new_*.py", "src/new_*.py") == "src/new_x.py"
    assert globs_overlap("src", "src/a/*.py") == "src/a/x.py"
    assert globs_overlap("**", "**") == "x"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("docs/**", "src/**"),
        ("*.py", "src/*.py"),
        ("*.py", "*.md"),
        ("a/**", "b"),
        ("src/[ab]*", "src/[!ab]*"),
        ("a?", "a"),
        ("a/?/b", "a/bc"),
        ("x", "xy"),
        ("\\*", "a"),
        (".?", "?."),  # only '..' would match both, and it is never a path
        (".?it", "?[gG]it"),  # only '.git' in some case would match both
    ],
)
def test_disjoint(a: str, b: str) -> None:
    assert globs_overlap(a, b) is None
    assert globs_overlap(b, a) is None


def test_overlap_validates() -> None:
    with pytest.raises(InvalidPlan):
        globs_overlap("src", "/abs")


# --------------------------------------------------------------------------- properties

PIECES = ["a", "b", ".", "*", "?", "[ab]", "[!a]", "\\*"]
Segment = list[str]  # pieces, or ["**"] for a whole-segment double star

segments = st.one_of(
    st.just(["**"]),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=4),
)
glob_specs = st.lists(segments, min_size=1, max_size=4)
NAMES = ["a", "b", "aa", "ab", "ba", "bb", "aba", ".a", "a.", ".b.", "*", "a*", "*b", "...", "a.b"]
paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=4).map("/".join)


def render(spec: list[Segment]) -> str:
    return "/".join("".join(seg) for seg in spec)


def valid_spec(spec: list[Segment]) -> str:
    pattern = render(spec)
    try:
        validate_glob(pattern)
    except InvalidPlan:
        assume(False)
    return pattern


def ref_name(pieces: list[str], name: str) -> bool:
    if not pieces:
        return name == ""
    piece, rest = pieces[0], pieces[1:]
    if piece == "*":
        return any(ref_name(rest, name[i:]) for i in range(len(name) + 1))
    if not name:
        return False
    head, tail = name[0], name[1:]
    if piece == "?":
        ok = True
    elif piece == "[ab]":
        ok = head in "ab"
    elif piece == "[!a]":
        ok = head != "a"
    elif piece == "\\*":
        ok = head == "*"
    else:
        ok = head == piece
    return ok and ref_name(rest, tail)


def ref_full(spec: list[Segment], parts: list[str]) -> bool:
    if not spec:
        return not parts
    first, rest = spec[0], spec[1:]
    if "".join(first) == "**":
        if not rest:
            return len(parts) >= 1
        return any(ref_full(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and ref_name(first, parts[0]) and ref_full(rest, parts[1:])


def ref_match(spec: list[Segment], path: str) -> bool:
    while len(spec) > 1 and spec[0] == ["."]:  # a leading './' is dropped
        spec = spec[1:]
    parts = path.split("/")
    return any(ref_full(spec, parts[:k]) for k in range(1, len(parts) + 1))


@settings(max_examples=300, deadline=None)
@given(st.lists(glob_specs, min_size=1, max_size=3), st.lists(paths, min_size=1, max_size=20))
def test_owned_lists_exactly_the_owned_paths(specs: list[list[Segment]],
                                             some_paths: list[str]) -> None:
    ownership = Ownership.parse([valid_spec(spec) for spec in specs])
    expected = [p for p in some_paths if any(ref_match(spec, p) for spec in specs)]
    assert ownership.owned(some_paths) == expected


@settings(max_examples=300, deadline=None)
@given(glob_specs, st.lists(paths, min_size=1, max_size=10))
def test_matches_agrees_with_reference(spec: list[Segment], some_paths: list[str]) -> None:
    glob = Glob(valid_spec(spec))
    for path in some_paths:
        assert glob.matches(path) == ref_match(spec, path), (glob.pattern, path)


@settings(max_examples=300, deadline=None)
@given(glob_specs, glob_specs, st.lists(paths, min_size=1, max_size=20))
def test_overlap_is_exact(spec_a: list[Segment], spec_b: list[Segment], some: list[str]) -> None:
    a, b = Glob(valid_spec(spec_a)), Glob(valid_spec(spec_b))
    example = globs_overlap(a.pattern, b.pattern)
    if example is not None:
        assert path_problem(example) == ""
        assert a.matches(example), (a.pattern, b.pattern, example)
        assert b.matches(example), (a.pattern, b.pattern, example)
    for path in some:
        if a.matches(path) and b.matches(path):
            assert example is not None, (a.pattern, b.pattern, path)


SMALL_GLOBS = [
    "a", "b", "*", "?", "a*", "*a", "?a", "[ab]", "[!a]", "\\*", ".*", "*.a", "a/b", "a/*",
    "*/a", "**/a", "a/**", "a/**/b", "**/*a", "*/*", "a?/b", "??", "[!a]*/?",
]  # fmt: skip
SMALL_PATHS = [
    "/".join(parts)
    for n in (1, 2, 3)
    for parts in itertools.product(["a", "b", "*", ".a", "aa", "ab", "ba", "a*", "..."], repeat=n)
]


def test_overlap_exhaustive_on_small_universe() -> None:
    globs = [Glob(p) for p in SMALL_GLOBS]
    matched = {g.pattern: {p for p in SMALL_PATHS if g.matches(p)} for g in globs}
    for a, b in itertools.combinations_with_replacement(globs, 2):
        example = globs_overlap(a.pattern, b.pattern)
        if matched[a.pattern] & matched[b.pattern]:
            assert example is not None, (a.pattern, b.pattern)
        if example is not None:
            assert a.matches(example)
            assert b.matches(example)
            assert path_problem(example) == ""
