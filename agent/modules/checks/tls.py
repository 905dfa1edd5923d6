"""Check: days until a TLS certificate expires, from a live endpoint or a PEM file.

The seeds renew below 30 days (``warning: "< 30"``, ``critical: "< 7"``). The certificate is
read whether or not it verifies (an expiring self-signed or privately issued certificate still
needs renewing); ``verified`` says whether the chain and host name checked out against the
system trust store (or ``ca_file``).
"""
from __future__ import annotations

import asyncio
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from agent.core.values import Timeout
from agent.modules.base import CheckModule, CheckResult, Params, RunContext

# cryptography costs ~15 MB of RSS and the registry imports this module at every start-up: it is
# imported inside the functions that parse a certificate, i.e. only when a tls check runs.
if TYPE_CHECKING:
    from cryptography import x509


class TlsCheckParams(Params):
    host: str | None = Field(None, description="server to connect to (give host or pem_file)")
    port: int = Field(443, ge=1, le=65535, description="TCP port")
    server_name: str | None = Field(None, description="SNI and verification name; default: host")
    pem_file: str | None = Field(None, description="read the (first) certificate from this PEM file instead")
    ca_file: str | None = Field(None, description="CA bundle used for `verified` (default: the system store)")
    timeout: Timeout | None = Field(None, description="connect and handshake timeout; default: the check's timeout")

    @model_validator(mode="after")
    def _one_source(self) -> TlsCheckParams:
        if (self.host is None) == (self.pem_file is None):
            raise ValueError("give exactly one of host or pem_file")
        return self


class TlsCheck(CheckModule):
    """Fetches the peer certificate (handshake without verification) and parses it."""

    name: ClassVar[str] = "tls"
    Params: ClassVar[type[TlsCheckParams]] = TlsCheckParams
    description: ClassVar[str] = "Days until a TLS certificate expires (host:port or a PEM file)"
    default_value: ClassVar[str | None] = "days_left"
    facts: ClassVar[dict[str, str]] = {
        "days_left": "days until notAfter (fractional; negative once expired)",
        "not_after": "expiry, ISO 8601 UTC",
        "not_before": "start of validity, ISO 8601 UTC",
        "subject": "the subject's common name (or the full subject)",
        "issuer": "the issuer's common name (or the full issuer)",
        "sans": "DNS names of the subjectAltName extension",
        "verified": "chain and host name verified (None for a PEM file)",
        "verify_error": "why verification failed (None when verified or not attempted)",
    }

    async def run(self, params: TlsCheckParams, ctx: RunContext) -> CheckResult:
        timeout = min(params.timeout or ctx.timeout, ctx.timeout)
        try:
            if params.pem_file is not None:
                der = await ctx.run_blocking(_pem_to_der, params.pem_file)
                verified, verify_error = None, None
            else:
                assert params.host is not None
                der, verified, verify_error = await asyncio.wait_for(
                    ctx.run_blocking(_fetch, params.host, params.port, params.server_name or params.host,
                                      params.ca_file, timeout), timeout=timeout * 2 + 1)
        except TimeoutError:
            return CheckResult.failed(f"TLS handshake with {params.host}:{params.port} timed out after {timeout:g}s")
        except (OSError, ValueError) as exc:
            where = params.pem_file or f"{params.host}:{params.port}"
            return CheckResult.failed(f"cannot read the certificate of {where}: {exc}")
        from cryptography import x509  # heavy: see the imports at the top

        facts = describe(x509.load_der_x509_certificate(der))
        facts.update(verified=verified, verify_error=verify_error)
        return CheckResult(facts=facts, value=facts["days_left"],
                           summary=f"{facts['subject']} expires {facts['not_after']} ({facts['days_left']:.1f} days)")


def describe(cert: x509.Certificate, now: datetime | None = None) -> dict[str, Any]:
    """The facts of ``cert`` (no verification facts)."""
    from cryptography import x509  # heavy: see the imports at the top

    now = now or datetime.now(UTC)
    not_after = cert.not_valid_after_utc
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    return {
        "days_left": round((not_after - now).total_seconds() / 86400.0, 3),
        "not_after": not_after.isoformat(timespec="seconds"),
        "not_before": cert.not_valid_before_utc.isoformat(timespec="seconds"),
        "subject": _common_name(cert.subject),
        "issuer": _common_name(cert.issuer),
        "sans": list(sans),
    }


def _common_name(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID  # heavy: see the imports at the top

    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name.rfc4514_string()


def _pem_to_der(path: str) -> bytes:
    from cryptography import x509  # heavy: see the imports at the top
    from cryptography.hazmat.primitives.serialization import Encoding

    data = Path(path).read_bytes()
    try:
        return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    except ValueError:
        raise ValueError(f"{path} holds no PEM certificate") from None


def _fetch(host: str, port: int, server_name: str, ca_file: str | None,
           timeout: float) -> tuple[bytes, bool, str | None]:
    """The peer's DER certificate, and whether a verifying handshake succeeds."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with insecure.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ValueError("the server sent no certificate")
    verifying = ssl.create_default_context(cafile=ca_file)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with verifying.wrap_socket(raw, server_hostname=server_name):
                pass
        return der, True, None
    except ssl.SSLCertVerificationError as exc:
        return der, False, exc.verify_message or str(exc)
    except (ssl.SSLError, OSError) as exc:
        return der, False, str(exc)

