"""Where a command runs: the repository, its main tree, its hf state, the part (if any)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from hf_fanout.config import Settings
from hf_fanout.errors import BadInput, HfError, NotFound, StateCorrupt
from hf_fanout.orchestrator.records import Part
from hf_fanout.orchestrator.store import Store
from hf_fanout.worktrees.repository import Repository, Worktree


@dataclass
class Workspace:
    here: Worktree  # where the command runs
    repo: Repository
    store: Store
    # what opening found and settled or could not settle (a split that was cut
    # off, an interrupted join that cannot be recovered yet): (message, hint)
    # lines the CLI shows; the command goes on
    notices: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def open(cls, repo: Path | None = None, *, recover: bool = True) -> Workspace:
        from hf_fanout import components

        components.load()
        here = Worktree.discover(repo)
        ws = cls(here, here.repository, Store(here.repository.common_dir))
        if recover:
            ws.recover()
        return ws

    def recover(self) -> None:
        """Finish or take back what a killed hf left: a split, a join."""
        journals = self.store.root / "journal"
        if not journals.is_dir():  # one stat: nothing was ever cut off
            return
        from hf_fanout.orchestrator.journal import recover_join
        from hf_fanout.orchestrator.split_journal import recover_splits

        try:
            self.notices += [(line, "") for line in recover_splits(self)]
            recover_join(self, wait=0)
        except HfError as exc:  # a command that needs it meets it again, and says so
            self.notices.append((exc.message, exc.hint))

    @cached_property
    def main(self) -> Worktree:
        """The main worktree (the main tree)."""
        return self.repo.main

    def worktree(self, path: str | Path) -> Worktree:
        """Another worktree of the repository (a part's)."""
        return self.repo.worktree(Path(path))

    @cached_property
    def settings(self) -> Settings:
        return Settings.load(self.main.path)

    def current_part(self) -> Part | None:
        """The part whose worktree this command runs in, if any."""
        if self.here.is_main:
            return None
        workdir = str(self.here.path)
        damaged: list[StateCorrupt] = []
        for batch_id in self.store.batch_ids():
            try:  # another batch's damaged record must not stop this part's agent
                batch = self.store.load_batch(batch_id)
                for name in batch.parts:
                    part = self.store.load_part(batch_id, name)
                    if part.worktree == workdir:
                        return part
            except StateCorrupt as exc:
                damaged.append(exc)
        if damaged:
            raise damaged[0]  # it may have been this worktree's own record
        return None

    def resolve_part(self, spec: str | None, *, named_by: str = "BATCH/PART") -> Part:
        """`BATCH/PART`, or the part of the current worktree when `spec` is None
        (`named_by`: how the command takes a part, for the hint)."""
        if spec:
            batch, sep, name = spec.partition("/")
            if not sep or not batch or not name:
                raise BadInput(f"bad part {spec!r}", "name a part as BATCH/PART, e.g. b1/api")
            self.store.load_batch(batch)
            return self.store.load_part(batch, name)
        part = self.current_part()
        if part is None:
            raise NotFound("this directory is not a part's worktree",
                           f"run it inside a part's worktree, or name the part: {named_by}")
        return part
