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
string, and the SHA-256 of that string. A file that is truncated, not JSON,
of another format or version, whose body does not hash to its digest or
does not have the expected shape, or that holds another expression, is
corrupt: a structlog warning names it and the reason, the expression is
prepared afresh and the entry rewritten, so a corrupted entry never changes a
decision. ``POLICYENGINE_PARSER_CACHE=off`` disables both caches. Only
expressions that parsed and passed the depth limits are stored, so syntax
errors are always reported from a fresh parse. The key covers the
expression's text, so a changed policy file never meets a stale entry (and
the bundle digest is computed from the file as loaded, never from the cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import lark

from policyengine.policy import cel_ast
from policyengine.policy.cel_ast import ExprInfo, Reference

__all__ = ["cache_dir", "load", "store"]

_VERSION = "2"
"""Bump when the entry format or the transpiled code's contract changes."""
_FORMAT = "policyengine-cel-cache"


def cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/policyengine`` when private to this user, else None."""
    if os.environ.get("POLICYENGINE_PARSER_CACHE", "").lower() in {"0", "off", "no", "false"}:
        return None
    try:
        root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    except (RuntimeError, KeyError):  # no home directory (some CI containers)
        return None
    return _private_folder(root)


@cache
def _private_folder(root: str) -> Path | None:
    """Create and check ``root/policyengine`` once per process and root (start-up time:
    ``load`` and ``store`` ask for every expression)."""
    folder = Path(root) / "policyengine"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError:
        return None
    getuid = getattr(os, "getuid", None)
    if (getuid is not None and info.st_uid != getuid()) or info.st_mode & 0o022:
        return None
    return folder


@cache
def _salt() -> str:
    grammar = (Path(celpy.__file__).parent / "cel.lark").read_bytes()
    transpiler = Path(celpy.__file__).parent / "evaluation.py"
    analysis = Path(cel_ast.__file__)  # a change to the analysis invalidates every entry
    parts = [_VERSION, hashlib.sha256(grammar).hexdigest(),
             hashlib.sha256(transpiler.read_bytes()).hexdigest(),
             hashlib.sha256(analysis.read_bytes()).hexdigest(), lark.__version__,
             f"{sys.version_info[0]}.{sys.version_info[1]}"]
    return "|".join(parts)


def _path(folder: Path, text: str, roots: frozenset[str]) -> Path:
    key = hashlib.sha256(f"{_salt()}|{','.join(sorted(roots))}|{text}".encode()).hexdigest()
    return folder / "expressions" / f"{key}.json"


def _encode_path(path: tuple[Any, ...]) -> list[Any]:
    return [_encode_path(step) if isinstance(step, tuple) else step for step in path]


def _decode_path(items: list[Any]) -> tuple[Any, ...]:
    return tuple(_decode_path(step) if isinstance(step, list) else step for step in items)


def _encode_info(info: ExprInfo) -> dict[str, Any]:
    refs = {name: [[r.name, r.line, r.column] for r in getattr(info, name)]
            for name in ("variables", "functions", "params", "problems")}
    paths = {name: [_encode_path(p) for p in getattr(info, name)]
             for name in ("paths", "optional_paths")}
    return {**refs, **paths}


def _decode_info(data: dict[str, Any]) -> ExprInfo:
    info = ExprInfo()
    for name in ("variables", "functions", "params", "problems"):
        getattr(info, name).extend(Reference(str(n), int(line), int(col))
                                   for n, line, col in data[name])
    for name in ("paths", "optional_paths"):
        getattr(info, name).extend(_decode_path(p) for p in data[name])
    return info


def _corrupt(path: Path, reason: str) -> None:
    import structlog

    structlog.get_logger("policyengine.policy").warning(
        "cel_cache_entry_corrupt", path=str(path), reason=reason, action="rebuilt")


def _body(raw: str) -> str:
    """The checked body of one cache file; ValueError names what is wrong."""
    try:
        outer = json.loads(raw)
    except ValueError:
        raise ValueError("not JSON (truncated?)") from None
    if not isinstance(outer, dict) or outer.get("format") != _FORMAT:
        raise ValueError("not a policyengine CEL cache entry")
    if outer.get("version") != _VERSION:
        raise ValueError(f"format version {outer.get('version')!r}, expected {_VERSION!r}")
    body, digest = outer.get("body"), outer.get("sha256")
    if not isinstance(body, str) or hashlib.sha256(body.encode()).hexdigest() != digest:
        raise ValueError("body does not match its SHA-256")
    return body


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
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        _corrupt(path, f"unreadable: {type(exc).__name__}")
        return None
    try:
        data = json.loads(_body(raw))
        if data["text"] != text:
            raise ValueError("holds another expression")
        return {"depth": int(data["depth"]), "macros": int(data["macros"]),
                "literal": data["literal"], "info": _decode_info(data["info"]),
                "python": str(data["python"])}
    except (ValueError, KeyError, TypeError) as exc:
        _corrupt(path, str(exc) if isinstance(exc, ValueError) else
                 f"bad shape: {type(exc).__name__}: {exc}")
        return None


def store(text: str, roots: frozenset[str], depth: int, macros: int, literal: str | None,
          info: ExprInfo, python: str) -> None:
    """Write one entry atomically; any failure to write is ignored (it is a cache)."""
    folder = cache_dir()
    if folder is None:
        return
    target = _path(folder, text, roots)
    body = json.dumps({"text": text, "depth": depth, "macros": macros, "literal": literal,
                       "info": _encode_info(info), "python": python})
    digest = hashlib.sha256(body.encode()).hexdigest()
    wrapped = json.dumps({"format": _FORMAT, "version": _VERSION, "sha256": digest,
                          "body": body})
    try:
        target.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(wrapped)
        os.replace(tmp, target)
    except OSError:
        return
