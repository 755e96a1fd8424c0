from conftest import git


def test_split_done_join_smoke(split3, hf):
    repo = split3["repo"]
    (split3["api"] / "src/api/new.py").write_text("x = 1\n")
    (split3["docs"] / "README.md").write_text("# changed\n")
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "src/api/new.py").read_text() == "x = 1\n"
    assert "Hf-Batch: b1" in git(repo, "log", "-1", "--format=%B")
