"""Find the JSON Schemas and built-in policy packs, in a checkout or installed.

A checkout keeps them at the repository root (``schemas/``, ``policies/``);
an installed wheel carries them as package data under
``policyengine/_data/`` (pyproject force-includes both). This module owns
that lookup and caches parsed schemas and their validators; it reads files
but never writes.

Two validators per schema: :func:`validator` (jsonschema, the reference,
which words every error message) and :func:`fast_validator` (jsonschema-rs,
about 100x faster, for the yes/no question on the hot path). Both check the
``date-time`` and ``date`` formats with the same functions
(:mod:`policyengine.formats`); a test compares their verdicts over mutated
documents.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a reference validator is built: start-up time
    from jsonschema import Draft202012Validator

__all__ = ["fast_validator", "is_valid", "policies_dir", "schema", "schema_path", "schemas_dir",
           "validator"]

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    return _PACKAGE.parent / name


def schemas_dir() -> Path:
    """Directory holding ``*.schema.json``."""
    return _find("schemas")


def policies_dir() -> Path:
    """Directory holding the built-in policy packs."""
    return _find("policies")


def schema_path(name: str) -> Path:
    """Path of ``schemas/<name>.schema.json`` (it may not exist)."""
    return schemas_dir() / f"{name}.schema.json"


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """The parsed schema ``name`` (e.g. ``"policy"``, ``"model-card"``).

    Raises:
        FileNotFoundError: when the schema is not shipped.
    """
    loaded: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return loaded


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """A prebuilt Draft 2020-12 validator for schema ``name`` (cached per process)."""
    from jsonschema import Draft202012Validator

    from policyengine.formats import FORMAT_CHECKER

    return Draft202012Validator(schema(name), format_checker=FORMAT_CHECKER)


@functools.cache
def fast_validator(name: str) -> Any:
    """A prebuilt jsonschema-rs validator for schema ``name``, formats as :func:`validator`."""
    import jsonschema_rs

    from policyengine.formats import is_date, is_date_time

    return jsonschema_rs.Draft202012Validator(
        schema(name), formats={"date-time": is_date_time, "date": is_date},
        validate_formats=True)


def _plain(value: Any) -> bool:
    """True for data built only from dict (str keys), list, str, int, float, bool and None."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if not all(type(k) is str for k in item):
                return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif not (kind is str or kind is float or kind is int or kind is bool or item is None):
            return False
    return True


def is_valid(name: str, data: Any, *, plain: bool = False) -> bool:
    """Whether ``data`` matches schema ``name``: jsonschema-rs, the reference as fallback.

    jsonschema-rs reads tuples as arrays and refuses types it does not know;
    for anything but plain JSON data the reference answers.

    Args:
        name: schema name.
        data: the document.
        plain: the caller knows ``data`` is plain JSON data (skips that walk).
    """
    if plain or _plain(data):
        try:
            return bool(fast_validator(name).is_valid(data))
        except (ValueError, OverflowError):
            pass
    return bool(validator(name).is_valid(data))
