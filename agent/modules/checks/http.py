"""Check: an HTTP(S) endpoint's status, latency, headers and (JSON) body.

Transport: one pooled ``aiohttp.ClientSession`` per event loop and TLS setting (keep-alive
connections to the bot's endpoints). The agent must sustain on the order of a thousand HTTP
checks per second on two cores; httpx managed about 250-550 requests/s there, aiohttp several
thousand (see docs/performance.md). Proxy variables are ignored (``trust_env=False``): checks
probe endpoints directly and must never be routed elsewhere.
"""
from __future__ import annotations

import asyncio
import json
import ssl
import time
import weakref
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import ConfigDict, Field, field_validator, model_validator

from agent.modules.base import CheckModule, CheckResult, Params, RunContext
from agent.modules.checks import _http_clients
from agent.modules.checks._http_clients import safe_url
from agent.types import Duration

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class HttpCheckParams(Params):
    model_config = ConfigDict(populate_by_name=True)

    url: str = Field(description="http:// or https:// URL to request, e.g. {{ bot.health_url }}")
    method: HttpMethod = Field("GET", description="HTTP method")
    # repr=False: headers carry bearer tokens; a logged params object must not show them.
    headers: dict[str, str] = Field(
        default_factory=dict, repr=False, description="request headers (values may be secrets; never logged)"
    )
    json_body: Any = Field(None, alias="json", repr=False, description="JSON request body (sets Content-Type)")
    body: str | None = Field(None, repr=False, description="raw request body text (exclusive with json)")
    timeout: Duration | None = Field(
        None, description="whole-request timeout; default and upper bound: the check's timeout"
    )
    verify_tls: bool = Field(True, description="verify the server's TLS certificate")
    follow_redirects: bool = Field(False, description="follow 3xx redirects (off: the 3xx status is the result)")
    max_body_bytes: int = Field(
        1_048_576, gt=0, description="read at most this many body bytes; a longer body is truncated, json None"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{safe_url(url) or url[:20]!r} is not an http:// or https:// URL")
        return url

    @model_validator(mode="after")
    def _one_body(self) -> HttpCheckParams:
        if self.json_body is not None and self.body is not None:
            raise ValueError("give either json or body, not both")
        return self


class HttpCheck(CheckModule):
    """Requests a URL through the shared per-loop session and reports what came back."""

    name: ClassVar[str] = "http"
    Params: ClassVar[type[HttpCheckParams]] = HttpCheckParams
    description: ClassVar[str] = "HTTP(S) request: status code, latency, headers, JSON or text body"
    default_value: ClassVar[str | None] = "status_code"
    facts: ClassVar[dict[str, str]] = {
        "status_code": "HTTP status code, e.g. 200",
        "latency_ms": "milliseconds from sending the request to the end of the (possibly truncated) body",
        "json": "the body parsed as JSON, or None if it is not JSON (or was truncated)",
        "text": "the body as text, at most max_body_bytes",
        "truncated": "true when the body was longer than max_body_bytes",
        "headers": "response headers, names lower-case",
        "url": "the final URL (after redirects), without query or credentials",
    }

    async def run(self, params: HttpCheckParams, ctx: RunContext) -> CheckResult:
        timeout = min(params.timeout or ctx.timeout, ctx.timeout)
        session = _session(params.verify_tls)
        started = time.perf_counter()
        try:
            # aiohttp's own total timeout and asyncio.timeout both bound the whole request.
            async with asyncio.timeout(timeout):
                async with session.request(
                    params.method,
                    params.url,
                    headers=params.headers,
                    json=params.json_body,
                    data=params.body,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                    allow_redirects=params.follow_redirects,
                ) as response:
                    body, truncated = await _read_capped(response, params.max_body_bytes)
        except TimeoutError:
            return CheckResult.failed(f"{params.method} {safe_url(params.url)} timed out after {timeout:g}s")
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            return CheckResult.failed(f"{params.method} {safe_url(params.url)} failed: {_reason(exc, params.url)}")
        latency_ms = (time.perf_counter() - started) * 1000.0
        content_type = response.headers.get("content-type", "")
        facts: dict[str, Any] = {
            "status_code": response.status,
            "latency_ms": round(latency_ms, 3),
            "json": None if truncated else _json_or_none(body, content_type),
            "text": body.decode(response.charset or "utf-8", errors="replace"),
            "truncated": truncated,
            "headers": {name.lower(): value for name, value in response.headers.items()},
            "url": safe_url(str(response.url)),
        }
        return CheckResult(
            facts=facts,
            value=response.status,
            summary=f"{params.method} {safe_url(params.url)} -> {response.status} in {latency_ms:.0f}ms",
        )


# -- the pooled session ----------------------------------------------------------------------------
_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[bool, aiohttp.ClientSession]] = (
    weakref.WeakKeyDictionary()
)


def _session(verify_tls: bool) -> aiohttp.ClientSession:
    """The running loop's session for this TLS setting (created on first use).

    Sessions are bound to the loop that created them (their connections are), hence one per
    running loop, forgotten with the loop; the engine closes them at shutdown.
    """
    per_loop = _sessions.setdefault(asyncio.get_running_loop(), {})
    session = per_loop.get(verify_tls)
    if session is None or session.closed:
        tls: ssl.SSLContext | bool = ssl.create_default_context() if verify_tls else False
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=0, keepalive_timeout=30.0, ssl=tls)
        session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True)
        per_loop[verify_tls] = session
    return session


async def close_sessions() -> None:
    """Close the running loop's sessions (called by ``close_shared_clients`` at shutdown)."""
    per_loop = _sessions.pop(asyncio.get_running_loop(), {})
    for session in per_loop.values():
        await session.close()


_http_clients.register_closer(close_sessions)


def _reason(exc: BaseException, url: str) -> str:
    """A one-line reason that never echoes credentials, query or body."""
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error is not None:
        reason = exc.os_error.strerror or str(exc.os_error)
    else:
        reason = str(exc) or type(exc).__name__
    return reason.replace(url, safe_url(url))


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` body bytes, and whether there was more (the rest is not read)."""
    body = bytearray()
    while True:
        chunk = await response.content.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body), False
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True


def _json_or_none(body: bytes, content_type: str) -> Any:
    # Only bodies that claim or look like JSON: a plain-text "200" must stay text.
    if "json" not in content_type and body.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
