"""`policyengine witness`: run a tlog witness, or print a witness key.

``witness serve`` answers ``POST /add-checkpoint`` (c2sp.org/tlog-witness)
with a stdlib HTTP server over :class:`audit.witness.Witness`: it keeps the
last checkpoint it cosigned per log origin in ``--state`` and cosigns a new
one only when it is signed by that origin's ``--log-key`` and consistent
with the last. It prints ``listening on http://HOST:PORT`` once bound (port
0 picks a free port). ``witness vkey`` prints the cosignature/v1 verifier
key of a key file, for logs and auditors to configure.
"""

from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from policyengine.cli.gate import guarded

_MAX_BODY = 1 << 16  # a checkpoint, 63 proof lines and a few signatures fit easily


def register(subparsers: Any) -> None:
    """Add the ``witness`` command."""
    parser = subparsers.add_parser("witness", help="run a witness that cosigns log checkpoints")
    sub = parser.add_subparsers(dest="witness_command", metavar="ACTION", required=True)
    serve = sub.add_parser("serve", help="serve POST /add-checkpoint (c2sp.org/tlog-witness)")
    serve.add_argument("--key", required=True, help="witness signing key file (mode 600)")
    serve.add_argument("--log-key", action="append", required=True, metavar="ORIGIN_VKEY",
                       help="a log's key: ORIGIN=VKEY, or a vkey whose name is the origin")
    serve.add_argument("--state", required=True, help="JSON file of the last checkpoints")
    serve.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                       help="address to bind (default 127.0.0.1:0, a free port)")
    serve.set_defaults(func=guarded(_serve), logs=False)
    vkey = sub.add_parser("vkey", help="print the witness verifier key of a key file")
    vkey.add_argument("--key", required=True, help="witness signing key file")
    vkey.set_defaults(func=guarded(_vkey), logs=False)


def _vkey(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from audit.keys import load_signer
    from audit.witness import witness_vkey

    out.write(witness_vkey(load_signer(args.key)) + "\n")
    return 0


def _address(text: str) -> tuple[str, int]:
    from policyengine.errors import InputError

    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--listen: expected HOST:PORT, got {text!r}")
    return host, int(port)


def _serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from audit.keys import load_signer
    from audit.witness import Witness, WitnessState, parse_log_keys

    address = _address(args.listen)
    witness = Witness(load_signer(args.key), parse_log_keys(args.log_key),
                      WitnessState(args.state))
    server = ThreadingHTTPServer(address, _handler(witness))
    host, port = str(server.server_address[0]), int(server.server_address[1])
    err.write(f"witness {witness.vkey}\n")
    out.write(f"listening on http://{host}:{port}\n")
    out.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _handler(witness: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """POST /add-checkpoint only; everything else is 404 or 405."""

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/add-checkpoint":
                self._answer(404, "text/plain", b"not found\n")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._answer(411, "text/plain", b"Content-Length required\n")
                return
            if not 0 <= length <= _MAX_BODY:
                self._answer(413, "text/plain", b"request body too large\n")
                return
            resp = witness.add_checkpoint(self.rfile.read(length))
            self._answer(resp.status, resp.content_type, resp.body)

        def do_GET(self) -> None:
            self._answer(405, "text/plain", b"use POST /add-checkpoint\n")

        def _answer(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the log asks on every checkpoint."""

    return Handler
