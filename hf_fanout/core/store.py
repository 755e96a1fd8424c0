"""Where a repository's hf state lives: `<git common dir>/hf/`.

Layout (see docs/protocol.md):
    batches/<batch>/batch.json         Batch record
    batches/<batch>/parts/<part>.json  Part records
    locks/                             commit.lock, state.lock (+ .holder files)
    journal/join.json                  a join in progress
    journal/split-<batch>.json         a split in progress
    scratch/<kind>-<random>/           one command's temporary files (a split's unpacked objects)
    audit.log                          one JSON line per action
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hf_fanout import atomic, locks
from hf_fanout.core import audit
from hf_fanout.core.records import Batch, Part, branch_name, now
from hf_fanout.errors import HfError, NotFound, StateCorrupt

SCRATCH_MAX_AGE = 24 * 3600.0  # seconds


class MissingRecord(StateCorrupt):
    """A part its batch lists whose record is gone: damaged state, as a torn record
    is (`hf status` shows the batch damaged, `hf doctor` reports it), with the way
    on in its hint."""


class Store:
    def __init__(self, common_dir: Path) -> None:
        self.root = common_dir / "hf"

    # --- paths ---
    def batch_dir(self, batch: str) -> Path:
        return self.root / "batches" / batch

    def batch_file(self, batch: str) -> Path:
        return self.batch_dir(batch) / "batch.json"

    def part_file(self, batch: str, part: str) -> Path:
        return self.batch_dir(batch) / "parts" / f"{part}.json"

    @property
    def journal_file(self) -> Path:
        return self.root / "journal" / "join.json"

    def index_claim_file(self, lock: Path) -> Path:
        """Where the identity of a git index lock hf holds is recorded while it
        holds it (core/maintree.py): one file per lock."""
        import hashlib

        key = hashlib.sha256(str(lock).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return self.root / "journal" / f"index-lock-{key}.json"

    def index_claims(self) -> list[Path]:
        """The recorded index locks (`index_claim_file`), oldest name first."""
        try:
            return sorted(self.root.joinpath("journal").glob("index-lock-*.json"))
        except OSError:
            return []

    @property
    def trash_root(self) -> Path:
        """Where the join moves the main-tree files it replaces, until they are deleted."""
        return self.root / "trash"

    def scratch_dir(self, kind: str) -> Path:
        """A new private directory under `scratch/` for one command's temporary
        files, on the repository's file system; the caller removes it. Ones older
        than a day were left by a killed command and are removed first (no
        command runs that long; an age works across hosts, a pid does not)."""
        root = self.root / "scratch"
        root.mkdir(parents=True, exist_ok=True)
        for old in root.iterdir():
            with suppress(OSError):
                if time.time() - old.lstat().st_mtime > SCRATCH_MAX_AGE:
                    shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=root))

    def lock_file(self, name: str) -> Path:
        return self.root / "locks" / f"{name}.lock"

    def sync_lock_file(self, batch: str, part: str) -> Path:
        """Held by `hf sync` of that part while it runs."""
        return self.lock_file(f"sync-{batch}.{part}")

    # --- locks ---
    @contextmanager
    def commit_lock(self, wait: float, on_wait: Callable[[str], None] | None = None,
                    retry: str = locks.WITH_LONGER_WAIT) -> Iterator[None]:
        """Held by anything that writes the main tree, its index or its branch.
        `retry`: the busy hint's way on (join, undo, gc and commit take `--wait`)."""
        with locks.hold(self.lock_file("commit"), wait=wait, what="commit", on_wait=on_wait,
                        retry=retry):
            yield

    @contextmanager
    def state_lock(self, wait: float = 30.0) -> Iterator[None]:
        """Held briefly around read-modify-write of records."""
        with locks.hold(self.lock_file("state"), wait=wait, what="state"):
            yield

    # --- records ---
    def _read(self, path: Path) -> Any:
        data = atomic.read_json(path)
        if data is None:
            if os.path.lexists(path):  # (JSON `null`: a record emptied, not one gone)
                raise StateCorrupt(f"{path}: not a JSON object (edited record)",
                                   atomic.DAMAGED_HINT)
            raise FileNotFoundError(path)
        return data

    def orphaned_batch_dirs(self) -> list[Path]:
        """Batch folders without their `batch.json` that no split is making (its
        journal is gone): the record was removed, the parts' records are there."""
        base = self.root / "batches"
        if not base.is_dir():
            return []
        return sorted(p for p in base.iterdir() if p.is_dir()
                      and not os.path.lexists(p / "batch.json")
                      and not os.path.lexists(self.root / "journal" / f"split-{p.name}.json"))

    def batch_ids(self) -> list[str]:
        base = self.root / "batches"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "batch.json").exists())

    def has_batch(self, batch: str) -> bool:
        return self.batch_dir(batch).exists()

    def load_batch(self, batch: str) -> Batch:
        path = self.batch_file(batch)
        try:
            data = self._read(path)
        except FileNotFoundError:
            raise NotFound(f"no batch {batch!r} in this repository",
                           "`hf status` lists the batches") from None
        return Batch.from_dict(data, str(path))

    def load_part(self, batch: str, part: str) -> Part:
        """The part's record: NotFound when its batch has no such part, MissingRecord
        when the batch lists it but its record is gone."""
        try:
            return self._load_part(batch, part)
        except MissingRecord:
            if self._lists(batch, part):
                raise
            raise NotFound(f"no part {part!r} in batch {batch!r}",
                           f"`hf status {batch}` lists its parts") from None

    def load_parts(self, batch: Batch) -> list[Part]:
        """Every part `batch` lists; MissingRecord for one whose record is gone."""
        return [self._load_part(batch.id, name) for name in batch.parts]

    def _load_part(self, batch: str, part: str) -> Part:
        path = self.part_file(batch, part)
        try:
            data = self._read(path)
        except FileNotFoundError:
            raise self._missing(batch, part) from None
        return Part.from_dict(data, str(path))

    def _lists(self, batch: str, part: str) -> bool:
        """Whether the batch's record (readable, there) lists `part`."""
        try:
            return part in self.load_batch(batch).parts
        except HfError:
            return False

    def _missing(self, batch: str, part: str) -> MissingRecord:
        """What a listed part without a record says: the batch goes on only once it
        is put back or the part taken out of the batch record (hf invents no record,
        and rewrites none by itself)."""
        return MissingRecord(
            f"part {batch}/{part} has no record: {self.part_file(batch, part)} is missing "
            "(its batch lists it)",
            f'put the record back, or take "{part}" out of "parts" in '
            f"{self.batch_file(batch)}: the batch goes on without it (its branch "
            f"{branch_name(batch, part)} and its worktree stay)")

    def save_batch(self, batch: Batch) -> None:
        batch.updated = now()
        atomic.atomic_write_json(self.batch_file(batch.id), batch.to_dict())

    def save_part(self, part: Part) -> None:
        part.updated = now()
        atomic.atomic_write_json(self.part_file(part.batch, part.name), part.to_dict())

    def save_parts(self, parts: list[Part]) -> None:
        """Save several part records at once (their fsyncs overlap)."""
        for part in parts:
            part.updated = now()
        atomic.atomic_write_many([(self.part_file(part.batch, part.name),
                                   atomic.json_bytes(part.to_dict())) for part in parts])

    def remove_batch(self, batch: str) -> None:
        import shutil

        shutil.rmtree(self.batch_dir(batch), ignore_errors=True)

    # --- audit ---
    @property
    def audit_file(self) -> Path:
        return self.root / audit.LOG_NAME

    def audit(self, action: str, **fields: Any) -> None:
        """One line in the audit log (core/audit.py): `action`, the time, the actor
        and `fields` (the batch, the part, what changed)."""
        atomic.append_line(self.audit_file, audit.line(action, fields))

    def write_journal(self, data: dict[str, Any]) -> None:
        atomic.atomic_write_json(self.journal_file, data)

    def clear_journal(self) -> None:
        """The journal removed, and with it the temp files of journals whose writer
        was killed before it put them in place (only the commit lock's holder writes
        one, and the caller holds it)."""
        atomic.remove_durably(self.journal_file)
        prefix = f".{self.journal_file.name}."
        with suppress(OSError):
            for entry in os.scandir(self.journal_file.parent):
                if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                    with suppress(OSError):
                        os.unlink(entry.path)
