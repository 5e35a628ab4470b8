"""Per-user cache of a loaded, linted policy set (private to :func:`~.load.load_policies`).

A warm ``policyengine gate`` spent most of its policy loading on composing
the packs' YAML, checking them against the policy schema, linting and
reading one :mod:`.cel_cache` file per expression. What that produces
depends only on the policy files (their names, paths and text) and the code
that loads them, so the whole result is cached in one file per policy set:
each document's data and source marks, and every rule's prepared ``expr``
and ``message`` (the nesting measures, literal kind, static analysis and
the transpiled Python that :mod:`.cel_cache` holds per expression). Only a
set that loaded and linted clean is stored, so every problem is always
reported from a fresh load.

Key: SHA-256 over this format's version, the package version, the CEL
cache's salt (grammar, transpiler, analysis, lark, Python), the source of the
loading, linting and this caching code and the policy schema (an editable install changes
them without a new version), and each file's name, path relative to its
root and the SHA-256 of its text. Every run reads the files and derives the
key from their bytes, so an edit never meets a stale entry. Param overrides
and the engine are not in the key because nothing stored depends on them:
they are applied by ``compile_policies`` on every run, after the cache, as
are the policy digests and the bundle digest, which are computed from the
text read now and never from the cache.

Integrity is :mod:`.cache_files`' (format, version, SHA-256 of the body); in
addition the body must name this key and these files, and each stored
expression must be the text of the rule it is stored for, with both of every
rule's expressions present. A file failing any check is corrupt: a
structlog warning ``bundle_cache_corrupt`` names it and the reason, the set
is loaded afresh and the entry rewritten, so a corrupt entry never changes a
decision. At most :data:`KEEP` entries are kept (the oldest are removed when
one is written).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from policyengine import resources
from policyengine._version import __version__
from policyengine.policy import cache_files, cel, cel_cache
from policyengine.policy.document import JsonPath, PolicyDocument, Span
from policyengine.policy.lint import ROOTS

__all__ = ["KEEP", "SourceFile", "load", "store"]

_FORMAT = "policyengine-bundle-cache"
_VERSION = "1"
"""Bump when the entry format changes."""
KEEP = 16
"""Entries kept; each edit of a policy file makes a new one."""
_KINDS = ("expr", "message")

SourceFile = tuple[str, str, str]
"""(file as named, path relative to its policies root, text) of one policy file."""


@cache
def _salt() -> str | None:
    """What every entry depends on besides the files; None (no cache) if it cannot be read."""
    here = Path(__file__).parent
    code = [here / name for name in ("load.py", "document.py", "lint.py", "limits.py")]
    code += [Path(__file__), here.parent / "inputs.py", resources.schema_path("policy")]
    try:
        parts = [_VERSION, __version__, cel_cache.salt()]
        parts += [hashlib.sha256(path.read_bytes()).hexdigest() for path in code]
    except OSError:  # an installation without its sources: load without the cache
        return None
    return "|".join(parts)


def _listing(files: list[SourceFile]) -> list[list[str]]:
    return [[file, path, hashlib.sha256(text.encode("utf-8")).hexdigest()]
            for file, path, text in files]


def _key(salt: str, listing: list[list[str]]) -> str:
    digest = hashlib.sha256(salt.encode())
    for item in listing:
        digest.update(b"\0" + "\0".join(item).encode("utf-8"))
    return digest.hexdigest()


def _folder() -> tuple[Path, str] | None:
    """The entries' folder and the salt of their keys; None when the cache is off."""
    folder = cache_files.cache_dir()
    salt = None if folder is None else _salt()
    return None if folder is None or salt is None else (folder / "bundles", salt)


def _encode_marks(marks: dict[JsonPath, tuple[int, int]]) -> list[list[Any]]:
    return [[list(path), line, col] for path, (line, col) in marks.items()]


def _decode_marks(items: list[list[Any]]) -> dict[JsonPath, tuple[int, int]]:
    # Marks only place diagnostics; the body's SHA-256 already vouches for them.
    return {tuple(path): (int(line), int(col)) for path, line, col in items}


