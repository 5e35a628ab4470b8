"""The one door to the audit log: open it, record an entry, build its receipt.

Owns opening the configured log (:func:`open_log`), turning the log's
failures into policyengine errors (:func:`log_errors`: exit 3 / HTTP 503, or
exit 2 for input the log cannot hash), and :func:`record`, the write every
operation (gate, approvals and waivers, promotions and lifecycle events, the
service's webhook entries) goes through: append the entry and sign a
checkpoint over it in one transaction (both or neither), then build the
entry's receipt.

What a caller is told is the truth about the log: when :func:`record`
raises anything but :class:`RecordedIncompleteError`, nothing was written;
when it raises that error, the entry is in the log at the seq it names.

Not handled here: what an entry says (gate, approvals, promote) or how errors
become exit codes and statuses (the CLI's and the service's one tables).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyengine.errors import (
    InputError,
    LogUnavailableError,
    PolicyEngineError,
    RecordedIncompleteError,
)

if TYPE_CHECKING:
    from audit.keys import Signer
    from audit.log import AuditLog, NewEntry, SignedCheckpoint
    from audit.records import AppendResult, Seq
    from policyengine.config import Config

__all__ = ["Recorded", "log_errors", "open_log", "receipt_for", "record"]


@dataclass(frozen=True)
class Recorded:
    """An entry in the log, the signed checkpoint covering it, and its receipt."""

    seq: Seq
    """Sequence number of the entry (its Merkle leaf index)."""
    checkpoint: SignedCheckpoint
    """The checkpoint signed in the same transaction (``.size``, ``.note``)."""
    receipt: dict[str, Any]
    """Offline-verifiable receipt of the entry on that checkpoint."""
    appended: AppendResult
    """The entry as stored (envelope bytes, leaf hash, time)."""

    @property
    def checkpoint_size(self) -> int:
        """Tree size of the covering checkpoint."""
        return self.checkpoint.size


def _redact_url(url: str) -> str:
    """Hide a password in a database URL before it reaches a message."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


@contextmanager
def log_errors(config: Config) -> Iterator[None]:
    """Turn any failure of the log layer into LogUnavailableError (exit 3)."""
    try:
        yield
    except PolicyEngineError:
        raise
    except Exception as exc:  # fail closed: whatever broke, the log is not usable
        if getattr(exc, "code", None) == "audit_canonicalization_error":
            # The input is not JSON the log can hash (an integer beyond 2**53-1, a
            # non-string key): bad input, exit 2; the log wrote nothing.
            raise InputError(f"input cannot be logged: {exc}") from exc
        if getattr(exc, "code", None) == "audit_log_unavailable":
            # The log's own message already names the (redacted) URL and how to fix it.
            message = str(exc).replace(config.log_url, _redact_url(config.log_url))
            raise LogUnavailableError(message) from exc
        # The same one line as audit's own (audit.store): one error for an unreachable log.
        raise LogUnavailableError(
            f"audit log unavailable at {_redact_url(config.log_url)}: {exc}; "
            "check --log or POLICYENGINE_LOG_URL"
        ) from exc


def open_log(config: Config, signer: Signer | None = None) -> AuditLog:
    """Open the configured log (creating the default SQLite file's directory).

    Raises:
        LogUnavailableError: the URL is bad or the store cannot be opened.
    """
    with log_errors(config):
        from audit.log import AuditLog

        default = f"sqlite:///{config.state_dir / 'audit.db'}"
        if config.log_url == default:
            config.state_dir.mkdir(parents=True, exist_ok=True)
        elif config.log_url.startswith("sqlite:///"):
            path = Path(config.log_url[len("sqlite:///") :])
            if not path.parent.is_dir():
                raise FileNotFoundError(f"directory {path.parent} does not exist")
        log = AuditLog.open(config.log_url, origin=config.origin, signer=signer)
        log.publishers.extend(checkpoint_publishers(config))
        return log
    raise AssertionError("unreachable")  # pragma: no cover


