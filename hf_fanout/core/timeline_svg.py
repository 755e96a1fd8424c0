"""A batch's timeline as an SVG picture: a time axis and one bar per part, each
bar a group (`<g class="bar" data-part="NAME">`) of one rectangle per span,
coloured by state. Written by hand (a few elements) rather than through a
plotting library. Pure: text out."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from hf_fanout import timefmt
from hf_fanout.core.timeline import SPAN_STATES, BatchTime

COLOURS = {"running": "#2e7d32", "idle": "#9e9e9e", "waiting": "#f9a825",
           "blocked": "#c62828", "done": "#90caf9"}
LABEL = 140  # the width of the part names' column
WIDTH = 640  # the time axis
ROW = 28
TICKS = 5


def svg(batch: BatchTime) -> str:
    wall = batch.wall or 1.0
    top = 40
    height = top + ROW * len(batch.parts) + 50
    total = LABEL + WIDTH + 20

    def x(t: float) -> float:
        return LABEL + (t - batch.start) / wall * WIDTH

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{height}" '
           f'viewBox="0 0 {total} {height}" font-family="sans-serif" font-size="12">',
           f"<title>{escape(f'hf batch {batch.batch}: timeline')}</title>",
           f'<text x="8" y="20" font-size="14">{escape(_heading(batch))}</text>']
    out.append('<g class="axis">')
    axis_y = top + ROW * len(batch.parts) + 4
    out.append(f'<line x1="{LABEL}" y1="{axis_y}" x2="{LABEL + WIDTH}" y2="{axis_y}" '
               'stroke="#444"/>')
    for i in range(TICKS + 1):
        t = batch.start + wall * i / TICKS
        out.append(f'<text x="{x(t):.1f}" y="{axis_y + 16}" text-anchor="middle">'
                   f"{escape(timefmt.span(t - batch.start))}</text>")
    out.append("</g>")
    for row, part in enumerate(batch.parts):
        y = top + row * ROW
        summary = (f"{part.name}: {part.state}, active {timefmt.span(part.active)}, idle "
                   f"{timefmt.span(part.seconds('idle'))}, waiting "
                   f"{timefmt.span(part.seconds('waiting'))}")
        out.append(f'<g class="bar" data-part={quoteattr(part.name)}>')
        out.append(f"<title>{escape(summary)}</title>")
        out.append(f'<text x="8" y="{y + ROW * 0.6:.1f}">{escape(part.name)}</text>')
        for span in part.spans:
            out.append(f'<rect class="span {span.state}" data-state="{span.state}" '
                       f'x="{x(span.start):.1f}" y="{y + 4}" '
                       f'width="{max(0.5, x(span.end) - x(span.start)):.1f}" '
                       f'height="{ROW - 8}" fill="{COLOURS[span.state]}"/>')
        out.append("</g>")
    out.append('<g class="legend">')
    for i, state in enumerate(SPAN_STATES):
        lx = LABEL + i * 110
        out.append(f'<rect x="{lx}" y="{height - 18}" width="12" height="12" '
                   f'fill="{COLOURS[state]}"/><text x="{lx + 16}" y="{height - 8}">'
                   f"{state}</text>")
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def _heading(batch: BatchTime) -> str:
    speedup = "-" if batch.speedup is None else f"{batch.speedup:.2f}x"
    return (f"batch {batch.batch}: wall {timefmt.span(batch.wall)}, serial "
            f"{timefmt.span(batch.serial)}, speedup {speedup}")