def _encode(doc: PolicyDocument, index: int) -> dict[str, Any] | None:
    """One document as JSON data; None when an expression was not prepared in full."""
    expressions: list[list[Any]] = []
    for i, rule in enumerate(doc.data["spec"]["rules"]):
        for kind in _KINDS:
            prepared = doc.cache.get(("spec", "rules", i, kind))
            if not isinstance(prepared, cel.Prepared) or prepared.python is None \
                    or prepared.info is None or prepared.text != rule[kind]:
                return None
            expressions.append([i, kind, prepared.depth, prepared.macros, prepared.literal,
                                cel_cache.encode_info(prepared.info), prepared.python])
    return {"file": index, "index": doc.index, "data": doc.data,
            "marks": _encode_marks(doc.marks), "key_marks": _encode_marks(doc.key_marks),
            "spans": [[list(p), s.start, s.end, s.style] for p, s in doc.spans.items()],
            "expressions": expressions}


def _decode(item: dict[str, Any], files: list[SourceFile]) -> PolicyDocument:
    """A document from :func:`_encode`'s data, its expressions prepared.

    Raises:
        ValueError, KeyError, TypeError, IndexError: the data has another shape.
    """
    file, path, text = files[int(item["file"])]
    doc = PolicyDocument(file=file, index=int(item["index"]), data=item["data"], text=text,
                         path=path, marks=_decode_marks(item["marks"]),
                         key_marks=_decode_marks(item["key_marks"]))
    for where, start, end, style in item["spans"]:
        if style is not None and not isinstance(style, str):
            raise ValueError(f"bad span style {style!r}")
        doc.spans[tuple(where)] = Span(int(start), int(end), style)
    rules = doc.data["spec"]["rules"]
    for i, kind, depth, macros, literal, info, python in item["expressions"]:
        source = rules[i][kind]
        if not isinstance(source, str) or not isinstance(python, str):
            raise ValueError(f"rule {i} {kind} is not a stored expression")
        if literal is not None and not isinstance(literal, str):
            raise ValueError(f"bad literal kind {literal!r}")
        at = ("spec", "rules", int(i), str(kind))
        prepared = cel.Prepared(source, int(depth), int(macros), literal,
                                cel_cache.decode_info(info), python=python, roots=ROOTS)
        doc.cache[at] = prepared
        doc.cache[("program", at)] = (prepared.program(), prepared.info)
    if any(("spec", "rules", i, kind) not in doc.cache
           for i in range(len(rules)) for kind in _KINDS):
        raise ValueError("an expression of a rule is missing")
    return doc


def load(files: list[SourceFile]) -> list[PolicyDocument] | None:
    """The cached documents of ``files``, ready to compile; None on a miss.

    A corrupt entry is reported as a warning and gives None (the caller loads
    afresh and :func:`store` replaces it).
    """
    where = _folder()
    if where is None:
        return None
    folder, salt = where
    listing = _listing(files)
    key = _key(salt, listing)
    path = folder / f"{key}.json"
    try:
        body = cache_files.read(path, _FORMAT, _VERSION)
        if body is None:
            return None
        data = json.loads(body)
        if data["key"] != key or data["files"] != listing:
            raise ValueError("holds another policy set")
        docs = [_decode(item, files) for item in data["documents"]]
        if not docs:
            raise ValueError("holds no documents")
        return docs
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        cache_files.report_corrupt("bundle_cache_corrupt", path,
                                   str(exc) if isinstance(exc, ValueError) else
                                   f"bad shape: {type(exc).__name__}: {exc}")
        return None


def store(files: list[SourceFile], docs: list[PolicyDocument]) -> None:
    """Write the entry of ``files``, which loaded and linted clean into ``docs``.

    Nothing is written when an expression was not prepared in full; failures
    to write are ignored (it is a cache).
    """
    where = _folder()
    if where is None or not docs:
        return
    folder, salt = where
    index = {file: i for i, (file, _, _) in enumerate(files)}
    encoded = [_encode(doc, index[doc.file]) for doc in docs if doc.file in index]
    if len(encoded) != len(docs) or any(item is None for item in encoded):
        return
    listing = _listing(files)
    key = _key(salt, listing)
    body = json.dumps({"key": key, "files": listing, "documents": encoded})
    if cache_files.write(folder / f"{key}.json", _FORMAT, _VERSION, body):
        _prune(folder)


def _prune(folder: Path) -> None:
    """Remove all but the :data:`KEEP` newest entries."""
    try:
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        return
