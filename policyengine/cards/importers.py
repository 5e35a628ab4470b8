"""Import a third-party model card into the canonical card.

``import_card(fmt, path, ...)`` reads the file, runs the format's converter
(``huggingface``, ``mct``, ``sagemaker``, ``mlflow``), applies the user's
overrides and reports what is still missing. Nothing here touches the
network. Malformed input raises :class:`~policyengine.cards.CardImportError`
with one line naming the file, the place and the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from policyengine.cards import huggingface, mct, mlflow, sagemaker
from policyengine.cards._build import ImportResult, finish
from policyengine.cards.validate import read_text

__all__ = ["FORMATS", "ImportResult", "import_card", "import_text"]

Converter = Callable[[str, str], tuple[dict[str, Any], list[str]]]
"""(source text, source name) -> (partial card, warnings)."""

FORMATS: dict[str, Converter] = {
    "huggingface": huggingface.convert,
    "mct": mct.convert,
    "sagemaker": sagemaker.convert,
    "mlflow": mlflow.convert,
}
"""Importers by the name ``card import --from`` takes."""


def import_text(
    fmt: str,
    text: str,
    *,
    source: str = "<input>",
    name: str | None = None,
    version: str | None = None,
    digest: str | None = None,
    risk_tier: str | None = None,
    author: str | None = None,
) -> ImportResult:
    """Convert card text of format ``fmt``; overrides win over the source's values.

    Raises:
        ValueError: for an unknown format name.
        CardImportError: when the source is malformed.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown card format {fmt!r}; expected one of {', '.join(FORMATS)}")
    card, warnings = FORMATS[fmt](text, source)
    overrides = {
        "name": name,
        "version": version,
        "digest": digest,
        "risk_tier": risk_tier,
        "author": author,
    }
    return finish(card, fmt, Path(source).name, overrides, warnings)


def import_card(fmt: str, path: str | Path, **overrides: str | None) -> ImportResult:
    """Read ``path`` and convert it (see :func:`import_text` for overrides).

    Raises:
        CardLoadError: when the file cannot be read.
        CardImportError: when the source is malformed.
    """
    return import_text(fmt, read_text(path), source=str(path), **overrides)
