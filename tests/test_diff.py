"""`hf diff`: per part, the owned changes the join would bring (committed and
uncommitted, untracked too) as an exact patch, and the changes outside its
ownership listed with their owners."""

from __future__ import annotations

from conftest import git, write

PATCH = """\
diff --git a/src/api/new.py b/src/api/new.py
new file mode 100644
index 0000000..{new}
--- /dev/null
+++ b/src/api/new.py
@@ -0,0 +1 @@
+# untracked
diff --git a/src/api/orders.py b/src/api/orders.py
index {orders_old}..{orders_new} 100644
--- a/src/api/orders.py
+++ b/src/api/orders.py
@@ -1,2 +1,2 @@
 def orders():
-    return []
+    return [1]
diff --git a/src/api/users.py b/src/api/users.py
index {users_old}..{users_new} 100644
--- a/src/api/users.py
+++ b/src/api/users.py
@@ -1,2 +1,2 @@
 def users():
-    return []
+    return [2]
"""


def blob(repo, text: str) -> str:
    return git(repo, "hash-object", "--stdin", input=text.encode()).strip()[:7]


def worked(split3):
    api = split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    git(api, "commit", "-qam", "committed work")
    write(api, {"src/api/users.py": "def users():\n    return [2]\n",  # uncommitted
                "src/api/new.py": "# untracked\n",
                "src/ui/page.html": "<p>not mine</p>\n",  # ui's
                "tools/run.sh": "#!/bin/sh\necho mine\n"})  # nobody's
    return api


def test_diff_shows_the_owned_patch_and_lists_what_the_join_refuses(split3, hf):
    repo = split3["repo"]
    worked(split3)
    r = hf("diff", "b1", "api", cwd=repo)
    assert r.code == 0, r.err
    expected = PATCH.format(
        new=blob(repo, "# untracked\n"),
        orders_old=blob(repo, "def orders():\n    return []\n"),
        orders_new=blob(repo, "def orders():\n    return [1]\n"),
        users_old=blob(repo, "def users():\n    return []\n"),
        users_new=blob(repo, "def users():\n    return [2]\n"))
    head, rest = r.out.split("\n", 1)
    assert head == "# part api: 3 owned change(s) the join brings"
    patch, outside = rest.split("# part api: 2 change(s) outside its ownership", 1)
    assert patch == expected
    assert outside.splitlines()[1:] == ["#   src/ui/page.html (owned by part ui)",
                                        "#   tools/run.sh (owned by no part)"]
    # the worktree and its index were only read
    assert git(split3["api"], "status", "--porcelain").splitlines() == [
        " M src/api/users.py", " M src/ui/page.html", " M tools/run.sh", "?? src/api/new.py"]


def test_diff_json_stat_and_name_only_for_every_part(split3, hf):
    repo = split3["repo"]
    worked(split3)
    r = hf("diff", "b1", "--json", "--name-only", cwd=repo)
    assert r.code == 0, r.err
    parts = {p["part"]: p for p in r.json["data"]["parts"]}
    assert parts["api"]["owned"] == ["src/api/new.py", "src/api/orders.py", "src/api/users.py"]
    assert parts["api"]["outside"] == [{"path": "src/ui/page.html", "owner": "ui"},
                                       {"path": "tools/run.sh", "owner": None}]
    assert parts["api"]["text"].split() == parts["api"]["owned"]
    assert parts["ui"]["owned"] == [] and parts["ui"]["outside"] == []
    stat = hf("diff", "b1", "api", "--stat", cwd=repo)
    assert "3 files changed, 3 insertions(+), 2 deletions(-)" in stat.out


def test_diff_inside_a_part_takes_its_batch_and_an_unknown_part_is_one_line(split3, hf):
    worked(split3)
    r = hf("diff", "--name-only", cwd=split3["api"])
    assert r.code == 0 and "src/api/orders.py" in r.out
    bad = hf("diff", "b1", "nope", cwd=split3["repo"])
    assert bad.code == 1 and "no part 'nope' in batch 'b1'" in bad.err


def test_after_a_sync_main_s_changes_are_not_the_part_s(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/new.py": "new\n"})
    write(repo, {"README.md": "# moved on main\n", "src/api/users.py": "main's users\n"})
    git(repo, "commit", "-qam", "main moves")
    assert hf("sync", "b1/api", cwd=repo).code == 0
    r = hf("diff", "b1", "api", "--json", cwd=repo)
    assert r.code == 0, r.err
    part = r.json["data"]["parts"][0]
    assert (part["owned"], part["outside"]) == (["src/api/new.py"], [])
    names = hf("diff", "b1", "api", "--name-only", cwd=repo)
    assert "README.md" not in names.out and "users.py" not in names.out


def test_the_patch_is_gits_own_whatever_external_diff_tool_is_set(split3, hf, tmp_path):
    """`diff.external` (difftastic and the like) and textconv filters are the
    person's way of reading diffs; `hf diff` prints git's patch of the bytes the join
    brings, and a failing tool does not stop it."""
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return ['new']\n"})
    tool = tmp_path / "difftool"
    tool.write_text("#!/bin/sh\necho EXTERNAL TOOL OUTPUT\nexit 1\n")
    tool.chmod(0o755)
    git(repo, "config", "diff.external", str(tool))
    write(repo, {".git/info/attributes": "*.py diff=shout\n"})
    git(repo, "config", "diff.shout.textconv", "tr a-z A-Z <")
    r = hf("diff", "b1", "api", "--json", cwd=repo)
    assert r.code == 0, r.err
    text = r.json["data"]["parts"][0]["text"]
    assert "EXTERNAL" not in text and "RETURN" not in text
    assert "-    return []\n+    return ['new']\n" in text
