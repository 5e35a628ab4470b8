"""Strict typed models for configuration files, and their one-line errors.

Every configuration file (``policyengine.yaml``, the service settings, the
trust file, the tokens file) is validated by a pydantic model derived from
:class:`StrictModel`, which forbids unknown keys at every depth: a misspelled
or misplaced key is an error naming the file and the key, with "did you mean"
when a valid key is close (:mod:`difflib`), never silently ignored.

Not handled here: reading files (each loader reads its own) or what the
values mean.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from policyengine.errors import ConfigError

__all__ = ["StrictModel", "did_you_mean", "validate_file"]

M = TypeVar("M", bound=BaseModel)
_MAX_SHOWN = 3


class StrictModel(BaseModel):
    """Base of every configuration model: unknown keys refused, values not coerced."""

    # defer_build: a model's validator is built on its first validation, so a
    # process that never reads that file (a gate without approvers.yaml) skips it.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False,
                              defer_build=True)


def did_you_mean(name: str, known: list[str] | tuple[str, ...]) -> str:
    """``; did you mean 'x'?`` when a known name is close, else the list of known names."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (expected one of: {', '.join(sorted(known))})" if known else ""


def validate_file(
    model: type[M], data: Any, source: str, *, prefix: str = "", show_values: bool = True
) -> M:
    """Validate ``data`` (parsed YAML or JSON) against ``model``.

    Args:
        model: the model of the whole file (or of one section of it).
        data: the parsed document.
        source: the file, as the user named it, for messages.
        prefix: dotted path of the section inside the file (``service``), if any.
        show_values: quote offending values in messages (off where a value may
            be a secret pasted into the wrong field).

    Raises:
        ConfigError: one line naming the file and each offending key.
    """
    if not isinstance(data, Mapping):
        where = f" at {prefix}" if prefix else " at top level"
        raise ConfigError(f"{source}: expected a mapping{where}, got {type(data).__name__}")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        problems = [_problem(model, err, prefix, show_values) for err in exc.errors()]
        more = len(problems) - _MAX_SHOWN
        text = "; ".join(problems[:_MAX_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise ConfigError(f"{source}: {text}") from None


def _problem(
    model: type[BaseModel], err: Mapping[str, Any], prefix: str, show_values: bool
) -> str:
    loc = tuple(err.get("loc", ()))
    path = ".".join(str(p) for p in ((prefix,) if prefix else ()) + loc) or "(top level)"
    if err.get("type") == "extra_forbidden":
        known = _keys_at(model, loc[:-1]) or []
        return f"unknown key {path!r}" + did_you_mean(str(loc[-1]), known)
    if err.get("type") == "missing":
        return f"{path}: required key is missing"
    text = str(err.get("msg", "invalid value"))
    message = f"{path}: {text[:1].lower()}{text[1:]}"  # lowercase fragment; quoted values kept
    got = err.get("input")
    if not show_values:
        return message
    shown = repr(got) if isinstance(got, str | int | float | bool | None) else type(got).__name__
    return f"{message}, got {shown}"


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The keys a model accepts at ``loc`` (dict keys and list indexes walked through)."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            found = [f for n, f in tp.model_fields.items() if (f.alias or n) == part]
            if not found:
                return None
            tp = found[0].annotation
        elif get_origin(tp) in (dict, Mapping):
            tp = get_args(tp)[1]
        elif get_origin(tp) in (list, tuple):
            tp = get_args(tp)[0]
        else:
            return None
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return None


def _unwrap(tp: Any) -> Any:
    """The model, dict or list inside ``X | None`` or a union (first structured member)."""
    if get_origin(tp) in (Union, types.UnionType):
        for arg in get_args(tp):
            inner = _unwrap(arg)
            if get_origin(inner) in (dict, list, tuple, Mapping) or (
                isinstance(inner, type) and issubclass(inner, BaseModel)
            ):
                return inner
    return tp
