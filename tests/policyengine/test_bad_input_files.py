"""Bad input files end in one line naming the file and exit 2: never a traceback or a hang."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from policyengine import inputs
from policyengine.cli import main

REPO = Path(__file__).resolve().parents[2]
CARD = REPO / "examples" / "cards" / "credit-risk-scorer.yaml"


def _laughs() -> str:
    """Nine levels of nine aliases: 9**9 scalars once expanded, a few hundred bytes on disk."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "empty": b"", "binary": bytes(range(256)) * 8,
        "latin-1": "a: \xe9t\xe9\n".encode("latin-1"),
        "bomb": _laughs().encode(),
        "bomb-in-card": (CARD.read_text() + "x_extensions:\n"
                         + "".join(f"  {line}\n" for line in _laughs().splitlines())).encode(),
    }
    out = {}
    for name, data in files.items():
        (tmp_path / f"{name}.yaml").write_bytes(data)
        out[name] = tmp_path / f"{name}.yaml"
    (tmp_path / "dir.yaml").mkdir()
    out["directory"] = tmp_path / "dir.yaml"
    return out


def _run(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("name", ["empty", "binary", "latin-1", "bomb", "bomb-in-card",
                                  "directory"])
@pytest.mark.parametrize("command", [("check",), ("eval",), ("card", "validate")])
def test_bad_file_is_one_line_exit_2(tmp_path, name, command):
    """check, eval and card validate report each bad file in a line naming it.

    The alias bomb is stopped by the node limit (a count, not a clock): its test is
    that it ends with exit 2 at all."""
    path = _files(tmp_path)[name]
    extra = ("--event", "promote", "--to", "production") if command == ("eval",) else ()
    code, text = _run(*command, str(path), *extra)
    if name == "empty" and command == ("check",):
        assert code == 2 and "no policy documents" in text
        return
    assert code in (1, 2) if name == "empty" else code == 2, text
    assert "Traceback" not in text and str(path) in text
    if name.startswith("bomb"):
        assert "yaml expands to more than" in text


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    """A file above the size limit is refused with its size, for every reader."""
    monkeypatch.setattr(inputs, "MAX_FILE_BYTES", 100)
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 200 + "\n")
    code, text = _run("eval", str(big), "--event", "promote", "--to", "production")
    assert code == 2 and "bytes, limit 100" in text
    code, text = _run("check", str(big))
    assert code == 2 and "bytes, limit 100" in text
