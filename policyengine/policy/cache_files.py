"""Checked files in the per-user cache directory, shared by the policy caches.

Owns where the caches live and the integrity wrapper of every cache file:
JSON (never pickle) holding a format name and version, the entry's body as
a string and the SHA-256 of that string. :func:`read` returns the body only
when all of that checks out and otherwise raises :class:`CorruptEntry`
naming what is wrong; the caller reports it (:func:`report_corrupt`),
rebuilds the entry and never trusts the file. :func:`write` replaces a file
atomically and ignores failures (it is a cache).

The directory is ``$XDG_CACHE_HOME/policyengine`` (mode 0700), used only
when this user owns it and nobody else can write it, because the caches
hold code that will be executed (:mod:`.cel_cache`).
``POLICYENGINE_PARSER_CACHE=off`` disables every cache. Users:
:mod:`.cel_cache` (one prepared expression per file), :mod:`.bundle_cache`
(the loaded documents of a whole policy set) and lark's grammar cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import cache
from pathlib import Path

__all__ = ["CorruptEntry", "cache_dir", "read", "report_corrupt", "write"]


class CorruptEntry(ValueError):
    """A cache file that must not be used; the message says why."""


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
    the expression cache asks for every expression)."""
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


def read(path: Path, fmt: str, version: str) -> str | None:
    """The checked body of the cache file at ``path``; None when there is none.

    Raises:
        CorruptEntry: unreadable, truncated or not JSON, of another format or
            version, or a body that does not hash to its recorded SHA-256.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptEntry(f"unreadable: {type(exc).__name__}") from None
    try:
        outer = json.loads(raw)
    except ValueError:
        raise CorruptEntry("not JSON (truncated?)") from None
    if not isinstance(outer, dict) or outer.get("format") != fmt:
        raise CorruptEntry(f"not a {fmt} entry")
    if outer.get("version") != version:
        raise CorruptEntry(f"format version {outer.get('version')!r}, expected {version!r}")
    body, digest = outer.get("body"), outer.get("sha256")
    if not isinstance(body, str) or hashlib.sha256(body.encode()).hexdigest() != digest:
        raise CorruptEntry("body does not match its SHA-256")
    return body


def write(path: Path, fmt: str, version: str, body: str) -> bool:
    """Write ``body`` wrapped and checksummed, atomically; False if it could not be written."""
    digest = hashlib.sha256(body.encode()).hexdigest()
    wrapped = json.dumps({"format": fmt, "version": version, "sha256": digest, "body": body})
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(wrapped)
        os.replace(tmp, path)
    except OSError:
        return False
    return True


def report_corrupt(event: str, path: Path, reason: str) -> None:
    """A structlog warning ``event`` naming the corrupt file and why; it is rebuilt."""
    import structlog

    structlog.get_logger("policyengine.policy").warning(
        event, path=str(path), reason=reason, action="rebuilt")
