"""`hf split`: validation before anything exists, what it creates, and nothing half-made."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import git, make_repo, snapshot, traced_argv, write

from hf_fanout.orchestrator import split_pace


def hf_refs(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/heads/hf").split()


def worktrees(repo: Path) -> list[str]:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")]


def assert_nothing_created(repo: Path, batch: str = "b1", refs: list[str] | None = None) -> None:
    assert hf_refs(repo) == (refs or [])
    assert worktrees(repo) == [f"worktree {repo}"]
    assert not (repo / ".git/hf/batches" / batch).exists()
    assert not (repo.parent / "repo.hf" / batch).exists()


def test_split_creates_branches_worktrees_and_records(repo, hf):
    before = snapshot(repo)
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "docs=docs/**,README.md",
           "--task", "add search", "--json", cwd=repo)
    assert r.code == 0, r.out
    data = r.json["data"]
    base = git(repo, "rev-parse", "HEAD").strip()
    assert data["batch"]["base"] == base and data["dry_run"] is False
    assert hf_refs(repo) == ["refs/heads/hf/b1/api", "refs/heads/hf/b1/docs"]
    for name in ("api", "docs"):
        wt = repo.parent / "repo.hf" / "b1" / name
        assert git(wt, "rev-parse", "HEAD").strip() == base
        assert git(wt, "symbolic-ref", "HEAD").strip() == f"refs/heads/hf/b1/{name}"
        assert git(wt, "status", "--porcelain") == ""
        record = json.loads((repo / f".git/hf/batches/b1/parts/{name}.json").read_text())
        assert record["worktree"] == str(wt) and record["state"] == "running"
        assert record["schema"] == 1 and record["kind"] == "part"
    batch = json.loads((repo / ".git/hf/batches/b1/batch.json").read_text())
    assert batch["parts"] == ["api", "docs"] and batch["task"] == "add search"
    assert batch["target_ref"] == "refs/heads/main"
    assert snapshot(repo) == before  # the main tree is not touched by a split


def test_a_split_of_many_full_parts_times_its_checkouts_and_logs_the_pace(repo, hf):
    # five full checkouts: one timed alone, two together, then the pace it chose
    names = ["pa", "pb", "pc", "pd", "pe"]
    write(repo, {f"{n}/f{i}.txt": f"{n}{i}\n" for n in names for i in range(40)})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "five trees")
    r = hf("split", "b1", *[a for n in names for a in ("--part", f"{n}={n}/**")],
           "--task", "t", cwd=repo)
    assert r.code == 0, r.out
    for n in names:  # whatever the pace, every worktree is whole and clean
        wt = repo.parent / "repo.hf" / "b1" / n
        assert len(list((wt / n).iterdir())) == 40
        assert git(wt, "status", "--porcelain") == ""
    lines = [json.loads(line) for line in
             (repo / ".git/hf/audit.log").read_text().splitlines()]
    split_line = next(line for line in lines if line["action"] == "split")
    # one at a time, or up to two per core
    assert split_line["checkouts_at_once"] in (1, min(len(names), 2 * (os.cpu_count() or 2)))
    probe = split_line["checkout_probe"]  # the seconds it chose by
    assert probe["alone"] > 0 and probe["together"] > 0
    margin = probe["together"] - split_pace.GAIN * 2 * probe["alone"]
    if abs(margin) > 0.002:  # (the logged seconds are rounded to milliseconds)
        assert (split_line["checkouts_at_once"] == 1) == (margin > 0)


def test_split_from_a_plan_file(repo, hf, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('batch = "b2"\ntask = "shared"\n'
                    '[[part]]\nname = "api"\nowns = ["src/api/**"]\ntask = "the api"\n'
                    'estimate_minutes = 20\n'
                    '[[part]]\nname = "ui"\nowns = "src/ui/**"\n')
    r = hf("split", "--plan", str(plan), "--json", cwd=repo)
    assert r.code == 0, r.out
    parts = r.json["data"]["parts"]
    assert [(p["name"], p["task"], p["estimate_minutes"]) for p in parts] == [
        ("api", "the api", 20), ("ui", "", None)]
    plan.write_text('batch = "b3"\n[[part]]\nname = "api"\nowns = ["src/**"]\nsize = 1\n')
    r = hf("split", "--plan", str(plan), cwd=repo)
    assert r.code == 2 and "size" in r.err
    plan.write_text("batch = \n")
    r = hf("split", "--plan", str(plan), cwd=repo)
    assert r.code == 2 and "not valid TOML" in r.err
    assert not (repo / ".git/hf/batches/b3").exists()


def test_estimates_from_the_plan_and_from_the_flags(repo, hf, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('batch = "b2"\n[[part]]\nname = "api"\nowns = ["src/api/**"]\n'
                    'estimate_minutes = 1.5\n[[part]]\nname = "ui"\nowns = "src/ui/**"\n'
                    '[[part]]\nname = "docs"\nowns = "docs/**"\nestimate_minutes = 4\n')
    r = hf("split", "--plan", str(plan), "--estimate", "ui=12", cwd=repo)
    assert r.code == 0, r.err
    assert "    estimate 1.5 min" in r.out and "    estimate 12 min" in r.out
    records = [json.loads((repo / f".git/hf/batches/b2/parts/{p}.json").read_text())
               for p in ("api", "ui", "docs")]
    assert [p["estimate_minutes"] for p in records] == [1.5, 12, 4]
    plan.write_text('batch = "b3"\n[[part]]\nname = "api"\nowns = ["src/**"]\n'
                    'estimate_minutes = true\n')
    r = hf("split", "--plan", str(plan), cwd=repo)
    assert r.code == 2 and "`estimate_minutes` must be a number of minutes" in r.err
    assert not (repo / ".git/hf/batches/b3").exists()


@pytest.mark.parametrize("args, needle", [
    (("B1", "--part", "api=src/**"), "'B1'"),
    (("b", "--part", "api=src/**"), "'b'"),
    (("b1", "--part", "Api=src/**"), "'Api'"),
    (("b1", "--part", "a--b=src/**"), "'a--b'"),
    (("b1", "--part", "api=src/**", "--part", "api=docs/**"), "twice"),
    (("b1", "--part", "api="), "bad --part"),
    (("b1", "--part", "api"), "bad --part"),
    (("b1",), "no parts"),
    (("b1", "--part", "api=../up/**"), ".."),
    (("b1", "--part", "api=src/../x"), ".."),
    (("b1", "--part", "api=/etc/**"), "/etc/**"),
    (("b1", "--part", "api=.git/**"), ".git"),
    (("b1", "--part", "api=src/.GIT/hooks"), ".GIT"),
    (("b1", "--part", "api=src/**,"), "empty"),
    (("b1", "--part", "api= "), "bad --part"),
])
def test_bad_names_and_globs_are_refused_before_anything_exists(repo, hf, args, needle):
    r = hf("split", *args, "--json", cwd=repo)
    assert r.code == 2, r.out
    error = r.json["error"]
    assert error["code"] in ("invalid_plan", "bad_input", "invalid_path"), error
    assert needle in error["message"], error["message"]
    assert error["hint"]
    assert_nothing_created(repo)


def test_overlap_on_an_existing_path_names_both_parts_and_the_path(repo, hf):
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "src=src/**,docs/**",
           "--part", "docs=README.md", "--json", cwd=repo)
    assert r.code == 2
    error = r.json["error"]
    assert error["code"] == "ownership_overlap"
    assert "'api'" in error["message"] and "'src'" in error["message"]
    assert "src/api/orders.py" in error["message"] or "src/api/users.py" in error["message"]
    assert r.json["data"]["parts"] == ["api", "src"]
    assert_nothing_created(repo)


def test_overlap_of_globs_on_paths_that_do_not_exist_yet(repo, hf):
    r = hf("split", "b1", "--part", "one=src/new_*.py", "--part", "two=src/new_*.py,docs/**",
           cwd=repo)
    assert r.code == 2
    assert "'one'" in r.err and "'two'" in r.err
    assert "could both own a new file such as 'src/new_" in r.err
    r = hf("split", "b1", "--part", "one=src/**/gen/*.py", "--part", "two=src/x/**",
           "--json", cwd=repo)
    assert r.code == 2
    example = r.json["data"]["example"]
    assert example.startswith("src/x/") and "/gen/" in example and example.endswith(".py")
    assert_nothing_created(repo)


def test_splitting_an_existing_batch_id_is_refused(split3, hf):
    repo = split3["repo"]
    batch_file = repo / ".git/hf/batches/b1/batch.json"
    record = batch_file.read_bytes()
    r = hf("split", "b1", "--part", "tools=tools/**", "--json", cwd=repo)
    assert r.code == 1
    assert r.json["error"]["code"] == "batch_exists" and "'b1'" in r.json["error"]["message"]
    assert batch_file.read_bytes() == record
    assert len(worktrees(repo)) == 4


def test_a_split_onto_a_branch_without_a_commit_is_refused(repo, hf):
    """The main tree is on a new orphan branch and `--base` names another: the
    join would have no commit to go on. Refused in one line, the dry run too,
    and nothing is made; after a first commit there the split goes."""
    main = git(repo, "symbolic-ref", "--short", "HEAD").strip()
    git(repo, "switch", "-q", "--orphan", "fresh")
    for extra in (["--dry-run"], []):
        r = hf("split", "b1", "--base", main, "--part", "api=src/api/**", *extra, cwd=repo)
        assert r.code == 2, r.err
        assert r.err.splitlines() == [
            "hf: error: the main tree's branch fresh has no commit yet: a join would have no "
            "commit to go on",
            "hint: make its first commit (`git commit --allow-empty -m start`), or switch to a "
            "branch that has one, then split again"]
    assert len(worktrees(repo)) == 1 and not (repo / ".git/hf/batches/b1").exists()
    git(repo, "commit", "-q", "--allow-empty", "-m", "start")
    assert hf("split", "b1", "--base", main, "--part", "api=src/api/**", cwd=repo).code == 0


def test_dry_run_creates_nothing_and_reports_counts_and_warnings(repo, hf):
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "new=src/new_*.py",
           "--part", "docs=docs/**,README.md", "--dry-run", cwd=repo)
    assert r.code == 0, r.err
    assert "would create 3 parts" in r.out
    assert "src/api/**: 2 file(s)" in r.out
    assert "docs/**: 2 file(s)" in r.out and "README.md: 1 file(s)" in r.out
    assert "warning: new: src/new_*.py matches no file" in r.out
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "new=src/new_*.py",
           "--dry-run", "--json", cwd=repo)
    data = r.json["data"]
    assert data["dry_run"] is True
    assert {(o["part"], o["glob"], o["matches"]) for o in data["ownership"]} == {
        ("api", "src/api/**", 2), ("new", "src/new_*.py", 0)}
    assert len(data["warnings"]) == 1
    assert_nothing_created(repo)
    assert not (repo / ".git/hf/batches").exists()


def test_a_real_split_warns_of_a_glob_matching_nothing_and_of_globs_read_from_a_subfolder(
        repo, hf):
    """Not only the dry run: a split from src/ given `api/**` (the person meant
    src/api/**) makes a part that owns nothing there, and says so, with the glob
    that matches; a glob for new files only is warned of without the hint."""
    r = hf("split", "b1", "--part", "api=api/**", "--part", "new=src/new_*.py",
           cwd=repo / "src")
    assert r.code == 0, r.err
    assert [line for line in r.out.splitlines() if line.startswith("warning:")] == [
        "warning: api: api/** matches no file of the base tree (new files only); globs are "
        "from the repository's top, not from src/ where this split ran: `src/api/**` "
        "matches 2 file(s)",
        "warning: new: src/new_*.py matches no file of the base tree (new files only)"]
    r = hf("split", "b2", "--part", "api2=src/api/**", "--json", cwd=repo)
    assert r.code == 0 and r.json["data"]["warnings"] == []


def test_a_split_failing_half_way_leaves_nothing(repo, hf):
    # `hf/b1/ui/x` exists, so the branch `hf/b1/ui` cannot be made (a ref cannot be
    # both a file and a directory): api and docs are created first, ui fails.
    git(repo, "branch", "hf/b1/ui/x")
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
           "--part", "docs=docs/**", "--json", cwd=repo)
    assert r.code == 1, r.out
    message = r.json["error"]["message"]
    assert "split of 'b1' failed, nothing was kept" in message and "hf/b1/ui" in message
    assert_nothing_created(repo, refs=["refs/heads/hf/b1/ui/x"])
    git(repo, "branch", "-D", "hf/b1/ui/x")
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 0, r.err


def test_a_failing_prepare_step_undoes_the_split(repo, hf):
    """A step that fails once a worktree exists (here: preparing its copied files,
    with a setting of the wrong kind) takes back every worktree made so far."""
    write(repo, {".hf.toml": 'copy = [".env"]\ncopy_fallback = "bogus"\n', ".env": "X=1\n"})
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 2, r.err
    assert "nothing was kept" in r.err and "copy_fallback = 'bogus'" in r.err
    assert_nothing_created(repo)


def test_existing_worktree_path_or_branch_is_refused_up_front(repo, hf):
    write(repo.parent, {"repo.hf/b1/ui": "a file in the way\n"})
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 1 and "repo.hf/b1/ui already exists" in r.err
    assert hf_refs(repo) == [] and worktrees(repo) == [f"worktree {repo}"]
    assert (repo.parent / "repo.hf/b1/ui").read_text() == "a file in the way\n"
    (repo.parent / "repo.hf/b1/ui").unlink()
    git(repo, "branch", "hf/b1/api")
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 1 and "branch hf/b1/api already exists" in r.err
    assert hf_refs(repo) == ["refs/heads/hf/b1/api"]



@pytest.mark.parametrize("branch", ["hf", "hf/b1"])
def test_a_branch_named_as_a_folder_of_hfs_branches_is_refused_up_front(repo, hf, branch):
    """git cannot keep `hf/b1/api` beside a branch `hf` (or `hf/b1`): the split, its
    dry run too, says so before anything is made, and the rename it names works."""
    git(repo, "branch", branch)
    for dry in (["--dry-run"], []):
        r = hf("split", "b1", "--part", "api=src/api/**", *dry, cwd=repo)
        assert r.code == 1
        assert r.err.splitlines() == [
            f"hf: error: branch {branch} exists, so git cannot make this batch's branches "
            "(hf/b1/PART) beside it",
            f"hint: rename it (`git branch -m {branch} NEW-NAME`), then split again"]
        assert_nothing_created(repo, refs=[f"refs/heads/{branch}"])
    git(repo, "branch", "-m", branch, "mine")
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0

def test_worktree_root_inside_the_main_tree_is_refused(repo, hf):
    r = hf("split", "b1", "--part", "api=src/api/**", "--worktree-root", str(repo / "wt"),
           cwd=repo)
    assert r.code == 2 and "inside the main tree" in r.err
    assert_nothing_created(repo)


def test_uncommitted_main_tree_changes_are_named_in_a_warning(repo, hf):
    """The parts start from the commit: a local edit (an owned path) and a new
    file in the main tree are not in them, and the split says so (the main
    tree itself is left as it is)."""
    r = hf("split", "b0", "--part", "api=src/api/**", "--part", "ui=src/ui/**", "--json",
           cwd=repo)
    assert not [w for w in r.json["data"]["warnings"] if "uncommitted" in w]  # clean tree
    write(repo, {"src/api/orders.py": "def orders():\n    return ['local']\n",
                 "notes.txt": "mine\n"})
    before = snapshot(repo)
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", "--dry-run",
           cwd=repo)
    assert r.code == 0, r.err
    assert ("warning: the main tree has uncommitted changes the parts do not start from: "
            "notes.txt, src/api/orders.py (owned by api); commit them first") in r.out
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", "--json",
           cwd=repo)
    assert r.code == 0, r.err
    (warning,) = [w for w in r.json["data"]["warnings"] if "uncommitted" in w]
    assert "src/api/orders.py (owned by api)" in warning
    part_file = repo.parent / "repo.hf" / "b1" / "api" / "src/api/orders.py"
    assert "local" not in part_file.read_text()
    assert snapshot(repo) == before
    # --base HEAD is a split from HEAD too
    r = hf("split", "b2", "--part", "api=src/api/**", "--base", "HEAD", "--json", cwd=repo)
    assert [w for w in r.json["data"]["warnings"] if "uncommitted" in w]
    # from another commit than HEAD the main tree's changes are not news
    git(repo, "commit", "-qam", "local")
    r = hf("split", "b3", "--part", "api=src/api/**", "--base", "HEAD~1", "--json", cwd=repo)
    assert not [w for w in r.json["data"]["warnings"] if "uncommitted" in w]


def test_settings_of_the_wrong_type_are_refused_before_anything_is_made(repo, hf):
    """`worktree_root = 5` was taken as the directory "5" (and then refused as
    inside the main tree); `setup_timeout = "long"` crashed once the first
    worktree existed. Each is now one line naming the key, and nothing is
    kept."""
    for setting, key in (("worktree_root = 5", "worktree_root"),
                         ('setup = ["true"]\nsetup_timeout = "long"', "setup_timeout")):
        (repo / ".hf.toml").write_text(setting + "\n")
        assert hf("trust", cwd=repo).code == 0
        r = hf("split", "b1", "--part", "api=src/api/**", "--json", cwd=repo)
        assert r.code == 2, (setting, r.out)
        assert f"{key} = " in r.json["error"]["message"], r.json["error"]
        assert "in the settings is not a" in r.json["error"]["message"]
        assert f"e.g. {key} = " in r.json["error"]["hint"]
        (repo / ".hf.toml").unlink()
        assert_nothing_created(repo)


def test_custom_worktree_root_and_base(repo, hf, tmp_path):
    first = git(repo, "rev-parse", "HEAD").strip()
    write(repo, {"src/api/later.py": "later\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "later")
    r = hf("split", "b1", "--part", "api=src/api/**", "--base", "HEAD~1",
           "--worktree-root", str(tmp_path / "elsewhere"), "--json", cwd=repo)
    assert r.code == 0, r.out
    wt = tmp_path / "elsewhere" / "b1" / "api"
    assert r.json["data"]["parts"][0]["worktree"] == str(wt)
    assert git(wt, "rev-parse", "HEAD").strip() == first
    assert not (wt / "src/api/later.py").exists()
    r = hf("split", "b2", "--part", "api=src/api/**", "--base", "nope", cwd=repo)
    assert r.code == 2 and "'nope'" in r.err


def test_the_users_worktree_root_gives_each_repository_its_own_folder(tmp_path, hf):
    """`worktree_root` in the user's own config is every repository's: each gets
    `<root>/<repo>.hf/` in it, so two repositories' batches of one name do not
    want one folder; gc leaves the root itself, which may be the person's."""
    root = tmp_path / "worktrees"
    root.mkdir()
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'worktree_root = "{root}"\n')
    web, api = make_repo(tmp_path / "web"), make_repo(tmp_path / "api")
    for repo in (web, api):
        r = hf("split", "b1", "--part", "code=src/**", "--json", cwd=repo)
        assert r.code == 0, r.err
        assert r.json["data"]["parts"][0]["worktree"] == str(root / f"{repo.name}.hf/b1/code")
    assert hf("drop", "b1", cwd=web).code == 0
    assert hf("gc", cwd=web).code == 0
    assert sorted(p.name for p in root.iterdir()) == ["api.hf"]  # web's folder gone


def test_a_worktree_root_two_repositories_share_is_said_and_nothing_is_removed(tmp_path, hf):
    """Two repositories split into one `--worktree-root`: the second is refused,
    naming the folder as the other repository's worktree, with a way that is not
    "remove it" (that folder holds the other's agent's work); nothing is made."""
    root = tmp_path / "shared"
    web, api = make_repo(tmp_path / "web"), make_repo(tmp_path / "api")
    assert hf("split", "b1", "--part", "code=src/**", "--worktree-root", str(root),
              cwd=web).code == 0
    write(root / "b1" / "code", {"src/api/orders.py": "web's work\n"})
    r = hf("split", "b1", "--part", "code=src/**", "--worktree-root", str(root), cwd=api)
    assert r.code != 0
    first, hint = r.err.splitlines()[:2]
    assert first == (f"hf: error: {root / 'b1' / 'code'} already exists: a worktree of "
                     f"another repository ({web / '.git'})")
    assert "remove" not in hint and "--worktree-root DIR" in hint
    assert (root / "b1" / "code" / "src/api/orders.py").read_text() == "web's work\n"
    assert not git(api, "for-each-ref", "refs/heads/hf")
    (root / "b1" / "code").rename(tmp_path / "moved")
    (root / "b1" / "code").mkdir()
    r = hf("split", "b1", "--part", "code=src/**", "--worktree-root", str(root), cwd=api)
    assert r.err.splitlines()[0].endswith("already exists (an empty folder)")
    assert r.err.splitlines()[1].startswith(f"hint: remove it (`rmdir {root / 'b1' / 'code'}`)")


def test_many_parts_at_once(repo, hf):
    """Worktrees are made in parallel; git's `worktree add` must not race with itself."""
    names = [f"p{i}" for i in range(8)]
    for batch in ("b1", "b2", "b3"):
        args = [a for n in names for a in ("--part", f"{n}=area/{batch}/{n}/**")]
        r = hf("split", batch, *args, cwd=repo)
        assert r.code == 0, r.err
        for n in names:
            wt = repo.parent / "repo.hf" / batch / n
            assert (wt / "src/api/orders.py").read_text() == "def orders():\n    return []\n"
            assert git(wt, "status", "--porcelain") == ""
    assert len(worktrees(repo)) == 1 + 3 * len(names)


def test_the_post_checkout_hook_runs_in_each_new_worktree(repo, hf, tmp_path):
    """As with `git worktree add`: tools like git-lfs rely on it."""
    log = tmp_path / "hook.log"
    hook = repo / ".git/hooks/post-checkout"
    hook.write_text(f'#!/bin/sh\necho "$(pwd) $1 $3" >> "{log}"\n')
    hook.chmod(0o755)
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 0, r.err
    root = repo.parent / "repo.hf" / "b1"
    assert sorted(log.read_text().splitlines()) == [
        f"{root / 'api'} {'0' * 40} 1", f"{root / 'ui'} {'0' * 40} 1"]



def test_a_failing_post_checkout_hook_leaves_the_parts_made_and_says_so(repo, hf, tmp_path):
    """As `git worktree add` does (a git-lfs hook without git-lfs on PATH exits 2):
    the checkout stays, and the split says which part's hook failed and how to run
    it again."""
    hook = repo / ".git/hooks/post-checkout"
    hook.write_text('#!/bin/sh\necho "git-lfs was not found on your path." >&2\nexit 2\n')
    hook.chmod(0o755)
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 0, r.err
    warned = [line for line in r.out.splitlines() if line.startswith("warning: part ")]
    assert len(warned) == 2 and all(
        "post-checkout hook failed in its new worktree (exit 2: git-lfs was not found on "
        "your path.)" in line for line in warned), r.out
    api = repo.parent / "repo.hf" / "b1" / "api"
    assert (api / "src/api/orders.py").is_file() and git(api, "status", "--porcelain") == ""
    assert len(worktrees(repo)) == 3
    # the command the warning names runs the hook there, once its cause is fixed
    log = tmp_path / "ran"
    hook.write_text(f'#!/bin/sh\necho "$(pwd) $1 $2 $3" > "{log}"\n')
    command = warned[0].rsplit("then `", 1)[1].rstrip("`")
    subprocess.run(command, shell=True, check=True, cwd=tmp_path)
    base = git(repo, "rev-parse", "HEAD").strip()
    assert log.read_text().split() == [str(api), "0" * 40, base, "1"]
    # and the batch is an ordinary one (the hook changed here is a change to accept)
    write(api, {"src/api/orders.py": "changed\n"})
    for name in ("api", "ui"):
        assert hf("done", cwd=repo.parent / "repo.hf" / "b1" / name).code == 0
    assert "hooks/post-checkout changed" in hf("join", "b1", cwd=repo).err
    assert hf("doctor", "--accept", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    assert git(repo, "show", "HEAD:src/api/orders.py") == "changed\n"

# --- a large split: the base's objects inflated once for all checkouts ---------

AREAS = ("api", "ui", "docs", "tools")
BIG = bytes(range(256)) * 6000  # 1.5 MB: over UNPACKED_BLOB_LIMIT


@pytest.fixture
def large_repo(tmp_path: Path) -> Path:
    """Enough files and parts for the split's scratch pack (UNPACK_MIN_FILES, _PARTS),
    with what a checkout must get right: a filter, a link, an exec bit, a large blob."""
    from hf_fanout.orchestrator.split import UNPACK_MIN_FILES

    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    per_area = UNPACK_MIN_FILES // len(AREAS) + 10
    write(root, {f"{area}/m{i % 17}/f{i}.py": f"# {area} {i}\n" + "x = 1\n" * (i % 40)
                 for area in AREAS for i in range(per_area)})
    write(root, {".gitattributes": "*.bat eol=crlf\n", "tools/run.bat": "echo one\necho two\n",
                 "tools/go.sh": "#!/bin/sh\necho go\n", "docs/big.bin": BIG})
    (root / "tools/go.sh").chmod(0o755)
    (root / "docs/latest").symlink_to("m1/f1.py")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "large")
    return root


def object_files(repo: Path) -> list[str]:
    return sorted(str(p.relative_to(repo)) for p in (repo / ".git/objects").rglob("*"))


def split_traced(repo: Path, hf: Any, trace: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`hf split b1` of AREAS, one part each; every git command it ran is in `trace`."""
    with monkeypatch.context() as m:
        m.setenv("GIT_TRACE2_EVENT", str(trace))
        return hf("split", "b1", *[a for area in AREAS for a in ("--part", f"{area}={area}/**")],
                  cwd=repo)


def trace_starts(trace: Path) -> list[list[str]]:
    return [traced_argv(event["argv"])
            for event in map(json.loads, trace.read_text().splitlines())
            if event["event"] == "start"]


def test_a_large_split_inflates_the_base_once_and_checks_out_what_git_would(
        large_repo, hf, tmp_path, monkeypatch):
    objects_before = object_files(large_repo)
    stale, running = large_repo / ".git/hf/scratch/split-old", \
        large_repo / ".git/hf/scratch/split-running"
    for scratch in (stale, running):
        (scratch / "objects").mkdir(parents=True)
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    trace = tmp_path / "trace.json"
    r = split_traced(large_repo, hf, trace, monkeypatch)
    assert r.code == 0, r.err
    argvs = trace_starts(trace)
    packs = [a for a in argvs if "pack-objects" in a]
    assert len(packs) == 1 and "--no-reuse-object" in packs[0]  # inflated once
    assert sum("reset" in a and "--hard" in a for a in argvs) == len(AREAS)
    # what each worktree holds is what `git worktree add` would have checked out
    expected = git(large_repo, "ls-files", "-s")
    for area in AREAS:
        wt = large_repo.parent / "repo.hf/b1" / area
        assert git(wt, "status", "--porcelain") == ""
        assert git(wt, "ls-files", "-s") == expected
        assert (wt / "tools/run.bat").read_bytes() == b"echo one\r\necho two\r\n"
        assert (wt / "docs/big.bin").read_bytes() == BIG
        assert os.readlink(wt / "docs/latest") == "m1/f1.py"
        assert os.access(wt / "tools/go.sh", os.X_OK)
        assert (wt / "api/m3/f3.py").read_text() == "# api 3\n" + "x = 1\n" * 3
        # primed: the index carries git's untracked cache (every later status is cheaper)
        index = Path(git(wt, "rev-parse", "--path-format=absolute", "--git-path", "index")
                     .strip())
        assert b"UNTR" in index.read_bytes()
    # the scratch pack is gone, so is the one a killed split left; a running split's stays
    assert sorted(p.name for p in (large_repo / ".git/hf/scratch").iterdir()) == \
        ["split-running"]
    assert object_files(large_repo) == objects_before  # nothing written to the repository
    assert "error" not in git(large_repo, "fsck", "--no-progress").lower()


def test_the_scratch_pack_holds_the_base_uncompressed_and_leaves_out_large_blobs(
        large_repo, tmp_path):
    from hf_fanout.worktrees.repository import Worktree

    repo = Worktree.discover(large_repo).repository
    head = git(large_repo, "rev-parse", "HEAD").strip()
    objects = repo.unpacked_objects(head, tmp_path / "scratch" / "objects")
    assert objects is not None
    (idx,) = (objects / "pack").glob("*.idx")
    rows = [line.split() for line in git(large_repo, "verify-pack", "-v", str(idx)).splitlines()
            if " blob " in line]
    big = git(large_repo, "rev-parse", "HEAD:docs/big.bin").strip()
    blobs = set(git(large_repo, "ls-tree", "-r", "--object-only", "HEAD").split()) - {big}
    assert {row[0] for row in rows} == blobs  # every blob once, the large one left out
    assert all(int(row[3]) >= int(row[2]) for row in rows)  # stored, not compressed
    # a checkout reading it gets the same files as one reading the repository
    wt = tmp_path / "wt"
    git(large_repo, "worktree", "add", "-q", "--no-checkout", "-b", "w", str(wt), "HEAD")
    repo.worktree(wt).populate(objects=objects)
    assert git(wt, "status", "--porcelain") == ""
    assert (wt / "docs/big.bin").read_bytes() == BIG
    # a partial clone's missing blobs would be fetched into the scratch directory: none
    git(large_repo, "config", "core.repositoryFormatVersion", "1")
    git(large_repo, "config", "extensions.partialClone", "origin")
    assert repo.unpacked_objects(head, tmp_path / "again" / "objects") is None


def test_a_large_split_failing_half_way_removes_its_scratch_pack(large_repo, hf):
    git(large_repo, "branch", "hf/b1/tools/x")  # the last part's branch cannot be made
    r = hf("split", "b1", *[a for area in AREAS for a in ("--part", f"{area}={area}/**")],
           cwd=large_repo)
    assert r.code == 1 and "nothing was kept" in r.err
    assert_nothing_created(large_repo, refs=["refs/heads/hf/b1/tools/x"])
    assert list((large_repo / ".git/hf/scratch").iterdir()) == []


@pytest.mark.parametrize("obstacle", ["scratch is a file", "pack-objects fails"])
def test_a_split_whose_scratch_pack_cannot_be_made_checks_out_as_usual(
        large_repo, hf, obstacle):
    if obstacle == "scratch is a file":
        write(large_repo, {".git/hf/scratch": "in the way\n"})
    else:  # a setting only pack-objects reads, and refuses
        git(large_repo, "config", "pack.threads", "many")
    r = hf("split", "b1", *[a for area in AREAS for a in ("--part", f"{area}={area}/**")],
           cwd=large_repo)
    assert r.code == 0, r.err
    expected = git(large_repo, "ls-files", "-s")
    for area in AREAS:
        wt = large_repo.parent / "repo.hf/b1" / area
        assert git(wt, "status", "--porcelain") == ""
        assert git(wt, "ls-files", "-s") == expected
    scratch = large_repo / ".git/hf/scratch"
    if obstacle == "scratch is a file":
        assert scratch.read_text() == "in the way\n"
    else:
        assert list(scratch.iterdir()) == []


def test_a_repository_whose_checkout_runs_hooks_gets_no_scratch_pack(
        large_repo, hf, tmp_path, monkeypatch):
    """`git reset --hard` runs reference-transaction hooks itself: one that
    writes an object must write it into the repository, not the scratch pack."""
    log = tmp_path / "hook.log"
    hook = large_repo / ".git/hooks/reference-transaction"
    hook.write_text(f'#!/bin/sh\necho "$1 [$GIT_OBJECT_DIRECTORY]" >> "{log}"\n')
    hook.chmod(0o755)
    trace = tmp_path / "trace.json"
    r = split_traced(large_repo, hf, trace, monkeypatch)
    assert r.code == 0, r.err
    assert not [a for a in trace_starts(trace) if "pack-objects" in a]
    assert "committed []" in log.read_text().splitlines()  # the hook ran, as before
    for area in AREAS:
        assert git(large_repo.parent / "repo.hf/b1" / area, "status", "--porcelain") == ""


def _kill_points(repo: Path, batch: str) -> list[tuple[str, Any]]:
    """Observable moments of a split, in order: each is (name, true once reached)."""
    hf_dir = repo / ".git/hf"
    parts = hf_dir / "batches" / batch / "parts"
    root = repo.parent / "repo.hf" / batch
    points: list[tuple[str, Any]] = [
        ("journal", (hf_dir / "journal" / f"split-{batch}.json").exists)]
    for k in (1, 3, 5, 8):
        points.append((f"{k} worktree(s) made",
                       lambda k=k: root.is_dir() and len(list(root.iterdir())) >= k))
    for k in (1, 4, 8):
        points.append((f"{k} part record(s)",
                       lambda k=k: parts.is_dir() and len(list(parts.glob("*.json"))) >= k))
    points.append(("fingerprint", (hf_dir / "guard" / f"{batch}.json").exists))
    points.append(("batch record", (hf_dir / "batches" / batch / "batch.json").exists))
    return points


def test_a_split_killed_at_any_point_is_taken_back_or_kept_whole(repo, hf):
    """SIGKILL of an 8-part split at each observable moment: the next hf command
    removes the batch (worktrees, branches, records) or keeps it whole, says
    which, and the id of a removed one can be split again."""
    import signal
    import subprocess
    import sys

    areas = [f"area{i}" for i in range(8)]
    write(repo, {f"{a}/m{i % 3}/f{i}.txt": f"{a} {i}\n" for a in areas for i in range(40)})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "areas")
    parts = [x for a in areas for x in ("--part", f"{a}={a}/**")]
    taken_back = 0
    for round_no, (name, _) in enumerate(_kill_points(repo, "k")):
        batch = f"k{round_no}"
        proc = subprocess.Popen([sys.executable, "-m", "hf_fanout", "split", batch, *parts],
                                cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        point = dict(_kill_points(repo, batch))[name]
        deadline = time.monotonic() + 60
        while not point() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        r = hf("status", "--json", cwd=repo)
        assert r.code == 0, (name, r.err)
        assert not (repo / f".git/hf/journal/split-{batch}.json").exists(), (name, r.err)
        ids = [b["id"] for b in r.json["data"]["batches"]]
        branches = [x for x in hf_refs(repo) if x.startswith(f"refs/heads/hf/{batch}/")]
        if batch in ids:  # killed once its record was written: kept whole
            found = next(b for b in r.json["data"]["batches"] if b["id"] == batch)
            assert len(found["parts"]) == len(areas) == len(branches), name
            assert all(Path(p["worktree"]).is_dir() for p in found["parts"]), name
            assert hf("drop", batch, cwd=repo).code == 0
            continue
        # taken back, every piece of it
        assert "cut off was removed" in r.err, (name, r.err)
        assert branches == [], name
        assert not [w for w in worktrees(repo) if f"/repo.hf/{batch}/" in w], name
        assert not (repo / ".git/hf/batches" / batch).exists(), name
        assert not (repo.parent / "repo.hf" / batch).exists(), name
        r = hf("split", batch, *parts, cwd=repo)  # the id is free again
        assert r.code == 0, (name, r.err)
        assert hf("drop", batch, cwd=repo).code == 0
        taken_back += 1
    assert taken_back >= 6, "the kills did not land inside the split"
    assert git(repo, "fsck", "--no-progress") == ""


@pytest.mark.parametrize("point, kept", [("split-records", False), ("split-batch", True)])
def test_a_split_killed_around_its_batch_record(repo, hf, point, kept):
    import signal

    from conftest import hf_proc

    proc = hf_proc("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
                   cwd=repo, env={**os.environ, "HF_TEST_CRASH_AT": point})
    assert proc.returncode == -signal.SIGKILL
    r = hf("status", cwd=repo)
    assert r.code == 0
    if kept:
        assert "had made everything: kept" in r.err and "batch b1" in r.out
        assert len(hf_refs(repo)) == 2
    else:
        assert "a split of 'b1' that was cut off was removed (2 worktree(s), 2 branch(es))" \
            in r.err
        assert_nothing_created(repo)
        assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    assert not (repo / ".git/hf/journal/split-b1.json").exists()
    assert hf("status", cwd=repo).err == ""  # said once


KILL_AT_UI_ADD = """#!/bin/sh
# hf's git: hf is killed as it starts to register the worktree of part ui
case " $* " in *" worktree add "*/ui" "*) kill -9 "$PPID"; exit 137 ;; esac
exec git "$@"
"""


def test_the_take_back_note_counts_what_a_cut_off_split_had_made(repo, hf, tmp_path):
    """Killed while registering its second of three worktrees, the split had made
    one worktree and one branch: the note says so (before, it counted all three)."""
    from conftest import hf_proc

    wrapper = tmp_path / "git-killer"
    wrapper.write_text(KILL_AT_UI_ADD)
    wrapper.chmod(0o755)
    proc = hf_proc("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
                   "--part", "docs=docs/**", cwd=repo,
                   env={**os.environ, "HF_REAL_GIT": str(wrapper)})
    assert proc.returncode == -9, proc.stderr
    assert [r for r in hf_refs(repo) if r.startswith("refs/heads/hf/b1/")] == \
        ["refs/heads/hf/b1/api"]
    r = hf("status", cwd=repo)
    assert r.code == 0, r.err
    assert "a split of 'b1' that was cut off was removed (1 worktree(s), 1 branch(es))" \
        in r.err
    assert_nothing_created(repo)


def test_a_split_killed_inside_git_worktree_add_frees_the_path_for_the_next(repo, hf):
    """`git worktree add` locks the record it makes (`initializing`) until it is done:
    a split killed while one ran left that lock, the take-back left the record,
    and the next split of the batch failed on git's "missing but locked worktree"."""
    import signal

    from conftest import hf_proc

    parts = ["--part", "api=src/api/**", "--part", "ui=src/ui/**"]
    proc = hf_proc("split", "b1", *parts, cwd=repo,
                   env={**os.environ, "HF_TEST_CRASH_AT": "split-records"})
    assert proc.returncode == -signal.SIGKILL
    # what a `git worktree add` killed before it wrote the worktree's .git leaves
    admin = next(p for p in (repo / ".git/worktrees").iterdir()
                 if (p / "gitdir").read_text().strip().endswith("/ui/.git"))
    (admin / "locked").write_text("initializing")
    (repo.parent / "repo.hf/b1/ui/.git").unlink()
    r = hf("status", cwd=repo)
    assert r.code == 0, r.err
    assert "a split of 'b1' that was cut off was removed" in r.err
    assert_nothing_created(repo)
    assert not admin.exists()
    r = hf("split", "b1", *parts, cwd=repo)
    assert r.code == 0, r.err
    assert len(worktrees(repo)) == 3


