"""`policyengine audit evidence`: a pack an auditor verifies offline, with our tool and without."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.integration.gatecli import MODEL, VERSION, cli


@pytest.fixture
def pack(story):
    """The evidence pack of the example version, written to pack/ (without the PDF, which
    only the PDF test renders: WeasyPrint takes a while)."""
    run = cli("audit", "evidence", MODEL, VERSION, "--out", "pack", "--no-pdf")
    assert run.code == 0, run.err
    assert "verify with: policyengine audit verify --bundle" in run.out
    return story / "pack"


def test_pack_bundle_verifies_offline(pack):
    """The bundle of the cited entries verifies with only the pack's log.pub."""
    run = cli("audit", "verify", "--bundle", str(pack / "bundle"), "--key", str(pack / "log.pub"))
    assert run.code == 0, run.out + run.err
    assert "ok: 5 entries verified by inclusion proofs" in run.out


def test_pack_tampered_bundle_fails(pack):
    """Changing one payload in the bundle makes verification fail (exit 1)."""
    payloads = pack / "bundle" / "payloads.jsonl"
    lines = payloads.read_text().splitlines()
    lines[1] = lines[1].replace('"payload_b64":"', '"payload_b64":"AAAA')
    payloads.write_text("\n".join(lines) + "\n")
    run = cli("audit", "verify", "--bundle", str(pack / "bundle"), "--key", str(pack / "log.pub"))
    assert run.code == 1 and "TAMPERED" in run.out


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum not installed")
def test_sha256sum_reproduces_leaf_hashes(pack):
    """`sha256sum -c SHA256SUMS` in leaves/ checks every leaf hash the bundle records."""
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=pack / "leaves",
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == 5
    bundle = (pack / "bundle" / "entries.jsonl").read_text()
    for line in (pack / "leaves" / "SHA256SUMS").read_text().splitlines():
        assert line.split()[0] in bundle


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_readme_openssl_command_verifies_checkpoint(pack):
    """The openssl command printed in README.txt verifies the checkpoint signature; a changed
    message does not."""
    readme = (pack / "README.txt").read_text()
    found = re.search(r"(openssl pkeyutl -verify [^\n]*\\\n[^\n]*)", readme)
    assert found, readme
    command = found.group(1).replace("\\\n", " ").split()
    done = subprocess.run(command, cwd=pack, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "Signature Verified Successfully" in done.stdout, done.stderr
    (pack / "checkpoint.msg").write_bytes((pack / "checkpoint.msg").read_bytes() + b"x")
    bad = subprocess.run(command, cwd=pack, capture_output=True, text=True, check=False)
    assert bad.returncode != 0


def test_pdf_opens_and_has_the_report(story):
    """report.pdf opens and holds the report: title, the decisions and the approvers."""
    from pypdf import PdfReader

    run = cli("audit", "evidence", MODEL, VERSION, "--out", "pack")
    assert run.code == 0, run.err
    pack = story / "pack"
    reader = PdfReader(str(pack / "report.pdf"))
    assert len(reader.pages) >= 2
    text = " ".join(page.extract_text() for page in reader.pages)
    assert f"Evidence pack: {MODEL} {VERSION}" in text
    assert "bob@bank.example" in text and "distinct-approvers" in text


def test_report_html_is_self_contained(pack):
    """report.html loads nothing from elsewhere: no script, no external link or image."""
    html = (pack / "report.html").read_text()
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "promoted to production" in html and "model-risk" in html


def test_evidence_for_unknown_version_is_exit_2(story):
    """A version the log never saw is refused with exit 2; nothing is written."""
    run = cli("audit", "evidence", MODEL, "9.9.9", "--out", "nothing")
    assert run.code == 2 and "no entry for" in run.err
    assert not (story / "nothing").exists()