def checkpoint_publishers(config: Config) -> list[Any]:
    """What runs on each checkpoint a log of ``config`` signs: its ``witnessing:``, if any.

    Raises:
        ConfigError: a witness key is malformed or ``min_witnesses`` is out of range.
    """
    return [] if config.witnessing is None else [_publisher(config)]


def _publisher(config: Config) -> Any:
    """The checkpoint publisher of ``witnessing:`` (witness cosignatures, timestamps).

    Raises:
        ConfigError: a witness key is malformed or ``min_witnesses`` is out of range.
    """
    from audit.errors import AuditError
    from audit.publish import Publisher, WitnessEndpoint
    from audit.witness import CosignatureVerifier
    from policyengine.errors import ConfigError

    w = config.witnessing
    assert w is not None
    try:
        endpoints = [WitnessEndpoint(x.url, CosignatureVerifier.from_vkey(x.vkey))
                     for x in w.witnesses]
        return Publisher(endpoints, min_witnesses=w.min_witnesses, tsa_url=w.timestamp_url,
                         timeout=w.timeout_seconds)
    except AuditError as exc:
        raise ConfigError(f"witnessing: {exc}") from exc


def record(
    log: AuditLog,
    config: Config,
    entry_type: str,
    subject: Mapping[str, str],
    actor: str,
    payload: Any,
    *,
    preceding: Sequence[NewEntry] = (),
) -> Recorded:
    """Append one entry with a signed checkpoint over it, and build its receipt.

    The entry and the checkpoint are one transaction, so a key that cannot
    sign (or a log inconsistent with its last checkpoint) leaves nothing
    written. ``preceding`` entries (content the entry relies on, such as a
    decision's policy bundle) are appended just before it in that same
    transaction, so they are written with it or not at all. The receipt is
    read after the commit; if that fails the entries stay, and the error says so.

    Raises:
        InputError: the payload cannot be hashed (exit 2; nothing written).
        LogUnavailableError: the log or the key failed (exit 3; nothing written).
        RecordedIncompleteError: the entry and its checkpoint are in the log, but
            the receipt could not be built (exit 3 / 503, carrying the seq).
    """
    with log_errors(config):
        if preceding:
            from audit.log import NewEntry

            entry = NewEntry(entry_type, dict(subject), actor, payload)
            signed = log.append_signed_many([*preceding, entry])
        else:
            signed = log.append_signed(entry_type, dict(subject), actor, payload)
    appended, checkpoint = signed.appended, signed.checkpoint
    try:
        receipt = receipt_for(log, appended, checkpoint, verdict=_verdict(entry_type, payload))
    except Exception as exc:  # the entry is durable: say so, whatever broke
        raise RecordedIncompleteError(
            appended.seq,
            f"checkpoint {checkpoint.size} covers it, but its receipt could not be built",
            f"do not record it again; fetch the receipt with GET /v1/audit/receipts/"
            f"{appended.seq} or `policyengine audit proof inclusion {appended.seq}` "
            "once the log answers",
            cause=str(exc).replace(config.log_url, _redact_url(config.log_url)),
        ) from exc
    return Recorded(appended.seq, checkpoint, receipt, appended)


def _verdict(entry_type: str, payload: Any) -> str | None:
    """A decision entry's verdict (allow or deny) for its receipt; None for other entries."""
    if entry_type != "decision" or not isinstance(payload, Mapping):
        return None
    decision = payload.get("decision")
    verdict = decision.get("decision") if isinstance(decision, Mapping) else None
    return verdict if verdict in ("allow", "deny") else None


def receipt_for(
    log: AuditLog, appended: Any, checkpoint: Any, *, verdict: str | None = None
) -> dict[str, Any]:
    """The receipt of an entry just appended, on the checkpoint just signed over it.

    Built from the bytes the append returned (contract: hash the bytes you stored),
    so the entry and its payload are not read back as ``AuditLog.receipt`` does.
    """
    from audit.receipt import build_receipt

    proof = log.inclusion_proof(appended.seq, checkpoint.size)
    return build_receipt(appended.envelope, appended.seq, checkpoint.size, proof,
                         checkpoint.note, verdict=verdict)