def test_a_worktree_the_user_locked_stays_registered_after_a_take_back(repo, hf):
    """A lock of any other reason is the user's: kept, even on a path hf made."""
    import signal

    from conftest import hf_proc

    proc = hf_proc("split", "b1", "--part", "api=src/api/**", cwd=repo,
                   env={**os.environ, "HF_TEST_CRASH_AT": "split-records"})
    assert proc.returncode == -signal.SIGKILL
    git(repo, "worktree", "lock", "--reason", "on a usb disk",
        str(repo.parent / "repo.hf/b1/api"))
    assert hf("status", cwd=repo).code == 0
    assert len(worktrees(repo)) == 2  # still git's, locked: `git worktree unlock` frees it


def test_a_full_disk_during_a_split_is_one_line_and_keeps_nothing(small_disk, hf):
    from conftest import small_repo

    repo = small_repo(small_disk)
    write(repo, {f"src/api/big{i}.bin": os.urandom(60_000) for i in range(4)})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "big files")
    small_disk.fill(leave=500_000)  # room for a worktree or two, not six
    parts = [x for i in range(6) for x in ("--part", f"p{i}=area{i}/**")]
    r = hf("split", "b1", *parts, "--json", cwd=repo)
    assert r.code == 1, r.out
    error = r.json["error"]
    assert error["code"] == "no_space", error
    assert "\n" not in error["message"] and "nothing was kept" in error["message"]
    assert_nothing_created(repo)
    assert not (repo / ".git/hf/journal/split-b1.json").exists()
    small_disk.free()
    r = hf("split", "b1", *parts, cwd=repo)
    assert r.code == 0, r.err


