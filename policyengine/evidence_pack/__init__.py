"""Evidence packs: everything an auditor needs about one model version, verifiable offline.

Owns :func:`write_pack`, which writes into a new directory:

- ``report.html``: a self-contained report (inline CSS, no scripts, nothing
  fetched) of the version's timeline: where it stands, every decision with
  every rule's outcome, message and values read, approvals, waivers,
  promotions, violations, redactions and holds, each with its log seq;
- ``report.pdf``: the same report printed by WeasyPrint (optional extra);
- ``bundle/``: the audit export bundle of exactly the entries the report cites,
  with RFC 9162 inclusion proofs against the signed checkpoint
  (``policyengine audit verify --bundle bundle --key log.pub``);
- ``log.pub`` (signed-note verifier key) and ``log.pem`` (the same Ed25519
  public key as PEM), ``checkpoint.note`` (the signed checkpoint),
  ``checkpoint.msg`` and ``checkpoint.sig`` (the signed bytes and the raw
  signature, for ``openssl pkeyutl -verify``);
- ``leaves/N.leaf`` (0x00 || canonical envelope of entry N) and
  ``leaves/SHA256SUMS``, so ``sha256sum -c`` reproduces every leaf hash;
- ``timeline.json`` and ``README.txt`` (how to verify, step by step).

:func:`pack_zip` builds the same pack as one zip file (the service's download).
What the report says comes from :mod:`policyengine.timeline`; the bytes and
proofs come from :mod:`audit.export`.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyengine.errors import ConfigError, InputError
from policyengine.ledger import log_errors
from policyengine.timeline import decision_of, decisive_results, standing, timeline

if TYPE_CHECKING:
    from policyengine.engine import Engine

__all__ = ["Pack", "pack_zip", "pdf_available", "render_report", "write_pack"]

_HERE = Path(__file__).parent
_EM_DASH = "\u2014"


@dataclass(frozen=True)
class Pack:
    """A written evidence pack."""

    root: Path
    """The pack directory."""
    files: tuple[Path, ...]
    """The top-level files and directories written."""
    seqs: tuple[int, ...]
    """The entries the report cites (and the bundle holds)."""
    bundle: Path
    """The export bundle directory."""
    public_key: Path
    """``log.pub``: the verifier key for ``audit verify --key``."""
    checkpoint_size: int
    """Size of the signed checkpoint every proof is against."""


def _weasyprint() -> Any:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: pango missing on the system
        raise ConfigError(
            f"report.pdf needs WeasyPrint and the pango libraries ({exc}); install them "
            "(pip install 'policyengine[pages]'; apt-get install libpango-1.0-0 "
            "libpangoft2-1.0-0) or pass --no-pdf"
        ) from exc
    return weasyprint


def pdf_available() -> bool:
    """True when WeasyPrint and its system libraries load (the PDF can be made)."""
    try:
        _weasyprint()
    except ConfigError:
        return False
    return True


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(_HERE)), autoescape=select_autoescape(["j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["json"] = _short_json
    return env


_VALUES_SHOWN = 600
"""Characters of a rule's values shown in the report; the bundle holds them all."""


def _short_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if len(text) <= _VALUES_SHOWN:
        return text
    return text[:_VALUES_SHOWN] + f" … ({len(text)} characters; all of it in the bundle)"


def _decisions(log: Any, rows: Any) -> list[dict[str, Any]]:
    """Every decision the timeline holds with all its rule results (unless redacted)."""
    found = []
    for row in rows:
        if row.type != "decision" or row.redacted:
            continue
        decision = decision_of(log.get(row.seq).payload)
        decisive = {id(r) for r in decisive_results(decision)}
        results = [dict(r, decided=id(r) in decisive) for r in decision.get("results") or []]
        found.append({"row": row, "decision": decision, "results": results})
    return found


def render_report(log: Any, tl: Any, *, origin: str, checkpoint_size: int | None,
                  root: str | None, generated: str) -> str:
    """The report as one self-contained HTML page (also what the PDF prints)."""
    template = _environment().get_template("report.html.j2")
    digests = sorted({r.digest for r in tl.rows if r.digest})
    return str(template.render(
        tl=tl, origin=origin, standing=standing(tl.rows), digests=digests,
        decisions=_decisions(log, tl.rows), checkpoint_size=checkpoint_size, root=root,
        generated=generated,
        by_type=lambda *types: [r for r in tl.rows if r.type in types],
    ))


