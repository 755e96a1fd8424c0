"""Commits written in-process, the objects `git commit-tree` would write, and the
three-way merge of one file (the part of `Repository` that writes commits)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from hf_fanout.errors import GitFailed, HfError
from hf_fanout.worktrees.objects import pygit2_module
from hf_fanout.worktrees.process import run, text

# git's own test for a binary file (`buffer_is_binary`): a NUL in the first bytes
_BINARY_PROBE = 8000


def is_binary(data: bytes) -> bool:
    """git's test for a file it does not merge as text: a NUL in its first 8000
    bytes (`git merge-file` refuses such a file instead of merging it)."""
    return b"\0" in data[:_BINARY_PROBE]


class SigningFailed(HfError):
    """commit.gpgSign is on and git could not sign a commit hf makes."""

    code = "signing_failed"


@dataclass(frozen=True)
class Ident:
    """A commit's author or committer as `git var GIT_*_IDENT` prints it."""

    name: str
    email: str
    when: int | None  # seconds: fixed by GIT_*_DATE; None: the time of the commit
    offset: int  # minutes east of UTC (used with `when`)

    @classmethod
    def parse(cls, line: str, fixed_date: bool) -> Ident | None:
        """`Name <email> 1700000000 +0100`; None when it is not that (or not UTF-8)."""
        head, _, zone = line.rpartition(" ")
        head, _, seconds = head.rpartition(" ")
        name, sep, email = head.rpartition(" <")
        if not sep or not email.endswith(">") or not seconds.isdigit() or \
                len(zone) != 5 or zone[0] not in "+-" or not zone[1:].isdigit():
            return None
        if not name or email == ">":  # git allows `T <>`; libgit2 does not
            return None
        try:
            (name + email).encode("utf-8")
        except UnicodeEncodeError:  # surrogates: bytes that are not UTF-8
            return None
        offset = int(zone[1:3]) * 60 + int(zone[3:5])
        return cls(name, email[:-1], int(seconds) if fixed_date else None,
                   -offset if zone[0] == "-" else offset)

    def at(self, now: float) -> tuple[str, str, int, int]:
        """pygit2.Signature's arguments, dated `now` unless the date is fixed."""
        if self.when is not None:
            return self.name, self.email, self.when, self.offset
        seconds = int(now)
        return (self.name, self.email, seconds,
                (time.localtime(seconds).tm_gmtoff or 0) // 60)


class CommitWriter:
    workdir: Path
    odb: Any

    def write_held_objects(self) -> None:
        raise NotImplementedError

    def commit_tree(self, tree: str, parents: Sequence[str], message: str, *,
                    sign: bool = False) -> str:
        """The commit `git commit-tree` would make (the same object), written in-process.

        Author and committer are git's own (`commit_identity`), dated now unless
        GIT_AUTHOR_DATE / GIT_COMMITTER_DATE say otherwise. `git commit-tree`
        itself makes the commit when it must carry an encoding header
        (i18n.commitEncoding) or an identity is not UTF-8, and, with `sign`
        (a commit a person's branch gets: a join, an undo's revert, `hf
        commit`), when the repository signs its commits (commit.gpgSign): git
        signs it as `git commit` would (gpg, ssh or x509, its key and program);
        where git cannot sign, it is refused (`SigningFailed`), as `git commit`
        refuses.
        """
        identity = self.commit_identity
        signing = sign and self.signs_commits
        if identity is None or signing:
            self.write_held_objects()  # git reads the tree
            args = ["commit-tree", *(["-S"] if signing else []), tree]
            for parent in parents:
                args += ["-p", parent]
            made = run([*args, "-F", "-"], self.workdir, stdin=message.encode("utf-8"),
                       check=False)
            if made.returncode != 0 and signing and b"sign" in made.stderr.lower():
                said = made.stderr.decode("utf-8", "replace").strip().splitlines()
                raise SigningFailed(
                    "git could not sign the commit (commit.gpgSign is on): "
                    + (said[0].removeprefix("error: ") if said else "git failed"),
                    "check that `git commit -S` works here (gpg.program, user.signingkey, "
                    "gpg.format), or turn signing off for this repository (`git config "
                    "commit.gpgSign false`); nothing was committed")
            if made.returncode != 0:
                raise GitFailed(args, made.returncode, made.stderr.decode("utf-8", "replace"))
            return made.stdout.decode().strip()
        pygit2 = pygit2_module()
        author, committer = (pygit2.Signature(*who.at(time.time())) for who in identity)
        oid = self.odb.create_commit(None, author, committer, message, pygit2.Oid(hex=tree),
                                     [pygit2.Oid(hex=p) for p in parents])
        return str(oid)

    @cached_property
    def signs_commits(self) -> bool:
        """Whether git signs this repository's commits (commit.gpgSign)."""
        found = run(["config", "--type=bool", "commit.gpgSign"], self.workdir, check=False)
        return found.stdout.strip() == b"true"

    @cached_property
    def commit_identity(self) -> tuple[Ident, Ident] | None:
        """(author, committer) as git would write them into a commit, or None when
        `git commit-tree` must make the commits (see `commit_tree`). Three git
        processes, once; safe in a thread."""
        encoding = run(["config", "i18n.commitEncoding"], self.workdir, check=False).stdout
        if encoding.strip().lower() not in (b"", b"utf-8", b"utf8"):
            return None
        found = []
        for var, date_var in (("GIT_AUTHOR_IDENT", "GIT_AUTHOR_DATE"),
                              ("GIT_COMMITTER_IDENT", "GIT_COMMITTER_DATE")):
            # strict, as for a commit: an unknown identity fails here as `git commit` would
            line = text(["var", var], self.workdir)
            ident = Ident.parse(line, fixed_date=bool(os.environ.get(date_var)))
            if ident is None:
                return None
            found.append(ident)
        return found[0], found[1]

    def merge_file(self, base: bytes, ours: bytes, theirs: bytes, scratch: Path,
                   labels: tuple[str, str, str], *, union: bool = False
                   ) -> tuple[bytes, int]:
        """Three-way merge of one file's contents: (result, number of conflicts).
        `union`: git's union merge (`merge=union`), clashing hunks keep both sides'
        lines and never conflict."""
        files = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            file = scratch / f"merge-{name}"
            file.write_bytes(data)
            files.append(str(file))
        proc = run(["merge-file", "-p", "--diff3", *(["--union"] if union else []),
                    "-L", labels[0], "-L", labels[1], "-L", labels[2], *files],
                   self.workdir, check=False)
        if proc.returncode < 0 or proc.returncode > 127:
            raise GitFailed(["merge-file"], proc.returncode, proc.stderr.decode())
        return proc.stdout, proc.returncode