def test_a_plan_file_is_read_bounded(repo, hf, tmp_path):
    """What is not a plan gets one line and exit 2, never a read without end, a
    crash on nesting, or an internal error."""
    r = hf("split", "--plan", "/dev/zero", cwd=repo)
    assert r.code == 2 and "is not a regular file" in r.err, r.err
    big = tmp_path / "big.toml"
    big.write_text('batch = "b1"\n# ' + "x" * (2 << 20) + "\n")
    r = hf("split", "--plan", str(big), cwd=repo)
    assert r.code == 2 and "larger than 1024 KiB" in r.err, r.err
    deep = tmp_path / "deep.toml"
    deep.write_text('batch = "b1"\nx = ' + "[" * 100_000 + "]" * 100_000 + "\n")
    r = hf("split", "--plan", str(deep), cwd=repo)
    assert r.code == 2 and "nested too deeply" in r.err, r.err
    assert len(r.err.splitlines()) == 2  # one line and the hint
    assert_nothing_created(repo)


def test_thousands_of_parts_are_checked_for_overlap_in_seconds():
    """The overlap check compares only parts whose globs can share a path (about
    parts x globs): 4,000 parts in directories of their own, and one clash among
    them still found."""
    from hf_fanout.core.plan import PartPlan, Plan, check_ownership, validate
    from hf_fanout.errors import OwnershipOverlap

    parts = tuple(PartPlan(f"p{i}", (f"mod{i}/**", f"docs/mod{i}.md")) for i in range(4000))
    plan = validate(Plan("big", parts))
    started = time.monotonic()
    assert check_ownership(plan, [], count=False) == []
    assert time.monotonic() - started < 20
    clash = validate(Plan("big", (*parts, PartPlan("late", ("mod123/x/**",)))))
    with pytest.raises(OwnershipOverlap, match="'p123'.*'late'"):
        check_ownership(clash, [], count=False)


