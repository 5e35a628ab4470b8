"""Evidence beside checkpoints: witness cosignatures and RFC 3161 tokens.

Owns the table ``audit_checkpoint_evidence`` (insert only; one row per
checkpoint size, kind and source) and the offline check of that evidence:

- every checkpoint carries valid cosignatures (c2sp.org/tlog-cosignature)
  from at least ``min_witnesses`` of the witness keys the auditor gives
  (fault ``missing_witness``; a cosignature by a given key that does not
  verify is also ``missing_witness``, naming the key);
- with a TSA certificate, every checkpoint carries a token that verifies
  for the SHA-256 of its note (fault ``bad_timestamp``).

Cosignatures live apart from the signed note so that checkpoint rows stay
immutable (the PostgreSQL guards refuse UPDATE) and the timestamped note is
byte for byte the one the log signed. The table is created on first write,
so logs that never used witnesses are unchanged. Entries, chain and roots
are checked by :mod:`audit.verify`; this runs after it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from audit._report import FaultClass
from audit.errors import IntegrityError
from audit.records import StoredCheckpoint
from audit.timestamp import checkpoint_digest, verify_timestamp
from audit.witness import CosignatureVerifier, verified_cosigners

if TYPE_CHECKING:
    from cryptography import x509

    from audit.store import Store

__all__ = [
    "COSIGNATURE",
    "TIMESTAMP",
    "CheckpointEvidence",
    "EvidenceReport",
    "add_evidence",
    "evidence_line",
    "iter_checkpoint_evidence",
    "last_cosigned_size",
    "verify_evidence",
]

COSIGNATURE = "cosignature"
TIMESTAMP = "timestamp"

_EVIDENCE_TABLE = "audit_checkpoint_evidence"
_EVIDENCE_BATCH = 1024


def _create_table(store: Store) -> None:
    """Create the evidence table (declared here; SQLAlchemy only for its DDL)."""
    import sqlalchemy as sa

    table = sa.Table(
        _EVIDENCE_TABLE, sa.MetaData(),
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("source", sa.String(512), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    ddl = str(sa.schema.CreateTable(table, if_not_exists=True).compile(
        dialect=store.engine.dialect))
    with store.write() as tx:
        tx.cursor.execute(ddl)
    # size: checkpoint size; kind: cosignature | timestamp; source: witness key
    # name+id or TSA URL; data: the cosignature line (UTF-8) or the token DER.


@dataclass(frozen=True)
class CheckpointEvidence:
    """One checkpoint with what vouches for it beside the log's own signature."""

    size: int
    """Tree size of the checkpoint."""
    note: str
    """The signed note as the log signed it."""
    cosignatures: tuple[str, ...] = ()
    """Witness cosignature lines (signed-note lines, newline-terminated)."""
    timestamp: bytes | None = None
    """An RFC 3161 TimeStampToken (DER) over the note's SHA-256, or None."""


def add_evidence(store: Store, size: int, kind: str, source: str, data: bytes) -> None:
    """Record one cosignature or token for checkpoint ``size`` (kept if already there)."""
    if not _has_table(store):
        _create_table(store)
    with store.write() as tx:
        key = (size, kind, source)
        if not tx.rows("SELECT size FROM audit_checkpoint_evidence WHERE size = ? AND kind = ? "
                       "AND source = ?", key):
            tx.execute("INSERT INTO audit_checkpoint_evidence (size, kind, source, data) "
                       "VALUES (?, ?, ?, ?)", (*key, data))


def _has_table(store: Store) -> bool:
    return _EVIDENCE_TABLE in store.existing((_EVIDENCE_TABLE,))


def last_cosigned_size(store: Store, source: str) -> int:
    """The largest checkpoint size ``source`` (a witness) cosigned, or 0."""
    if not _has_table(store):
        return 0
    ((size,),) = store.rows("SELECT max(size) FROM audit_checkpoint_evidence WHERE kind = ? "
                            "AND source = ?", (COSIGNATURE, source))
    return int(size or 0)


def _rows(store: Store) -> Iterator[tuple[int, str, bytes]]:
    if not _has_table(store):
        return
    after: tuple[int, str, str] | None = None
    while True:  # keyset batches in (size, kind, source) order: flat memory
        where, params = "", tuple[Any, ...]()
        if after is not None:
            where = ("WHERE (size > ?) OR (size = ? AND kind > ?) "
                     "OR (size = ? AND kind = ? AND source > ?) ")
            params = (after[0], after[0], after[1], after[0], after[1], after[2])
        batch = store.rows(f"SELECT size, kind, source, data FROM {_EVIDENCE_TABLE} {where}"
                           f"ORDER BY size, kind, source LIMIT {_EVIDENCE_BATCH:d}", params)
        for size, kind, _source, data in batch:
            yield int(size), str(kind), bytes(data)
        if len(batch) < _EVIDENCE_BATCH:
            return
        last = batch[-1]
        after = (int(last[0]), str(last[1]), str(last[2]))


def iter_checkpoint_evidence(store: Store) -> Iterator[CheckpointEvidence]:
    """Stream every checkpoint of ``store`` with its evidence, by size."""
    rows = itertools.groupby(_rows(store), key=lambda r: r[0])
    pending = next(rows, None)
    for cp in store.iter_checkpoints():
        while pending is not None and pending[0] < cp.size:
            pending = next(rows, None)
        group: list[tuple[int, str, bytes]] = []
        if pending is not None and pending[0] == cp.size:
            group = list(pending[1])
            pending = next(rows, None)
        yield _assemble(cp, group)


