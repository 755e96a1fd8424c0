"""Plain conversion of hf's option values, without pydantic.

Typer (0.29) converts every option value through a pydantic TypeAdapter, and
importing pydantic costs about 0.1 s, on every hf command. hf's options are
str, int, float, bool, Path, list[str] and their optional forms: `install`
gives each such parameter a plain converter before the command runs, which
checks `min` and `max` too (not an option that clamps or has a parser of its
own: typer keeps those). With a typer whose internals differ (older or
newer), it changes nothing and typer's own conversion runs: the same values,
just slower.
"""

from __future__ import annotations

import types
import typing
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
        if len(args) != 1:
            return None
        return _plain(args[0])
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


def _constrained(info: Any) -> bool:
    """The option clamps or has a parser of its own: typer's conversion does
    those, so it keeps the option. (Plain bounds, `min` and `max`, are checked
    here: typer checks them through pydantic.)"""
    return any(getattr(info, name, None) not in (None, False)
               for name in ("clamp", "parser", "click_type"))


def _out_of_bounds(info: Any, value: Any) -> str | None:
    """Why `value` is outside the option's `min`/`max` (typer's words), or None."""
    low, high = getattr(info, "min", None), getattr(info, "max", None)
    if low is not None and value < low:
        return f"Input should be greater than or equal to {low}"
    if high is not None and value > high:
        return f"Input should be less than or equal to {high}"
    return None


def install(command: Any) -> int:
    """Give every parameter of `command` (and its subcommands) that has a plain
    type a plain converter. Returns how many were given one."""
    try:
        from typer._click.core import Context
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
        from typer.core import _TyperParameter
    except ImportError:
        return 0

    class Plain(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            plain = _plain(self.annotation)
            assert plain is not None
            kind, many = plain
            try:
                converted = [_convert(kind, v) for v in value] if many else _convert(kind, value)
            except (TypeError, ValueError):
                shown = list(value) if many else value
                raise BadParameter(f"{shown!r} is not a valid {_SCALARS[kind]}.",
                                   ctx=ctx, param=param) from None
            if kind in (int, float):
                for number in converted if many else [converted]:
                    problem = _out_of_bounds(self.parameter_info, number)
                    if problem:
                        raise BadParameter(problem, ctx=ctx, param=param)
            return converted

    count = 0
    pending = [(command, ["--help"])]
    while pending:
        cmd, help_names = pending.pop()
        help_names = cmd.context_settings.get("help_option_names", help_names)
        pending.extend((sub, help_names) for sub in getattr(cmd, "commands", {}).values())
        # click makes the --help option when a context first asks for it, and
        # keeps it: make it now, with the names the real context will have
        help_option = cmd.get_help_option(Context(cmd, help_option_names=help_names))
        for param in [*getattr(cmd, "params", []), help_option]:
            descriptor = getattr(param, "type_descriptor", None)
            if (not isinstance(param, _TyperParameter) or descriptor is None
                    or getattr(param, "_runtime_param", "missing") is not None
                    or descriptor.file_annotation is not None
                    or _plain(descriptor.annotation) is None
                    or _constrained(descriptor.parameter_info)):
                continue
            param._runtime_param = Plain(parameter_info=descriptor.parameter_info,
                                         annotation=descriptor.annotation)
            count += 1
    return count
