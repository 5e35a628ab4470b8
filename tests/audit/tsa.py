"""A real RFC 3161 TSA on loopback for tests: a test CA, a TSA certificate, `openssl ts -reply`.

Each request is piped through ``openssl ts -reply`` by a tiny HTTP server
in a thread; the certificates are made with ``cryptography`` in a temporary
directory. Nothing is downloaded.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CONFIG = """\
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@dataclass(frozen=True)
class Tsa:
    """A running loopback TSA."""

    url: str
    cert_path: Path
    cert: x509.Certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(key: ec.EllipticCurvePrivateKey, subject: str, issuer_key: ec.EllipticCurvePrivateKey,
              issuer: str, *, ca: bool, eku: bool) -> x509.Certificate:
    """A certificate valid from a day ago for a year (a CA, or a TSA with the EKU if asked)."""
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                            critical=True)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _write_material(d: Path) -> x509.Certificate:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_cert(ca_key, "Test CA", ca_key, "Test CA", ca=True, eku=False)
    cert = make_cert(tsa_key, "Test TSA", ca_key, "Test CA", ca=False, eku=True)
    _pem(d / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    _pem(d / "tsa.pem", cert.public_bytes(serialization.Encoding.PEM))
    _pem(d / "tsa.key", tsa_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    (d / "serial").write_text("01\n")
    (d / "tsa.cnf").write_text(_CONFIG.format(dir=d))
    return cert


@contextmanager
def running_tsa(directory: Path) -> Iterator[Tsa]:
    """Start a loopback TSA backed by ``openssl ts -reply``; stop it on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    cert = _write_material(directory)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:  # one openssl at a time: it updates the serial file
                (directory / "req.tsq").write_bytes(query)
                subprocess.run(
                    ["openssl", "ts", "-reply", "-config", str(directory / "tsa.cnf"),
                     "-queryfile", str(directory / "req.tsq"), "-out", str(directory / "resp.tsr")],
                    check=True, capture_output=True)
                body = (directory / "resp.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Tsa(f"http://127.0.0.1:{server.server_address[1]}/", directory / "tsa.pem", cert)
    finally:
        server.shutdown()
        server.server_close()
