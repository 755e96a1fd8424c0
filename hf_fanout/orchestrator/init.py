"""`hf init`: a commented `.hf.toml` for this repository, from what is there:
gitignored environment files (`.env*`) to copy into each new worktree,
lockfiles that imply a setup command, the launcher available."""

from __future__ import annotations

from typing import Any

from hf_fanout import atomic
from hf_fanout.config import REPO_FILE
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError

# lockfile -> the command that installs from it, in a new worktree
SETUP_FOR = (("uv.lock", "uv sync"), ("poetry.lock", "poetry install"),
             ("package-lock.json", "npm ci"), ("pnpm-lock.yaml", "pnpm install --frozen-lockfile"),
             ("yarn.lock", "yarn install --frozen-lockfile"), ("Cargo.lock", "cargo fetch"),
             ("Gemfile.lock", "bundle install"), ("go.sum", "go mod download"))
LAUNCHERS = ("tmux", "code", "cursor")


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"'
                           for i in items) + "]"


def init_config(ws: Workspace, *, force: bool, dry_run: bool) -> dict[str, Any]:
    from hf_fanout.tabs.launchers import available_names

    root = ws.main.path
    target = root / REPO_FILE
    if target.exists() and not force and not dry_run:
        raise HfError(f"{target} exists already", "read it, or pass --force to replace it")
    envs = sorted(p.name for p in root.glob(".env*") if p.is_file())
    copy = [p for p in envs if p not in ws.main.not_ignored(envs)]
    setup = [cmd for lock, cmd in SETUP_FOR if (root / lock).is_file()]
    found = [n for n in available_names(ws.settings) if n in LAUNCHERS]
    launcher = found[0] if found else "print"
    lines = ["# hf settings for this repository (written by `hf init`; see docs/tabs.md).", ""]
    lines.append("# gitignored environment files copied into each new worktree")
    lines.append(f"copy = {_toml_list(copy)}" if copy else "# copy = [\".env\"]")
    lines.append("")
    lines.append("# run in each new worktree (these run code: `hf trust` after reading them)")
    lines.append(f"setup = {_toml_list(setup)}" if setup else "# setup = [\"npm ci\"]")
    lines.append("")
    lines.append(f"# where a part's tab opens (available here: {', '.join(found) or 'none'})")
    lines.append(f'launcher = "{launcher}"')
    text = "\n".join(lines) + "\n"
    chose = {"copy": copy, "setup": setup, "launcher": launcher}
    replaced = target.exists()
    if not dry_run:
        atomic.atomic_write(target, text.encode())
        ws.store.audit("init", file=str(target), **chose)
    return {"file": str(target), "text": text, "chose": chose, "dry_run": dry_run,
            "replaced": replaced}
