"""Per-user cache of prepared CEL expressions (private to the CEL seam).

Parsing, analysing and transpiling the built-in packs' 78 expressions costs
a few hundred milliseconds per process, paid by every ``policyengine gate``
run. The result depends only on the expression text, the grammar and the
library versions, so it is cached on disk, keyed by a SHA-256 over all of
them and over this engine's analysis code, as JSON: nesting depth,
comprehension depth, the literal kind, the static analysis
(:class:`~.cel_ast.ExprInfo`) and the Python source cel-python's
transpiler produced.

The cache holds code that will be executed, so it lives only in a directory
the current user owns and nobody else can write (``$XDG_CACHE_HOME/
policyengine``, mode 0700), like lark's grammar cache beside it. Each file
is JSON (never pickle): a format name and version, the entry's body as a
string, and the SHA-256 of that string (:mod:`.cache_files`, shared with the
bundle cache). A file that is truncated, not JSON,
of another format or version, whose body does not hash to its digest or
does not have the expected shape, or that holds another expression, is
corrupt: a structlog warning names it and the reason, the expression is
prepared afresh and the entry rewritten, so a corrupted entry never changes a
decision. ``POLICYENGINE_PARSER_CACHE=off`` disables both caches. Only
expressions that parsed and passed the depth limits are stored, so syntax
errors are always reported from a fresh parse. The key covers the
expression's text, so a changed policy file never meets a stale entry (and
the bundle digest is computed from the file as loaded, never from the cache).
:mod:`.bundle_cache` holds these entries too, for a whole policy set in one
file; this cache still serves each expression of a set seen for the first time.
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import lark

from policyengine.policy import cache_files, cel_ast
from policyengine.policy.cache_files import cache_dir
from policyengine.policy.cel_ast import ExprInfo, Reference

__all__ = ["cache_dir", "decode_info", "encode_info", "load", "salt", "store"]

_VERSION = "2"
"""Bump when the entry format or the transpiled code's contract changes."""
_FORMAT = "policyengine-cel-cache"


@cache
def salt() -> str:
    """What every prepared expression depends on besides its text: this format's
    version, cel-python's grammar and transpiler, our analysis, lark, Python."""
    grammar = (Path(celpy.__file__).parent / "cel.lark").read_bytes()
    transpiler = Path(celpy.__file__).parent / "evaluation.py"
    analysis = Path(cel_ast.__file__)  # a change to the analysis invalidates every entry
    parts = [_VERSION, hashlib.sha256(grammar).hexdigest(),
             hashlib.sha256(transpiler.read_bytes()).hexdigest(),
             hashlib.sha256(analysis.read_bytes()).hexdigest(), lark.__version__,
             f"{sys.version_info[0]}.{sys.version_info[1]}"]
    return "|".join(parts)


def _path(folder: Path, text: str, roots: frozenset[str]) -> Path:
    key = hashlib.sha256(f"{salt()}|{','.join(sorted(roots))}|{text}".encode()).hexdigest()
    return folder / "expressions" / f"{key}.json"


def _encode_path(path: tuple[Any, ...]) -> list[Any]:
    return [_encode_path(step) if isinstance(step, tuple) else step for step in path]


def _decode_path(items: list[Any]) -> tuple[Any, ...]:
    path = tuple(items)
    if list in map(type, path):  # nested steps are rare; the test runs at C speed
        path = tuple(_decode_path(step) if isinstance(step, list) else step for step in path)
    return path


def encode_info(info: ExprInfo) -> dict[str, Any]:
    """:class:`ExprInfo` as JSON data (:func:`decode_info` reads it back)."""
    refs = {name: [[r.name, r.line, r.column] for r in getattr(info, name)]
            for name in ("variables", "functions", "params", "problems")}
    paths = {name: [_encode_path(p) for p in getattr(info, name)]
             for name in ("paths", "optional_paths")}
    return {**refs, **paths}


def decode_info(data: dict[str, Any]) -> ExprInfo:
    """The :class:`ExprInfo` of :func:`encode_info`'s data; KeyError, TypeError or
    ValueError when it has another shape."""
    info = ExprInfo()
    for name in ("variables", "functions", "params", "problems"):
        getattr(info, name).extend(Reference(str(n), int(line), int(col))
                                   for n, line, col in data[name])
    for name in ("paths", "optional_paths"):
        getattr(info, name).extend(_decode_path(p) for p in data[name])
    return info


def load(text: str, roots: frozenset[str]) -> dict[str, Any] | None:
    """The cached entry for ``text``: depth, macros, literal, info, python; or None.

    None on a miss, and on a corrupt entry (logged as a warning; the caller
    prepares the expression afresh and :func:`store` replaces the entry).
    """
    folder = cache_dir()
    if folder is None:
        return None
    path = _path(folder, text, roots)
    try:
        body = cache_files.read(path, _FORMAT, _VERSION)
        if body is None:
            return None
        data = json.loads(body)
        if data["text"] != text:
            raise ValueError("holds another expression")
        return {"depth": int(data["depth"]), "macros": int(data["macros"]),
                "literal": data["literal"], "info": decode_info(data["info"]),
                "python": str(data["python"])}
    except (ValueError, KeyError, TypeError) as exc:
        cache_files.report_corrupt("cel_cache_entry_corrupt", path,
                                   str(exc) if isinstance(exc, ValueError) else
                                   f"bad shape: {type(exc).__name__}: {exc}")
        return None


def store(text: str, roots: frozenset[str], depth: int, macros: int, literal: str | None,
          info: ExprInfo, python: str) -> None:
    """Write one entry atomically; any failure to write is ignored (it is a cache)."""
    folder = cache_dir()
    if folder is None:
        return
    body = json.dumps({"text": text, "depth": depth, "macros": macros, "literal": literal,
                       "info": encode_info(info), "python": python})
    cache_files.write(_path(folder, text, roots), _FORMAT, _VERSION, body)
