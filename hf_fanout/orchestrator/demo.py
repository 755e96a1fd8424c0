"""`hf demo`: the whole life of a batch on a throwaway repository, step by step.

Makes a small repository, splits a task into three parts, runs a scripted
stand-in agent (a real process) in each part's worktree, marks the parts
done from inside their worktrees, and joins them as one commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hf_fanout.worktrees import process as git
from hf_fanout.worktrees.repository import Worktree

Say = Callable[[str], None] | None

_FILES = {
    "README.md": "# shop\n\nA tiny shop.\n",
    "src/api/orders.py": "def list_orders():\n    return []\n",
    "src/api/users.py": "def list_users():\n    return []\n",
    "src/ui/page.html": "<h1>Shop</h1>\n",
    "docs/guide.md": "# Guide\n\nTBD\n",
}

# The stand-in agent: what an AI agent would do in its tab, as a script.
# argv: part name. It edits only what its part owns, then reports done.
AGENT = r"""
import pathlib, subprocess, sys
part = sys.argv[1]
root = pathlib.Path.cwd()
if part == "api":
    (root / "src/api/search.py").write_text("def search(q):\n    return [q]\n")
    p = root / "src/api/orders.py"
    p.write_text(p.read_text() + "\n\ndef find_order(i):\n    return None\n")
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "commit", "-qm", "api: add search"], check=True)
elif part == "ui":
    (root / "src/ui/page.html").write_text("<h1>Shop</h1>\n<input name=q>\n")
    (root / "src/ui/search.js").write_text("export const q = () => 1;\n")
else:
    (root / "docs/guide.md").write_text("# Guide\n\nSearch with the box at the top.\n")
print("edited its files")
"""


def _git(cwd: Path, *args: str) -> str:
    return git.text(list(args), cwd)


def run_demo(directory: Path | None, *, keep: bool, say: Say) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []

    def step(name: str, detail: str) -> None:
        steps.append({"step": name, "detail": detail})
        if say:
            say(f"[{len(steps)}] {name}: {detail}")

    made_tmp = directory is None
    top = Path(tempfile.mkdtemp(prefix="hf-demo-")) if directory is None else directory
    top.mkdir(parents=True, exist_ok=True)
    repo = top / "shop"
    if repo.exists():
        from hf_fanout.errors import BadInput

        raise BadInput(f"{repo} already exists", "pass an empty --dir, or leave it out")
    env = {**os.environ, "HF_DEMO": "1"}
    try:
        repo.mkdir()
        _git(repo, "init", "-q", "-b", "main")
        _git(repo, "config", "user.name", "hf demo")
        _git(repo, "config", "user.email", "demo@example.invalid")
        for rel, text in _FILES.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", "initial shop")
        step("repository", f"made {repo} with {len(_FILES)} files, one commit")

        plan = repo.parent / "plan.toml"
        plan.write_text(
            'batch = "search"\ntask = "Add search to the shop"\n\n'
            '[[part]]\nname = "api"\nowns = ["src/api/**"]\ntask = "search endpoint"\n\n'
            '[[part]]\nname = "ui"\nowns = ["src/ui/**"]\ntask = "search box"\n\n'
            '[[part]]\nname = "docs"\nowns = ["docs/**", "README.md"]\ntask = "document it"\n'
        )
        hf = [sys.executable, "-m", "hf_fanout"]

        def run_hf(*args: str, cwd: Path = repo) -> str:
            proc = subprocess.run([*hf, *args], cwd=cwd, env=env, capture_output=True,
                                  text=True, check=False)
            if proc.returncode != 0:
                from hf_fanout.errors import HfError

                raise HfError(f"demo step `hf {' '.join(args)}` failed: "
                              f"{(proc.stderr or proc.stdout).strip()}",
                              "this is unexpected; please report it")
            return proc.stdout

        run_hf("split", "--plan", str(plan))
        wt_root = repo.parent / "shop.hf" / "search"
        step("split", f"3 parts (api, ui, docs), each with a branch hf/search/<part> and a "
                      f"worktree under {wt_root}")
        for part in ("api", "ui", "docs"):
            worktree = wt_root / part
            proc = subprocess.run([sys.executable, "-c", AGENT, part], cwd=worktree, env=env,
                                  capture_output=True, text=True, check=True)
            run_hf("done", "--note", "stand-in agent finished", cwd=worktree)
            step(f"agent {part}", f"{proc.stdout.strip()} in {worktree}; `hf done` there")
        status = run_hf("status", "search")
        step("status", "\n" + status.rstrip())
        out = run_hf("join", "search")
        step("join", out.strip().splitlines()[-1])
        log = _git(repo, "log", "--stat", "--format=%h %s%n%n%b", "-1")
        step("result", "\n" + log)
        clean = _git(repo, "status", "--porcelain")
        step("main tree", "clean" if not clean else f"not clean:\n{clean}")
    finally:
        _unregister(repo)
        if made_tmp and not keep:
            # the repository and its worktrees (shop.hf/) all live under `top`
            shutil.rmtree(top, ignore_errors=True)
        elif keep:
            step("kept", f"demo repository left at {repo}")
    return steps


def _unregister(repo: Path) -> None:
    """The demo's split registered its repository for the sweep: take it out again, so
    no later sweep reports a vanished temporary repository."""
    import contextlib

    from hf_fanout import registry
    from hf_fanout.errors import HfError

    if not (repo / ".git").is_dir():  # never made: do not find an enclosing repository
        return
    with contextlib.suppress(HfError, OSError):
        registry.unregister(Worktree.discover(repo).repository.common_dir)
