"""`hf report` (a batch's time, speedup, calibration, timeline, state summary)
and `hf note --decision` (a part's decision, for the state summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hf_fanout.cli.options import DryRun, Json, RepoOpt, batch_names, command, open_ws
from hf_fanout.cli.output import emit, on_terminal, table

# what each state looks like in the timeline: on a terminal (rich style), in a pipe
STYLES = {"running": "green", "idle": "grey50", "waiting": "yellow", "blocked": "red",
          "done": "blue"}
CHARS = {"running": "=", "idle": ".", "waiting": "?", "blocked": "x", "done": "#", None: " "}
BAR_WIDTH = 50


@command(epilog="Example: hf report b1   |   hf report b1 --svg b1.svg   |   "
             "hf report b1 --state > STATE.md   |   hf report --history")
def report(
    batch: Annotated[str | None, typer.Argument(
        help="The batch (optional with --history).", autocompletion=batch_names)] = None,
    svg: Annotated[Path | None, typer.Option(
        "--svg", help="Also save the timeline as an SVG picture in FILE.")] = None,
    state: Annotated[bool, typer.Option(
        "--state", help="Print the handoff-ready state summary in Markdown instead: "
        "position, velocity, decisions, blockers, how to resume each part.")] = False,
    history: Annotated[bool, typer.Option(
        "--history", help="Show the estimates against the actual times of the "
        "repository's past batches, batch by batch.")] = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Report a batch: wall and serial time, speedup, efficiency, estimates, a timeline."""
    from hf_fanout.orchestrator.report import report as make_report

    found = make_report(open_ws(repo), batch, svg=svg, state=state, history=history)

    def human() -> None:
        if found.state is not None:
            print(found.state, end="")
            return
        if found.time is not None:
            _print_figures(found.time)
            _print_timeline(found.time)
            if found.svg:
                print(f"timeline saved to {found.svg}")
        if history:
            _print_history(found)
        elif found.calibration:
            print(f"calibration: {found.calibration}")

    emit(found.to_data(), human)


def _span(seconds: float | None) -> str:
    from hf_fanout import timefmt

    return "-" if seconds is None else timefmt.span(seconds)


def _print_figures(t: Any) -> None:
    def number(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    print(f"batch {t.batch}: wall {_span(t.wall)}{'' if t.ended else ' so far'}, serial "
          f"{_span(t.serial)}, speedup {number(t.speedup, '.2f')}x, efficiency "
          f"{number(t.efficiency, '.0%')}, serial fraction {number(t.serial_fraction, '.2f')}, "
          f"join {_span(t.join_seconds)}")
    rows = []
    for p in t.parts:
        estimate = f"{p.estimate_minutes:g} min" if p.estimate_minutes else "-"
        rows.append([p.name, p.state, _span(p.active), _span(p.seconds("idle")),
                     _span(p.seconds("waiting")), _span(p.seconds("blocked")), estimate,
                     "-" if p.ratio is None else f"{p.ratio:.2f}x"])
    table(["part", "state", "active", "idle", "waiting", "blocked", "estimate", "actual"],
          rows)


def _print_timeline(t: Any) -> None:
    from hf_fanout.core.timeline import SPAN_STATES, columns

    bars = columns(t, BAR_WIDTH)
    width = max((len(name) for name, _ in bars), default=4)
    if on_terminal():
        from rich.console import Console
        from rich.text import Text

        console = Console()
        for name, cells in bars:
            line = Text(f"{name:<{width}}  ")
            for cell in cells:
                line.append("█" if cell else " ", style=STYLES.get(cell or "", ""))
            console.print(line)
        legend = Text(" " * (width + 2))
        for state in SPAN_STATES:
            legend.append("█ ", style=STYLES[state])
            legend.append(f"{state}  ")
        console.print(legend)
    else:
        for name, cells in bars:
            print(f"{name:<{width}} |{''.join(CHARS[c] for c in cells)}|")
        print(" " * width + "  " + "  ".join(f"{CHARS[s]} {s}" for s in SPAN_STATES))
    print(f"{'':<{width}}  0{_span(t.wall):>{BAR_WIDTH - 1}}")


def _print_history(found: Any) -> None:
    from hf_fanout import timefmt
    from hf_fanout.core.calibration import trend

    if not found.history:
        print("no past batch had estimates for parts that are done (hf split --estimate)")
        return
    table(["batch", "ended", "parts", "estimated", "actual", "actual/estimate"],
          [[c.batch, timefmt.iso(c.ended), str(c.parts), _span(c.estimated),
            _span(c.actual), f"{c.ratio:.2f}x"] for c in found.history])
    print(f"{found.calibration}; trend: {trend(found.history)}")


@command(epilog="Example: hf note --decision 'keep the old API; a flag switches to the new'")
def note(
    decision: Annotated[str, typer.Option(
        "--decision", help="The decision this part took, for whoever carries the batch "
        "on (`hf report --state`).")],
    dry_run: DryRun = False,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Record a decision of the part this runs in (its worktree, or its agent)."""
    from hf_fanout.orchestrator.notes import note_decision

    noted = note_decision(open_ws(repo), decision, dry_run=dry_run)
    where = f"{noted.part.batch}/{noted.part.name}"
    emit(noted.to_data(), f"would record for {where}: {noted.text}" if dry_run else
         f"{where}: decision recorded" + (" (waiting in the part's inbox)" if noted.waiting
                                           else ""))
