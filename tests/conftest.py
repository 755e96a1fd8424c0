"""The hermetic test seal and the fixtures every test builds on.

Each test gets its own HOME and XDG dirs, no system git config, fixed author
dates, GIT_EDITOR=false, and a fresh repository made with the real `git`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def seal(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith(("GIT_", "HF_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.invalid")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
    monkeypatch.setenv("GIT_EDITOR", "false")
    # subprocesses (`python -m hf_fanout`, stand-in agents) import this checkout
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    (home / ".gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[user]\n\tname = Test\n\temail = t@example.invalid\n"
    )
    return home


def git(cwd: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
    return proc.stdout.decode("utf-8", "surrogateescape")


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


BASE_FILES: dict[str, str | bytes] = {
    "README.md": "# demo\n",
    "src/api/orders.py": "def orders():\n    return []\n",
    "src/api/users.py": "def users():\n    return []\n",
    "src/ui/page.html": "<h1>hi</h1>\n",
    "src/ui/app.js": "console.log(1)\n",
    "docs/guide.md": "# guide\n",
    "docs/old.md": "old\n",
    "tools/run.sh": "#!/bin/sh\necho run\n",
}


def new_repo(root: Path, files: dict[str, str | bytes], message: str = "initial") -> Path:
    """A fresh repository at `root` (on main) with one commit of `files`."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return root


def make_repo(root: Path) -> Path:
    """A fresh repository with one commit of BASE_FILES at `root`."""
    return new_repo(root, BASE_FILES)


def split_with_submodule(tmp_path: Path, hf: Any) -> tuple[Path, Path]:
    """A repository with a submodule at vendor/lib, split into src/** and vendor/**;
    the vendor part's agent checks the submodule out. Returns (repo, vendor part)."""
    lib = new_repo(tmp_path / "lib", {"core.c": "v1\n"}, "lib")
    repo = new_repo(tmp_path / "repo", {"src/a.py": "a\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib),
        "vendor/lib")
    git(repo, "commit", "-qm", "add the submodule")
    r = hf("split", "b1", "--part", "sp=src/**", "--part", "ve=vendor/**", "--task", "t",
           cwd=repo)
    assert r.code == 0, r.err
    vendor = tmp_path / "repo.hf" / "b1" / "ve"
    git(vendor, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init")
    return repo, vendor


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh repository with one commit of BASE_FILES, at tmp/repo."""
    return make_repo(tmp_path / "repo")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def hf(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run hf in-process: hf(*args, cwd=PATH) -> Result(code, out, err)."""
    from hf_fanout.cli import main

    def run(*args: str, cwd: Path) -> Result:
        capsys.readouterr()
        with monkeypatch.context() as m:
            m.chdir(cwd)
            code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@contextlib.contextmanager
def hf_stopped_at(point: str, *args: str, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """`hf ARGS` as a real process, stopped (SIGSTOP) at fault point `point` for the
    block, and continued after it (the caller waits for it)."""
    proc = subprocess.Popen([sys.executable, "-m", "hf_fanout", *args], cwd=cwd,
                            env={**os.environ, "HF_TEST_STOP_AT": point},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            assert time.monotonic() < deadline, f"hf {args[0]} never stopped at {point}"
            time.sleep(0.02)
        yield proc
    finally:
        os.kill(proc.pid, signal.SIGCONT)


def hf_proc(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run hf as a real process, the way a tab would."""
    return subprocess.run([sys.executable, "-m", "hf_fanout", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=timeout, check=False)


def snapshot(root: Path) -> dict[str, Any]:
    """HEAD, index and every file of the main tree: to prove nothing was written."""
    files: dict[str, bytes] = {}
    # (`.git` is left out whole, never walked: hf removes its own scratch folders
    # there in the background, and a walk into one that goes meanwhile fails)
    for top, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in [*dirs, *names]:
            path = Path(top) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                files[rel] = b"link:" + os.readlink(path).encode()
            elif path.is_file():
                files[rel] = path.read_bytes() + f"|mode={path.stat().st_mode:o}".encode()
    return {
        "head": git(root, "rev-parse", "HEAD"),
        "index": git(root, "ls-files", "-s", "-z"),
        "files": files,
    }


@pytest.fixture
def split3(repo: Path, hf: Any) -> Iterator[dict[str, Path]]:
    """Batch b1 split three ways: api (src/api/**), ui (src/ui/**), docs (docs/**, README.md)."""
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
           "--part", "docs=docs/**,README.md", "--task", "add search", cwd=repo)
    assert r.code == 0, r.err
    root = repo.parent / "repo.hf" / "b1"
    yield {"repo": repo, "api": root / "api", "ui": root / "ui", "docs": root / "docs"}


@dataclass
class SmallDisk:
    """A tmpfs of a few MB mounted for one test: a disk that really fills up."""

    root: Path

    def fill(self, leave: int = 0) -> Path:
        """Write a ballast file until the disk is full, less `leave` bytes."""
        ballast = self.root / "ballast"
        fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        if leave:
            os.truncate(ballast, max(0, ballast.stat().st_size - leave))
        return ballast

    def free(self) -> None:
        (self.root / "ballast").unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 4 MB tmpfs at tmp/small (mounted when the tests run as root, as CI does)."""
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a tmpfs mount, which needs root (CI runs as root)")
    root = tmp_path / "small"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True, check=False)


def small_repo(disk: SmallDisk) -> Path:
    """A repository of BASE_FILES on the small disk (its worktrees land there too)."""
    return make_repo(disk.root / "repo")


CRONTAB = """#!/bin/sh
# a stand-in crontab: one user's table in a file, every call recorded
store="$HF_TEST_CRONTAB"
echo "$*" >> "$store.calls"
case "$1" in
    -l) [ -f "$store" ] && exec cat "$store"
        echo "no crontab for $(id -un)" >&2; exit 1 ;;
    -r) rm -f "$store" ;;
    -) cat > "$store" ;;
    *) echo "crontab stand-in: unknown arguments: $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def crontab(tmp_path, monkeypatch):
    """A stand-in `crontab` first on PATH (the real one is the user's, never touched):
    it keeps the table in a file and records its calls. Returns the table's path."""
    bin_dir = tmp_path / "cron-bin"
    bin_dir.mkdir()
    program = bin_dir / "crontab"
    program.write_text(CRONTAB)
    program.chmod(0o755)
    table = tmp_path / "crontab.table"
    monkeypatch.setenv("HF_TEST_CRONTAB", str(table))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return table


def cron_command(line: str) -> str:
    """The shell command of an installed crontab line (as cron would run it)."""
    from hf_fanout.liveness import schedule

    fields = line.split(None, 5)[5]
    return fields.removesuffix(schedule.cron_marker()).rstrip().replace("\\%", "%")


def traced_argv(argv: list[str]) -> list[str]:
    """A git command line from a GIT_TRACE2_EVENT file, without the settings hf gives
    every git it runs (`-c submodule.recurse=false`)."""
    from hf_fanout.worktrees.process import OWN_SETTINGS

    own = list(OWN_SETTINGS)
    return argv[:1] + argv[1 + len(own):] if argv[1:1 + len(own)] == own else argv
