"""`hf join --keep-history`: one merge commit, the squash join's tree exactly, with
main and each part's commits as parents; after `hf gc` the parts' commits are still
reachable from main."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import git, make_repo, write


def split_and_work(root: Path, hf: Any) -> dict[str, Path]:
    """The same batch, the same work, in a fresh repository at `root`."""
    repo = make_repo(root)
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
           "--part", "docs=docs/**,README.md", "--task", "add search", cwd=repo)
    assert r.code == 0, r.err
    parts = {n: root.parent / f"{root.name}.hf" / "b1" / n for n in ("api", "ui", "docs")}
    api, ui, docs = parts["api"], parts["ui"], parts["docs"]
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    git(api, "commit", "-qam", "api: orders return one")
    write(api, {"src/api/search.py": "def search():\n    return []\n"})
    git(api, "add", "-A")
    git(api, "commit", "-qm", "api: search")
    write(api, {"src/api/users.py": "def users():\n    return ['uncommitted']\n"})
    (ui / "src/ui/page.html").unlink()
    git(ui, "commit", "-qam", "ui: no page")
    write(docs, {"README.md": "# demo, searched\n"})  # uncommitted only
    # main moves on a path no part owns: the join merges three-way
    write(repo, {"tools/run.sh": "#!/bin/sh\necho main\n"})
    git(repo, "commit", "-qam", "main: run")
    for worktree in parts.values():
        assert hf("done", cwd=worktree).code == 0
    return {"repo": repo, **parts}


def test_keep_history_has_the_squash_tree_and_the_parts_as_parents(tmp_path, hf):
    squash = split_and_work(tmp_path / "one", hf)
    kept = split_and_work(tmp_path / "two", hf)
    squash_tip = git(squash["api"], "rev-parse", "HEAD").strip()
    assert hf("join", "b1", cwd=squash["repo"]).code == 0
    # a squash join leaves the parts' branches where they were
    assert git(squash["repo"], "rev-parse", "hf/b1/api").strip() == squash_tip
    main_before = git(kept["repo"], "rev-parse", "HEAD").strip()
    tips = {n: git(kept[n], "rev-parse", "HEAD").strip() for n in ("api", "ui", "docs")}
    r = hf("join", "b1", "--keep-history", cwd=kept["repo"])
    assert r.code == 0, r.err

    tree = git(kept["repo"], "rev-parse", "HEAD^{tree}").strip()
    assert tree == git(squash["repo"], "rev-parse", "HEAD^{tree}").strip()
    assert git(squash["repo"], "log", "-1", "--format=%P").split() == [
        git(squash["repo"], "rev-parse", "HEAD~1").strip()]
    parents = git(kept["repo"], "log", "-1", "--format=%P").split()
    assert parents[0] == main_before
    assert len(parents) == 4
    # ui committed everything: its tip itself; api and docs had uncommitted work,
    # committed by hf on their tips
    assert parents[2] == tips["ui"]
    for index, name in ((1, "api"), (3, "docs")):
        assert git(kept["repo"], "rev-parse", f"{parents[index]}~1").strip() == tips[name]
        assert git(kept["repo"], "log", "-1", "--format=%s", parents[index]).strip() == \
            f"hf: uncommitted work of part {name} at join"
        assert "Hf-Batch: b1" in git(kept["repo"], "log", "-1", "--format=%b", parents[index])
    subjects = git(kept["repo"], "log", "--format=%s").splitlines()
    for subject in ("api: orders return one", "api: search", "ui: no page", "main: run"):
        assert subject in subjects
    assert git(kept["repo"], "status", "--porcelain").strip() == ""
    blame = git(kept["repo"], "blame", "--porcelain", "src/api/search.py")
    assert "summary api: search" in blame

    # gc removes the branches; nothing of the parts is lost
    assert hf("gc", "b1", cwd=kept["repo"]).code == 0
    assert git(kept["repo"], "branch", "--list", "hf/*").strip() == ""
    for name in ("api", "ui", "docs"):
        git(kept["repo"], "merge-base", "--is-ancestor", tips[name], "HEAD")


def test_keep_history_is_a_setting_too(tmp_path, hf):
    kept = split_and_work(tmp_path / "one", hf)
    write(kept["repo"], {".hf.toml": "keep_history = true\n"})
    git(kept["repo"], "add", ".hf.toml")
    git(kept["repo"], "commit", "-qm", "config")
    r = hf("join", "b1", cwd=kept["repo"])
    assert r.code == 0, r.err
    assert len(git(kept["repo"], "log", "-1", "--format=%P").split()) == 4
    # and --squash overrides it
    again = split_and_work(tmp_path / "two", hf)
    write(again["repo"], {".hf.toml": "keep_history = true\n"})
    git(again["repo"], "add", ".hf.toml")
    git(again["repo"], "commit", "-qm", "config")
    assert hf("join", "b1", "--squash", cwd=again["repo"]).code == 0
    assert len(git(again["repo"], "log", "-1", "--format=%P").split()) == 1
    bad = split_and_work(tmp_path / "three", hf)
    write(bad["repo"], {".hf.toml": "keep_history = 'yes'\n"})
    r = hf("join", "b1", cwd=bad["repo"])
    assert r.code == 2 and "keep_history = 'yes'" in r.err


def files_of(worktree: Path) -> dict[str, bytes]:
    return {str(p.relative_to(worktree)): p.read_bytes() for p in sorted(worktree.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(worktree).parts}


def test_keep_history_moves_the_part_branch_onto_its_uncommitted_work(tmp_path, hf):
    kept = split_and_work(tmp_path / "one", hf)
    api, ui = kept["api"], kept["ui"]
    git(api, "add", "src/api/users.py")  # staged; the rest of its work is not
    tips = {n: git(kept[n], "rev-parse", "HEAD").strip() for n in ("api", "ui", "docs")}
    before = {n: files_of(kept[n]) for n in ("api", "ui", "docs")}
    r = hf("join", "b1", "--keep-history", "--json", cwd=kept["repo"])
    assert r.code == 0, r.err
    assert r.json["data"]["branches"] == {"api": "moved", "docs": "moved"}
    parents = git(kept["repo"], "log", "-1", "--format=%P").split()
    for name in ("api", "docs"):
        tip = git(kept["repo"], "rev-parse", f"hf/b1/{name}").strip()
        assert tip in parents and git(kept["repo"], "rev-parse", f"{tip}~1").strip() == \
            tips[name]
        assert git(kept["repo"], "log", "-1", "--format=%s", f"hf/b1/{name}").strip() == \
            f"hf: uncommitted work of part {name} at join"
        # the worktree shows nothing new: no work staged in reverse, no change left
        worktree = kept[name]
        assert git(worktree, "rev-parse", "HEAD").strip() == tip
        assert git(worktree, "status", "--porcelain", "--untracked-files=all").strip() == ""
        assert git(worktree, "diff", "--cached", "--name-only").strip() == ""
        assert files_of(worktree) == before[name]
    assert git(kept["repo"], "rev-parse", "hf/b1/ui").strip() == tips["ui"]  # all committed
    assert files_of(ui) == before["ui"]
    moves = [line for line in (kept["repo"] / ".git/hf/audit.log").read_text().splitlines()
             if '"hf join --keep-history"' in line]
    assert len(moves) == 2
    # gc removes the branches; the commits they pointed at are in main's history
    moved = [git(kept["repo"], "rev-parse", f"hf/b1/{n}").strip() for n in ("api", "docs")]
    assert hf("gc", "b1", cwd=kept["repo"]).code == 0
    assert git(kept["repo"], "branch", "--list", "hf/*").strip() == ""
    for commit in moved:
        git(kept["repo"], "merge-base", "--is-ancestor", commit, "HEAD")


def test_a_branch_whose_index_is_locked_stays_at_its_tip_and_nothing_is_lost(tmp_path, hf):
    kept = split_and_work(tmp_path / "one", hf)
    api = kept["api"]
    tip = git(api, "rev-parse", "HEAD").strip()
    lock = Path(git(api, "rev-parse", "--absolute-git-dir").strip()) / "index.lock"
    lock.write_bytes(b"")  # a git command of the agent's holds its index
    r = hf("join", "b1", "--keep-history", cwd=kept["repo"])
    assert r.code == 0, r.err
    assert "part api: hf/b1/api left at its tip: its index could not be written" in r.out
    assert "part docs: its uncommitted work is commit" in r.out
    assert git(kept["repo"], "rev-parse", "hf/b1/api").strip() == tip
    lock.unlink()
    # the work is in the merge all the same, and still in the worktree
    parents = git(kept["repo"], "log", "-1", "--format=%P").split()
    result = next(p for p in parents[1:]
                  if git(kept["repo"], "rev-parse", f"{p}~1").strip() == tip)
    assert git(kept["repo"], "show", f"{result}:src/api/users.py") == \
        "def users():\n    return ['uncommitted']\n"
    assert git(api, "status", "--porcelain").strip() == "M src/api/users.py"


def test_keep_history_refuses_a_part_commit_outside_its_ownership(tmp_path, hf):
    """A part's commit changed a path it does not own and a later one put it back:
    the squash join takes the net owned change, but kept history would bring that
    commit into main's (`git log README` would find it), so it is refused; a merge
    of main into a part brings nothing of its own and is no reason to refuse."""
    repo = make_repo(tmp_path / "r")
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
           "--task", "t", cwd=repo)
    assert r.code == 0, r.err
    api, ui = (tmp_path / "r.hf" / "b1" / n for n in ("api", "ui"))
    bypass = ("-c", "core.hooksPath=/dev/null")  # (the guard's hooks would refuse it)
    readme = (repo / "README.md").read_text()
    write(ui, {"README.md": "# taken over\n", "src/ui/app.js": "ui()\n"})
    git(ui, *bypass, "commit", "-qam", "ui: and the readme")
    write(ui, {"README.md": readme})
    git(ui, *bypass, "commit", "-qam", "ui: readme back")
    write(repo, {"tools/run.sh": "#!/bin/sh\necho main\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "main: run")
    write(api, {"src/api/orders.py": "def orders():\n    return [2]\n"})
    git(api, "commit", "-qam", "api: orders")
    assert hf("sync", "--merge", cwd=api).code == 0  # (main's tip merged into api)
    assert len(git(api, "log", "-1", "--format=%P").split()) == 2
    for worktree in (api, ui):
        assert hf("done", cwd=worktree).code == 0
    before = git(repo, "rev-parse", "HEAD").strip()
    r = hf("join", "b1", "--keep-history", cwd=repo)
    assert r.code == 1
    assert "part 'ui': its commit" in r.err and "README.md" in r.err and "--squash" in r.err
    assert "part 'api'" not in r.err
    assert git(repo, "rev-parse", "HEAD").strip() == before
    r = hf("join", "b1", "--squash", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "README.md").read_text() == readme
    assert (repo / "src/ui/app.js").read_text() == "ui()\n"
    assert "ui: and the readme" not in git(repo, "log", "--format=%s", "HEAD")
