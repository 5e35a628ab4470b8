"""`policyengine card validate|import`: exit codes and one-line messages."""

from __future__ import annotations

import io
import json
from pathlib import Path

import yaml

from policyengine.cli import main

REPO = Path(__file__).resolve().parents[3]
GOOD = REPO / "examples" / "cards" / "credit-risk-scorer.yaml"
DIGEST = "sha256:" + "1" * 64


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_validate_valid_cards_exit_zero() -> None:
    """Every example card validates: exit 0, one ok line each."""
    cards = sorted(str(p) for p in (REPO / "examples" / "cards").glob("*.yaml"))
    code, out, err = _run("card", "validate", *cards)
    assert (code, err) == (0, "")
    assert out.count(": ok") == len(cards)


def test_validate_invalid_card_exits_two_with_json_path(tmp_path: Path) -> None:
    """A card without its digest exits 2 naming $.model.artifact_digest."""
    card = yaml.safe_load(GOOD.read_text())
    del card["model"]["artifact_digest"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(card))
    code, _, err = _run("card", "validate", str(GOOD), str(bad))
    assert code == 2
    assert err == f"{bad}: $.model.artifact_digest: required field is missing\n"


def test_validate_unparsable_file_exits_two(tmp_path: Path) -> None:
    """A file that is not YAML is one line on stderr and exit 2, no traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    code, _, err = _run("card", "validate", str(bad))
    assert code == 2
    assert err.startswith(f"{bad}:") and "invalid YAML" in err and "Traceback" not in err


def test_import_complete_card_exits_zero(card_data: Path, tmp_path: Path) -> None:
    """Import with overrides writes a valid YAML card and lists what is still missing."""
    src = (
        card_data
        / "model-cards"
        / "huggingface"
        / "mi-comodoro-wav2vec2-west-slavic-multi-dataset-asr.md"
    )
    target = tmp_path / "card.yaml"
    code, out, err = _run(
        "card",
        "import",
        "--from",
        "huggingface",
        str(src),
        "--version",
        "1.0",
        "--digest",
        DIGEST,
        "--risk-tier",
        "low",
        "--out",
        str(target),
    )
    assert code == 0 and out == ""
    assert "missing: author," in err
    assert _run("card", "validate", str(target))[0] == 0


def test_import_incomplete_card_exits_one(card_data: Path) -> None:
    """Without version and digest the card is printed, not yet valid, exit 1."""
    src = (
        card_data
        / "model-cards"
        / "huggingface"
        / "hf-hub-test-fixtures"
        / "sample_simple_model_index.md"
    )
    code, out, err = _run("card", "import", "--from", "huggingface", str(src))
    assert code == 1
    assert json.loads(out)["model"]["name"] == "my-cool-model"
    assert "not yet valid: $.model.artifact_digest: required field is missing" in err


def test_import_malformed_card_exits_two_in_one_line(card_data: Path) -> None:
    """A malformed source is one stderr line naming the file and key, exit 2."""
    src = (
        card_data
        / "model-cards"
        / "huggingface"
        / "malformed-dumiiii-model-index-mapping-no-results.md"
    )
    code, out, err = _run("card", "import", "--from", "huggingface", str(src))
    assert (code, out) == (2, "")
    assert err == f"{src}: model-index: expected a list of models, got a dict\n"


def test_import_missing_file_exits_two(tmp_path: Path) -> None:
    """A missing source file exits 2 with a one-line message."""
    code, _, err = _run("card", "import", "--from", "mct", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read file" in err and err.count("\n") == 1
