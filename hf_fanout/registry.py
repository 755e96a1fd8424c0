"""The user's registry of repositories that have hf batches (so one sweep can visit all)."""

from __future__ import annotations

from pathlib import Path

from hf_fanout import atomic, locks
from hf_fanout.config import user_state_dir


def registry_file() -> Path:
    return user_state_dir() / "repos.json"


def registered() -> list[str]:
    data = atomic.read_json(registry_file(), "registry of repositories")
    if data is None:
        return []
    repos = data.get("repos") if isinstance(data, dict) else None
    if not isinstance(repos, list) or not all(isinstance(r, str) for r in repos):
        from hf_fanout.errors import StateCorrupt

        raise StateCorrupt(f"the registry {registry_file()} has no list of repositories",
                           "look at it and fix or remove it; hf leaves it as it is")
    return repos


def common_dirs_file() -> Path:
    """The same list for the guard's sh wrapper, one common dir a line: it sources a
    part's fast file only from `<one of them>/worktrees/NAME` (guard/bin/git)."""
    return user_state_dir() / "guard" / "common-dirs"


def _write(repos: list[str]) -> None:
    atomic.atomic_write_json(registry_file(), {"schema": 1, "repos": sorted(set(repos))})
    lines = "".join(f"{r}\n" for r in sorted(set(repos)) if "\n" not in r)
    common_dirs_file().parent.mkdir(parents=True, exist_ok=True)
    atomic.atomic_write(common_dirs_file(), lines.encode("utf-8", "surrogateescape"))


def register(common_dir: Path) -> None:
    with locks.hold(user_state_dir() / "registry.lock", wait=10, what="registry"):
        repos = registered()
        if str(common_dir) not in repos:
            _write([*repos, str(common_dir)])


def unregister(common_dir: Path) -> None:
    with locks.hold(user_state_dir() / "registry.lock", wait=10, what="registry"):
        repos = registered()
        if str(common_dir) in repos:
            _write([r for r in repos if r != str(common_dir)])
