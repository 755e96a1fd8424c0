"""Where a command runs: the repository, its main tree, its hf state, the part (if any)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from hf_fanout.config import Settings
from hf_fanout.core.records import SLUG, Part
from hf_fanout.core.store import Store
from hf_fanout.errors import BadInput, NotFound, StateCorrupt
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
    def open(cls, repo: Path | None = None) -> Workspace:
        """The workspace of the repository `repo` (default: the current directory)
        is in. (`orchestrator.workspace_open` also settles what a killed command
        left.)"""
        here = Worktree.discover(repo)
        return cls(here, here.repository, Store(here.repository.common_dir))

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
            if not sep or not SLUG.fullmatch(batch) or not SLUG.fullmatch(name):
                raise BadInput(f"bad part {spec!r}", "name a part as BATCH/PART, e.g. b1/api")
            self.store.load_batch(batch)
            named = self.store.load_part(batch, name)
            _refuse_another_part(spec)
            return named
        part = self.current_part()
        if part is None:
            raise NotFound("this directory is not a part's worktree",
                           f"run it inside a part's worktree, or name the part: {named_by}")
        return part


def _refuse_another_part(spec: str) -> None:
    """A process inside one part may not name another (`hf done b1/ui` from api)."""
    from hf_fanout import processes
    from hf_fanout.errors import InsidePart

    inside = processes.inside_part()
    if inside is not None and inside.part != spec:
        raise InsidePart(f"{spec} named from inside part {inside.part} ({inside.why})",
                         "a part acts on itself only: run it in a terminal of the main tree")


def _beside(main: Path, superproject: Callable[[], Path | None]) -> Path:
    """`<repo>.hf/` beside the main tree, or, for a submodule, beside the outermost
    superproject, named after the submodule's path in it."""
    top, outer = main, superproject()
    while outer is not None:
        top = outer.resolve()
        outer = Worktree.discover(top).superproject()
    if top == main:
        return main.parent / f"{main.name}.hf"
    inside = main.relative_to(top).as_posix().replace("/", ".")
    return top.parent / f"{top.name}.{inside}.hf"


def worktree_root(ws: Workspace, batch: str, override: Path | None) -> Path:
    """Where the worktrees of `batch` go: `override`, else `worktree_root` of the
    repository's settings, else `<repo>.hf/` in the user's `worktree_root` or
    beside the main tree (for a submodule, beside its outermost superproject:
    `<super>.<path>.hf/`, out of the superproject's work tree); never inside the
    main tree."""
    configured = override or ws.settings.text("worktree_root", '"../worktrees"')
    if configured:
        root = Path(str(configured)).expanduser()
        if not root.is_absolute():
            root = ws.main.path / root
        if override is None and "worktree_root" in ws.settings.from_user:
            # (the user's own setting is every repository's: each gets its own folder)
            root = root / _beside(ws.main.path.resolve(), ws.main.superproject).name
    else:
        root = _beside(ws.main.path.resolve(), ws.main.superproject)
    root = root.resolve() / batch
    main = ws.main.path.resolve()
    if root == main or main in root.parents:
        raise BadInput(f"worktree root {root} is inside the main tree",
                       "pick a directory outside the repository (worktree_root in .hf.toml)")
    return root
