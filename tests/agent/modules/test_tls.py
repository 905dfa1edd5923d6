"""tls check against a real TLS server on 127.0.0.1 with a certificate generated here."""
from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.modules.checks.tls import TlsCheck, TlsCheckParams
from tests.support.ports import free_port


def make_cert(tmp: Path, days: float) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "botwarden.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=10))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("botwarden.test"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / f"cert{days}.pem", tmp / f"key{days}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class TlsServer:
    """Accepts TLS handshakes on 127.0.0.1 until stopped."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass  # the client rejected our self-signed certificate: expected for `verified`
            finally:
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[TlsServer, Path]]:
    cert, key = make_cert(tmp_path, 20)
    server = TlsServer(cert, key)
    try:
        yield server, cert
    finally:
        server.stop()


async def test_days_left_from_a_live_server(tls_server, make_ctx):
    server, _cert = tls_server
    result = await TlsCheck().run(TlsCheckParams(host="127.0.0.1", port=server.port), make_ctx())
    assert result.error is None
    assert 19.9 < result.value < 20.1
    f = result.facts
    assert f["subject"] == "botwarden.test" and f["issuer"] == "botwarden.test" and f["sans"] == ["botwarden.test"]
    assert f["verified"] is False and f["verify_error"]  # self-signed: not trusted by the system store


async def test_verified_with_the_ca_file(tls_server, make_ctx):
    server, cert = tls_server
    params = TlsCheckParams(host="127.0.0.1", port=server.port, server_name="botwarden.test", ca_file=str(cert))
    result = await TlsCheck().run(params, make_ctx())
    assert result.facts["verified"] is True and result.facts["verify_error"] is None


@pytest.mark.parametrize(("days", "low", "high"), [(45, 44.9, 45.1), (-2, -2.1, -1.9)])
async def test_pem_file(tmp_path, make_ctx, days, low, high):
    cert, _ = make_cert(tmp_path, days)
    result = await TlsCheck().run(TlsCheckParams(pem_file=str(cert)), make_ctx())
    assert low < result.value < high and result.facts["verified"] is None


async def test_errors_are_unknown_with_a_reason(tmp_path, make_ctx):
    port = free_port()
    refused = await TlsCheck().run(TlsCheckParams(host="127.0.0.1", port=port, timeout="2s"), make_ctx())
    assert refused.error and f"127.0.0.1:{port}" in refused.error
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    bad = await TlsCheck().run(TlsCheckParams(pem_file=str(junk)), make_ctx())
    assert bad.error and "no PEM certificate" in bad.error


def test_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        TlsCheckParams()
