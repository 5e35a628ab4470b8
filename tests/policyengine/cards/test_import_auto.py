"""`card import --format auto`: detection, the source block, the report, directories, gate."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from policyengine.cards import CardImportError, import_card
from policyengine.cards.detect import detect_format
from policyengine.cli import main
from policyengine.errors import InputError

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "tests" / "data"
CARDS = DATA / "evidence" / "cards"
DIGEST = "sha256:" + "4" * 64
_DIRS = {"huggingface": "huggingface", "model-card-toolkit": "mct", "sagemaker": "sagemaker"}
# Files that are genuinely not cards, and the reason the import gives.
_NOT_CARDS = {
    "schema-": "a JSON Schema, not a card",
    "sdk-input-clarify_bias": "clarify evidence, not a card: record it with `policyengine "
    "evidence import",
    "sdk-input-model_monitor": "model-monitor evidence, not a card",
    "sdk-input-clarify_explanability": "Clarify explainability report, not a card",
    "eval_results": "a YAML list, not a card",
    "modelcard_template": "mapping key is not a string",
    "metadata-spec": "mapping key is not a string",
}


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def _test_files() -> list[Path]:
    """Every third-party card in the repository's test data (ours, and model-cards if present)."""
    roots = [CARDS, DATA / "model-cards"]
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*")
                  if p.is_file() and p.suffix in (".md", ".json", ".pbtxt", ".yaml")
                  and p.name not in ("SOURCES.md", "README.md"))


def _expected(path: Path) -> str:
    return next(fmt for part, fmt in _DIRS.items() if part in path.parts)


@pytest.mark.parametrize("path", _test_files(), ids=lambda p: str(p.relative_to(DATA)))
def test_every_test_file_is_detected_or_refused_with_a_reason(path: Path) -> None:
    """auto picks the format of each card; non-cards are refused saying what they are."""
    reason = next((why for key, why in _NOT_CARDS.items()
                   if path.name.startswith(key) or (key != "schema-" and key in path.name)), None)
    if reason:
        with pytest.raises(InputError) as info:
            import_card("auto", path)
        assert reason in str(info.value) and "\n" not in str(info.value)
        return
    assert detect_format(path.read_text(encoding="utf-8-sig"), str(path)) == _expected(path)
    try:
        result = import_card("auto", path)
    except CardImportError as exc:  # a malformed card: refused naming the file and the key
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
        assert "malformed" in path.name or "invalid" in path.name
        return
    assert result.card["source"]["format"] == _expected(path)


def test_importing_twice_gives_identical_bytes(tmp_path: Path) -> None:
    """The same source and options write byte-identical card and report files."""
    src = CARDS / "model-card-toolkit" / "mct-cats-vs-dogs-v0.0.2.json"
    outputs = []
    for run in ("a", "b"):
        card, report = tmp_path / f"{run}.json", tmp_path / f"{run}.report.json"
        code, _, _ = _run("card", "import", str(src), "--digest", DIGEST, "--risk-tier", "low",
                          "--out", str(card), "--report", str(report))
        assert code == 0
        outputs.append((card.read_bytes(), report.read_bytes()))
    assert outputs[0] == outputs[1]


def test_partial_card_is_written_with_a_report_naming_sources_and_gaps(tmp_path: Path) -> None:
    """Without digest and risk tier the card is written (exit 1); the report says what is where."""
    src = CARDS / "model-card-toolkit" / "mct-full-v0.0.2.pbtxt"
    code, out, err = _run("card", "import", str(src), "--report", str(tmp_path / "r.json"))
    assert code == 1
    assert err.startswith(f"{src}: read as mct (detected)\n")
    assert "partial card written" in err
    card, report = json.loads(out), json.loads((tmp_path / "r.json").read_text())
    assert card["source"]["format"] == "mct" and card["source"]["digest"].startswith("sha256:")
    assert {"field": "model.name", "from": "model_details.name"} in report["mapped"]
    assert report["missing_required"] == ["model.artifact_digest", "risk_tier"]
    needs = {item["field"]: item["rules"] for item in report["missing_for_policies"]}
    assert "approvals/author-declared" in needs["card.author"]
    assert report["complete"] is False


def test_identity_options_are_reported_as_their_source(tmp_path: Path) -> None:
    """A value given on the command line is mapped from the option, not from the file."""
    src = CARDS / "huggingface" / "sample_simple_model_index.md"
    code, out, _ = _run("card", "import", str(src), "--version", "1", "--digest", DIGEST,
                        "--risk-tier", "minimal", "--report", str(tmp_path / "r.json"))
    assert code == 0 and json.loads(out)["model"]["version"] == "1"
    mapped = json.loads((tmp_path / "r.json").read_text())["mapped"]
    assert {"field": "model.artifact_digest", "from": "--digest"} in mapped
    assert {"field": "model.name", "from": "model-index[].name"} in mapped


def test_from_is_an_alias_of_format() -> None:
    """--from FORMAT still works and skips detection."""
    src = CARDS / "huggingface" / "sample_simple_model_index.md"
    code, _, err = _run("card", "import", "--from", "huggingface", str(src))
    assert code == 1 and "(detected)" not in err


def test_a_directory_imports_every_card_and_lists_refusals(tmp_path: Path) -> None:
    """A directory writes NAME.card.json and NAME.import-report.json per card; refusals exit 2."""
    out_dir = tmp_path / "out"
    code, out, err = _run("card", "import", str(CARDS / "sagemaker"), "--out", str(out_dir))
    assert code == 2
    assert "refused: " in err and "model-monitor evidence, not a card" in err
    written = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.card.json"))
    assert "fragment-evaluation-metric-groups-clarify_bias.json.card.json" in written
    assert (out_dir / "fragment-evaluation-metric-groups-clarify_bias.json.import-report.json"
            ).is_file()
    assert out.count("\n") == len(written)


def test_a_directory_needs_out(tmp_path: Path) -> None:
    """Importing a directory without --out is refused before anything is read."""
    code, _, err = _run("card", "import", str(CARDS))
    assert code == 2 and "needs --out DIR" in err


def test_an_imported_card_goes_straight_into_the_gate(tmp_path: Path, monkeypatch) -> None:
    """The gate decides an imported card, naming the fields the packs miss, instead of failing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POLICYENGINE_ACTOR", "ci-bot")
    src = CARDS / "huggingface" / "mi-comodoro-wav2vec2-west-slavic-multi-dataset-asr.md"
    code, _, _ = _run("card", "import", str(src), "--version", "1.0", "--digest", DIGEST,
                      "--risk-tier", "high", "--out", "card.json")
    assert code == 0
    code, out, err = _run("gate", "card.json", "--to", "production")
    assert code == 1, err
    assert out.startswith("DENY")
    assert "documentation@1.0.0 limitations: missing card.limitations" in out
    assert "author-declared: card.author is missing" in out
