"""A real RFC 3161 time-stamping authority for tests: `openssl ts -reply` over HTTP on loopback."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl binary not available")

MESSAGE = b"deletion-desk tree head v1\nsize=42\nroot=" + bytes(range(32))
SECRET_BODY = b"INTERNAL-SECRET-BODY-TEXT"

# One file serves `openssl req`/`x509` (certificate extensions) and `openssl ts` ([tsa]).
# $ENV::TSA_DIR keeps the file free of absolute paths; the fixture sets it per subprocess.
OPENSSL_CONF = """\
[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]

[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[ v3_tsa ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = $ENV::TSA_DIR
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
certs = $dir/ca.pem
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 0
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256

# Same TSA, but it only accepts SHA-512 imprints, so it rejects our SHA-256 query.
[ tsa_sha512_only ]
dir = $ENV::TSA_DIR
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
certs = $dir/ca.pem
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha512
ess_cert_id_alg = sha256
"""


@dataclass(frozen=True)
class Tsa:
    """A running loopback TSA and the files describing it."""

    base_url: str
    dir: Path
    ca_pem: Path
    tsa_pem: Path
    other_ca_pem: Path

    def url(self, path: str = "/tsa") -> str:
        """URL of one of the server's behaviours."""
        return self.base_url + path

    def openssl_verify(self, data: Path, token: Path) -> subprocess.CompletedProcess:
        """`openssl ts -verify` of a bare TimeStampToken over `data`, trusting this TSA's CA."""
        return subprocess.run(
            [OPENSSL, "ts", "-verify", "-data", str(data), "-in", str(token), "-token_in"]
            + ["-CAfile", str(self.ca_pem), "-untrusted", str(self.tsa_pem)],
            capture_output=True,
            timeout=30,
            check=False,
        )


def _openssl(tsa_dir: Path, cmdline: str, cwd: Path | None = None) -> bytes:
    """Run `openssl CMDLINE` (shell-quoted) with TSA_DIR set, failing loudly with its stderr."""
    proc = subprocess.run(
        [OPENSSL, *shlex.split(cmdline)],
        cwd=cwd or tsa_dir,
        env={"TSA_DIR": str(tsa_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {cmdline!r} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def _make_pki(d: Path) -> None:
    """Write the config, a root CA, a TSA certificate it signed, and an unrelated root."""
    (d / "openssl.cnf").write_text(OPENSSL_CONF)
    (d / "tsaserial").write_text("01\n")
    # P-256 keys: instant to generate, and ECDSA is what `openssl ts` signs with here.
    keygen = "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out"
    for name in ("ca", "otherca"):
        _openssl(d, f"{keygen} {name}.key")
        _openssl(
            d,
            f"req -new -x509 -config openssl.cnf -extensions v3_ca -key {name}.key"
            f" -subj '/CN={name} root' -days 2 -sha256 -out {name}.pem",
        )
    _openssl(d, f"{keygen} tsa.key")
    _openssl(
        d,
        "req -new -config openssl.cnf -key tsa.key -subj '/CN=Deletion Desk test TSA' -out tsa.csr",
    )
    _openssl(
        d,
        "x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 -sha256"
        " -extfile openssl.cnf -extensions v3_tsa -out tsa.pem",
    )
    # A query for some other message, answered by /replay to simulate a stale/replayed reply.
    (d / "other.msg").write_bytes(b"some other message")
    _openssl(d, "ts -query -data other.msg -sha256 -cert -out stale.tsq")


def _make_handler(d: Path) -> type[BaseHTTPRequestHandler]:
    """Build the request handler bound to the PKI in d."""
    # `openssl ts -reply` increments the serial file non-atomically: one reply at a time.
    lock = threading.Lock()
    conf = shlex.quote(str(d / "openssl.cnf"))

    def reply(query: bytes, section: str = "tsa_config1") -> bytes:
        with lock, tempfile.TemporaryDirectory(dir=d) as work:
            (Path(work) / "q.tsq").write_bytes(query)
            _openssl(
                d,
                f"ts -reply -config {conf} -section {section} -queryfile q.tsq -out r.tsr",
                cwd=Path(work),
            )
            return (Path(work) / "r.tsr").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        """POST /<behaviour>: a real TSA at /tsa plus deliberately broken variants."""

        def log_message(self, format: str, *args: object) -> None:
            """Keep pytest output quiet."""

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            """Dispatch on path."""
            query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ok_type = self.headers.get("Content-Type") == "application/timestamp-query"
            if self.path == "/tsa" and ok_type:
                self._send(200, "application/timestamp-reply", reply(query))
            elif self.path == "/status500":
                self._send(500, "text/plain", SECRET_BODY)
            elif self.path == "/garbage":
                self._send(200, "application/timestamp-reply", b"<html>" + SECRET_BODY)
            elif self.path == "/wrong-type":
                # A perfectly good reply, so only the content-type check can reject it.
                self._send(200, "text/html", reply(query))
            elif self.path == "/replay":
                self._send(
                    200, "application/timestamp-reply", reply((d / "stale.tsq").read_bytes())
                )
            elif self.path == "/reject":
                self._send(200, "application/timestamp-reply", reply(query, "tsa_sha512_only"))
            else:
                self._send(400, "text/plain", b"bad request")

    return Handler


@pytest.fixture(scope="session")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tsa]:
    """A CA, a TSA certificate, and `openssl ts -reply` behind HTTP on 127.0.0.1."""
    d = tmp_path_factory.mktemp("tsa")
    _make_pki(d)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(d))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield Tsa(f"http://{host}:{port}", d, d / "ca.pem", d / "tsa.pem", d / "otherca.pem")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
