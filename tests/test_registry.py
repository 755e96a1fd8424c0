"""The user's registry of repositories: a damaged one is reported, never treated as empty."""

import json
import os
from pathlib import Path


def registry() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "hf" / "repos.json"


def test_split_registers_the_repository(split3):
    data = json.loads(registry().read_text())
    assert str(split3["repo"] / ".git") in data["repos"]


def test_a_damaged_registry_is_reported_and_left_untouched(repo, hf):
    registry().parent.mkdir(parents=True, exist_ok=True)
    registry().write_text('{"repos": ["/somewhere/else/.git"')  # torn
    r = hf("sweep", "--json", cwd=repo)
    assert r.code == 1
    assert r.json["error"]["code"] == "state_corrupt" and "repos.json" in r.json["error"]["message"]
    # a split still works, says the registry could not be updated, and leaves it alone
    r = hf("split", "b1", "--part", "api=src/api/**", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert any("registry" in w for w in r.json["data"]["warnings"])
    assert registry().read_text() == '{"repos": ["/somewhere/else/.git"'