def test_split_counts_worktrees_on_a_terminal_and_is_quiet_in_a_pipe(repo):
    import pty
    import select
    import subprocess
    import sys

    def split(batch: str, stderr_on_tty: bool) -> str:
        master, slave = pty.openpty()
        err = slave if stderr_on_tty else subprocess.PIPE
        proc = subprocess.Popen(
            [sys.executable, "-m", "hf_fanout", "split", batch, "--part", "api=src/api/**",
             "--part", "docs=docs/**", "--part", "top=README.md"],
            cwd=repo, stdout=subprocess.PIPE, stderr=err)
        # The test holds the terminal open too, so nothing the split wrote is lost
        # when it closes its side; it drains it while the split runs and after.
        seen = b""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                seen += os.read(master, 65536)
            elif proc.poll() is not None:
                break
        out, piped = proc.communicate(timeout=120)
        os.close(slave)
        os.close(master)
        assert proc.returncode == 0, out
        return (seen + (piped or b"")).decode()

    shown = split("b1", stderr_on_tty=True)
    counts = [line.split(" worktrees:")[0].strip() for line in shown.splitlines()
              if " worktrees: " in line]
    assert sorted(counts) == ["1/3", "2/3", "3/3"], shown
    assert str(repo.parent / "repo.hf" / "b1") in shown
    assert "worktrees:" not in split("b2", stderr_on_tty=False)


