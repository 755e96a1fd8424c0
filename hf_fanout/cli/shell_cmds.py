"""Shell life: `hf cd` (a part's directory) and `hf shell-init` (completion for
`hf` and `hf-fanout`, and the function that lets `hf cd` change the shell's directory)."""

from __future__ import annotations

import contextlib
import io
from typing import Annotated, Any

import typer

from hf_fanout.cli.options import Json, RepoOpt, command, open_ws, part_names
from hf_fanout.cli.output import emit

SHELLS = ("bash", "zsh", "fish")
# (program, the variable its completion is asked through)
PROGRAMS = (("hf", "_HF_COMPLETE"), ("hf-fanout", "_HF_FANOUT_COMPLETE"))

_POSIX_CD = """\
{name}() {{
    if [ "$1" = cd ]; then
        shift
        local hf_dir
        hf_dir="$(command {name} cd "$@")" && builtin cd -- "$hf_dir"
    else
        command {name} "$@"
    fi
}}
"""
_FISH_CD = """\
function {name}
    if test (count $argv) -gt 0; and test "$argv[1]" = cd
        set -l hf_dir (command {name} cd $argv[2..-1]); and builtin cd -- $hf_dir
    else
        command {name} $argv
    end
end
"""


@command(epilog="Example: hf cd api   |   hf cd b1/api   |   cd \"$(hf cd api)\"")
def cd(
    part: Annotated[str | None, typer.Argument(
        help="PART (of the one live batch that has it) or BATCH/PART (default: the main "
        "tree).", autocompletion=part_names)] = None,
    json: Json = False,
    repo: RepoOpt = None,
) -> None:
    """Print a part's worktree; with `hf shell-init` in the shell, go there."""
    from hf_fanout.orchestrator.navigate import worktree_of

    path = worktree_of(open_ws(repo), part)
    emit({"path": str(path)}, str(path))


@command(name="shell-init", epilog="Example: eval \"$(hf shell-init bash)\"   (in ~/.bashrc)"
         "   |   hf shell-init fish | source")
def shell_init(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")],
    json: Json = False,
) -> None:
    """Print shell completion for hf and hf-fanout, and the `hf cd` function."""
    from hf_fanout.errors import BadInput

    if shell not in SHELLS:
        raise BadInput(f"unknown shell {shell!r}", f"one of: {', '.join(SHELLS)}")
    text = script(ctx.find_root().command, shell)
    emit({"shell": shell, "script": text}, lambda: print(text, end=""))


def script(root: Any, shell: str) -> str:
    """What `hf shell-init SHELL` prints: typer's completion script of each program,
    then a function of that name that runs `cd` in the shell for `hf cd`."""
    from typer.completion import get_completion_inspect_parameters, shell_complete

    get_completion_inspect_parameters()  # registers typer's completion classes

    out = []
    for name, variable in PROGRAMS:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            # (the script only names the program and its variable: any app will do)
            shell_complete(root, {}, name, variable, f"source_{shell}")
        out.append(buffer.getvalue().rstrip("\n") + "\n")
        out.append((_FISH_CD if shell == "fish" else _POSIX_CD).format(name=name))
    return "".join(out)
