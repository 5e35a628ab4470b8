"""Import a third-party model card into the canonical card.

``import_card(fmt, path, ...)`` reads the file, detects its format when
``fmt`` is ``auto`` (``detect.py``), runs the format's converter
(``huggingface``, ``mct``, ``sagemaker``, ``mlflow``), applies the user's
overrides, records the ``source`` block (format, file name, sha256 of the
file's bytes) and builds the import report (``report.py``). The same source
and overrides always give the same bytes: nothing depends on the clock or the
machine. Nothing here touches the network. Malformed input raises
:class:`~policyengine.cards.CardImportError` with one line naming the file,
the place and the problem.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from policyengine.cards import huggingface, mct, mlflow, sagemaker
from policyengine.cards._build import ImportResult, finish
from policyengine.cards.validate import read_text
from policyengine.errors import InputError

__all__ = ["FORMATS", "ImportResult", "import_card", "import_directory", "import_text"]

Converter = Callable[[str, str], tuple[dict[str, Any], list[str]]]
"""(source text, source name) -> (partial card, warnings)."""

FORMATS: dict[str, Converter] = {
    "huggingface": huggingface.convert,
    "mct": mct.convert,
    "sagemaker": sagemaker.convert,
    "mlflow": mlflow.convert,
}
"""Importers by the name ``card import --format`` takes."""

_SOURCE_PATHS: dict[str, dict[str, str]] = {
    "huggingface": huggingface.SOURCE_PATHS,
    "mct": mct.SOURCE_PATHS,
    "sagemaker": sagemaker.SOURCE_PATHS,
    "mlflow": mlflow.SOURCE_PATHS,
}


def import_text(
    fmt: str,
    text: str,
    *,
    source: str = "<input>",
    raw: bytes | None = None,
    name: str | None = None,
    version: str | None = None,
    digest: str | None = None,
    risk_tier: str | None = None,
    author: str | None = None,
) -> ImportResult:
    """Convert card text of format ``fmt`` (or ``auto``); overrides win over the source.

    Args:
        raw: the file's bytes, for the source digest (default: ``text`` as UTF-8).

    Raises:
        ValueError: for an unknown format name.
        CardImportError: when the source is malformed or no format is recognised.
    """
    if fmt == "auto":
        from policyengine.cards.detect import detect_format

        fmt = detect_format(text, source)
    if fmt not in FORMATS:
        raise ValueError(
            f"unknown card format {fmt!r}; expected auto or one of {', '.join(FORMATS)}"
        )
    card, warnings = FORMATS[fmt](text, source)
    overrides = {
        "name": name,
        "version": version,
        "digest": digest,
        "risk_tier": risk_tier,
        "author": author,
    }
    file_digest = "sha256:" + hashlib.sha256(raw if raw is not None else text.encode()).hexdigest()
    origin = {"format": fmt, "file": Path(source).name, "digest": file_digest}
    return finish(card, origin, overrides, warnings, _SOURCE_PATHS[fmt])


def import_card(fmt: str, path: str | Path, **overrides: str | None) -> ImportResult:
    """Read ``path`` and convert it (see :func:`import_text` for overrides).

    Raises:
        CardLoadError: when the file cannot be read.
        CardImportError: when the source is malformed.
    """
    text = read_text(path)  # bounded: the bytes below are read only once this passed
    return import_text(fmt, text, source=str(path), raw=Path(path).read_bytes(), **overrides)


def import_directory(
    directory: str | Path, fmt: str = "auto", **overrides: str | None
) -> list[tuple[Path, ImportResult | InputError]]:
    """Import every file under ``directory`` (sorted, recursive, hidden files skipped).

    Each file gives its result or the one-line input error that refused it; one
    bad file does not stop the others.
    """
    root = Path(directory)
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    results: list[tuple[Path, ImportResult | InputError]] = []
    for path in files:
        try:
            results.append((path, import_card(fmt, path, **overrides)))
        except InputError as exc:
            results.append((path, exc))
    return results
