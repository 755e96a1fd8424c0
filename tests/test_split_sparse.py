"""`hf split --sparse`: each part's worktree holds only its own files and its context,
and joins exactly as a full one does."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import BASE_FILES, git, make_repo, snapshot, write

SPARSE = ["split", "b1", "--part", "api=src/api/**", "--part", "docs=docs/**,README.md",
          "--sparse", "--context", "tools/run.sh"]


def files_in(worktree: Path) -> set[str]:
    """Every file in a worktree (its .git and hf's own .hf/ left out)."""
    found = set()
    for directory, subdirs, names in os.walk(worktree):
        subdirs[:] = [d for d in subdirs if d not in (".git", ".hf")]
        found.update(Path(directory, n).relative_to(worktree).as_posix() for n in names)
    return found - {".git"}


def part_dir(repo: Path, name: str) -> Path:
    return repo.parent / "repo.hf" / "b1" / name


def test_a_sparse_part_holds_its_own_files_and_its_context_only(repo, hf):
    before = snapshot(repo)
    r = hf(*SPARSE, cwd=repo)
    assert r.code == 0, r.err
    assert "sparse checkout: its own files and tools/run.sh" in r.out
    api, docs = part_dir(repo, "api"), part_dir(repo, "docs")
    assert files_in(api) == {"src/api/orders.py", "src/api/users.py", "tools/run.sh"}
    assert files_in(docs) == {"README.md", "docs/guide.md", "docs/old.md", "tools/run.sh"}
    # a normal worktree to the agent: clean, on its branch, at the base
    for wt in (api, docs):
        assert git(wt, "status", "--porcelain") == ""
        assert git(wt, "rev-parse", "HEAD") == git(repo, "rev-parse", "HEAD")
        assert git(wt, "sparse-checkout", "list").split()[0].startswith("/")
    # the main tree is untouched and is no sparse checkout
    assert snapshot(repo) == before
    assert git(repo, "config", "--get", "core.sparseCheckout", check=False) == ""
    record = json.loads((repo / ".git/hf/batches/b1/parts/api.json").read_text())
    assert record["sparse"] is True and record["context"] == ["tools/run.sh"]


def test_status_shows_which_parts_are_sparse(repo, hf):
    assert hf(*SPARSE, cwd=repo).code == 0
    parts = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["parts"]
    assert [(p["name"], p["sparse"], p["context"]) for p in parts] == [
        ("api", True, ["tools/run.sh"]), ("docs", True, ["tools/run.sh"])]
    human = hf("status", "b1", cwd=repo).out
    assert "api: sparse checkout: its own files and tools/run.sh" in human
    assert "hf widen b1/api GLOB" in human


def test_the_settings_make_parts_sparse_and_a_flag_overrides_them(repo, hf):
    write(repo, {".hf.toml": 'sparse = true\ncontext = ["tools/**"]\n'})
    git(repo, "add", ".hf.toml")
    git(repo, "commit", "-qm", "settings")
    r = hf("split", "b1", "--part", "api=src/api/**", "--context", "README.md", cwd=repo)
    assert r.code == 0, r.err
    assert files_in(part_dir(repo, "api")) == {
        "src/api/orders.py", "src/api/users.py", "tools/run.sh", "README.md"}
    r = hf("split", "b2", "--part", "api=src/api/**", "--full", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert r.json["data"]["parts"][0]["sparse"] is False
    full = repo.parent / "repo.hf" / "b2" / "api"
    assert files_in(full) == set(BASE_FILES) | {".hf.toml"}


def test_a_plan_file_names_sparse_and_context_per_batch_and_part(repo, hf, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('batch = "b1"\nsparse = true\ncontext = ["README.md"]\n'
                    '[[part]]\nname = "api"\nowns = ["src/api/**"]\ncontext = ["src/ui/app.js"]\n'
                    '[[part]]\nname = "ui"\nowns = ["src/ui/**"]\n')
    r = hf("split", "--plan", str(plan), cwd=repo)
    assert r.code == 0, r.err
    assert files_in(part_dir(repo, "api")) == {
        "src/api/orders.py", "src/api/users.py", "README.md", "src/ui/app.js"}
    assert files_in(part_dir(repo, "ui")) == {"src/ui/page.html", "src/ui/app.js", "README.md"}


@pytest.mark.parametrize(("settings", "needle"), [
    ('sparse = "yes"\n', "sparse = 'yes' in the settings is not true or false"),
    ("context = 3\n", "context = 3 in the settings is not a list of globs"),
])
def test_bad_sparse_settings_are_refused_before_anything_is_made(repo, hf, settings, needle):
    write(repo, {".hf.toml": settings})
    r = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    assert r.code == 2 and needle in r.err
    assert git(repo, "worktree", "list").count("\n") == 1


@pytest.mark.parametrize("args", [["--context", "../up"], ["--context", ".git/config"]])
def test_bad_context_globs_are_refused(repo, hf, args):
    r = hf("split", "b1", "--part", "api=src/api/**", "--sparse", *args, cwd=repo)
    assert r.code == 2, r.out
    assert "bad ownership glob" in r.err
    assert not (repo.parent / "repo.hf").exists()


def edit(parts: dict[str, Path]) -> None:
    """The same work in either kind of batch: api commits one change and leaves
    another; docs adds, deletes and changes a file it owns."""
    api, docs = parts["api"], parts["docs"]
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    git(api, "commit", "-qam", "api: orders")
    write(api, {"src/api/search.py": "def search():\n    pass\n"})
    (docs / "docs/old.md").unlink()
    write(docs, {"README.md": "# demo, joined\n", "docs/new.md": "new\n"})


def joined_tree(root: Path, hf: Any, *extra: str) -> str:
    root.parent.mkdir()
    repo = make_repo(root)
    assert hf("split", "b1", "--part", "api=src/api/**", "--part", "docs=docs/**,README.md",
              *extra, cwd=repo).code == 0
    parts = {n: root.parent / f"{root.name}.hf" / "b1" / n for n in ("api", "docs")}
    edit(parts)
    for name in parts:
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "status", "--porcelain") == ""
    return git(repo, "rev-parse", "HEAD^{tree}").strip()


def test_a_sparse_part_joins_exactly_like_a_full_one(tmp_path, hf):
    full = joined_tree(tmp_path / "full" / "repo", hf)
    sparse = joined_tree(tmp_path / "sparse" / "repo", hf, "--sparse")
    assert sparse == full
    # and nothing the sparse parts did not check out was deleted by the join
    listed = git(tmp_path / "sparse" / "repo", "ls-tree", "-r", "--name-only", "HEAD").split()
    assert {"src/ui/page.html", "src/ui/app.js", "tools/run.sh"} <= set(listed)


@pytest.mark.parametrize("outside", ["src/ui/app.js", "src/ui/new.js", "tools/run.sh"])
def test_a_write_outside_the_sparse_set_is_refused_at_join(repo, hf, outside):
    """A path the part did not check out (tracked or new), or one of its context
    files: written all the same, the join refuses it and writes nothing."""
    assert hf(*SPARSE, cwd=repo).code == 0
    api = part_dir(repo, "api")
    write(api, {"src/api/orders.py": "changed\n", outside: "written anyway\n"})
    git(api, "add", "--sparse", "-A")  # (git refuses a plain add outside the sparse set)
    assert hf("done", "b1/api", cwd=repo).code == 0
    before = snapshot(repo)
    r = hf("join", "b1", "--partial", cwd=repo)
    assert r.code == 1
    assert f"api: {outside}" in r.err
    assert snapshot(repo) == before


def test_a_main_tree_that_is_a_sparse_checkout_gives_full_parts_all_their_files(repo, hf):
    """`git worktree add` copies the main tree's sparse-checkout settings into every
    new worktree: a part that owns what the main tree leaves out got none of its
    files, and an agent writing them from nothing replaced them at the join."""
    git(repo, "sparse-checkout", "set", "src/api")
    assert not (repo / "src/ui/app.js").exists()  # (the person works on the api only)
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 0, r.err
    ui = part_dir(repo, "ui")
    assert files_in(ui) == set(BASE_FILES)
    assert git(ui, "config", "--bool", "core.sparseCheckout", check=False).strip() != "true"
    shown = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["parts"]
    assert [p["sparse"] for p in shown] == [False, False]
    # a sparse part still gets its own patterns, not the main tree's
    r = hf("split", "b2", "--part", "ui=src/ui/**", "--sparse", cwd=repo)
    assert r.code == 0, r.err
    assert files_in(repo.parent / "repo.hf" / "b2" / "ui") == {"src/ui/page.html", "src/ui/app.js"}
    # and the main tree stays the sparse checkout it was
    assert not (repo / "src/ui/app.js").exists()
    assert git(repo, "sparse-checkout", "list").split() == ["src/api"]


def test_a_sparse_part_joins_its_files_through_the_attributes_like_a_full_one(tmp_path, hf):
    """The repository's `.gitattributes` normalises line ends and runs a clean filter;
    a sparse part owns none of it. Its new files must land in main as `git add`
    stores them (LF, filtered), not as the raw bytes on disk."""
    blobs = {}
    for kind in ("full", "sparse"):
        (tmp_path / kind).mkdir()
        repo = make_repo(tmp_path / kind / "repo")
        write(repo, {".gitattributes": "*.txt text=auto\n*.secret filter=rot\n"})
        git(repo, "config", "filter.rot.clean", "tr A-Za-z N-ZA-Mn-za-m")
        git(repo, "config", "filter.rot.smudge", "tr A-Za-z N-ZA-Mn-za-m")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "attributes")
        extra = ["--sparse"] if kind == "sparse" else []
        assert hf("split", "b1", "--part", "api=src/api/**", *extra, cwd=repo).code == 0
        api = tmp_path / kind / "repo.hf" / "b1" / "api"
        assert (api / ".gitattributes").is_file()
        write(api, {"src/api/notes.txt": b"one\r\ntwo\r\n", "src/api/key.secret": "Hello\n"})
        assert hf("done", "b1/api", cwd=repo).code == 0
        r = hf("join", "b1", cwd=repo)
        assert r.code == 0, r.err
        blobs[kind] = [git(repo, "cat-file", "blob", f"HEAD:src/api/{name}")
                       for name in ("notes.txt", "key.secret")]
    assert blobs["full"] == ["one\ntwo\n", "Uryyb\n"]
    assert blobs["sparse"] == blobs["full"]
