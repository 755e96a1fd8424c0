"""The live board's drawing (`hf status --watch`, `hf board`): a known batch at 80
and 200 columns, through rich's console capture."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

from conftest import write


def draw(split3, width: int) -> str:
    from rich.console import Console

    from hf_fanout.cli.board import render
    from hf_fanout.core.workspace import Workspace
    from hf_fanout.orchestrator.status import all_status

    ws = Workspace.open(split3["repo"])
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(render(all_status(ws, "b1"), width))
    return console.export_text()


def known_batch(split3, hf) -> None:
    """api waiting (its agent's hook said so) with one change outside its ownership,
    docs done, ui running."""
    repo = split3["repo"]
    write(split3["api"], {"src/api/new.py": "x\n", "src/ui/page.html": "<p>mine?</p>\n"})
    env = {**os.environ, "HF_REPO": str(repo / ".git")}
    r = subprocess.run([sys.executable, "-m", "hf_fanout", "agent-event", "notification",
                        "--part", "b1/api"], input=json.dumps(
                            {"hook_event_name": "Notification",
                             "notification_type": "permission_prompt"}),
                       text=True, capture_output=True, cwd=split3["api"],
                       env=env, check=False)
    assert r.returncode == 0, r.stderr
    assert hf("done", "b1/docs", cwd=repo).code == 0


def rows(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        words = re.sub(r"[│┃|]", " ", line).split()
        if words and words[0] in ("api", "ui", "docs"):
            found[words[0]] = " ".join(words[1:])
    return found


def test_the_board_at_200_columns_shows_every_column(split3, hf):
    known_batch(split3, hf)
    text = draw(split3, 200)
    shown = rows(text)
    assert set(shown) == {"api", "ui", "docs"}
    assert re.match(r"waiting \d+s claude 2 1 \d+s ago hf/b1/api", shown["api"]), shown["api"]
    assert re.match(r"done \d+s 0 0 \d+s ago hf/b1/docs", shown["docs"]), shown["docs"]
    assert re.match(r"running \d+[sm] 0 0 ", shown["ui"]), shown["ui"]
    assert "1/3 done · 1 running · 1 waiting · next: part api waits for you" in text
    assert "api: outside its ownership: src/ui/page.html" in text
    assert max(len(line) for line in text.splitlines()) <= 200


def test_the_board_at_80_columns_drops_columns_not_rows(split3, hf):
    known_batch(split3, hf)
    text = draw(split3, 80)
    shown = rows(text)
    assert set(shown) == {"api", "ui", "docs"}
    assert "hf/b1/api" not in text  # the branch column went first
    assert re.match(r"waiting \d+s claude 2 1 \d+s ago$", shown["api"]), shown["api"]
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(text.split())
    assert "1/3 done · 1 running · 1 waiting · next: part api waits for you" in flat
    narrow = rows(draw(split3, 40))
    assert set(narrow) == {"api", "ui", "docs"}
    assert narrow["api"].startswith("waiting")
