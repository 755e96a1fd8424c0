"""Layer 2: hooks in part worktrees, through the real git binary (no wrapper on PATH)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import git, write

REAL_GIT = shutil.which("git")


def real(cwd: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """The real git binary by its full path: the wrapper is bypassed on purpose."""
    return subprocess.run([REAL_GIT, *args], cwd=cwd, capture_output=True, text=True,
                          input=input.decode() if input else None, timeout=60, check=False)


def test_commit_of_an_unowned_path_is_refused_listing_it(split3):
    api = split3["api"]
    write(api, {"src/api/orders.py": "mine\n", "src/ui/app.js": "not mine\n",
                "docs/guide.md": "not mine either\n"})
    assert real(api, "add", "-A").returncode == 0
    proc = real(api, "commit", "-m", "sneak")
    assert proc.returncode != 0
    assert "commit refused in part b1/api: 2 staged path(s) outside its ownership" in proc.stderr
    assert "  src/ui/app.js" in proc.stderr and "  docs/guide.md" in proc.stderr
    assert git(api, "log", "-1", "--format=%s") == "initial\n"
    # `git commit -a` and `git commit PATH` use another index: still checked
    git(api, "reset", "-q")
    proc = real(api, "commit", "-m", "sneak", "src/ui/app.js")
    assert proc.returncode != 0 and "src/ui/app.js" in proc.stderr
    proc = real(api, "commit", "-am", "sneak")
    assert proc.returncode != 0 and "src/ui/app.js" in proc.stderr
    # owned paths commit normally
    proc = real(api, "commit", "-m", "orders", "src/api/orders.py")
    assert proc.returncode == 0, proc.stderr
    assert git(api, "log", "-1", "--format=%s") == "orders\n"


def test_update_ref_of_main_from_a_part_is_refused_by_the_real_git(split3):
    api, repo = split3["api"], split3["repo"]
    main_before = git(repo, "rev-parse", "main")
    git(repo, "branch", "release")
    write(api, {"src/api/orders.py": "mine\n"})
    git(api, "commit", "-qam", "part work")
    part_tip = git(api, "rev-parse", "HEAD").strip()
    for argv in (["update-ref", "refs/heads/main", part_tip],
                 ["update-ref", "refs/heads/hf/b1/ui", part_tip],
                 ["branch", "-f", "release", part_tip],
                 ["branch", "new-branch"],
                 ["tag", "planted"],
                 ["update-ref", "-d", "refs/heads/main"]):
        proc = real(api, *argv)
        assert proc.returncode != 0, argv
        assert "ref update refused in part b1/api" in proc.stderr, (argv, proc.stderr)
    assert git(repo, "rev-parse", "main") == main_before
    assert git(repo, "tag") == ""
    assert git(repo, "rev-parse", "release") == main_before
    # its own branch, hf's refs and per-worktree pseudo refs still move
    assert real(api, "update-ref", "refs/hf/rescue/b1/api", part_tip).returncode == 0
    assert real(api, "reset", "-q", "--soft", "HEAD~1").returncode == 0
    assert git(api, "rev-parse", "ORIG_HEAD").strip() == part_tip


def test_packing_refs_in_a_part_passes_and_main_is_still_guarded(split3):
    api, repo = split3["api"], split3["repo"]
    main_before = git(repo, "rev-parse", "main").strip()
    git(repo, "branch", "release")
    git(repo, "tag", "v1")
    write(api, {"src/api/orders.py": "mine\n"})
    git(api, "commit", "-qam", "part work")
    part_tip = git(api, "rev-parse", "HEAD").strip()
    for argv in (["pack-refs", "--all"], ["gc", "--prune=now", "--quiet"]):
        proc = real(api, *argv)
        assert proc.returncode == 0, (argv, proc.stderr)
        assert "refused" not in proc.stderr, proc.stderr
    assert "refs/heads/main" in (repo / ".git" / "packed-refs").read_text()
    # packed now, main and the others still cannot move or go
    for argv in (["update-ref", "refs/heads/main", part_tip],
                 ["update-ref", "-d", "refs/heads/main"],
                 ["update-ref", "-d", "refs/heads/release", main_before],
                 ["tag", "-d", "v1"],
                 ["branch", "-f", "release", part_tip]):
        proc = real(api, *argv)
        assert proc.returncode != 0, argv
        assert "ref update refused in part b1/api" in proc.stderr, (argv, proc.stderr)
    assert git(repo, "rev-parse", "main").strip() == main_before
    assert git(repo, "rev-parse", "release").strip() == main_before
    assert git(repo, "tag") == "v1\n"
    # the part's own work is intact and still commits
    assert git(api, "rev-parse", "HEAD").strip() == part_tip
    write(api, {"src/api/orders.py": "more\n"})
    assert real(api, "commit", "-qam", "more").returncode == 0


def test_push_from_a_part_is_refused(split3, tmp_path):
    api = split3["api"]
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(split3["repo"], "remote", "add", "origin", str(remote))
    proc = real(api, "push", "origin", "HEAD")
    assert proc.returncode != 0
    assert "push refused in part b1/api" in proc.stderr
    assert git(remote, "for-each-ref") == ""


def _marker_hook(path: Path, marker: Path, code: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "$(basename "$0") $(pwd)" >> {marker}\nexit {code}\n')
    path.chmod(0o755)


def test_the_repos_own_hooks_still_run_in_parts_and_in_the_main_tree(repo, hf, tmp_path):
    log = tmp_path / "hooks.log"
    for name in ("pre-commit", "commit-msg", "post-commit", "reference-transaction"):
        _marker_hook(repo / ".git" / "hooks" / name, log)
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 0, r.err
    api = repo.parent / "repo.hf" / "b1" / "api"
    log.write_text("")
    write(api, {"src/api/orders.py": "mine\n"})
    proc = real(api, "commit", "-qam", "part")
    assert proc.returncode == 0, proc.stderr
    ran = log.read_text().splitlines()
    for name in ("pre-commit", "commit-msg", "post-commit", "reference-transaction"):
        assert f"{name} {api}" in ran, ran
    log.write_text("")
    write(repo, {"tools/run.sh": "changed\n"})
    proc = real(repo, "commit", "-qam", "main")
    assert proc.returncode == 0, proc.stderr
    ran = log.read_text().splitlines()
    assert f"pre-commit {repo}" in ran and f"commit-msg {repo}" in ran
    # a failing hook of the repository still stops a part's commit
    _marker_hook(repo / ".git" / "hooks" / "pre-commit", log, code=1)
    write(api, {"src/api/users.py": "mine\n"})
    assert real(api, "commit", "-qam", "blocked by the repo's hook").returncode != 0


def test_a_repo_core_hooks_path_still_runs_in_parts(repo, hf, tmp_path):
    log = tmp_path / "hooks.log"
    _marker_hook(repo / ".githooks" / "pre-commit", log)
    git(repo, "add", ".githooks")
    git(repo, "commit", "-qm", "hooks")
    git(repo, "config", "core.hooksPath", ".githooks")
    r = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    assert r.code == 0, r.err
    api = repo.parent / "repo.hf" / "b1" / "api"
    write(api, {"src/api/orders.py": "mine\n", "src/ui/app.js": "theirs\n"})
    git(api, "add", "src/api/orders.py")
    assert real(api, "commit", "-qm", "ok").returncode == 0
    assert f"pre-commit {api}" in log.read_text()
    git(api, "add", "src/ui/app.js")
    proc = real(api, "commit", "-qm", "not ok")
    assert proc.returncode != 0 and "src/ui/app.js" in proc.stderr  # hf's check first
    # the repository's setting untouched; in the main tree its hooks still run, after
    # hf's main-tree hook (which only watches ref moves from below an agent)
    assert git(repo, "config", "--file", ".git/config", "core.hooksPath") == ".githooks\n"
    write(repo, {"notes.txt": "mine\n"})
    git(repo, "add", "notes.txt")
    assert real(repo, "commit", "-qm", "the person's").returncode == 0
    assert f"pre-commit {repo}" in log.read_text()


def test_hooks_of_a_parts_checkout_never_run_in_the_git_hf_itself_runs_there(repo, hf,
                                                                             tmp_path):
    """With a relative core.hooksPath the repository's hooks are files of each part's
    checkout, which its agent can write. Its own commits run them (in its sandbox,
    when it has one); the rebase `hf sync` runs for the person, outside any sandbox,
    runs hf's checks but none of them."""
    log = tmp_path / "hooks.log"
    _marker_hook(repo / ".githooks" / "pre-commit", log)
    git(repo, "add", ".githooks")
    git(repo, "commit", "-qm", "hooks")
    git(repo, "config", "core.hooksPath", ".githooks")
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    api = repo.parent / "repo.hf" / "b1" / "api"
    for name in ("reference-transaction", "post-rewrite", "post-checkout", "post-commit"):
        _marker_hook(api / ".githooks" / name, log)  # what an agent writes there
    write(api, {"src/api/orders.py": "mine\n"})
    git(api, "add", "src/api/orders.py")
    assert real(api, "commit", "-qm", "the agent's").returncode == 0
    assert f"reference-transaction {api}" in log.read_text()  # its own git: they run
    log.write_text("")
    write(repo, {"notes.txt": "the person's\n"})
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-qm", "main moves on")
    log.write_text("")
    r = hf("sync", "b1/api", cwd=repo)
    assert r.code == 0, r.err
    assert (api / "notes.txt").exists()  # rebased
    assert f"{api}" not in log.read_text()


