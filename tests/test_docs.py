"""docs/cli.md is the CLI reference: every command must be in it, with its help text."""

import re
from pathlib import Path

from hf_fanout.cli import app

DOCS = Path(__file__).resolve().parent.parent / "docs"


def command_names() -> list[str]:
    import typer.main

    group = typer.main.get_command(app.build())
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_every_command_is_in_the_cli_reference():
    text = (DOCS / "cli.md").read_text()
    headings = set(re.findall(r"^## `hf ([a-z-]+)`", text, flags=re.M))
    missing = [name for name in command_names() if name not in headings]
    assert not missing, f"commands missing from docs/cli.md: {missing}"


def test_every_command_has_help_with_an_example(hf, tmp_path):
    for name in command_names():
        r = hf(name, "--help", cwd=tmp_path)
        assert r.code == 0, (name, r.err)
        assert "Example:" in r.out, f"`hf {name} --help` shows no example"
        assert "--json" in r.out, f"`hf {name}` has no --json"


def test_the_reference_documents_no_command_that_does_not_exist():
    text = (DOCS / "cli.md").read_text()
    headings = set(re.findall(r"^## `hf ([a-z-]+)`", text, flags=re.M))
    assert headings <= set(command_names())