def test_a_submodules_worktrees_go_beside_its_superproject_not_into_it(repo, hf, tmp_path):
    """`<repo>.hf/` beside a submodule is inside the superproject's work tree: it
    showed there as untracked (`git add -A` would take the worktrees in). They go
    beside the outermost superproject instead, named after the submodule's path."""
    make_repo(tmp_path / "lib")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q",
        str(tmp_path / "lib"), "vendor/lib")
    git(repo, "commit", "-qm", "add lib")
    sub = repo / "vendor/lib"
    r = hf("split", "b1", "--part", "api=src/api/**", "--json", cwd=sub)
    assert r.code == 0, r.err
    worktree = tmp_path / "repo.vendor.lib.hf" / "b1" / "api"
    assert r.json["data"]["parts"][0]["worktree"] == str(worktree)
    assert (worktree / "src/api/orders.py").is_file()
    assert git(repo, "status", "--porcelain") == ""  # the superproject sees nothing new
    assert git(sub, "worktree", "list").count("\n") == 2
    # the submodule's `core.worktree` is its own, not the part's: git in the part
    # works in the part (before, in the submodule's git directory, every file deleted)
    assert git(worktree, "rev-parse", "--show-toplevel").strip() == str(worktree)
    assert git(worktree, "status", "--porcelain") == ""
    assert git(sub, "status", "--porcelain") == ""
    assert hf("done", cwd=worktree).code == 0
    assert hf("drop", "b1", cwd=sub).code == 0
    assert hf("gc", cwd=sub).code == 0
    assert not (tmp_path / "repo.vendor.lib.hf").exists()


