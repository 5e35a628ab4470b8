"""Command line of the audit log: verify, show, checkpoint, proof, export, receipt, keys.

Thin: parses arguments, calls the library, prints, and maps errors to exit
codes in one place (:data:`_EXIT`). ``verify`` exits 0 when the log verifies,
1 when it is tampered (naming the fault class and the first bad seq) and 2 on
any error. Other commands exit 0 on success, 1 when a check fails, 2 on bad
input and 3 when the log or a key is unavailable, or when fewer witnesses
than required cosigned a checkpoint the command signed (it stays signed).
``policyengine audit ...`` forwards here, with the configured witnesses.

Long runs (verify, export) draw a progress line on stderr only when stderr is
a terminal and ``CI`` is not set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from audit.errors import AuditError, IntegrityError, KeyLoadError, LogUnavailableError

__all__ = ["DEFAULT_LOG_URL", "log_url", "main"]

Publish = Callable[[Any, Any], None]
"""A checkpoint hook ``(log, signed checkpoint)``, as in ``AuditLog.publishers``."""

DEFAULT_LOG_URL = "sqlite:///.policyengine/audit.db"
ENV_LOG_URL = "POLICYENGINE_LOG_URL"

_EXIT: list[tuple[type[BaseException], int]] = [
    (IntegrityError, 1),
    (LogUnavailableError, 3),
    (KeyLoadError, 3),
    (AuditError, 2),
]
"""Error class -> exit code, first match wins (verify maps every error to 2)."""


def _exit_code(e: AuditError, command: str) -> int:
    """The exit code of an error (see the module doc)."""
    if command == "verify" and not isinstance(e, LogUnavailableError):
        return 2
    if e.code == "audit_witness_unavailable":
        return 3  # audit.publish.WitnessError: signed and kept, but not witnessed
    return next(code for cls, code in _EXIT if isinstance(e, cls))


class _Progress:
    """A one-line counter on a terminal; silent elsewhere and in CI."""

    def __init__(self, stream: IO[str], label: str, total: int | None) -> None:
        isatty = getattr(stream, "isatty", lambda: False)
        self._on = bool(isatty()) and not os.environ.get("CI")
        self._stream, self._label, self._total = stream, label, total
        self._shown = 0

    def __call__(self, done: int) -> None:
        if not self._on or done - self._shown < 4096:
            return
        self._shown = done
        pct = f" {100 * done // self._total}%" if self._total else ""
        self._stream.write(f"\r{self._label} {done}/{self._total or '?'}{pct}")
        self._stream.flush()

    def close(self) -> None:
        if self._on and self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected RFC 3339 time, got {text!r}") from e
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"expected a time with a zone (e.g. Z), got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audit", description="Tamper-evident audit log.")
    sub = p.add_subparsers(dest="command", required=True)
    log = argparse.ArgumentParser(add_help=False)
    log.add_argument("--log", help=f"log URL (default ${ENV_LOG_URL} or {DEFAULT_LOG_URL})")
    signing = argparse.ArgumentParser(add_help=False)
    signing.add_argument("--signing-key",
                         help="signing key file (default $POLICYENGINE_SIGNING_KEY)")

    v = sub.add_parser("verify", parents=[log], help="verify a log or an evidence bundle")
    v.add_argument("--bundle", help="an evidence bundle directory instead of --log")
    v.add_argument("--key", action="append", default=[], help="verifier key (vkey text or file)")
    v.add_argument("--trusted-checkpoint", help="a signed checkpoint note kept earlier")
    v.add_argument("--witness", action="append", default=[],
                   help="witness cosignature key (vkey text or file), repeatable")
    v.add_argument("--min-witnesses", type=int, default=None,
                   help="valid witness cosignatures every checkpoint needs (default: all given)")
    v.add_argument("--tsa-cert", help="TSA certificate (PEM or DER): every checkpoint needs "
                   "a valid RFC 3161 timestamp")
    v.add_argument("--trust-bundle-keys", action="store_true",
                   help="UNSAFE: trust the keys shipped inside the bundle (anyone who rewrites "
                        "the bundle can re-sign it)")
    v.set_defaults(func=_verify)
    s = sub.add_parser("show", parents=[log], help="print one entry as JSON")
    s.add_argument("seq", type=int)
    s.set_defaults(func=_show)
    c = sub.add_parser("checkpoint", parents=[log, signing], help="sign and print a checkpoint")
    c.set_defaults(func=_checkpoint)
    pr = sub.add_parser("proof", help="print Merkle proofs").add_subparsers(
        dest="kind", required=True)
    inc = pr.add_parser("inclusion", parents=[log], help="inclusion proof of one entry")
    inc.add_argument("seq", type=int)
    inc.add_argument("--size", type=int, help="tree size (default: current)")
    inc.set_defaults(func=_proof_inclusion)
    con = pr.add_parser("consistency", parents=[log], help="consistency proof OLD -> NEW")
    con.add_argument("old", type=int)
    con.add_argument("new", type=int)
    con.set_defaults(func=_proof_consistency)
    e = sub.add_parser("export", parents=[log, signing], help="write an evidence bundle")
    e.add_argument("--out", required=True, help="new or empty directory")
    e.add_argument("--name", help="subject name")
    e.add_argument("--version", help="subject version")
    e.add_argument("--since", type=_time, help="RFC 3339 time, inclusive")
    e.add_argument("--until", type=_time, help="RFC 3339 time, exclusive")
    e.set_defaults(func=_export)
    r = sub.add_parser("receipt", help="receipts").add_subparsers(dest="kind", required=True)
    rv = r.add_parser("verify", help="verify a receipt offline")
    rv.add_argument("file")
    rv.add_argument("--key", action="append", required=True, help="verifier key (vkey or file)")
    rv.set_defaults(func=_receipt_verify)
    k = sub.add_parser("keys", help="keys").add_subparsers(dest="kind", required=True)
    kg = k.add_parser("generate", help="generate a signing key; print its verifier key")
    kg.add_argument("name", help="key name, e.g. example.com/audit")
    kg.add_argument("--out", help="private key file (default NAME.key, mode 600)")
    kg.set_defaults(func=_keys_generate)
    return p


def log_url(value: str) -> str:
    """A log URL; a plain path (no ``scheme://``) means the SQLite file ``sqlite:///path``."""
    return value if "://" in value else f"sqlite:///{value}"


def _url(args: argparse.Namespace) -> str:
    return log_url(args.log or os.environ.get(ENV_LOG_URL) or DEFAULT_LOG_URL)


def _open(args: argparse.Namespace, *, signed: bool = False, create: bool = False) -> Any:
    """Open the log; only commands that write (checkpoint) may create it."""
    from audit.log import AuditLog

    signer = None
    if signed:
        from audit.keys import load_signer

        signer = load_signer(args.signing_key)
    log = AuditLog.open(_url(args), signer=signer, create=create)
    if signer is not None:
        log.publishers.extend(getattr(args, "publishers", ()))
    return log


def _emit(out: IO[str], obj: Any) -> None:
    out.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None, *, stdout: IO[str] | None = None,
         stderr: IO[str] | None = None, publishers: Sequence[Publish] = ()) -> int:
    """Run the audit command line; return the exit code (never raises for user errors).

    ``publishers`` run on each checkpoint a command signs (``checkpoint``,
    ``export``), as :attr:`audit.log.AuditLog.publishers`: the witnesses and
    TSA a log's operator configured (:class:`audit.publish.Publisher`), so a
    checkpoint signed here is cosigned and timestamped like any other.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed usage
        return 0 if e.code == 0 else 2
    args.publishers = list(publishers)
    func: Callable[[argparse.Namespace, IO[str], IO[str]], int] = args.func
    try:
        return func(args, out, err)
    except AuditError as e:
        err.write(f"error: {e.diagnostics()}\n")
        return _exit_code(e, args.command)
    except OSError as e:
        err.write(f"error: {e.strerror or e}: {e.filename or ''}\n")
        return 2


def _verifiers(keys: list[str]) -> list[Any]:
    from audit.keys import load_verifiers

    return load_verifiers(keys)


def _verify(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    if args.bundle and args.log:
        err.write("error: give --log or --bundle, not both\n")
        return 2
    trusted = Path(args.trusted_checkpoint).read_text() if args.trusted_checkpoint else None
    if not args.key and not (args.bundle and args.trust_bundle_keys):
        err.write("error: no trust anchor: pass --key with the log's public key (its first key "
                  "or a later one of its key chain; a vkey or a file holding it)"
                  + (", or --trust-bundle-keys to trust the keys inside the bundle (unsafe)"
                     if args.bundle else "") + "\n")
        return 2
    evidence = _evidence_options(args)
    code = _verify_log(args, trusted, out, err)
    if code != 0 or evidence is None:
        return code
    from audit.evidence import iter_checkpoint_evidence
    from audit.export import open_bundle

    items = (open_bundle(args.bundle).iter_checkpoint_evidence() if args.bundle
             else iter_checkpoint_evidence(_open(args).store))
    return _check_evidence(items, *evidence, out)


def _evidence_options(args: argparse.Namespace) -> tuple[list[Any], int, Any] | None:
    """Witness keys, the N of N-of-M and the TSA certificate; None when none is asked."""
    if not args.witness and args.min_witnesses is None and not args.tsa_cert:
        return None
    from audit.errors import InputError
    from audit.witness import load_witness_keys

    witnesses = load_witness_keys(args.witness)
    n = len(witnesses) if args.min_witnesses is None else args.min_witnesses
    if not 0 <= n <= len(witnesses):
        raise InputError(f"--min-witnesses: expected 0..{len(witnesses)} (the number of "
                         f"--witness keys), got {n}")
    cert = None
    if args.tsa_cert:
        from audit.timestamp import load_tsa_cert

        cert = load_tsa_cert(Path(args.tsa_cert).read_bytes())
    return witnesses, n, cert


def _check_evidence(items: Any, witnesses: list[Any], n: int, cert: Any, out: IO[str]) -> int:
    from audit.evidence import verify_evidence

    report = verify_evidence(items, witnesses, n, cert)
    if not report:
        fault = getattr(report.fault, "value", report.fault)
        out.write(f"TAMPERED: {fault} at checkpoint {report.checkpoint_size}: "
                  f"{report.message}\n")
        return 1
    out.write(report.summary(n) + "\n")
    return 0


def _verify_log(args: argparse.Namespace, trusted: str | None, out: IO[str],
                err: IO[str]) -> int:
    """Entries, chain, tree and checkpoint signatures, of a log or a bundle."""
    from audit.export import open_bundle

    if args.bundle:
        bundle = open_bundle(args.bundle)
        keys = _verifiers(args.key) if args.key else bundle.verifiers
        if not keys:
            err.write("error: the bundle ships no verifier keys: pass --key VKEY\n")
            return 2
        if not args.key:
            err.write("warning: --trust-bundle-keys: trusting the keys shipped in the bundle; "
                      "anyone who rewrote the bundle could have re-signed it\n")
        if bundle.filtered:
            return _verify_filtered(bundle, keys, out)
        source: Any = bundle
        origin, total = bundle.origin, bundle.manifest.get("counts", {}).get("entries")
        hint: Any = bundle.iter_transitions()
    else:
        keys = _verifiers(args.key)
        log = _open(args)
        source, origin, total = log.store, log.origin, log.size()
        hint = (e.payload for e in log.query(types=["key_transition"]))
    return _run_verifier(source, keys, origin, trusted, total, out, err,
                         bundle=bundle if args.bundle else None, transitions=hint)


def _run_verifier(source: Any, keys: list[Any], origin: str, trusted: str | None,
                  total: int | None, out: IO[str], err: IO[str], *, bundle: Any = None,
                  transitions: Any = ()) -> int:
    from audit.verify import Verifier

    transitions = list(transitions)
    progress = _Progress(err, "verify", total)
    verifier = Verifier(keys, origin, trusted, progress=progress)
    try:
        report = verifier.verify(source.iter_entries(), source.iter_checkpoints(),
                                 transitions=transitions)
    finally:
        progress.close()
    if not report.ok:
        fault = getattr(report.fault, "value", report.fault)
        out.write(f"TAMPERED: {fault} at seq {report.first_bad_seq}: {report.message}\n")
        return 1
    if bundle is not None and (bad := bundle.manifest_mismatches()):
        out.write(f"TAMPERED: manifest digest mismatch in {', '.join(bad)}\n")
        return 1
    redacted = len(report.redacted_seqs)
    out.write(f"ok: {report.entries_checked} entries, {report.checkpoints_checked} checkpoints "
              f"verified; {redacted} redacted payload(s)\n")
    _print_transitions(report.transitions, out)
    if report.unsigned_entries:
        out.write(f"note: {report.unsigned_entries} entries after the last checkpoint are "
                  "not yet covered by a signature\n")
    return 0


def _print_transitions(transitions: Any, out: IO[str]) -> None:
    """One line per verified key transition, so an auditor sees the log's key history.

    ``transitions`` are the ``(seq, transition)`` pairs the verifier followed
    (never the bundle's ``transitions.jsonl`` hints, which nothing signs as a file).
    """
    if transitions:
        first = transitions[0][1].old
        out.write(f"key chain: first key {first.name}+{first.key_id.hex()}\n")
    for seq, t in transitions:
        out.write(f"key transition at size {t.size} (seq {seq}): {t.old.name}+"
                  f"{t.old.key_id.hex()} -> {t.new.name}+{t.new.key_id.hex()}\n")


def _verify_filtered(bundle: Any, keys: list[Any], out: IO[str]) -> int:
    from audit.export import BundleIntegrityError, verify_filtered_bundle

    try:
        transitions = verify_filtered_bundle(bundle, keys)
    except BundleIntegrityError as e:
        out.write(f"TAMPERED: filtered bundle at seq {e.seq}: {e}\n")
        return 1
    except IntegrityError as e:
        out.write(f"TAMPERED: {e}\n")
        return 1
    if bad := bundle.manifest_mismatches():
        out.write(f"TAMPERED: manifest digest mismatch in {', '.join(bad)}\n")
        return 1
    count = bundle.manifest.get("counts", {}).get("entries", 0)
    out.write(f"ok: {count} entries verified by inclusion proofs (filtered bundle)\n")
    _print_transitions(transitions, out)
    return 0


def _show(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    entry = _open(args).get(args.seq)
    _emit(out, {"seq": entry.seq, "leaf_hash": entry.leaf_hash, "envelope": entry.envelope,
                "payload": entry.payload, "redacted": entry.redacted})
    return 0


def _checkpoint(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    out.write(_open(args, signed=True).checkpoint().note)
    return 0


def _proof_inclusion(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    log = _open(args)
    size = log.size() if args.size is None else args.size
    proof = log.inclusion_proof(args.seq, size)
    _emit(out, {"seq": args.seq, "size": size, "leaf_hash": log.get(args.seq).leaf_hash,
                "root": log.root(size).hex(), "proof": [p.hex() for p in proof]})
    return 0


def _proof_consistency(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    log = _open(args)
    proof = log.consistency_proof(args.old, args.new)
    _emit(out, {"old": args.old, "new": args.new, "old_root": log.root(args.old).hex(),
                "new_root": log.root(args.new).hex(), "proof": [p.hex() for p in proof]})
    return 0


def _export(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from audit.export import export_bundle

    wants_signer = bool(args.signing_key or os.environ.get("POLICYENGINE_SIGNING_KEY"))
    log = _open(args, signed=wants_signer)
    progress = _Progress(err, "export", log.size())
    try:
        manifest = export_bundle(log, args.out, name=args.name, version=args.version,
                                 since=args.since, until=args.until, progress=progress)
    finally:
        progress.close()
    counts = manifest["counts"]
    out.write(f"exported {counts['entries']} entries, {counts['checkpoints']} checkpoints "
              f"to {args.out}\n")
    return 0


def _receipt_verify(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from audit.receipt import loads_receipt, verify_receipt

    receipt = loads_receipt(Path(args.file).read_bytes())
    verify_receipt(receipt, _verifiers(args.key))
    out.write(f"ok: receipt for seq {receipt.get('leaf_index')} verifies\n")
    return 0


def _keys_generate(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from audit.keys import generate_key

    skey, vkey = generate_key(args.name)
    path = Path(args.out or (args.name.replace("/", "_") + ".key"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(skey + "\n")
    os.chmod(path, 0o600)
    out.write(vkey + "\n")
    err.write(f"wrote private key {path} (mode 600); keep it secret\n")
    return 0
