"""Evidence bundles: export a log (or a slice of it) to files and read them back.

A bundle is a directory an auditor verifies offline with ``audit`` alone:

- ``entries.jsonl``: ``{"seq", "envelope_b64", "leaf_hash"}`` per entry;
- ``payloads.jsonl``: ``{"seq", "digest", "payload_b64"}`` or
  ``{"seq", "digest", "redacted": true}`` per entry, same order;
- ``checkpoints.jsonl``: ``{"size", "note"}`` (C2SP signed notes), plus
  ``"cosignatures": [line]`` (witness cosignatures) and ``"timestamp"``
  (base64 RFC 3161 token) when the log holds them (:mod:`audit.evidence`);
- ``proofs.jsonl`` (filtered bundles only): ``{"seq", "size", "proof": [hex]}``,
  RFC 9162 inclusion proofs against the signed checkpoint of that size;
- ``transitions.jsonl``: ``{"seq", "transition"}`` per ``key_transition``
  entry (the signed note; see :mod:`audit.transition`), so a verifier that
  holds the log's first key (or any later key of its chain) follows the
  rotations; the entries themselves are in ``entries.jsonl`` too (in a
  filtered bundle, whatever the filters), which is what is verified;
- ``keys/*.vkey``: signed-note verifier keys of the log's signer(s); a
  verifier never trusts them unless told to (``--trust-bundle-keys``);
- ``manifest.json``: format, origin, filters, counts and the SHA-256 of every file.

A full bundle is verified as a chain by :class:`audit.verify.Verifier` over
:meth:`Bundle.iter_entries`; a filtered one by :func:`verify_filtered_bundle`.
This module does not decide whether a log verifies; it moves bytes and proofs.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from audit import merkle
from audit.errors import IntegrityError, InvalidSignatureError, StorageError
from audit.evidence import CheckpointEvidence, evidence_line, iter_checkpoint_evidence
from audit.keys import NoteVerifier, load_verifiers
from audit.log import AuditLog, entry_filters, format_time
from audit.note import open_note, parse_checkpoint
from audit.records import StoredCheckpoint, StoredEntry
from audit.store import Condition
from audit.transition import (
    TRANSITION_TYPE,
    KeyChain,
    KeyTransition,
    first_key,
    transition_from_payload,
)

__all__ = [
    "BUNDLE_FORMAT",
    "Bundle",
    "BundleIntegrityError",
    "export_bundle",
    "open_bundle",
    "verify_filtered_bundle",
]

BUNDLE_FORMAT = "policyengine-audit-bundle/v1"
_FILES = ("entries.jsonl", "payloads.jsonl", "checkpoints.jsonl", "transitions.jsonl",
          "proofs.jsonl")

Progress = Callable[[int], None]
"""Called with the number of entries written so far."""


class BundleIntegrityError(IntegrityError):
    """A filtered bundle's entry, payload or proof does not verify."""

    code: ClassVar[str] = "audit_bundle_invalid"

    def __init__(self, message: str, seq: int | None = None) -> None:
        """Args: message: what failed; seq: the first bad entry, when one is to blame."""
        super().__init__(message)
        self.seq = seq


