"""Repository-relative paths, validated once at the border.

Inside hf a path in a repository is a `RepoPath`: relative, POSIX, no `..`,
no `.git` component (in any case), no NUL. Git hands us bytes; they are
decoded with the filesystem encoding (surrogateescape), so no name is lost.
"""

from __future__ import annotations

import os
from typing import NewType

from hf_fanout.errors import InvalidPath

RepoPath = NewType("RepoPath", str)


def repo_path(raw: str | bytes) -> RepoPath:
    """Validate `raw` as a path inside a repository, or raise InvalidPath."""
    text = os.fsdecode(raw) if isinstance(raw, bytes) else raw
    problem = path_problem(text)
    if problem:
        raise InvalidPath(
            f"bad repository path {text!r}: {problem}",
            "paths are relative to the repository root, e.g. src/app.py",
        )
    return RepoPath(text)


def path_problem(text: str) -> str:
    """Why `text` is not a valid repository path ('' when it is)."""
    if not text:
        return "empty"
    if "\0" in text:
        return "contains NUL"
    if text.startswith("/"):
        return "absolute"
    parts = text.split("/")
    for part in parts:
        if part == "..":
            return "contains '..'"
        if part.lower() == ".git":
            return "inside .git"
    if any(part in ("", ".") for part in parts):
        return "empty or '.' component"
    return ""


def from_git(raw: bytes) -> RepoPath:
    """A path as git printed it (trusted: git never prints `..` or `.git`)."""
    return RepoPath(os.fsdecode(raw))


# The bytes git writes as a C escape in a quoted name (quote.c); other control bytes,
# DEL and every byte from 0x80 are written in octal.
_C_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v",
              0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}


def shown_path(path: str) -> str:
    r"""A repository path as hf shows it (in a handoff file, in a message). As it is
    when it is UTF-8 without a control character, `"` or `\` (as git shows it
    with core.quotePath off); otherwise as `git ls-files` quotes it by default:
    in double quotes, with C escapes and every byte from 0x80 in octal, e.g.
    `"n/lat\351"` for a name that is not UTF-8. So any name reads back as itself,
    on one line, and the text stays UTF-8."""
    if not any(c < " " or c in '"\\\x7f' or "\udc80" <= c <= "\udcff" for c in path):
        return path
    return '"' + "".join(_quoted_byte(b) for b in os.fsencode(path)) + '"'


def shown_text(text: str, *, one_line: bool = True) -> str:
    r"""Free text hf did not write (an agent's note or blocked reason, a handoff's
    task, an audit line's values) as hf prints it for a person: every control
    character (ESC, CR, BEL, the C1 range, DEL) and every byte that is not UTF-8
    written as a visible escape (`\033`, `\r`), so the text cannot move the
    cursor, erase a line or recolour the terminal, and reads as it was written.
    With `one_line`, newlines and tabs too (`\n`, `\t`): it stays on its line."""
    kept = "" if one_line else "\n\t"
    if not any((c < " " and c not in kept) or "\x7f" <= c <= "\x9f"
               or "\udc80" <= c <= "\udcff" for c in text):
        return text
    return "".join(_visible(c) if ((c < " " and c not in kept) or "\x7f" <= c <= "\x9f"
                                   or "\udc80" <= c <= "\udcff") else c for c in text)


def _visible(char: str) -> str:
    """One control character (or byte that is not UTF-8) as `shown_text` writes it."""
    if "\udc80" <= char <= "\udcff":
        return f"\\{ord(char) - 0xDC00:03o}"
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(char)
    return named or f"\\{ord(char):03o}"


def shell_word(path: str) -> str:
    r"""A path as one word of a shell command hf prints as a hint: `shlex.quote`'s,
    unless the name holds a control character or a byte that is not UTF-8; then
    bash's and zsh's `$'...'`, each such byte in octal (`$'README\033[2K'`), so
    the hint shows on one line, moves no cursor, and runs as printed."""
    import shlex

    if not any(c < " " or c == "\x7f" or "\udc80" <= c <= "\udcff" for c in path):
        return shlex.quote(path)
    return "$'" + "".join(_ansi_c(c) for c in path) + "'"


def _ansi_c(char: str) -> str:
    """One character of a name inside `$'...'`."""
    if "\udc80" <= char <= "\udcff":  # a byte that is not UTF-8 (surrogateescape)
        return f"\\{ord(char) - 0xDC00:03o}"
    if char < " " or char == "\x7f":
        return f"\\{ord(char):03o}"
    return {"'": "\\'", "\\": "\\\\"}.get(char, char)


def _quoted_byte(byte: int) -> str:
    """One byte of a name inside git's double quotes."""
    if byte in _C_ESCAPES:
        return _C_ESCAPES[byte]
    return f"\\{byte:03o}" if byte < 0x20 or byte >= 0x7F else chr(byte)
