"""Which repository configuration the user trusts to run code.

A repository's `.hf.toml` is written by whoever wrote the repository (or by an
agent in the main tree). The keys that run commands (`setup`, `agent`,
`launcher_command`) and the ones that loosen hf's protection (`sandbox = false`,
a `[guard]` table that switches the guard off or allows a rule) are honoured
only when the user ran `hf trust` on exactly that content: the file's sha256 is
kept per repository in `$XDG_STATE_HOME/hf/trusted.json`, outside every
repository and read-only inside a part's sandbox. Any change to the file makes
it untrusted again. The user's own `config.toml` is always trusted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hf_fanout import atomic, locks

RUNS_CODE = ("setup", "agent", "launcher_command")
VERSION = 1


def store_file(state_dir: Path) -> Path:
    return state_dir / "trusted.json"


def digest(data: bytes) -> str:
    import hashlib  # (here: most commands never check a digest)

    return hashlib.sha256(data).hexdigest()


def needs_trust(values: dict[str, Any]) -> list[str]:
    """The keys of a repository's settings that run code or loosen protection."""
    keys = [k for k in RUNS_CODE if k in values]
    if values.get("sandbox") is False:
        keys.append("sandbox")
    guard = values.get("guard")
    if isinstance(guard, dict) and (guard.get("enabled") is False or guard.get("allow")):
        keys.append("guard")
    return keys


def _read(state_dir: Path) -> dict[str, str]:
    raw = atomic.read_json(store_file(state_dir), "trust list",
                           "remove it; then `hf trust` again in each repository you trust")
    if not isinstance(raw, dict) or not isinstance(raw.get("files"), dict):
        return {}
    return {str(k): str(v) for k, v in raw["files"].items()}


def is_trusted(state_dir: Path, path: Path, data: bytes) -> bool:
    return _read(state_dir).get(os.path.realpath(path)) == digest(data)


def set_trusted(state_dir: Path, path: Path, data: bytes | None) -> None:
    """Trust exactly `data` as the content of `path` (None: trust nothing there)."""
    file = store_file(state_dir)
    file.parent.mkdir(parents=True, exist_ok=True)
    with locks.hold(file.with_suffix(".lock"), wait=10, what="trust list"):
        files = _read(state_dir)
        key = os.path.realpath(path)
        if data is None:
            files.pop(key, None)
        else:
            files[key] = digest(data)
        atomic.atomic_write_json(file, {"version": VERSION, "files": files})