def test_a_bare_repository_worked_through_linked_worktrees_is_refused_untouched(tmp_path, hf):
    """A bare clone worked through `git worktree add` has no main worktree to join
    into: the split refuses in one line naming a way that works, and makes nothing
    (no worktree, no branch, no config). Before, it went ahead, turned per-worktree
    config on beside the shared `core.bare = true`, and every worktree, the
    person's own included, took itself for bare: no git or hf command worked there."""
    source = tmp_path / "source"
    make_repo(source)
    bare, mine = tmp_path / "proj.git", tmp_path / "proj-main"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(bare))
    git(bare, "worktree", "add", "-q", str(mine), "main")
    config = (bare / "config").read_text()
    r = hf("split", "b1", "--part", "api=src/api/**", cwd=mine)
    assert r.code != 0
    assert r.err.splitlines()[0] == (f"hf: error: {bare} is a bare repository: hf joins parts "
                                     "into a main worktree, and this repository has none")
    assert f"`git clone {bare} DIR`" in r.err
    assert (bare / "config").read_text() == config
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".hf")]
    assert git(bare, "branch", "--list", "hf/*") == ""
    assert git(mine, "status", "--porcelain") == ""
    assert git(bare, "worktree", "list").count("\n") == 2



def test_a_repository_with_its_git_dir_apart_is_worked_from_inside_its_parts(tmp_path, hf):
    """`git init --separate-git-dir`: from a linked worktree, git lists the git dir
    itself as the main worktree. hf finds the main tree through the part's marker,
    so `hf done` and `hf status` work inside a part; a linked worktree of the
    person's own is refused with the true reason, not called bare."""
    main, gitdir = tmp_path / "proj", tmp_path / "proj.git"
    main.mkdir()
    git(main, "init", "-q", "-b", "main", "--separate-git-dir", str(gitdir))
    write(main, {"src/api/a.py": "a\n", "src/ui/u.js": "u\n"})
    git(main, "add", "-A")
    git(main, "commit", "-qm", "init")
    assert hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              cwd=main).code == 0
    ui = tmp_path / "proj.hf" / "b1" / "ui"
    write(ui, {"src/ui/u.js": "more\n"})
    r = hf("done", cwd=ui)
    assert r.code == 0, r.err
    r = hf("status", "--json", cwd=ui)
    assert r.code == 0, r.err
    assert {p["name"]: p["state"] for p in r.json["data"]["batches"][0]["parts"]} == {
        "api": "running", "ui": "done"}
    assert hf("done", cwd=tmp_path / "proj.hf" / "b1" / "api").code == 0
    assert hf("join", "b1", cwd=main).code == 0
    assert git(main, "show", "HEAD:src/ui/u.js") == "more\n"
    mine = tmp_path / "mine"
    git(main, "worktree", "add", "-q", str(mine))
    r = hf("status", cwd=mine)
    assert r.code == 1 and "bare" not in r.err
    assert r.err.splitlines()[0] == (
        f"hf: error: git names no main worktree for {mine}: its git dir {gitdir} is kept "
        "apart from the main worktree (`--separate-git-dir`), and only the main worktree's "
        "`.git` file leads to it")

def test_a_part_owning_names_git_quotes_gets_them_listed_as_git_quotes_them(repo, hf):
    """A name that is not UTF-8 (or holds a `"`, a tab) is listed in TASK.md as `git
    ls-files` quotes it, a UTF-8 name as it is; the file stays UTF-8 and `hf task`
    shows it."""
    names = [b"n/lat\xe9", b'n/q"b', b"n/t\tb", "n/café".encode()]
    (repo / "n").mkdir()
    for name in names:
        with open(os.path.join(os.fsencode(repo), name), "wb") as handle:
            handle.write(b"y\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "odd names")
    r = hf("split", "b1", "--part", "names=n/**", cwd=repo)
    assert r.code == 0, r.err
    worktree = repo.parent / "repo.hf" / "b1" / "names"
    text = (worktree / ".hf" / "TASK.md").read_bytes().decode("utf-8")
    quoted = git(repo, "ls-files", "n/lat*", "n/q*", "n/t*").splitlines()
    assert quoted == ['"n/lat\\351"', '"n/q\\"b"', '"n/t\\tb"']
    for shown in [*quoted, "n/café"]:
        assert f"- `{shown}`\n" in text, text
    assert "4 file(s)" in text
    task = hf("task", cwd=worktree)
    assert task.code == 0 and '- `"n/lat\\351"`' in task.out


def test_a_remote_part_owning_a_name_that_is_not_utf8_gets_it_quoted_in_its_prompt(
        repo, hf, tmp_path):
    """The prompt of a remote part (its task ref's TASK.md, `hf task --prompt`) lists
    such a name as git quotes it, as the handoff file does."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    (repo / "n").mkdir()
    with open(os.path.join(os.fsencode(repo), b"n/lat\xe9"), "wb") as handle:
        handle.write(b"y\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a name that is not UTF-8")
    r = hf("split", "b1", "--part", "names=n/**", "--remote", "origin", cwd=repo)
    assert r.code == 0, r.err
    pushed = git(remote, "cat-file", "-p", "refs/hf/task/b1/names:TASK.md")
    assert '- `"n/lat\\351"`\n' in pushed, pushed
    r = hf("task", "b1/names", "--prompt", cwd=repo)
    assert r.code == 0 and '- `"n/lat\\351"`' in r.out


def _refusing_remote(repo: Path, tmp_path: Path) -> Path:
    """A plan of a local part (docs) and a remote one (api) on `origin`, a remote
    that refuses every push: the split fails once the local part is made."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'no pushes today' >&2\nexit 1\n")
    hook.chmod(0o755)
    plan = tmp_path / "plan.toml"
    plan.write_text('batch = "b1"\n\n[[part]]\nname = "docs"\nowns = ["docs/**"]\n\n'
                    '[[part]]\nname = "api"\nowns = ["src/api/**"]\nremote = "origin"\n')
    return plan