def test_guard_install_is_idempotent_and_leaves_the_baseline_clean(split3, hf):
    repo = split3["repo"]
    before = {p.name: p.read_bytes() for p in (repo / ".git/hf/hooks").iterdir()}
    r = hf("guard", "install", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert sorted(r.json["data"]["parts"]) == ["b1/api", "b1/docs", "b1/ui"]
    after = {p.name: p.read_bytes() for p in (repo / ".git/hf/hooks").iterdir()}
    assert after == before
    findings = hf("doctor", "--json", cwd=repo).json["data"]["findings"]
    assert [f for f in findings if f["what"] == "tamper"] == []


def test_a_second_batch_does_not_disturb_the_first_ones_baseline(split3, hf):
    repo = split3["repo"]
    hook = repo / ".git/hf/hooks/pre-commit"
    hook.write_text(hook.read_text() + "# an older hf wrote this\n")
    r = hf("split", "b2", "--part", "tools=tools/**", cwd=repo)
    assert r.code == 0, r.err
    assert "# an older hf" not in hook.read_text()
    findings = hf("doctor", "--json", cwd=repo).json["data"]["findings"]
    assert [f for f in findings if f["what"] == "tamper"] == []


def test_guard_install_in_a_worktree_that_lost_its_git_file_is_one_clear_error(split3, hf):
    repo, api = split3["repo"], split3["api"]
    (api / ".git").rename(api.parent / "api.git-file")
    r = hf("guard", "install", cwd=repo)
    assert r.code == 1, r.err
    assert "is not a git worktree any more" in r.err and "hint:" in r.err


# One-level ref names, as git stores them when a linked worktree makes them:
# a name of A-Z, '_' and '-' only (git's pseudoref syntax: ORIG_HEAD, FETCH_HEAD)
# goes to the worktree's own git dir; any other goes to the common dir, where
# every worktree (and the main tree) sees it.
SHARED_ONE_LEVEL = ["Foo", "foo", "FOO1", "FOO.BAR", "Foo_HEAD", "\u00c9"]
PER_WORKTREE_ONE_LEVEL = ["FOO", "FOO_HEAD", "FOO-BAR", "_"]


def test_git_stores_one_level_refs_of_a_linked_worktree_where_the_hook_assumes(tmp_path):
    """The premise of the hook's rule, checked against the real git in a plain
    (unguarded) repository: which one-level names are shared, which are not."""
    plain = tmp_path / "plain"
    git(tmp_path, "init", "-q", "-b", "main", str(plain))
    git(plain, "commit", "-q", "--allow-empty", "-m", "initial")
    git(plain, "worktree", "add", "-q", str(tmp_path / "linked"), "-b", "linked")
    linked = tmp_path / "linked"
    own = Path(git(linked, "rev-parse", "--path-format=absolute", "--git-dir").strip())
    common = plain / ".git"
    for name in SHARED_ONE_LEVEL + PER_WORKTREE_ONE_LEVEL:
        proc = real(linked, "update-ref", name, "HEAD")
        assert proc.returncode == 0, (name, proc.stderr)
    for name in SHARED_ONE_LEVEL:
        assert (common / name).is_file() and not (own / name).exists(), name
        assert real(plain, "rev-parse", "--verify", "-q", name).returncode == 0, name
    for name in PER_WORKTREE_ONE_LEVEL:
        assert (own / name).is_file() and not (common / name).exists(), name
        assert real(plain, "rev-parse", "--verify", "-q", name).returncode != 0, name


def test_a_shared_one_level_ref_from_a_part_is_refused_a_per_worktree_one_is_not(split3):
    api, repo = split3["api"], split3["repo"]
    common = repo / ".git"
    own = Path(git(api, "rev-parse", "--path-format=absolute", "--git-dir").strip())
    head = git(api, "rev-parse", "HEAD").strip()
    for name in SHARED_ONE_LEVEL:
        proc = real(api, "update-ref", name, head)
        assert proc.returncode != 0, name
        said = [line for line in proc.stderr.splitlines() if line.startswith("hf guard:")]
        assert len(said) == 1, (name, proc.stderr)
        assert said[0].startswith("hf guard: ref update refused in part b1/api: only "
                                  "refs/heads/hf/b1/api may move here, not " + name + ";")
        assert not (common / name).exists() and not (own / name).exists(), name
        assert real(repo, "rev-parse", "--verify", "-q", name).returncode != 0, name
    assert "Foo" not in git(repo, "for-each-ref")
    for name in PER_WORKTREE_ONE_LEVEL:
        proc = real(api, "update-ref", name, head)
        assert proc.returncode == 0, (name, proc.stderr)
        assert (own / name).is_file() and not (common / name).exists(), name
        assert git(api, "rev-parse", name).strip() == head
    # and goes again (git itself refuses to delete a one-level name with '-')
    assert real(api, "update-ref", "-d", "FOO_HEAD").returncode == 0
    assert not (own / "FOO_HEAD").exists()


def test_a_tracked_file_named_head_does_not_stop_commits_in_parts(repo, hf):
    """git reads a bare `HEAD` argument as both a commit and that file: the hooks
    name their revision before `--`, so commits go through (the sh fast path and
    the python check both), and an unowned path is refused in hf's words."""
    write(repo, {"HEAD": "a file at the top, named as git's ref\n"})
    git(repo, "add", "HEAD")
    git(repo, "commit", "-qm", "a file named HEAD")
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    api = repo.parent / "repo.hf" / "b1" / "api"
    write(api, {"src/api/orders.py": "mine\n"})
    proc = real(api, "commit", "-qam", "orders")
    assert proc.returncode == 0, proc.stderr
    write(api, {"src/api/orders.py": "mine again\n", "HEAD": "not mine\n"})
    proc = real(api, "commit", "-qam", "sneak")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "commit refused in part b1/api: 1 staged path(s) outside its ownership" in proc.stderr
    git(api, "checkout", "-q", "HEAD", "--", "HEAD")
    proc = real(api, "commit", "-qam", "orders again")
    assert proc.returncode == 0, proc.stderr
    assert git(api, "log", "-2", "--format=%s").split("\n")[:2] == ["orders again", "orders"]
    write(api, {"src/api/orders.py": "through hf commit\n"})
    r = hf("commit", "-m", "via hf", "src/api/orders.py", cwd=api)
    assert r.code == 0, r.err
    assert git(api, "show", "HEAD:src/api/orders.py") == "through hf commit\n"
