"""Every importer on every third-party card file: a result or a one-line error, never a crash."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

import pytest

from policyengine.cards import FORMATS, ImportResult, import_card
from policyengine.errors import InputError


def _files(card_data: Path) -> list[Path]:
    return sorted(p for p in (card_data / "model-cards").rglob("*") if p.is_file())


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any socket use fail, so an importer that reaches the network fails the test."""

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("an importer tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_importer_never_crashes_on_any_card_file(
    card_data: Path, fmt: str, no_network: None
) -> None:
    """Each file (any format, even the wrong one) imports or raises a one-line InputError."""
    imported = 0
    for path in _files(card_data):
        try:
            result = import_card(fmt, path)
        except InputError as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith(str(path)), message
            continue
        assert isinstance(result, ImportResult)
        assert result.card["schema_version"] == "1.0"
        assert result.card["source"] == {
            "format": fmt,
            "file": path.name,
            "digest": "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        imported += 1
    # The card data holds no MLflow metadata (MLflow cards are tested in test_mlflow.py).
    assert imported > 0 or fmt == "mlflow"


def test_unknown_format_is_rejected(card_data: Path) -> None:
    """An unknown format name is a ValueError listing the known ones."""
    known = "expected auto or one of huggingface, mct, sagemaker, mlflow"
    with pytest.raises(ValueError, match=known):
        import_card("onnx", _files(card_data)[0])
