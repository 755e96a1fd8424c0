"""Plain conversion of hf's option values: the same values typer gives, without
pydantic.

Newer typers convert every option value through a pydantic TypeAdapter, and
importing pydantic costs about 0.1 s on every hf command. hf's options are
str, int, float, bool, Path and lists of them (optional or not): `install`
gives each such parameter of the built click command a plain conversion
before the command runs, which also checks the option's `min` and `max`.
Only public interfaces are used: the function's own annotations (typer's
`Option`/`Argument` infos) and click's documented `Parameter` attributes
(`process_value`, `callback`, `required`, `multiple`, `nargs`,
`get_help_option`, and typer's `Context`); a parameter it does not know how to
convert keeps typer's conversion.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

_SCALARS: dict[Any, str] = {str: "text", int: "integer", float: "number", bool: "boolean",
                            Path: "path"}
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def _plain(annotation: Any) -> tuple[Any, bool] | None:
    """(scalar type, is a list) for the annotations handled here, else None."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _plain(args[0]) if len(args) == 1 else None
    if origin is list:
        (item,) = typing.get_args(annotation) or (None,)
        return (item, True) if item in _SCALARS else None
    return (annotation, False) if annotation in _SCALARS else None


def _convert(kind: Any, value: Any) -> Any:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    text = str(value)
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(text)
    return kind(text)


def _declared(function: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """Each parameter's (type, typer info) from `Annotated[type, typer.Option(...)]`."""
    found: dict[str, tuple[Any, Any]] = {}
    for name, hint in typing.get_type_hints(function, include_extras=True).items():
        if typing.get_origin(hint) is typing.Annotated:
            kind, *extras = typing.get_args(hint)
            found[name] = (kind, extras[0] if extras else None)
    return found


def _handled(info: Any) -> bool:
    """An option that clamps or parses its own values is typer's to convert."""
    return not any(getattr(info, name, None) not in (None, False)
                   for name in ("clamp", "parser", "click_type"))


def _out_of_bounds(info: Any, value: Any) -> str | None:
    """Why `value` is outside the option's `min`/`max` (typer's words), or None."""
    low, high = getattr(info, "min", None), getattr(info, "max", None)
    if low is not None and value < low:
        return f"Input should be greater than or equal to {low}"
    if high is not None and value > high:
        return f"Input should be less than or equal to {high}"
    return None


def _processor(param: Any, kind: Any, many: bool, info: Any) -> Callable[[Any, Any], Any]:
    """What click's `process_value` does for `param` (convert, check, callback),
    with the plain conversion."""
    from typer import BadParameter

    original = param.process_value
    multi = bool(getattr(param, "multiple", False)) or getattr(param, "nargs", 1) == -1

    def process_value(ctx: Any, value: Any) -> Any:
        if value is None:
            value = () if multi else None
        else:
            try:
                value = [_convert(kind, v) for v in value] if many else _convert(kind, value)
            except (TypeError, ValueError):
                shown = list(value) if many else value
                raise BadParameter(f"{shown!r} is not a valid {_SCALARS[kind]}.",
                                   ctx=ctx, param=param) from None
            if kind in (int, float):
                for number in value if many else [value]:
                    problem = _out_of_bounds(info, number)
                    if problem:
                        raise BadParameter(problem, ctx=ctx, param=param)
        if param.required and param.value_is_missing(value):
            return original(ctx, value)  # typer says what is missing, its own way
        if param.callback is not None:
            value = param.callback(ctx, param, value)
        return value

    return process_value


def install(command: Any, functions: Mapping[str, Callable[..., Any]]) -> int:
    """Give every parameter of `command` (and of its subcommands, by name in
    `functions`: the Python function each comes from) a plain conversion where its
    type allows. Returns how many were given one."""
    from typer import Context

    count = 0
    pending: list[tuple[Any, str, Any]] = [(command, "", None)]
    while pending:
        cmd, path, parent = pending.pop()
        function = functions.get(path)
        declared = _declared(function) if function is not None else {}
        for param in getattr(cmd, "params", []):
            kind, info = declared.get(param.name, (None, None))
            plain = _plain(kind) if kind is not None else None
            if plain is None or not _handled(info):
                continue
            param.process_value = _processor(param, plain[0], plain[1], info)
            count += 1
        # click makes the --help option when a context first asks for it, and keeps
        # it: a context made now (typer's public Context, parsing nothing) makes it,
        # with the names the real one will have
        ctx = Context(cmd, info_name=path.rpartition(" ")[2] or "hf", parent=parent,
                      **(getattr(cmd, "context_settings", None) or {}))
        help_option = cmd.get_help_option(ctx)
        if help_option is not None:
            help_option.process_value = _processor(help_option, bool, False, None)
            count += 1
        pending.extend((sub, f"{path} {name}".strip(), ctx)
                       for name, sub in (getattr(cmd, "commands", None) or {}).items())
    return count
