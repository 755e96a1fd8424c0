"""The user's registry of repositories that have hf batches (so one sweep can visit all)."""

from __future__ import annotations

import json
from pathlib import Path

from hf_fanout import atomic, locks
from hf_fanout.config import user_state_dir


def registry_file() -> Path:
    return user_state_dir() / "repos.json"


def registered() -> list[str]:
    try:
        data = json.loads(registry_file().read_text())
    except (FileNotFoundError, ValueError):
        return []
    repos = data.get("repos", []) if isinstance(data, dict) else []
    return [r for r in repos if isinstance(r, str)]


def _write(repos: list[str]) -> None:
    atomic.atomic_write_json(registry_file(), {"schema": 1, "repos": sorted(set(repos))})


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