def _baselines(batch: str) -> list[Path]:
    """The tamper baseline's copies of `batch` in the user's state dir."""
    return list(Path(os.environ["XDG_STATE_HOME"]).glob(f"hf/baselines/*/{batch}.json"))


def test_a_split_failing_after_its_baseline_leaves_no_baseline_and_no_root(
        repo, hf, tmp_path):
    """A split that fails after the tamper baseline was taken (the remote refuses
    the push) takes it back too, and the worktree root it made (`repo.hf/`)."""
    plan = _refusing_remote(repo, tmp_path)
    r = hf("split", "--plan", str(plan), cwd=repo)
    assert r.code == 1, r.err
    assert "nothing was kept" in r.err and "no pushes today" in r.err
    assert_nothing_created(repo)
    assert not (repo / ".git/hf/guard/b1.json").exists()
    assert _baselines("b1") == []
    assert not (repo.parent / "repo.hf").exists()


def test_a_split_killed_before_its_batch_record_leaves_only_what_was_there(
        repo, hf, tmp_path):
    """A split killed before its batch record is taken back by the next command
    with its baseline and the directories it made above its worktrees' root; a
    directory that was there before stays."""
    import signal

    from conftest import hf_proc

    (tmp_path / "trees").mkdir()
    root = tmp_path / "trees" / "deep"
    proc = hf_proc("split", "b1", "--part", "api=src/api/**", "--worktree-root", str(root),
                   cwd=repo, env={**os.environ, "HF_TEST_CRASH_AT": "split-records"})
    assert proc.returncode == -signal.SIGKILL
    assert (repo / ".git/hf/guard/b1.json").exists() and (root / "b1" / "api").is_dir()
    r = hf("status", cwd=repo)
    assert r.code == 0 and "cut off was removed" in r.err, r.err
    assert not (repo / ".git/hf/guard/b1.json").exists()
    assert _baselines("b1") == []
    assert not root.exists() and (tmp_path / "trees").is_dir()
    assert hf_refs(repo) == [] and not (repo / ".git/hf/batches/b1").exists()


def test_a_glob_or_task_that_is_not_utf8_is_refused_in_one_line(repo, hf):
    """Bytes a command line passed as they were cannot go into the records: one line,
    nothing made; a wildcard glob takes such a file name."""
    import subprocess
    import sys

    name = os.fsdecode(b"src/api/lat\xe9.py")
    (repo / name).write_text("x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a name that is not UTF-8")
    before = snapshot(repo)
    for args, said in (([f"api={name}"], "a glob is not UTF-8 text"),
                       (["api=src/api/**", "--task", os.fsdecode(b"caf\xe9")],
                        "the task is not UTF-8 text")):
        proc = subprocess.run([sys.executable, "-m", "hf_fanout", "split", "b1", "--part",
                               *args], cwd=repo, capture_output=True, check=False)
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == 2 and said in err and "internal error" not in err, err
        assert snapshot(repo) == before
        assert not (repo.parent / "repo.hf").exists()
    r = hf("split", "b1", "--part", "api=src/api/lat*", cwd=repo)
    assert r.code == 0, r.err
    assert (repo.parent / "repo.hf/b1/api" / name).read_text() == "x = 1\n"


def test_a_split_journal_of_the_wrong_shape_is_a_note_not_a_crash(repo, hf):
    """A damaged journal (its `remote` not a table of refs) is said in one note and
    kept for a person to read; the command goes on."""
    journal = repo / ".git/hf/journal/split-b9.json"
    journal.parent.mkdir(parents=True)
    journal.write_text('{"schema": 1, "batch": "b9", "base": "x", "branches": [], '
                       '"worktrees": [], "root": "", "remote": ["oops"]}')
    r = hf("status", cwd=repo)
    assert r.code == 0, r.err
    assert f"hf: note: the journal of a split that was cut off, {journal}, is damaged (a " \
        "field is not what a split writes)" in r.err
    assert "internal error" not in r.err and journal.exists()
    journal.write_text('{"schema": 1, "batch": "b9"}')
    r = hf("status", cwd=repo)
    assert r.code == 0, r.err
    assert "is damaged (it has no 'base')" in r.err and journal.exists()


def _files_checked_again(worktree: Path, tmp_path: Path) -> int:
    """How many files a `git status` in `worktree` has to look at again because it
    cannot trust their stat data (git's trace2 figure `refresh/sum_lstat`)."""
    trace = tmp_path / f"trace-{time.monotonic_ns()}"
    subprocess.run(["git", "--no-optional-locks", "status", "--porcelain"], cwd=worktree,
                   env={**os.environ, "GIT_TRACE2_PERF": str(trace)}, check=True,
                   capture_output=True)
    (figure,) = [line for line in trace.read_text().splitlines() if "refresh/sum_lstat:" in line]
    return int(figure.rsplit("refresh/sum_lstat:", 1)[1])


def test_a_checkout_index_settled_past_its_second_lets_git_trust_the_files(
        large_repo, tmp_path):
    """A new worktree's files written in the same second as its index are racily
    clean: every status reads them again, until the index is dated in a later
    second. Settled, none is; a file changed in place right after (same size,
    same second) is still seen as changed."""
    from hf_fanout.worktrees.repository import Worktree

    for attempt in range(6):  # (until one ends early enough in its last second)
        wt = tmp_path / f"wt{attempt}"
        git(large_repo, "worktree", "add", "-q", "--no-checkout", "-b", f"w{attempt}",
            str(wt), "HEAD")
        tree = Worktree.discover(large_repo).repository.worktree(wt)
        tree.populate(prime=False)
        index = tree.index_file
        newest = max((wt / p).stat().st_mtime_ns for p in git(wt, "ls-files").splitlines())
        os.utime(index, ns=(newest, newest))  # as a checkout within one second leaves it
        if not tree.settle_index():  # the clock is still in that second: not settled
            break
    else:
        pytest.fail("no checkout ended before the second of its last file was over")
    assert index.stat().st_mtime_ns == newest
    assert _files_checked_again(wt, tmp_path) > 0
    from hf_fanout.worktrees.checkout import CLOCK_LAG_NS

    while (time.time_ns() - CLOCK_LAG_NS) // 10**9 <= newest // 10**9:
        time.sleep(0.02)
    assert tree.settle_index()
    assert index.stat().st_mtime_ns // 10**9 > newest // 10**9
    assert _files_checked_again(wt, tmp_path) == 0
    target = wt / next(p for p in git(wt, "ls-files").splitlines() if p.endswith(".py"))
    data = target.read_bytes()
    with target.open("r+b") as handle:  # in place: same inode, same size
        handle.write(bytes([data[0] ^ 1]))
    assert git(wt, "status", "--porcelain").split() == ["M", target.relative_to(wt).as_posix()]


@pytest.mark.parametrize("program", [None, "post-checkout", "post-index-change",
                                     "reference-transaction", "smudge filter"])
def test_a_checkout_that_runs_a_program_is_never_settled(large_repo, program):
    """A hook the checkout runs, or a smudge filter, may rewrite a file in place in
    the checkout's last second: the index of such a checkout is not dated past it
    (git would then trust the rewritten file)."""
    from hf_fanout.worktrees.repository import Worktree

    if program == "smudge filter":
        git(large_repo, "config", "filter.lfs.smudge", "cat")
    elif program is not None:
        hook = large_repo / ".git" / "hooks" / program
        hook.write_text("#!/bin/sh\nexit 0\n")
        hook.chmod(0o755)
    repo = Worktree.discover(large_repo).repository
    assert repo.checkout_runs_programs() is (program is not None)


def test_a_split_run_in_a_linked_worktree_of_ones_own_says_where_it_starts(repo, hf):
    """The person's own worktree is on another branch: the batch still starts from
    (and joins into) the main tree, and the split says so."""
    feat = repo.parent / "feat"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(feat))
    write(feat, {"src/api/orders.py": "feature work\n"})
    git(feat, "commit", "-qam", "feature")
    main_head = git(repo, "rev-parse", "HEAD").strip()
    r = hf("split", "b1", "--part", "api=src/api/**", "--task", "t", "--json", cwd=feat)
    assert r.code == 0, r.err
    warned = [w for w in r.json["data"]["warnings"] if "checked out here" in w]
    assert warned and f"the main tree's main ({main_head[:12]}" in warned[0]
    assert "not from feature checked out here" in warned[0]
    api = repo.parent / "repo.hf" / "b1" / "api"
    assert git(api, "rev-parse", "HEAD").strip() == main_head
    # run in the main tree, nothing to say
    r = hf("split", "b2", "--part", "ui=src/ui/**", "--task", "t", "--json", cwd=repo)
    assert not [w for w in r.json["data"]["warnings"] if "checked out here" in w]


