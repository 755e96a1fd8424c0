"""The live board (`hf status --watch`, `hf board`): one row per part, redrawn when
what it shows changes.

`render` is pure (batches in, a rich renderable out) so it can be drawn at any
width: a narrow terminal drops columns (the least needed first), never rows.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from hf_fanout import timefmt

# (header, the least width it needs, dropped in this order when there is no room)
COLUMNS = [("part", 8, 0), ("state", 12, 0), ("agent", 7, 3), ("changed", 7, 2),
           ("outside", 7, 1), ("last activity", 13, 4), ("branch", 14, 5)]
STATE_STYLE = {"waiting": "bold yellow", "working": "green", "done": "bold green",
               "blocked": "bold red", "orphan": "bold red", "missing": "red", "idle": "yellow",
               "joined": "dim", "dropped": "dim"}


def fitting(width: int) -> list[str]:
    """The columns that fit in `width` (part and state always)."""
    chosen = list(COLUMNS)
    while sum(w + 3 for _, w, _ in chosen) > width and any(d for _, _, d in chosen):
        drop = max(chosen, key=lambda c: c[2])
        chosen.remove(drop)
    return [name for name, _, _ in chosen]


def cells(part: Any, now: float) -> dict[str, Any]:
    from rich.text import Text

    since = timefmt.ago(part.since, now)
    outside = Text(str(part.outside), style="bold red" if part.outside else "")
    agent = (part.agent or {}).get("agent") or ""
    return {"part": part.name,
            "state": Text(" ".join(filter(None, (part.state, since))),
                          style=STATE_STYLE.get(part.state, "")),
            "agent": agent, "changed": str(part.changed), "outside": outside,
            "last activity": f"{timefmt.ago(part.last_activity, now)} ago",
            "branch": part.branch}


def render(batches: list[Any], width: int, now: float | None = None) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    now = time.time() if now is None else now
    shown = fitting(width)
    blocks: list[Any] = []
    if not batches:
        blocks.append(Text("no batches in this repository (start one with `hf split`)"))
    for b in batches:
        if b.error:
            blocks.append(Text(f"batch {b.id}: damaged: {b.error} (see `hf doctor`)",
                               style="red"))
            continue
        table = Table(title=f"batch {b.id} ({b.state}, base {b.base[:12]})",
                      title_justify="left", expand=False, pad_edge=False)
        for name in shown:
            table.add_column(name, no_wrap=True, overflow="ellipsis" if name == "branch"
                             else "fold")
        for p in b.parts:
            row = cells(p, now)
            table.add_row(*(row[name] for name in shown))
        blocks.append(table)
        blocks.append(Text(b.summary()))
        for p in b.parts:
            if p.outside:
                blocks.append(Text(f"  {p.name}: outside its ownership: "
                                   f"{', '.join(p.outside_paths)}", style="red"))
    blocks.append(Text("q quits", style="dim"))
    return Group(*blocks)


def watch(load: Callable[[], list[Any]], *, interval: float = 2.0) -> None:
    """Redraw the board while it changes, until `q` or Ctrl-C. Read-only: it runs
    the same status a plain `hf status` does every `interval` seconds and draws
    only when what it shows changed."""
    import select

    from rich.console import Console
    from rich.live import Live

    console = Console()
    keys = _Keys()
    last: Any = None
    drawn = 0.0
    with keys, Live(console=console, screen=True, auto_refresh=False) as live:
        while True:
            batches = load()
            seen = [b.to_data() for b in batches]
            # what changed, or the relative times once they are a while old
            if seen != last or time.monotonic() - drawn > 30:
                live.update(render(batches, console.width), refresh=True)
                last, drawn = seen, time.monotonic()
            deadline = time.monotonic() + interval
            while time.monotonic() < deadline:
                if keys.tty:
                    ready, _, _ = select.select([sys.stdin], [], [], 0.2)
                    if ready and sys.stdin.read(1) in ("q", "Q"):
                        return
                else:
                    time.sleep(0.2)


class _Keys:
    """The terminal in cbreak mode while the board runs (keys without Enter)."""

    def __init__(self) -> None:
        self.tty = sys.stdin.isatty()
        self.saved: Any = None

    def __enter__(self) -> _Keys:
        if self.tty:
            import termios
            import tty

            self.saved = termios.tcgetattr(sys.stdin)
            tty.setcbreak(sys.stdin.fileno())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, self.saved)
