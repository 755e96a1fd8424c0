"""Rendering for people and for machines: the JSON envelope, one-line errors, progress.

Every command prints through here. With `--json` exactly one envelope is
printed on stdout, on success and on failure alike:
    {"hf": 1, "command": ..., "ok": ..., "data": ..., "error": {code, message, hint} | null}
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ENVELOPE_VERSION = 1


@dataclass
class Invocation:
    command: str = ""
    json: bool = False


CURRENT = Invocation()


def start(command: str, json_mode: bool) -> None:
    CURRENT.command = command
    CURRENT.json = json_mode


def envelope(command: str, ok: bool, data: Any, error: dict[str, str] | None) -> dict[str, Any]:
    return {"hf": ENVELOPE_VERSION, "command": command, "ok": ok, "data": data, "error": error}


def emit(data: Any, human: Callable[[], None] | str | None = None) -> None:
    """The command's result: an envelope with --json, else the human rendering."""
    if CURRENT.json:
        _print_json(envelope(CURRENT.command, True, data, None))
    elif callable(human):
        human()
    elif human:
        print(human)


def emit_error(code: str, message: str, hint: str, data: Any = None) -> None:
    if CURRENT.json:
        error = {"code": code, "message": message, "hint": hint}
        _print_json(envelope(CURRENT.command or "hf", False, data, error))
        return
    from hf_fanout.paths import shown_text

    # (a message may quote what an agent wrote: no control character reaches the terminal)
    print(f"hf: error: {shown_text(message, one_line=False)}", file=sys.stderr)
    if hint:
        print(f"hint: {shown_text(hint, one_line=False)}", file=sys.stderr)


def notice(message: str, hint: str) -> None:
    """Something the command found and went on despite (stderr, in --json mode too:
    the envelope on stdout stays the command's own)."""
    from hf_fanout.paths import shown_text

    print(f"hf: note: {shown_text(message, one_line=False)}", file=sys.stderr)
    if hint:
        print(f"hint: {shown_text(hint, one_line=False)}", file=sys.stderr)


def waiting(message: str) -> None:
    """A command is blocked on someone else (a lock): said once on stderr, also in a
    pipe, so a person or an agent knows why nothing happens."""
    print(f"hf: {message}", file=sys.stderr, flush=True)


def error_details(details: Any) -> None:
    """After the one-line error, what a person needs to act: conflict hunks."""
    if not isinstance(details, dict):
        return
    from hf_fanout.paths import shown_path

    for part in details.get("preview", []):
        files = part.get("files", [])
        print(f"part {part.get('part')}: {len(files)} changed file(s)", file=sys.stderr)
        for f in files[:50]:
            print(f"  {f.get('change')}: {shown_path(str(f.get('path')))}", file=sys.stderr)
    for conflict in details.get("conflicts", []):
        print(f"--- {shown_path(str(conflict.get('path')))} ({conflict.get('part')}): "
              f"{conflict.get('reason')}", file=sys.stderr)
        if conflict.get("hunks"):
            print(conflict["hunks"], file=sys.stderr)


def _print_json(obj: Any) -> None:
    """The envelope as JSON that any parser reads: a number that is not finite (an
    odd audit line's `1e400`, `NaN`, which Python's reader takes) is written null,
    never as `Infinity` or `NaN`."""
    try:
        text = json.dumps(obj, indent=None, sort_keys=False, default=str, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(obj), indent=None, sort_keys=False, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _finite(value: Any) -> Any:
    """`value` with every float that is not finite made None (dicts, lists, tuples
    and dataclass-free values; what `default=str` renders is left to it)."""
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def progress(message: str) -> None:
    """Progress on a terminal (stderr); silent in a pipe and in --json mode. One
    write per line: the split's worktrees report from several threads, and print's
    separate write of the newline let two lines run together."""
    if CURRENT.json or not sys.stderr.isatty():
        return
    sys.stderr.write(f"  {message}\n")
    sys.stderr.flush()


def on_terminal() -> bool:
    return sys.stdout.isatty() and not CURRENT.json


def table(headers: list[str], rows: list[list[str]], title: str = "") -> None:
    """A table: rich on a terminal, tab-separated plain text in a pipe."""
    from hf_fanout.paths import shown_text

    # (cells hold text hf did not write, an agent's or a path's: no control
    # character reaches the terminal, and no `[...]` in it is read as rich markup)
    rows = [[shown_text(cell) for cell in row] for row in rows]
    if on_terminal():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        t = Table(title=title or None, show_lines=False)
        for h in headers:
            t.add_column(h)
        for row in rows:
            t.add_row(*(Text(cell) for cell in row))
        Console().print(t)
        return
    if title:
        print(title)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
