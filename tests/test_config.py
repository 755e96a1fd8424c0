"""The settings files: `.hf.toml` and the user's config. A key hf does not read (a
misspelling, most often) is ignored, and `hf doctor` and `hf split` say so, with
the key it most looks like."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import BASE_FILES, git, write

from hf_fanout import config

SOURCE = Path(config.__file__).parent
# how the code reads a setting: ws.settings.get("key"), .number("key", ...), a
# string list of `copy` / `setup`, a limit by its constant
_READS = re.compile(r"settings\.(?:get|number|flag|text)\(\s*\"([a-z_]+)\"|"
                    r"_string_list\(ws, \"([a-z_]+)\"\)|^MAX_[A-Z_]+ = \"([a-z_]+)\"", re.M)


def part_dir(repo: Path, name: str, batch: str = "b1") -> Path:
    return repo.parent / "repo.hf" / batch / name


def test_every_key_the_code_reads_is_a_known_key():
    read = set()
    for source in SOURCE.rglob("*.py"):
        for match in _READS.finditer(source.read_text(encoding="utf-8")):
            read.add(next(g for g in match.groups() if g))
    # the scan finds the settings of every kind of reader
    assert {"sparse", "worktree_root", "copy", "setup", "max_live_agents",
            "keep_history"} <= read
    assert read - config.KNOWN_KEYS == set()


def test_a_misspelt_key_is_a_doctor_problem_naming_the_key_it_looks_like(repo, hf):
    write(repo, {".hf.toml": 'sparce = true\nworktree_root = "../wt"\n'})
    r = hf("doctor", cwd=repo)
    assert r.code == 1
    line = next(ln for ln in r.out.splitlines() if "sparce" in ln)
    assert "did you mean `sparse`?" in line and "ignored" in line
    assert "worktree_root" not in r.out.replace("did you mean", "")
    problems = [f for f in hf("doctor", "--json", cwd=repo).json["data"]["findings"]
                if f["what"] == "settings"]
    assert [f["level"] for f in problems] == ["problem"]


def test_a_misspelt_key_of_the_guard_table_is_named_with_the_table(repo, hf):
    write(repo, {".hf.toml": '[guard]\nalow = ["tag"]\nrefuse = []\n'})
    r = hf("doctor", cwd=repo)
    assert r.code == 1
    assert "sets `guard.alow`, which hf does not read (did you mean `guard.allow`?)" in r.out
    assert "guard.refuse" not in r.out


def test_a_known_key_only_is_no_settings_finding(repo, hf):
    write(repo, {".hf.toml": 'sparse = false\nidle_minutes = 30\n[guard]\n'})
    findings = hf("doctor", "--json", cwd=repo).json["data"]["findings"]
    assert [f for f in findings if f["what"] == "settings"] == []


def test_the_split_warns_of_a_misspelt_key_and_goes_on_without_it(repo, hf):
    write(repo, {".hf.toml": 'sparce = true\n'})
    git(repo, "add", ".hf.toml")
    git(repo, "commit", "-qm", "settings")
    r = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    assert r.code == 0, r.err
    assert re.search(r"warning: .*\.hf\.toml sets `sparce`, which hf does not read"
                     r" \(did you mean `sparse`\?\): it is ignored", r.out)
    # not sparse: the misspelt key was not taken for the real one
    assert set(BASE_FILES) <= {str(p.relative_to(part_dir(repo, "api")))
                               for p in part_dir(repo, "api").rglob("*") if p.is_file()}


def test_a_key_of_the_users_own_config_is_named_with_its_file(repo, hf, monkeypatch, tmp_path):
    home = tmp_path / "config-home"
    (home / "hf").mkdir(parents=True)
    (home / "hf" / "config.toml").write_text('lanucher = "tmux"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    r = hf("doctor", cwd=repo)
    assert r.code == 1
    assert f"{home / 'hf' / 'config.toml'} sets `lanucher`" in r.out
    assert "did you mean `launcher`?" in r.out
