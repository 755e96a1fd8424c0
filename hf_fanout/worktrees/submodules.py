"""The submodule repositories of a linked worktree: git keeps them in the
worktree's own git dir (`<common>/worktrees/ID/modules/NAME`), not in the main
tree's (`<common>/modules/NAME`), so a commit made in a part's submodule exists
there alone until someone fetches or pushes it. Removing the worktree's git dir
would lose it (`git worktree remove` refuses any worktree with submodules)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hf_fanout.worktrees.process import run

MAX_LISTED = 1000  # commits of one submodule looked up at most (a history never pushed)


@dataclass(frozen=True)
class OnlyHere:
    """A submodule repository of the worktree with commits found nowhere else."""

    name: str  # the submodule's name (its path under modules/, nested ones included)
    git_dir: Path  # the repository, in the worktree's git dir
    commits: list[str]  # the newest first; none: git could not read the repository
    main_repository: Path | None  # the main tree's repository of it, when initialised


def gitmodules_paths(cwd: Path, source: list[str]) -> list[bytes]:
    """The `path` of every submodule a `.gitmodules` names; `source` is where git
    reads it (`--file .gitmodules`, `--blob REV:.gitmodules`)."""
    named = run(["config", *source, "-z", "--get-regexp", r"^submodule\..*\.path$"], cwd,
                check=False).stdout
    return [item.partition(b"\n")[2] for item in named.split(b"\0") if item]


def repositories(modules: Path) -> list[tuple[str, Path]]:
    """(name, git dir) of every repository below `modules` (a worktree's or the
    main tree's `modules/`), the nested submodules' too."""
    found = []
    if not modules.is_dir() or modules.is_symlink():
        return []
    for directory, dirs, _files in os.walk(modules):
        here = Path(directory)
        if (here / "HEAD").is_file() and (here / "objects").is_dir():
            found.append((here.relative_to(modules).as_posix(), here))
            dirs[:] = ["modules"] if "modules" in dirs else []  # (its nested ones)
        dirs.sort()
    return found


def commits_only_here(git_dir: Path, common_dir: Path) -> list[OnlyHere]:
    """The submodule repositories of the worktree whose git dir is `git_dir` holding
    commits (on a branch, a tag, HEAD or a reflog entry) that are on none of its
    remote-tracking branches and not in the main tree's repository of the same
    submodule."""
    found = []
    for name, repository in repositories(git_dir / "modules"):
        listed = run(["--git-dir", str(repository), "rev-list", f"--max-count={MAX_LISTED}",
                      "--reflog", "--branches", "--tags", "HEAD", "--not", "--remotes"],
                     repository, check=False)
        if listed.returncode != 0:  # (HEAD unborn, or damaged: the rest)
            listed = run(["--git-dir", str(repository), "rev-list",
                          f"--max-count={MAX_LISTED}", "--reflog", "--branches", "--tags",
                          "--not", "--remotes"], repository, check=False)
        if listed.returncode != 0:  # git cannot read it: what it holds is not known
            found.append(OnlyHere(name, repository, [], None))
            continue
        commits = listed.stdout.decode("ascii", "replace").split()
        main = common_dir / "modules" / name
        main_repository = main if (main / "HEAD").is_file() else None
        if commits and main_repository is not None:
            commits = _missing_from(main_repository, commits)
        if commits:
            found.append(OnlyHere(name, repository, commits, main_repository))
    return found


def _missing_from(repository: Path, commits: list[str]) -> list[str]:
    answer = run(["--git-dir", str(repository), "cat-file", "--batch-check=%(objectname)"],
                 repository, stdin="".join(c + "\n" for c in commits).encode(),
                 check=False).stdout.decode("ascii", "replace").splitlines()
    return [c for c, line in zip(commits, answer, strict=False) if line.endswith(" missing")]
