"""`hf widen`: more of the tree in a sparse part's checkout, to read."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, snapshot, write
from test_split_sparse import SPARSE, files_in, part_dir


def record(repo: Path, name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (repo / f".git/hf/batches/b1/parts/{name}.json").read_text())
    return data


def test_widen_checks_out_the_files_and_records_the_context(repo, hf):
    assert hf(*SPARSE, cwd=repo).code == 0
    api = part_dir(repo, "api")
    r = hf("widen", "b1/api", "src/ui/**", "docs/guide.md", cwd=repo)
    assert r.code == 0, r.err
    assert "added src/ui/**, docs/guide.md" in r.out
    assert files_in(api) == {"src/api/orders.py", "src/api/users.py", "tools/run.sh",
                             "src/ui/page.html", "src/ui/app.js", "docs/guide.md"}
    assert git(api, "status", "--porcelain") == ""
    assert record(repo, "api")["context"] == ["tools/run.sh", "src/ui/**", "docs/guide.md"]
    assert record(repo, "api")["owns"] == ["src/api/**"]  # reading is not owning
    assert files_in(part_dir(repo, "docs")) == {  # the other part is as it was
        "README.md", "docs/guide.md", "docs/old.md", "tools/run.sh"}
    audit = (repo / ".git/hf/audit.log").read_text().splitlines()
    assert json.loads(audit[-1])["action"] == "widen"


def test_widen_from_inside_the_part_and_as_json(repo, hf):
    assert hf(*SPARSE, cwd=repo).code == 0
    r = hf("widen", "b1/api", "src/ui/app.js", "--json", cwd=part_dir(repo, "api"))
    assert r.code == 0, r.err
    assert r.json["data"]["added"] == ["src/ui/app.js"]
    assert r.json["data"]["part"]["context"] == ["tools/run.sh", "src/ui/app.js"]


def test_what_the_checkout_has_already_is_a_noop(repo, hf):
    assert hf(*SPARSE, cwd=repo).code == 0
    r = hf("widen", "b1/api", "tools/run.sh", "src/api/**", cwd=repo)
    assert r.code == 0
    assert "nothing to do" in r.out
    assert record(repo, "api")["context"] == ["tools/run.sh"]


def test_a_dry_run_changes_nothing(repo, hf):
    assert hf(*SPARSE, cwd=repo).code == 0
    api = part_dir(repo, "api")
    before = files_in(api)
    r = hf("widen", "b1/api", "src/ui/**", "--dry-run", cwd=repo)
    assert r.code == 0 and "would add src/ui/**" in r.out
    assert files_in(api) == before
    assert record(repo, "api")["context"] == ["tools/run.sh"]


def test_a_full_part_and_bad_globs_are_refused(repo, hf):
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    r = hf("widen", "b1/api", "docs/**", cwd=repo)
    assert r.code == 1
    assert "is a full checkout" in r.err and "--sparse" in r.err
    assert hf("split", "b2", "--part", "api=src/api/**", "--sparse", cwd=repo).code == 0
    r = hf("widen", "b2/api", "../elsewhere", cwd=repo)
    assert r.code == 2 and "bad ownership glob" in r.err


def test_a_widened_file_is_still_not_the_parts_to_change(repo, hf):
    assert hf(*SPARSE, cwd=repo).code == 0
    assert hf("widen", "b1/api", "src/ui/app.js", cwd=repo).code == 0
    api = part_dir(repo, "api")
    write(api, {"src/ui/app.js": "changed by api\n"})
    assert hf("done", "b1/api", cwd=repo).code == 0
    before = snapshot(repo)
    r = hf("join", "b1", "--partial", cwd=repo)
    assert r.code == 1 and "api: src/ui/app.js" in r.err
    assert snapshot(repo) == before


def test_a_joined_part_cannot_be_widened(repo, hf):
    assert hf(*SPARSE, cwd=repo).code == 0
    for name in ("api", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    r = hf("widen", "b1/api", "src/ui/**", cwd=repo)
    assert r.code == 1 and "is joined" in r.err