def _signature(note: str, vkey: str) -> tuple[bytes, bytes]:
    """The signed bytes and the raw Ed25519 signature of the log's key in ``note``."""
    from audit.keys import NoteVerifier

    verifier = NoteVerifier.from_vkey(vkey)
    cut = note.rfind("\n\n")
    body, lines = note[: cut + 1], note[cut + 2:].splitlines()
    for line in lines:
        _dash, name, b64 = line.split(" ", 2)
        raw = base64.b64decode(b64)
        if name == verifier.name and raw[:4] == verifier.key_id:
            return body.encode("utf-8"), raw[4:]
    raise InputError(f"checkpoint note has no signature by {verifier.name}")


def _public_pem(vkey: str) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from audit.keys import NoteVerifier

    key = Ed25519PublicKey.from_public_bytes(NoteVerifier.from_vkey(vkey).public_key)
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _write_leaves(out: Path, log: Any, seqs: list[int]) -> None:
    """leaves/N.leaf = 0x00 || envelope (RFC 9162 §2.1.1), and their SHA256SUMS."""
    leaves = out / "leaves"
    leaves.mkdir()
    sums = []
    for seq in seqs:
        entry = log.get(seq)
        (leaves / f"{seq}.leaf").write_bytes(b"\x00" + entry.envelope_bytes)
        sums.append(f"{entry.leaf_hash}  {seq}.leaf\n")
    (leaves / "SHA256SUMS").write_text("".join(sums), encoding="ascii")


def _prepare(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out}: expected a new or empty directory")
    out.mkdir(parents=True, exist_ok=True)


def write_pack(engine: Engine, model: str, version: str, out_dir: str | Path, *,
               pdf: bool = True) -> Pack:
    """Write the evidence pack of ``model`` ``version`` into ``out_dir`` (new or empty).

    Signs a checkpoint over the current log first, so every cited entry is
    covered and proven against it.

    Raises:
        InputError: no entry about that version, or ``out_dir`` is not empty.
        ConfigError: ``pdf`` and WeasyPrint is not installed.
        KeyUnavailableError, LogUnavailableError: exit 3.
    """
    from audit.export import export_bundle

    weasyprint = _weasyprint() if pdf else None
    out = Path(out_dir)
    log, signer = engine.log, engine.signer
    vkey = signer.vkey
    with log_errors(engine.config):
        checkpoint = log.checkpoint()
        tl = timeline(log, model, version, [signer.verifier()])
        if not any(r.version == version for r in tl.rows):
            raise InputError(f"no entry for {model} {version} in the log: nothing to report; "
                             f"see `policyengine audit query --model {model}`")
        seqs = [r.seq for r in tl.rows if r.seq < checkpoint.size]
        _prepare(out)
        export_bundle(log, out / "bundle", seqs=seqs, vkeys=[vkey])
        _write_leaves(out, log, seqs)
    msg, sig = _signature(checkpoint.note, vkey)
    generated = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    html = render_report(log, tl, origin=log.origin, checkpoint_size=checkpoint.size,
                         root=checkpoint.root.hex(), generated=generated)
    files = {
        "report.html": html.encode("utf-8"), "log.pub": (vkey + "\n").encode(),
        "log.pem": _public_pem(vkey), "checkpoint.note": checkpoint.note.encode("utf-8"),
        "checkpoint.msg": msg, "checkpoint.sig": sig,
        "timeline.json": (json.dumps(tl.to_dict(), indent=2, sort_keys=True) + "\n").encode(),
        "README.txt": _readme(model, version, checkpoint.size, seqs).encode("utf-8"),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
    if weasyprint is not None:
        weasyprint.HTML(string=html, base_url=str(out)).write_pdf(out / "report.pdf")
    written = sorted(out.iterdir())
    return Pack(out, tuple(written), tuple(seqs), out / "bundle", out / "log.pub",
                checkpoint.size)


def pack_zip(engine: Engine, model: str, version: str, *, pdf: bool = True) -> Path:
    """Build the pack in a fresh temporary directory and zip it; return the zip's path.

    The caller removes ``path.parent``.
    """
    tmp = Path(tempfile.mkdtemp(prefix="pe-evidence-"))
    try:
        name = f"evidence-{_safe(model)}-{_safe(version)}"
        write_pack(engine, model, version, tmp / name, pdf=pdf)
        archive = tmp / f"{name}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted((tmp / name).rglob("*")):
                zf.write(path, str(path.relative_to(tmp)))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return archive


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)[:100]


def _readme(model: str, version: str, size: int, seqs: list[int]) -> str:
    text = (_HERE / "README.txt.in").read_text(encoding="utf-8")
    cited = ", ".join(map(str, seqs))
    return (text.replace("@MODEL@", model).replace("@VERSION@", version)
            .replace("@SIZE@", str(size)).replace("@SEQS@", cited)
            .replace("@LAST@", str(size - 1)))
