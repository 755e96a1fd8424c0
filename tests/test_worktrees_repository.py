"""Opening a repository: a directory git will not open as a work tree is one line
saying why git refused it, with the way out."""

from __future__ import annotations

import os

from conftest import git, make_repo


def test_a_repository_owned_by_another_user_is_named_as_such(tmp_path, hf):
    """git refuses it for its ownership: hf said "not inside a git work tree"
    in a directory that plainly is one, and the fix is git's safe.directory."""
    repo = make_repo(tmp_path / "repo")
    os.chown(repo, 4321, 4321)
    r = hf("status", "--json", cwd=repo)
    assert r.code == 1, r.out
    error = r.json["error"]
    assert error["code"] == "not_a_repo"
    assert "dubious ownership" in error["message"] and str(repo) in error["message"]
    assert error["hint"] == f"if you trust it: git config --global --add safe.directory {repo}"
    plain = hf("status", cwd=repo)
    assert plain.code == 1 and len(plain.err.strip().splitlines()) == 2  # the line, the hint


def test_a_bare_repository_is_named_bare(tmp_path, hf):
    repo = make_repo(tmp_path / "repo")
    git(tmp_path, "clone", "-q", "--bare", str(repo), "bare.git")
    r = hf("split", "b1", "--part", "api=src/api/**", "--json", cwd=tmp_path / "bare.git")
    assert r.code == 1
    assert "is a bare repository" in r.json["error"]["message"]
    assert "git clone" in r.json["error"]["hint"]
    assert not git(tmp_path / "bare.git", "for-each-ref", "refs/heads/hf")
    inside = hf("status", "--json", cwd=repo / ".git")  # a git dir, not bare: as before
    assert inside.json["error"]["message"].endswith("is not inside a git work tree")


def test_head_of_a_folder_that_became_a_repository_of_its_own_is_that_repository_s(tmp_path):
    """HEAD is read from git's files only where the git dir is this repository's:
    a folder whose `.git` link was replaced by `git init` names a branch that
    also exists here, and that branch's tip here says nothing of the folder."""
    from hf_fanout.worktrees.repository import Worktree

    repo = make_repo(tmp_path / "repo")
    git(repo, "worktree", "add", "-q", "-b", "part", str(tmp_path / "part"))
    main = Worktree.discover(repo)
    part = main.repository.worktree(tmp_path / "part")
    main_tip = git(repo, "rev-parse", "HEAD").strip()
    assert main.head() == main_tip and part.head() == main_tip and part.is_linked_here()

    (tmp_path / "part/.git").unlink()
    git(tmp_path / "part", "init", "-q", "-b", "main")  # main's branch name, another repository
    git(tmp_path / "part", "add", "-A")
    git(tmp_path / "part", "-c", "user.name=a", "-c", "user.email=a@a.invalid",
        "commit", "-qm", "elsewhere")
    foreign = git(tmp_path / "part", "rev-parse", "HEAD").strip()
    moved = main.repository.worktree(tmp_path / "part")
    assert not moved.is_linked_here()
    assert moved.head() == foreign != main_tip

    (tmp_path / "loose").mkdir()  # no repository at all: no HEAD
    assert main.repository.worktree(tmp_path / "loose").head() is None


def test_a_sha256_repository_is_refused_before_anything_is_made(tmp_path, hf):
    """libgit2 reads SHA-1 repositories only: a SHA-256 one is one line at every
    command, the split included, so nothing is split that cannot be joined
    (before: the split went through, then diff and join failed with exit 3)."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "--object-format=sha256", "-b", "main", str(repo))
    (repo / "src").mkdir()
    (repo / "src" / "a.py").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    for args in (("split", "b1", "--part", "api=src/**"), ("status",), ("doctor",)):
        r = hf(*args, cwd=repo)
        assert r.code == 1, (args, r.out, r.err)
        assert r.err.splitlines()[0] == (f"hf: error: {repo} is a SHA-256 repository, which "
                                         "hf does not work in yet"), args
        assert r.err.splitlines()[1].startswith("hint: use hf in a SHA-1 repository")
    assert not git(repo, "for-each-ref", "refs/heads/hf")
    assert not (tmp_path / "repo.hf").exists() and not (repo / ".git" / "hf").exists()


def test_a_work_tree_set_apart_from_its_git_dir_is_named_as_such(tmp_path, hf, monkeypatch):
    """The "dotfiles" layout: a git dir whose core.worktree names a folder without a
    .git. From the git dir, or with GIT_DIR set in the work tree, hf says what the
    layout is, not that `main` is no commit; nothing is made."""
    gitdir, tree = tmp_path / "dots.git", tmp_path / "home"
    tree.mkdir()
    git(tmp_path, "--git-dir", str(gitdir), "init", "-q", "-b", "main")
    git(tmp_path, "--git-dir", str(gitdir), "config", "core.bare", "false")
    git(tmp_path, "--git-dir", str(gitdir), "config", "core.worktree", str(tree))
    (tree / "a.txt").write_text("a\n")
    git(tree, "--git-dir", str(gitdir), "add", "a.txt")
    git(tree, "--git-dir", str(gitdir), "commit", "-qm", "init")
    r = hf("split", "b1", "--base", "main", "--part", "pa=a.txt", "--json", cwd=gitdir)
    assert r.code == 1
    assert r.json["error"]["message"] == (
        f"{tree} is the work tree of {gitdir}, which lies apart from it (core.worktree): hf "
        "works in a work tree that has its .git"), r.json
    assert f"git clone {gitdir} DIR" in r.json["error"]["hint"]
    monkeypatch.setenv("GIT_DIR", str(gitdir))
    r = hf("split", "b1", "--part", "pa=a.txt", "--json", cwd=tree)
    assert r.code == 1 and "GIT_DIR or GIT_WORK_TREE is set" in r.json["error"]["message"]
    assert not git(tree, "--git-dir", str(gitdir), "for-each-ref", "refs/heads/hf")
