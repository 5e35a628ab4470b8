"""Publishing checkpoints: witness cosignatures and RFC 3161 timestamps after signing.

Owns :class:`Publisher`, a hook :class:`audit.log.AuditLog` calls after it
commits a newly signed checkpoint. For each checkpoint it:

1. asks the configured timestamp authority for a token over the SHA-256 of
   the signed note (RFC 3161; :mod:`audit.timestamp`);
2. sends the checkpoint to each witness with ``POST <url>/add-checkpoint``
   (c2sp.org/tlog-witness), with the consistency proof from the size that
   witness last cosigned; a ``409`` naming another size is retried once
   from that size;
3. stores the tokens and the verified cosignatures beside the checkpoint
   (:mod:`audit.evidence`).

A witness or TSA that fails is logged and skipped: appends are not blocked,
unless ``min_witnesses`` is set and fewer witnesses cosigned, which raises
:class:`WitnessError` (the entry and checkpoint stay committed; the caller
learns they are not witnessed and fails closed).
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from audit.errors import AuditError, StorageError
from audit.evidence import COSIGNATURE, TIMESTAMP, add_evidence, last_cosigned_size
from audit.timestamp import checkpoint_digest, request_timestamp
from audit.witness import (
    SIZE_CONTENT_TYPE,
    CosignatureVerifier,
    encode_add_checkpoint,
    verified_cosigners,
)

if TYPE_CHECKING:
    from audit.log import AuditLog, SignedCheckpoint

__all__ = ["Publisher", "WitnessEndpoint", "WitnessError"]

_log = logging.getLogger("audit.publish")


class WitnessError(StorageError):
    """A witness refused or could not cosign, or too few witnesses cosigned."""

    code = "audit_witness_unavailable"


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log asks to cosign: its submission URL prefix and its key."""

    url: str
    """Submission prefix; requests go to ``<url>/add-checkpoint``."""
    key: CosignatureVerifier
    """The witness's cosignature/v1 key; answers are verified against it."""

    @property
    def source(self) -> str:
        """The evidence source naming this witness: ``<name>+<hex key id>``."""
        return f"{self.key.name}+{self.key.key_id.hex()}"


class _Conflict(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"witness has size {size}")
        self.size = size


def _post(url: str, data: bytes, timeout: float) -> bytes:
    """POST an add-checkpoint body; return the 200 body, raise _Conflict on 409."""
    req = urllib.request.Request(url.rstrip("/") + "/add-checkpoint", data=data,
                                 method="POST", headers={"Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return bytes(resp.read(1 << 16))
    except urllib.error.HTTPError as exc:
        body = exc.read(1 << 10)
        ctype = exc.headers.get("Content-Type", "")
        if exc.code == 409 and ctype.startswith(SIZE_CONTENT_TYPE):
            try:
                raise _Conflict(int(body.decode().strip())) from exc
            except ValueError:
                pass
        why = body.decode("utf-8", "replace").strip()[:200]
        raise WitnessError(f"witness {url} answered {exc.code}: {why}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise WitnessError(f"witness {url} unavailable: {exc}") from exc


class Publisher:
    """The post-signing hook: timestamps and witness cosignatures (see module doc)."""

    def __init__(self, witnesses: Sequence[WitnessEndpoint] = (), *, min_witnesses: int = 0,
                 tsa_url: str | None = None, timeout: float = 10.0) -> None:
        """Configure the witnesses, how many must cosign, and an optional TSA URL.

        Raises:
            WitnessError: ``min_witnesses`` exceeds the number of witnesses.
        """
        if not 0 <= min_witnesses <= len(witnesses):
            raise WitnessError(f"min_witnesses: expected 0..{len(witnesses)}, got {min_witnesses}")
        self.witnesses, self.min_witnesses = list(witnesses), min_witnesses
        self.tsa_url, self.timeout = tsa_url, timeout

    def __call__(self, log: AuditLog, cp: SignedCheckpoint) -> None:
        """Timestamp and cosign ``cp``; store what was obtained.

        Raises:
            WitnessError: fewer than ``min_witnesses`` witnesses cosigned.
        """
        if self.tsa_url:
            try:
                token = request_timestamp(self.tsa_url, checkpoint_digest(cp.note),
                                          timeout=self.timeout)
                add_evidence(log.store, cp.size, TIMESTAMP, self.tsa_url, token)
            except AuditError as exc:
                _log.warning("checkpoint %d not timestamped: %s", cp.size, exc)
        cosigned = 0
        for witness in self.witnesses:
            try:
                line = self.cosign(log, cp, witness)
            except AuditError as exc:
                _log.warning("checkpoint %d not cosigned by %s: %s", cp.size, witness.source, exc)
                continue
            add_evidence(log.store, cp.size, COSIGNATURE, witness.source, line.encode())
            cosigned += 1
        if cosigned < self.min_witnesses:
            raise WitnessError(
                f"checkpoint {cp.size} cosigned by {cosigned} witness(es), expected at least "
                f"{self.min_witnesses}; the entry is recorded but not witnessed: check the "
                "witnesses' logs and URLs")

    def cosign(self, log: AuditLog, cp: SignedCheckpoint, witness: WitnessEndpoint) -> str:
        """Obtain ``witness``'s cosignature line on ``cp``.

        Raises:
            WitnessError: unreachable, refused (403/404/409/422), or an answer
                without a valid cosignature by the witness's key.
        """
        old = last_cosigned_size(log.store, witness.source)
        for attempt in range(2):
            if old > cp.size:
                raise WitnessError(f"witness {witness.url} already cosigned size {old}, "
                                   f"beyond {cp.size}")
            proof = log.consistency_proof(old, cp.size) if 0 < old < cp.size else []
            try:
                answer = _post(witness.url, encode_add_checkpoint(old, proof, cp.note),
                               self.timeout)
            except _Conflict as conflict:
                if attempt or conflict.size == old:
                    raise WitnessError(f"witness {witness.url} refused size {cp.size}: it "
                                       f"holds size {conflict.size} (409)") from conflict
                old = conflict.size
                continue
            return self._check_answer(cp, witness, answer)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _check_answer(cp: SignedCheckpoint, witness: WitnessEndpoint, answer: bytes) -> str:
        body = cp.note[: cp.note.rfind("\n\n") + 1]
        lines = answer.decode("utf-8", "replace").splitlines(keepends=True)
        for line in lines:
            if verified_cosigners(body, [line], [witness.key])[0]:
                return line
        raise WitnessError(f"witness {witness.url} answered without a valid cosignature "
                           f"by {witness.source}")