def test_a_brace_glob_owns_each_of_its_alternatives(repo, hf, tmp_path):
    """`src/**/*.{py,js}` is one glob standing for two, as the shell would have
    expanded it: the comma inside braces does not cut it (before: the part owned
    `src/**/*.{py` and `js}`, and its edit of src/api/orders.py was refused at
    join). Nested lists expand too, in flags and plan files alike."""
    r = hf("split", "b1", "--part", "code=src/**/*.{py,js},{tools,docs/o}*/**",
           "--part", "rest=README.md", "--json", cwd=repo)
    assert r.code == 0, r.err
    owns = {p["name"]: p["owns"] for p in r.json["data"]["parts"]}
    assert owns["code"] == ["src/**/*.py", "src/**/*.js", "tools*/**", "docs/o*/**"]
    part = repo.parent / "repo.hf" / "b1" / "code"
    write(part, {"src/api/orders.py": "x = 1\n", "src/ui/app.js": "y = 2\n"})
    for name in ("code", "rest"):
        assert hf("done", cwd=repo.parent / "repo.hf" / "b1" / name).code == 0
    joined = hf("join", "b1", cwd=repo)
    assert joined.code == 0, joined.err
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "src/api/orders.py", "src/ui/app.js"]
    plan = tmp_path / "plan.toml"
    plan.write_text('batch = "b2"\n[[part]]\nname = "web"\nowns = ["src/ui/*.{html,js}"]\n')
    planned = hf("split", "--plan", str(plan), "--dry-run", "--json", cwd=repo)
    assert planned.code == 0, planned.err
    assert planned.json["data"]["parts"][0]["owns"] == ["src/ui/*.html", "src/ui/*.js"]


def test_an_unclosed_brace_in_a_glob_is_refused_in_one_line(repo, hf):
    r = hf("split", "b1", "--part", "api=src/{api/**", cwd=repo)
    assert r.code != 0
    assert r.err.splitlines()[0] == "hf: error: glob 'src/{api/**' opens a brace it does not close"
    assert r.err.splitlines()[1].startswith("hint: close it")
    assert not (repo.parent / "repo.hf").exists()
    assert not git(repo, "for-each-ref", "refs/heads/hf")


def test_a_part_owning_a_name_that_is_not_utf8_is_warned_of_at_split(repo, hf):
    """A join cannot take a change to such a file (libgit2 builds the trees): the
    split says so before an agent works on it; parts that do not own one are not
    warned of."""
    odd = os.fsdecode(b"src/api/caf\xe9.py")
    write(repo, {odd: "old\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a Latin-1 name")
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 0, r.err
    assert [line for line in r.out.splitlines() if line.startswith("warning:")] == [
        'warning: api: owns 1 file(s) whose name is not UTF-8 (such as "src/api/caf\\351.py"): '
        "a join cannot take a change to them (hf builds trees with libgit2, which takes "
        "UTF-8 names only); rename them to UTF-8 names in the main tree first if the part "
        "is to change them"]


def test_a_batch_another_split_is_making_is_already_there_not_missing(repo, hf):
    """Two splits of one id at once: the later one finds the batch's folder made and
    its record not written yet (the other split is half way). It is refused as
    existing; before, it said there was no such batch."""
    (repo / ".git/hf/batches/b1").mkdir(parents=True)
    r = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    assert r.code == 1
    assert r.err.splitlines()[0] == "hf: error: batch 'b1' already exists"
    assert hf_refs(repo) == []


def test_an_lfs_file_not_fetched_fails_the_split_with_the_way_on_and_skip_smudge_works(
        tmp_path, hf, monkeypatch):
    """A clone whose git-lfs files are not fetched: git-lfs's smudge fails in every
    checkout (a stand-in `git-lfs` on PATH that says what git-lfs says, unless
    GIT_LFS_SKIP_SMUDGE=1). The split fails naming git's verdict, not the filter's
    progress line, and nothing is kept; with GIT_LFS_SKIP_SMUDGE=1 (git-lfs's own
    switch, which hf passes on) the split makes the part, pointers in place."""
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "git-lfs").write_text(
        "#!/bin/sh\n"
        "if [ \"$GIT_LFS_SKIP_SMUDGE\" = 1 ]; then exec cat; fi\n"
        "cat >/dev/null; echo 'Downloading assets/a.bin (3.0 KB)' >&2\n"
        "echo 'Error downloading object: assets/a.bin: not on the server' >&2; exit 2\n")
    (tools / "git-lfs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    repo = make_repo(tmp_path / "repo")
    pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 3000\n"
    write(repo, {".gitattributes": "*.bin filter=lfs\n", "assets/a.bin": pointer})
    git(repo, "config", "filter.lfs.clean", "cat")
    git(repo, "-c", "filter.lfs.smudge=cat", "add", "-A")
    git(repo, "commit", "-qm", "an lfs file")
    git(repo, "config", "filter.lfs.smudge", "git-lfs smudge -- %f")
    git(repo, "config", "filter.lfs.required", "true")
    r = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    assert r.code == 1
    first, hint = r.err.splitlines()[:2]
    assert first.startswith("hf: error: split of 'b1' failed, nothing was kept: ")
    assert first.endswith("failed: fatal: assets/a.bin: smudge filter lfs failed"), first
    assert hint == ("hint: git-lfs could not give a file's content (its object is not "
                    "fetched?): `git lfs fetch` it, or put `GIT_LFS_SKIP_SMUDGE=1` before "
                    "the same hf command to leave LFS files as their pointers")
    assert not (tmp_path / "repo.hf" / "b1").exists()
    monkeypatch.setenv("GIT_LFS_SKIP_SMUDGE", "1")
    r = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    assert r.code == 0, r.err
    assert (tmp_path / "repo.hf/b1/api/assets/a.bin").read_text() == pointer


def test_a_glob_matching_nothing_says_why_for_brackets_and_a_linked_folder(tmp_path, hf):
    """`app/[slug]/**` (a Next.js folder: `[...]` is a set of characters) and a path
    through a tracked symbolic link to a folder match no file: the warning names the
    escaped glob that owns the folder, and the link's target; the escaped glob, run,
    owns that folder's file."""
    repo = make_repo(tmp_path / "repo")
    write(repo, {"app/[slug]/page.tsx": "x\n", "pages/a.md": "y\n"})
    (repo / "pages.en").symlink_to("pages")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a folder with brackets, a linked folder")
    r = hf("split", "b1", "--part", "app=app/[slug]/**", "--part", "en=pages.en/**",
           "--dry-run", cwd=repo)
    assert r.code == 0, r.err
    warnings = [line for line in (r.out + r.err).splitlines() if line.startswith("warning: ")]
    assert ("warning: app: app/[slug]/** matches no file of the base tree (new files "
            "only); `[...]` is a set of characters in a glob: `app/\\[slug\\]/**` owns the "
            "folder named with brackets (1 file(s))") in warnings, warnings
    assert ("warning: en: pages.en/** matches no file of the base tree (new files only); "
            "pages.en is a symbolic link to pages in the base tree: own the files where "
            "they are, below pages") in warnings, warnings
    r = hf("split", "b1", "--part", "app=app/\\[slug\\]/**", "--dry-run", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert [o["matches"] for o in r.json["data"]["ownership"]] == [1], r.json["data"]


def test_a_part_owning_a_submodule_is_warned_that_a_join_takes_no_change_to_it(
        repo, hf, tmp_path):
    """A part owning a submodule (or paths inside one) can never join a change there:
    the split says so before the agent works; a part owning none hears nothing."""
    make_repo(tmp_path / "lib")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q",
        str(tmp_path / "lib"), "vendor/lib")
    git(repo, "commit", "-qm", "add lib")
    said = (": owns submodule(s) vendor/lib: a join takes no change to a submodule (its "
            "commit, or files in its folder); change submodules in the main tree, outside "
            "the batch")
    for owns, name in (("vendor/**", "ve"), ("vendor/lib/src/**", "inside")):
        r = hf("split", "b1", "--part", f"{name}={owns}", "--part", "api=src/api/**",
               "--dry-run", cwd=repo)
        assert r.code == 0, r.err
        warned = [line for line in (r.out + r.err).splitlines()
                  if line.startswith("warning: ") and "submodule" in line]
        assert warned == [f"warning: {name}{said}"], warned