def _assemble(cp: StoredCheckpoint, rows: list[tuple[int, str, bytes]]) -> CheckpointEvidence:
    cosigs = tuple(d.decode() for _s, k, d in rows if k == COSIGNATURE)
    token = next((d for _s, k, d in rows if k == TIMESTAMP), None)
    return CheckpointEvidence(cp.size, cp.note, cosigs, token)


@dataclass
class EvidenceReport:
    """Outcome of checking witness cosignatures and timestamps; true when it verified."""

    ok: bool = True
    fault: FaultClass | None = None
    checkpoint_size: int | None = None
    """The checkpoint at fault."""
    message: str = ""
    checkpoints: int = 0
    cosigned: dict[str, int] = field(default_factory=dict)
    """Witness name -> checkpoints it validly cosigned."""
    timestamps: int = 0
    """Tokens that verified."""
    latest_time: datetime | None = None
    """genTime of the last verified token."""
    unchecked_timestamps: int = 0
    """Tokens present but not checked (no TSA certificate was given)."""

    def __bool__(self) -> bool:
        return self.ok

    def summary(self, min_witnesses: int) -> str:
        """One line for people: who cosigned what, and the timestamps."""
        names = ", ".join(f"{n} {c}/{self.checkpoints}" for n, c in sorted(self.cosigned.items()))
        out = f"witnesses: {names or 'none'} (required {min_witnesses} per checkpoint)"
        if self.timestamps:
            out += (f"; timestamps: {self.timestamps} verified, latest "
                    f"{self.latest_time.isoformat() if self.latest_time else '?'}")
        elif self.unchecked_timestamps:
            out += (f"; timestamps: {self.unchecked_timestamps} present, not checked "
                    "(pass --tsa-cert to verify them)")
        return out


class _EvidenceFault(Exception):
    def __init__(self, fault: FaultClass, size: int, message: str) -> None:
        super().__init__(message)
        self.fault, self.size, self.message = fault, size, message


def verify_evidence(
    items: Iterable[CheckpointEvidence], witnesses: Sequence[CosignatureVerifier],
    min_witnesses: int = 0, tsa_cert: x509.Certificate | None = None,
) -> EvidenceReport:
    """Check each checkpoint's cosignatures and token; never raises on a failed check.

    Args:
        items: every checkpoint with its evidence (streamed).
        witnesses: witness keys the auditor trusts; others' lines are ignored.
        min_witnesses: valid cosignatures each checkpoint needs (N of M).
        tsa_cert: when given, each checkpoint needs a token valid for it.
    """
    report = EvidenceReport(cosigned={w.name: 0 for w in witnesses})
    try:
        for item in items:
            _check_one(item, witnesses, min_witnesses, tsa_cert, report)
            report.checkpoints += 1
    except _EvidenceFault as f:
        report.ok, report.fault, report.checkpoint_size = False, f.fault, f.size
        report.message = f.message
    return report


def _check_one(item: CheckpointEvidence, witnesses: Sequence[CosignatureVerifier],
               min_witnesses: int, tsa_cert: x509.Certificate | None,
               report: EvidenceReport) -> None:
    size = item.size
    body = item.note[: item.note.rfind("\n\n") + 1]
    try:
        verified, failed = verified_cosigners(body, item.cosignatures, witnesses)
    except IntegrityError as exc:
        raise _EvidenceFault(FaultClass.MISSING_WITNESS, size,
                             f"checkpoint at size {size}: malformed cosignature: {exc}") from exc
    if failed:
        raise _EvidenceFault(FaultClass.MISSING_WITNESS, size,
                             f"checkpoint at size {size}: invalid cosignature by witness "
                             f"{failed[0]}")
    if len(verified) < min_witnesses:
        raise _EvidenceFault(FaultClass.MISSING_WITNESS, size,
                             f"checkpoint at size {size}: {len(verified)} valid witness "
                             f"cosignature(s), expected at least {min_witnesses}")
    for name in verified:
        report.cosigned[name] += 1
    if tsa_cert is None:
        report.unchecked_timestamps += item.timestamp is not None
        return
    if item.timestamp is None:
        raise _EvidenceFault(FaultClass.BAD_TIMESTAMP, size,
                             f"checkpoint at size {size}: no RFC 3161 timestamp")
    try:
        info = verify_timestamp(item.timestamp, checkpoint_digest(item.note), tsa_cert)
    except IntegrityError as exc:
        raise _EvidenceFault(FaultClass.BAD_TIMESTAMP, size,
                             f"checkpoint at size {size}: {exc}") from exc
    report.timestamps += 1
    report.latest_time = info.gen_time


def evidence_line(item: CheckpointEvidence) -> dict[str, Any]:
    """The ``checkpoints.jsonl`` line of an export bundle for one checkpoint."""
    import base64

    line: dict[str, Any] = {"size": item.size, "note": item.note}
    if item.cosignatures:
        line["cosignatures"] = list(item.cosignatures)
    if item.timestamp is not None:
        line["timestamp"] = base64.b64encode(item.timestamp).decode()
    return line
