"""Check: an HTTP(S) endpoint's status, latency, headers and (JSON) body.

Transport: the agent's shared, pooled session (:mod:`agent.http`, which explains why).
"""
from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from agent.core.values import Timeout
from agent.http import RequestFailed, parse_json, request, safe_url
from agent.modules.base import CheckModule, CheckResult, Params, RunContext, Secret

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class HttpCheckParams(Params):
    model_config = ConfigDict(populate_by_name=True)

    url: str = Field(description="http:// or https:// URL to request, e.g. {{ bot.health_url }}")
    method: HttpMethod = Field("GET", description="HTTP method")
    # Secret: headers and bodies carry bearer tokens and passwords.
    headers: Annotated[dict[str, str], Secret()] = Field(
        default_factory=dict, repr=False,
        description="request headers (secret: values never stored, shown or logged)"
    )
    json_body: Annotated[Any, Secret()] = Field(
        None, alias="json", repr=False, description="JSON request body, sets Content-Type (secret)")
    body: Annotated[str | None, Secret()] = Field(
        None, repr=False, description="raw request body text, exclusive with json (secret)")
    timeout: Timeout | None = Field(
        None, description="whole-request timeout; default and upper bound: the check's timeout"
    )
    verify_tls: bool = Field(True, description="verify the server's TLS certificate")
    follow_redirects: bool = Field(False, description="follow 3xx redirects (off: the 3xx status is the result)")
    max_body_bytes: int = Field(
        1_048_576, gt=0, le=64 * 2**20, description="read at most this many body bytes; a longer body is truncated, json None"
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
        started = time.perf_counter()
        try:
            response = await request(
                params.method,
                params.url,
                timeout=timeout,
                verify_tls=params.verify_tls,
                headers=params.headers,
                json_body=params.json_body,
                data=params.body,
                follow_redirects=params.follow_redirects,
                max_body_bytes=params.max_body_bytes,
            )
        except RequestFailed as exc:
            return CheckResult.failed(str(exc))
        latency_ms = (time.perf_counter() - started) * 1000.0
        content_type = response.headers.get("content-type", "")
        parsed = None if response.truncated else await _json_or_none(response.body, content_type)
        facts: dict[str, Any] = {
            "status_code": response.status,
            "latency_ms": round(latency_ms, 3),
            "json": parsed,
            "text": response.text,
            "truncated": response.truncated,
            "headers": {name.lower(): value for name, value in response.headers.items()},
            "url": safe_url(response.url),
        }
        return CheckResult(
            facts=facts,
            value=response.status,
            summary=f"{params.method} {safe_url(params.url)} -> {response.status} in {latency_ms:.0f}ms",
        )


INLINE_JSON_BYTES = 65_536
"""Bodies up to this size are parsed on the event loop (well under a millisecond); larger ones
(up to ``max_body_bytes``) in a worker thread, so no body delays the other checks."""


async def _json_or_none(body: bytes, content_type: str) -> Any:
    # Only bodies that claim or look like JSON: a plain-text "200" must stay text.
    if "json" not in content_type and body.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        if len(body) <= INLINE_JSON_BYTES:
            return parse_json(body)
        return await asyncio.to_thread(parse_json, body)
    except ValueError:  # not JSON, or nested too deeply (parse_json turns RecursionError into this)
        return None
