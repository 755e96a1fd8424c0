"""A linked worktree's submodule repositories (in its own git dir): which hold
commits found nowhere else, on real repositories."""

from __future__ import annotations

from pathlib import Path

from conftest import git, new_repo

from hf_fanout.worktrees import submodules


def _worktree_with_submodule(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(main repo, linked worktree, the worktree's submodule checkout)."""
    lib = new_repo(tmp_path / "lib", {"core.c": "v1\n"}, "lib")
    repo = new_repo(tmp_path / "repo", {"a.txt": "a\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "vendor/lib")
    git(repo, "commit", "-qm", "the submodule")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked))
    git(linked, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init")
    return repo, linked, linked / "vendor/lib"


def test_a_fresh_submodule_checkout_holds_nothing_of_its_own(tmp_path):
    repo, linked, _lib = _worktree_with_submodule(tmp_path)
    git_dir = repo / ".git/worktrees/linked"
    assert [name for name, _ in submodules.repositories(git_dir / "modules")] == ["vendor/lib"]
    assert submodules.commits_only_here(git_dir, repo / ".git") == []


def test_a_commit_left_only_in_the_reflog_is_found_until_the_main_tree_has_it(tmp_path):
    repo, linked, lib = _worktree_with_submodule(tmp_path)
    (lib / "core.c").write_text("v2\n")
    git(lib, "commit", "-qam", "fix")
    fix = git(lib, "rev-parse", "HEAD").strip()
    git(linked, "submodule", "update", "-q")  # HEAD back: the fix is in the reflog only
    git_dir = repo / ".git/worktrees/linked"
    [found] = submodules.commits_only_here(git_dir, repo / ".git")
    assert (found.name, found.commits) == ("vendor/lib", [fix])
    assert found.main_repository == repo / ".git/modules/vendor/lib"
    git(repo / "vendor/lib", "fetch", "-q", str(found.git_dir), fix)
    assert submodules.commits_only_here(git_dir, repo / ".git") == []


def test_a_submodule_repository_git_cannot_read_is_reported_with_no_commits(tmp_path):
    repo, _linked, _lib = _worktree_with_submodule(tmp_path)
    git_dir = repo / ".git/worktrees/linked"
    module = git_dir / "modules/vendor/lib"
    for packed in (module / "objects/pack").iterdir():
        packed.write_bytes(b"damaged")
    for ref in (module / "packed-refs", module / "HEAD"):
        if ref.exists():
            ref.write_text("not a ref\n")
    [found] = submodules.commits_only_here(git_dir, repo / ".git")
    assert found.name == "vendor/lib" and found.commits == []
