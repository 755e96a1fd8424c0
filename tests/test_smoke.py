from pathlib import Path

from conftest import git, hf_proc


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


def test_demo_tells_each_step_once_and_leaves_nothing_behind(tmp_path):
    """README's first command, as a newcomer sees it: a real process, every step
    numbered and named once, the join's commit shown, the main tree clean, and
    the throwaway repository gone afterwards."""
    proc = hf_proc("demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    steps = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    names = [line.split("]", 1)[1].split(":", 1)[0].strip() for line in steps]
    assert names == ["repository", "split", "agent api", "agent ui", "agent docs", "status",
                     "join", "result", "main tree"]
    for part in ("api", "ui", "docs"):
        line = next(s for s in steps if s.split("]", 1)[1].startswith(f" agent {part}:"))
        assert line.count(f"agent {part}") == 1, line
        assert "edited its files in " in line
    assert "Hf-Batch: search" in proc.stdout
    assert steps[-1].endswith("main tree: clean")
    made = proc.stdout.split("made ", 1)[1].split(" ", 1)[0]
    assert not Path(made).exists()
