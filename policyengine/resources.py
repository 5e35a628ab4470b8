"""Find the JSON Schemas and built-in policy packs, in a checkout or installed.

A checkout keeps them at the repository root (``schemas/``, ``policies/``);
an installed wheel carries them as package data under
``policyengine/_data/`` (pyproject force-includes both). This module owns
that lookup and caches parsed schemas and their validators; it reads files
but never writes.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

__all__ = ["policies_dir", "schema", "schema_path", "schemas_dir", "validator"]

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
    from policyengine.formats import FORMAT_CHECKER

    return Draft202012Validator(schema(name), format_checker=FORMAT_CHECKER)