class _HashingWriter:
    """A text file written line by line whose SHA-256 is known at close."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("wb")
        self._sha = hashlib.sha256()
        self.count = 0

    def line(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode() + b"\n"
        self._fh.write(data)
        self._sha.update(data)
        self.count += 1

    def close(self) -> str:
        self._fh.close()
        return "sha256:" + self._sha.hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _prepare_dir(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise StorageError(f"export directory {out} is not empty: choose a new directory")
    (out / "keys").mkdir(parents=True, exist_ok=True)


def _filters(name: str | None, version: str | None, since: datetime | None,
             until: datetime | None) -> dict[str, str]:
    out = {"name": name, "version": version,
           "since": None if since is None else format_time(since),
           "until": None if until is None else format_time(until)}
    return {k: v for k, v in out.items() if v is not None}


def export_bundle(
    log: AuditLog, out_dir: str | Path, *, name: str | None = None,
    version: str | None = None, since: datetime | None = None, until: datetime | None = None,
    vkeys: list[str] | None = None, progress: Progress | None = None,
    seqs: Collection[int] | None = None,
) -> dict[str, Any]:
    """Write an evidence bundle of ``log`` (all of it, or the entries matching filters).

    ``seqs`` keeps only those entries (an evidence pack's cited entries); like
    any filter it makes the bundle a filtered one, verified by inclusion proofs.

    When the log has a signer, a checkpoint of the current size is signed
    first. A filtered bundle holds the matching entries covered by the latest
    signed checkpoint, each with its inclusion proof against that checkpoint.

    Returns:
        The manifest written to ``manifest.json``.

    Raises:
        StorageError: ``out_dir`` is not empty, or a filtered export has no
            signed checkpoint to prove against.
    """
    out = Path(out_dir)
    filters: dict[str, Any] = _filters(name, version, since, until)
    if seqs is not None:
        filters["seqs"] = sorted(set(seqs))
    checkpoint_size = None
    if log.signer is not None:
        log.checkpoint()  # cover every exported entry by a signature
    if filters:
        latest = log.latest_checkpoint()
        if latest is None:
            raise StorageError("filtered export needs a signed checkpoint: run `checkpoint` first")
        checkpoint_size = latest.size
    _prepare_dir(out)
    writers = {f: _HashingWriter(out / f) for f in _FILES[: 5 if filters else 4]}
    where = entry_filters(name=name, version=version, since=since, until=until)
    if seqs is not None:
        where.append(Condition.one_of("seq", filters["seqs"]))
    if where:  # the key chain travels with any slice, so its checkpoints verify
        where = [Condition.any_of([Condition.all_of(where),
                                   Condition.equals("type", TRANSITION_TYPE)])]
    rows = log.store.iter_rows(where)
    redacted = _write_entries(log, rows, writers, checkpoint_size, progress)
    for entry in log.query(types=[TRANSITION_TYPE]):
        writers["transitions.jsonl"].line(
            {"seq": entry.seq, "transition": (entry.payload or {}).get("transition")})
    for item in iter_checkpoint_evidence(log.store):
        writers["checkpoints.jsonl"].line(evidence_line(item))
    files = {f: w.close() for f, w in writers.items()}
    counts = {f.split(".")[0]: w.count for f, w in writers.items()}
    counts["redacted"] = redacted
    counts["keys"] = _write_keys(out, log, vkeys or [], files)
    manifest = {
        "format": BUNDLE_FORMAT, "origin": log.origin,
        "created": format_time(datetime.now(UTC)), "filtered": bool(filters),
        "filters": filters, "checkpoint_size": checkpoint_size, "counts": counts, "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _write_entries(log: AuditLog, rows: Iterator[Any], writers: dict[str, _HashingWriter],
                   checkpoint_size: int | None, progress: Progress | None) -> int:
    redacted = 0
    for row in rows:
        seq = row.seq
        if checkpoint_size is not None and seq >= checkpoint_size:
            break
        writers["entries.jsonl"].line({"seq": seq, "envelope_b64": _b64(bytes(row.envelope)),
                                       "leaf_hash": bytes(row.leaf_hash).hex()})
        if row.content is None:
            redacted += 1
            writers["payloads.jsonl"].line({"seq": seq, "digest": row.digest, "redacted": True})
        else:
            writers["payloads.jsonl"].line(
                {"seq": seq, "digest": row.digest, "payload_b64": _b64(bytes(row.content))})
        if checkpoint_size is not None:
            proof = log.inclusion_proof(seq, checkpoint_size)
            writers["proofs.jsonl"].line(
                {"seq": seq, "size": checkpoint_size, "proof": [p.hex() for p in proof]})
        if progress is not None:
            progress(writers["entries.jsonl"].count)
    return redacted


def _write_keys(out: Path, log: AuditLog, vkeys: list[str], files: dict[str, str]) -> int:
    texts = list(vkeys)
    known = log.store.vkeys() + ([log.signer.vkey] if log.signer is not None else [])
    texts += [k for k in known if k not in texts]
    for text in texts:
        key_name = text.split("+", 1)[0].replace("/", "_") or "key"
        rel = f"keys/{key_name}+{text.split('+')[1] if '+' in text else 'x'}.vkey"
        data = (text.strip() + "\n").encode()
        (out / rel).write_bytes(data)
        files[rel] = "sha256:" + hashlib.sha256(data).hexdigest()
    return len(texts)


@dataclass
class Bundle:
    """An evidence bundle opened for reading (streams; nothing is held in memory)."""

    path: Path
    """The bundle directory."""
    manifest: dict[str, Any]
    """The parsed manifest.json."""
    verifiers: list[NoteVerifier] = field(default_factory=list)
    """Verifier keys shipped in keys/ (an auditor should prefer their own)."""

    @property
    def origin(self) -> str:
        """The log origin the bundle was exported from."""
        return str(self.manifest.get("origin", ""))

    @property
    def filtered(self) -> bool:
        """True for a slice of the log (verify with proofs, not as a chain)."""
        return bool(self.manifest.get("filtered"))

    def _lines(self, name: str) -> Iterator[dict[str, Any]]:
        path = self.path / name
        if not path.exists():
            return
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    yield json.loads(raw)
                except ValueError as e:
                    raise BundleIntegrityError(f"{name}:{number}: not JSON: {e}") from e

    def iter_entries(self) -> Iterator[StoredEntry]:
        """Stream entries joined with their payloads, in file order."""
        payloads = self._lines("payloads.jsonl")
        pending: dict[str, Any] | None = next(payloads, None)
        for line in self._lines("entries.jsonl"):
            seq = int(line["seq"])
            while pending is not None and int(pending["seq"]) < seq:
                pending = next(payloads, None)
            payload, redacted = None, False
            if pending is not None and int(pending["seq"]) == seq:
                redacted = bool(pending.get("redacted"))
                if "payload_b64" in pending:
                    payload = base64.b64decode(pending["payload_b64"])
            yield StoredEntry(seq, base64.b64decode(line["envelope_b64"]),
                              bytes.fromhex(line["leaf_hash"]), payload, redacted)

    def iter_checkpoints(self) -> Iterator[StoredCheckpoint]:
        """Stream the checkpoints in file order."""
        for line in self._lines("checkpoints.jsonl"):
            yield StoredCheckpoint(int(line["size"]), str(line["note"]))

    def iter_checkpoint_evidence(self) -> Iterator[CheckpointEvidence]:
        """Stream the checkpoints with their cosignatures and timestamp tokens."""
        for line in self._lines("checkpoints.jsonl"):
            token = line.get("timestamp")
            yield CheckpointEvidence(int(line["size"]), str(line["note"]),
                                     tuple(map(str, line.get("cosignatures", ()))),
                                     None if token is None else base64.b64decode(token))

    def iter_transitions(self) -> Iterator[dict[str, Any]]:
        """Stream the key transitions listed in ``transitions.jsonl`` (unverified hints)."""
        for line in self._lines("transitions.jsonl"):
            yield {"transition": line.get("transition")}

    def iter_proofs(self) -> Iterator[tuple[int, int, list[bytes]]]:
        """Stream ``(seq, size, proof)`` of a filtered bundle."""
        for line in self._lines("proofs.jsonl"):
            yield int(line["seq"]), int(line["size"]), [bytes.fromhex(p) for p in line["proof"]]

    def manifest_mismatches(self) -> list[str]:
        """Return the files whose SHA-256 differs from the manifest (or are missing)."""
        bad = []
        for rel, want in sorted(self.manifest.get("files", {}).items()):
            path = self.path / rel
            if not path.is_file():
                bad.append(rel)
                continue
            sha = hashlib.sha256()
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(chunk)
            if "sha256:" + sha.hexdigest() != want:
                bad.append(rel)
        return bad


def open_bundle(path: str | Path) -> Bundle:
    """Open an evidence bundle directory.

    Raises:
        StorageError: the directory or its manifest is missing or unreadable.
    """
    root = Path(path)
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise StorageError(
            f"not an evidence bundle: cannot read {root / 'manifest.json'}: {e}") from e
    if manifest.get("format") != BUNDLE_FORMAT:
        raise StorageError(
            f"unknown bundle format: expected {BUNDLE_FORMAT}, got {manifest.get('format')!r}")
    keys = sorted((root / "keys").glob("*.vkey")) if (root / "keys").is_dir() else []
    verifiers = load_verifiers([k.read_text().strip() for k in keys]) if keys else []
    return Bundle(root, manifest, verifiers)


def _chain(
    bundle: Bundle, verifiers: list[NoteVerifier]
) -> tuple[list[tuple[int, NoteVerifier | None, bool]], KeyChain]:
    """The key in force after each transition in the bundle's entries, followed in order.

    Returns ``[(size from which it signs, key in force, anchored)]`` and the
    chain followed; the entries themselves are proven by inclusion like any
    other (see :func:`_check_entry`).
    """
    chain = KeyChain(verifiers, first_key(bundle.iter_transitions()))
    steps = [(0, chain.in_force, chain.anchored)]
    for entry in bundle.iter_entries():
        if b'"type":"key_transition"' not in entry.envelope:
            continue
        try:
            problem = chain.follow(entry.seq, transition_from_payload(entry.payload or b""),
                                   bundle.origin)
        except InvalidSignatureError as e:
            problem = str(e)
        if problem is not None:
            raise BundleIntegrityError(f"forged_transition: key transition at seq {entry.seq} "
                                       f"{problem}", entry.seq)
        steps.append((entry.seq + 1, chain.in_force, chain.anchored))
    return steps, chain


def _signed_roots(bundle: Bundle, verifiers: list[NoteVerifier]
                  ) -> tuple[dict[int, bytes], KeyChain]:
    steps, chain = _chain(bundle, verifiers)
    roots: dict[int, bytes] = {}
    anchored = True
    for cp in bundle.iter_checkpoints():
        _size, in_force, anchored = max((s for s in steps if s[0] <= cp.size),
                                        key=lambda s: s[0])
        body, _names = open_note(cp.note, verifiers if in_force is None else [in_force])
        parsed = parse_checkpoint(body)
        if parsed.origin != bundle.origin or parsed.size != cp.size:
            raise BundleIntegrityError(
                f"checkpoint {cp.size}: expected origin {bundle.origin} size {cp.size}, "
                f"got {parsed.origin} size {parsed.size}")
        roots[cp.size] = parsed.root
    if not anchored:  # the proofs are against the latest checkpoint: a trusted key must sign it
        raise BundleIntegrityError(
            "unknown_key: the latest checkpoint is signed by a key of the log's chain that none "
            "of the given keys vouches for")
    return roots, chain


def verify_filtered_bundle(
    bundle: Bundle, verifiers: list[NoteVerifier] | None = None,
) -> list[tuple[int, KeyTransition]]:
    """Verify each entry of a filtered bundle by its inclusion proof (RFC 9162 §2.1.3.2).

    Checks: the key transitions the bundle carries (each signed by the key in
    force), every checkpoint's signature by the key in force at its size, every
    leaf hash, each entry's proof against a signed root, and each unredacted
    payload's digest against the envelope.

    Returns:
        ``(seq, transition)`` of each key transition followed, in log order.

    Raises:
        InvalidSignatureError: a checkpoint has no valid signature by the key in force.
        BundleIntegrityError: a transition, entry, payload or proof fails (``.seq``
            names it), or no given key vouches for the latest checkpoint.
    """
    roots, chain = _signed_roots(
        bundle, verifiers if verifiers is not None else bundle.verifiers)
    proofs = bundle.iter_proofs()
    for entry in bundle.iter_entries():
        _check_entry(entry, next(proofs, None), roots)
    return list(chain.history)


def _check_entry(entry: StoredEntry, proof: tuple[int, int, list[bytes]] | None,
                 roots: dict[int, bytes]) -> None:
    seq = entry.seq
    leaf = merkle.leaf_hash(entry.envelope)
    if leaf != entry.leaf_hash:
        raise BundleIntegrityError(f"entry {seq}: leaf hash does not match its envelope", seq)
    try:
        env = json.loads(entry.envelope)
    except ValueError as e:
        raise BundleIntegrityError(f"entry {seq}: envelope is not JSON", seq) from e
    if env.get("seq") != seq:
        raise BundleIntegrityError(f"entry {seq}: envelope seq is {env.get('seq')}", seq)
    if proof is None or proof[0] != seq:
        raise BundleIntegrityError(f"entry {seq}: no inclusion proof", seq)
    root = roots.get(proof[1])
    if root is None:
        raise BundleIntegrityError(f"entry {seq}: no signed checkpoint of size {proof[1]}", seq)
    try:
        merkle.verify_inclusion(leaf, seq, proof[1], proof[2], root)
    except IntegrityError as e:
        raise BundleIntegrityError(f"entry {seq}: inclusion proof fails: {e}", seq) from e
    if entry.payload is not None:
        digest = "sha256:" + hashlib.sha256(entry.payload).hexdigest()
        if digest != env.get("payload_digest"):
            raise BundleIntegrityError(f"entry {seq}: payload does not match its digest", seq)
    elif not entry.redacted:
        raise BundleIntegrityError(f"entry {seq}: payload missing and not marked redacted", seq)
