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
from hf_fanout.paths import shown_path, shown_text

# (header, the least width it needs, dropped in this order when there is no room)
COLUMNS = [("part", 8, 0), ("state", 12, 0), ("agent", 7, 4), ("changed", 7, 2),
           ("owned", 5, 3), ("outside", 7, 1), ("last activity", 13, 5), ("branch", 14, 6)]
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
    state = Text(" ".join(filter(None, (part.state, since))),
                 style=STATE_STYLE.get(part.state, ""))
    if part.behind:  # main moved on since the part's base (`hf sync` brings it)
        state.append(f" main +{part.behind}", style="cyan")
    return {"part": part.name, "state": state,
            "agent": Text(shown_text(str(agent))), "changed": str(part.changed),
            "owned": "" if part.owned is None else str(part.owned), "outside": outside,
            "last activity": f"{timefmt.ago(part.last_activity, now)} ago",
            "branch": part.branch}


def render(batches: list[Any], width: int, now: float | None = None,
           selected: tuple[str, str] | None = None, message: str = "") -> Any:
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
            table.add_row(*(row[name] for name in shown),
                          style="reverse" if selected == (b.id, p.name) else None)
        blocks.append(table)
        blocks.append(Text(b.summary()))
        for p in b.parts:
            if p.outside:
                blocks.append(Text(f"  {p.name}: outside its ownership: "
                                   f"{', '.join(shown_path(x) for x in p.outside_paths)}",
                                   style="red"))
    if message:
        blocks.append(Text(message, style="bold"))
    blocks.append(Text("↑↓ choose · Enter its tmux window · d its diff · j join (all done) · "
                       "q quit", style="dim"))
    return Group(*blocks)


class Actions:
    """What the board's keys do, given the chosen part: the CLI passes the library
    functions in, so the board stays drawing and keys."""

    def __init__(self, focus: Callable[[str, str], str], diff: Callable[[str, str], None],
                 join: Callable[[str], str]) -> None:
        self.focus, self.diff, self.join = focus, diff, join


def watch(load: Callable[[], list[Any]], actions: Actions | None = None, *,
          interval: float = 2.0) -> None:
    """Redraw the board while it changes, until `q` or Ctrl-C. It runs the same
    status a plain `hf status` does every `interval` seconds and draws only when
    what it shows changed (or every 30 s, for the relative times)."""
    from rich.console import Console
    from rich.live import Live

    console = Console()
    keys = _Keys()
    last: Any = None
    drawn = 0.0
    chosen = 0
    message = ""
    with keys:
        live = Live(console=console, screen=True, auto_refresh=False)
        live.start()
        try:
            batches = load()
            while True:
                rows = [(b.id, p.name) for b in batches for p in b.parts]
                chosen = min(chosen, max(len(rows) - 1, 0))
                selected = rows[chosen] if rows else None
                seen = ([b.to_data() for b in batches], selected, message)
                if seen != last or time.monotonic() - drawn > 30:
                    live.update(render(batches, console.width, selected=selected,
                                       message=message), refresh=True)
                    last, drawn = seen, time.monotonic()
                key = keys.read(interval)
                if key is None:
                    batches = load()
                    continue
                if key in ("q", "Q"):
                    return
                if key == "up":
                    chosen = max(chosen - 1, 0)
                elif key == "down":
                    chosen = min(chosen + 1, max(len(rows) - 1, 0))
                elif actions is not None and selected is not None:
                    if key == "enter":
                        message = actions.focus(*selected)
                    elif key == "d":
                        live.stop()
                        actions.diff(*selected)
                        live.start()
                        last = None
                    elif key == "j":
                        message = actions.join(selected[0])
                        batches = load()
        finally:
            live.stop()


_SEQUENCES = (("\x1b[A", "up"), ("\x1bOA", "up"), ("\x1b[B", "down"), ("\x1bOB", "down"),
              ("\r", "enter"), ("\n", "enter"))


class _Keys:
    """The terminal in cbreak mode while the board runs (keys without Enter)."""

    def __init__(self) -> None:
        self.tty = sys.stdin.isatty()
        self.saved: Any = None
        self.pending = ""

    def __enter__(self) -> _Keys:
        if self.tty:
            import termios
            import tty

            self.saved = termios.tcgetattr(sys.stdin)
            tty.setcbreak(sys.stdin.fileno())
        return self

    def read(self, timeout: float) -> str | None:
        """The next key within `timeout` seconds ("up", "down", "enter", or the
        character); None when none came."""
        import os
        import select

        if not self.pending:
            if not self.tty:
                time.sleep(timeout)
                return None
            ready, _, _ = select.select([sys.stdin], [], [], timeout)
            if not ready:
                return None
            self.pending = os.read(sys.stdin.fileno(), 64).decode("utf-8", "replace")
        for sequence, key in _SEQUENCES:  # keys typed quickly arrive in one read
            if self.pending.startswith(sequence):
                self.pending = self.pending[len(sequence):]
                return key
        key, self.pending = self.pending[:1], self.pending[1:]
        return key

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, self.saved)
