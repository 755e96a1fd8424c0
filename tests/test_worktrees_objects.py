"""Objects hf writes in-process must be the ones git's own commands would write.

The oracles are `git commit-tree`, `git var` and `git diff-tree`.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from conftest import git

from hf_fanout.errors import GitFailed
from hf_fanout.worktrees import refs as ref_files
from hf_fanout.worktrees.repository import Worktree
from hf_fanout.worktrees.zparse import Entry

MESSAGE = "hf: join batch b (api, ui)\n\nA task\nwith lines.\n\nHf-Batch: b\n"


def test_a_commit_is_byte_for_byte_what_git_commit_tree_makes(repo: Path) -> None:
    main = Worktree.discover(repo).repository
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    other = git(repo, "commit-tree", tree, "-p", head, "-m", "side").strip()
    ours = main.commit_tree(tree, [head, other], MESSAGE)
    theirs = git(repo, "commit-tree", tree, "-p", head, "-p", other, "-F", "-",
                 input=MESSAGE.encode()).strip()
    assert ours == theirs
    assert git(repo, "fsck", "--strict", "--no-dangling").strip() == ""


def test_an_undated_commit_carries_gits_identity_and_now(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIT_AUTHOR_DATE")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Zoë Ünïcode")
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        main = Worktree.discover(repo).repository
        before = int(time.time())
        commit = main.commit_tree(git(repo, "rev-parse", "HEAD^{tree}").strip(), [], "x\n")
        after = int(time.time())
        raw = git(repo, "cat-file", "commit", commit)
        expected = {k: git(repo, "var", k).strip().rsplit(" ", 2)[0]
                    for k in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT")}
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    lines = dict(line.split(" ", 1) for line in raw.split("\n\n")[0].splitlines())
    for field, var in (("author", "GIT_AUTHOR_IDENT"), ("committer", "GIT_COMMITTER_IDENT")):
        who, seconds, zone = lines[field].rsplit(" ", 2)
        assert who == expected[var]
        assert before <= int(seconds) <= after
        assert zone == "+0530"


def test_another_encoding_is_left_to_git(repo: Path) -> None:
    main = Worktree.discover(repo).repository
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    git(repo, "config", "i18n.commitEncoding", "ISO-8859-1")
    commit = main.commit_tree(tree, [], "caf\u00e9\n")
    assert "\nencoding ISO-8859-1\n" in git(repo, "cat-file", "commit", commit)
    assert commit == git(repo, "commit-tree", tree, "-m", "caf\u00e9").strip()


def test_an_unknown_identity_fails_as_git_commit_does(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("EMAIL", "")
    git(repo, "config", "user.useConfigOnly", "true")
    (Path.home() / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    with pytest.raises(GitFailed, match="no email was given") as failed:
        Worktree.discover(repo).repository.commit_tree(
            git(repo, "rev-parse", "HEAD^{tree}").strip(), [], "x\n")
    assert "git config --global user.email" in failed.value.hint


POOL = ["a", "a.txt", "a-b", "a/x", "a/y/z", "b c/d", "ünï/côdé", "z0", "z/0", "q"]


def test_tree_changes_lists_what_git_diff_tree_lists(repo: Path) -> None:
    """Random edits (files, links, exec bits, a file replaced by a directory and
    back) on random trees: the in-process diff equals `git diff-tree -r`."""
    main = Worktree.discover(repo).repository
    rng = random.Random(7)
    blobs = [main.write_blob(f"blob {i}\n".encode()) for i in range(4)]

    def random_edits(tree: str) -> tuple[str, set[str]]:
        edits: dict[str, Entry | None] = {}
        for path in rng.sample(POOL, rng.randint(1, 5)):
            # a path and its parent directory as a file cannot coexist: keep one
            if any(path.startswith(p + "/") or p.startswith(path + "/") for p in edits):
                continue
            mode = rng.choice([0o100644, 0o100755, 0o120000, None])
            edits[path] = None if mode is None else Entry(mode, rng.choice(blobs))
        current = set(main.ls_tree(tree))
        # what the edits displace: files below a path that becomes a file, a file
        # that a path goes below
        touched = set(edits) | {p for p in current for e in edits
                                if p.startswith(e + "/") or e.startswith(p + "/")}
        return main.build_tree(tree, {**dict.fromkeys(touched - set(edits)), **edits}), touched

    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    compared = 0
    for _ in range(60):
        new, touched = random_edits(tree)
        expected = main.diff_trees(tree, new)
        assert main.tree_changes(tree, new, touched) == expected
        compared += len(expected)
        tree = new
    assert compared > 100


def test_one_diff_of_many_commits_is_each_commits_own_diff(repo: Path) -> None:
    """`diff_commits` (one `git diff-tree --stdin`) gives every tip what `git
    diff-tree BASE TIP` gives it alone: tips with changes, one with none, one on
    a side line, paths that look like object ids, hold spaces or a newline."""
    main = Worktree.discover(repo).repository
    base = git(repo, "rev-parse", "HEAD").strip()
    base_tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    blob = main.write_blob(b"new\n")
    odd = ["0" * 40, f"{base} {base}", "a b/c d", "new\nline", ":100644 x"]
    first = main.commit_tree(main.build_tree(base_tree, {p: Entry(0o100644, blob) for p in odd}),
                             [base], "odd names\n")
    second = main.commit_tree(main.build_tree(base_tree, {"README.md": None}), [first], "rm\n")
    empty = main.commit_tree(base_tree, [base], "nothing\n")
    side = main.commit_tree(main.build_tree(base_tree, {"z/y": Entry(0o100755, blob)}), [],
                            "no common history\n")
    tips = [first, second, empty, side, first]
    found = main.diff_commits(base, tips)
    assert list(found) == [first, second, empty, side]
    for tip in tips:
        assert found[tip] == main.diff_trees(base, tip), tip
    assert sorted(c.path for c in found[first]) == sorted(odd)
    assert found[empty] == []
    assert main.diff_commits(base, []) == {}
    # a tip that is not in the object database fails as `git diff-tree` does,
    # instead of coming back with no changes
    with pytest.raises(GitFailed, match="bad object"):
        main.diff_commits(base, [first, "1" * 40])


def test_refs_read_from_git_files_are_what_git_resolves(repo: Path) -> None:
    """Loose, packed and symbolic refs are read from git's files (no process, no
    pygit2), as git resolves them."""
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "branch", "hf/b/packed")
    git(repo, "pack-refs", "--all")
    git(repo, "branch", "hf/b/loose")
    git(repo, "update-ref", "refs/hf/results/b/p", head)
    git(repo, "symbolic-ref", "refs/hf/alias", "refs/heads/hf/b/loose")
    main = Worktree.discover(repo).repository
    for ref in ("refs/heads/hf/b/packed", "refs/heads/hf/b/loose", "refs/hf/results/b/p",
                "refs/hf/alias", "refs/heads/main"):
        assert main.ref_target(ref) == git(repo, "rev-parse", ref).strip(), ref
    assert ref_files.packed(repo / ".git", "refs/heads/hf/b/packed") == head
    assert ref_files.loose_value(repo / ".git", "refs/hf/alias") is None  # symbolic: followed
    assert main.ref_target("refs/heads/nothing/here") is None
    assert main.ref_target("refs/heads/hf/b") is None  # a directory of refs, not a ref


def test_refs_that_no_longer_descend_from_the_base_are_named(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    ahead = git(repo, "commit-tree", tree, "-p", base, "-m", "ahead").strip()
    orphan = git(repo, "commit-tree", tree, "-m", "rewritten history").strip()
    git(repo, "update-ref", "refs/heads/hf/b/ahead", ahead)
    git(repo, "update-ref", "refs/heads/hf/b/orphan", orphan)
    main = Worktree.discover(repo).repository
    refs = ["refs/heads/hf/b/ahead", "refs/heads/hf/b/orphan"]
    assert main.not_descending(base, refs) == {"refs/heads/hf/b/orphan"}
    assert main.not_descending(base, []) == set()


def test_head_read_from_files_is_what_git_says(repo: Path, tmp_path: Path) -> None:
    def check(where: Path, ref: str, commit: str | None) -> None:
        repo_here = Worktree.discover(where)
        assert repo_here.head_ref() == ref
        assert repo_here.head() == commit

    head = git(repo, "rev-parse", "HEAD").strip()
    check(repo, "refs/heads/main", head)
    git(repo, "pack-refs", "--all")  # the branch now lives in packed-refs only
    check(repo, "refs/heads/main", head)
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "side", str(wt), "HEAD")
    check(wt, "refs/heads/side", head)
    git(repo, "checkout", "-q", "--detach", "HEAD")
    check(repo, "HEAD", head)
    git(repo, "checkout", "-q", "--orphan", "unborn")
    check(repo, "refs/heads/unborn", None)


def test_an_empty_email_is_committed_as_git_does(repo: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "")
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    ours = Worktree.discover(repo).repository.commit_tree(tree, [], "x\n")
    assert ours == git(repo, "commit-tree", tree, "-m", "x").strip()
    assert "committer Test Committer <> " in git(repo, "cat-file", "commit", ours)


@pytest.mark.parametrize("variables", [
    {"GIT_CONFIG_PARAMETERS": "'core.fsmonitor'='touch PROOF'"},
    {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath",
     "GIT_CONFIG_VALUE_0": "/tmp/elsewhere"},
])
def test_hf_refuses_to_run_git_with_program_config_from_the_environment(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        variables: dict[str, str]) -> None:
    """A shell (or an agent) that sets hooks or an fsmonitor for every git command
    does not get them run by hf's own git calls: one line, nothing run."""
    import subprocess
    import sys

    proof = tmp_path / "proof"
    env = {**os.environ, **{k: v.replace("PROOF", str(proof)) for k, v in variables.items()}}
    r = subprocess.run([sys.executable, "-m", "hf_fanout", "status"], cwd=repo, env=env,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("hf: error: the environment sets core.")
    assert "unset GIT_CONFIG_PARAMETERS" in r.stderr
    assert not proof.exists()
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'user.name'='Someone'")  # harmless: kept
    assert Worktree.discover(repo).head() is not None
