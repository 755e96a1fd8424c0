"""Human renderings shared by several commands (the JSON side is `output.emit`)."""

from __future__ import annotations

from typing import Any

from hf_fanout.paths import shown_path, shown_text


def print_opened(results: list[Any]) -> None:
    for r in results:
        where = f" ({r.target})" if r.target else ""
        if r.action == "printed":
            print(f"# {r.tab}\n{r.command}")
        elif r.action == "would-open":
            print(f"{r.tab}: would run: {r.command}")
        elif r.action == "skipped":
            print(f"{r.tab}: not opened: {r.hint}")
        else:
            print(f"{r.tab}: {'tab is alive' if r.action == 'alive' else 'opened'} "
                  f"with {r.launcher}{where}")
    hints = {r.hint for r in results if r.hint and r.action in ("opened", "alive")}
    for hint in sorted(hints):
        print(f"  {hint}")


def print_split_notes(parts: list[Any], tabs: list[Any]) -> None:
    """What `hf split` adds to its output: environment warnings, blocked parts, tabs."""
    for part in parts:
        for warning in part.extra.get("environment", {}).get("warnings", []):
            print(f"warning: {part.name}: {warning}")
        if part.state == "blocked" and part.reason:
            print(f"{part.name} is blocked: {shown_text(part.reason)}")
    if tabs:
        print_opened(tabs)


def page(text: str, pager: str) -> None:
    """`text` through the user's pager (git's: `less` with FRX unless LESS says
    otherwise), as `git diff` does; printed when there is none."""
    import os
    import subprocess

    if not pager or pager == "cat":
        print(text, end="")
        return
    env = {**os.environ, "LESS": os.environ.get("LESS", "FRX"),
           "LV": os.environ.get("LV", "-c")}
    try:
        subprocess.run(["sh", "-c", pager], input=text.encode("utf-8", "surrogateescape"),
                       env=env, check=False)
    except OSError:
        print(text, end="")


def diff_text(result: Any) -> str:
    """`hf diff` for people: per part its owned patch, then what the join refuses."""
    lines: list[str] = []
    for p in result.parts:
        if p.note:
            lines.append(f"# part {p.part}: {p.note}")
            continue
        lines.append(f"# part {p.part}: {len(p.owned)} owned change(s) the join brings")
        if p.text:
            lines.append(p.text.rstrip("\n"))
        if p.outside:
            lines.append(f"# part {p.part}: {len(p.outside)} change(s) outside its "
                         "ownership: the join refuses them")
            lines += [f"#   {shown_path(o['path'])}" + (f" (owned by part {o['owner']})"
                                           if o["owner"] else " (owned by no part)")
                      for o in p.outside]
    return "\n".join(lines) + "\n"
