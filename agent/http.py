"""The agent's HTTP transport: one pooled ``aiohttp.ClientSession`` per event loop and TLS setting.

Every HTTP user of the agent goes through :func:`request`: the http, prometheus and exchange
checks, the bot action, the report's read of the bot's ``/metrics``, and the heartbeat (with a
session of its own, see :func:`new_session`); :func:`get_ok` is the GET that must answer
HTTP 200 (the prometheus and exchange checks, the bot action's ``/health``, the report).

aiohttp is the agent's one HTTP client library: httpx managed about 250-550 requests/s on two
cores where aiohttp did several thousand (see docs/performance.md), and importing httpx as well
would cost the resident agent ~4 MB (and, with click installed, httpx's own command-line tool
and pygments).

A session per request would cost a TLS context and a new connection every time; the agent must
sustain on the order of a thousand checks per second, so requests reuse pooled keep-alive
connections. Sessions are bound to the loop that created them (their connections are), hence
one per running loop, forgotten with the loop (weak keys); the engine closes them at shutdown
with :func:`close_shared_clients`.

``trust_env=False``: proxy variables from the environment are ignored, because checks probe
the bot's own endpoints directly and must never be routed elsewhere. Redirects are never
followed unless asked (a 3xx is the answer), and every timeout bounds the whole request: one
``asyncio.timeout`` around it, aiohttp's own timers off (:data:`_NO_AIOHTTP_TIMEOUT`).

Nothing a server sends can make the agent hold more than a cap: every body is read by one
capped reader (:func:`_read_capped`) that counts the bytes as they arrive on the wire *and* as
they come out of decompression (gzip and deflate, decoded here with ``zlib``'s ``max_length``
so a gzip bomb inflates at most one cap's worth), and stops reading at ``max_body_bytes``
(default :data:`DEFAULT_MAX_BODY_BYTES`); the rest is never read and the connection is
dropped. Other content codings (br, zstd) are not asked for and refused if sent. Parsing a
body that may be large (:func:`parse_json`, the Prometheus text) is the caller's, off the loop.
"""
from __future__ import annotations

import asyncio
import json
import os
import ssl
import weakref
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

DEFAULT_MAX_BODY_BYTES = 1_048_576
"""The cap of a body nobody sized: 1 MiB, far above any answer of the bot or its /health."""
_READ_CHUNK = 65_536
_WIRE_SLACK = 1024
"""Wire bytes allowed beyond the cap: gzip headers and trailers of a body that decodes within it."""
ACCEPTED_ENCODINGS = "gzip, deflate"
"""What the agent asks for (aiohttp would add br and zstd when their libraries are present)."""

_NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout(total=None)
"""No aiohttp timer at all (no total, connect or read limit; a session's default would be
``total=300``): :func:`request` bounds the whole request with ``asyncio.timeout`` alone."""

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[bool | str, aiohttp.ClientSession]] = (
    weakref.WeakKeyDictionary()
)


def new_session(verify_tls: bool = True, *, trust_env: bool = False) -> aiohttp.ClientSession:
    """A pooled session (keep-alive connections); the caller closes it. Call inside the loop."""
    # ssl=True: aiohttp's verifying context (the system's CA store), made once when aiohttp is
    # imported. A context of our own per session loaded that store again: the idle agent held
    # 1.4 MB more RSS with it (docs/performance.md's scenario).
    connector = aiohttp.TCPConnector(limit=512, limit_per_host=0, keepalive_timeout=30.0, ssl=verify_tls)
    # auto_decompress=False: _read_capped decodes, counting compressed and decoded bytes alike.
    return aiohttp.ClientSession(connector=connector, trust_env=trust_env, auto_decompress=False)


def shared_session(verify_tls: bool = True, *, unix_socket: str | None = None) -> aiohttp.ClientSession:
    """The running loop's session for this TLS-verification setting, or for the unix socket
    ``unix_socket`` (every request of that session goes to it, whatever the URL's host)."""
    per_loop = _sessions.setdefault(asyncio.get_running_loop(), {})
    key: bool | str = f"unix:{unix_socket}" if unix_socket else verify_tls
    session = per_loop.get(key)
    if session is None or session.closed:
        if unix_socket:
            session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=unix_socket), trust_env=False,
                                            auto_decompress=False)
        else:
            session = new_session(verify_tls)
        per_loop[key] = session
    return session


async def close_shared_clients() -> None:
    """Close the running loop's sessions (the engine calls this at shutdown; tests too)."""
    per_loop = _sessions.pop(asyncio.get_running_loop(), {})
    for session in per_loop.values():
        await session.close()


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: status, headers, the body (at most ``max_body_bytes``) and the final URL."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool
    url: str
    charset: str | None

    @property
    def text(self) -> str:
        return self.body.decode(self.charset or "utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` when it is not JSON (or nested too deeply).
        Parses on the calling thread: for a large body use :func:`parse_json` in a worker."""
        return parse_json(self.body)


def parse_json(body: bytes | str) -> Any:
    """JSON, or ``ValueError``: also for nesting deeper than the interpreter's recursion limit,
    which ``json.loads`` reports as ``RecursionError`` (``[[[[...`` from a hostile server)."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class RequestFailed(Exception):
    """No response (a timeout, a refused connection, a TLS or protocol error), or, from
    :func:`get_ok`, a status other than 200.

    ``str()`` is the operator's message (``GET http://host/path failed: Connection refused``,
    ``... failed: HTTP 503``, ``... timed out after 5s``); ``reason`` is the part after the URL;
    ``status`` is the HTTP status when a response came back (``None``: no response). Neither
    message ever carries credentials, a query string, headers or a body.
    """

    def __init__(self, method: str, url: str, reason: str, *, timed_out: bool = False,
                 status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        sep = " " if timed_out else " failed: "
        super().__init__(f"{method} {safe_url(url)}{sep}{reason}")


async def request(
    method: str,
    url: str,
    *,
    timeout: float,
    verify_tls: bool = True,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    data: str | bytes | None = None,
    follow_redirects: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    session: aiohttp.ClientSession | None = None,
    unix_socket: str | None = None,
) -> Response:
    """One request through the shared session (or ``session``), ``timeout`` bounding all of it.

    Reads at most ``max_body_bytes`` of the body, compressed and decoded alike (more: the
    response is ``truncated`` and the rest is not read). Raises :class:`RequestFailed` when no
    response arrives or its content coding cannot be decoded; any HTTP status is a :class:`Response`.
    ``unix_socket``: send it to that socket (``url`` names the path and Host header only).
    """
    if session is None:
        session = shared_session(verify_tls, unix_socket=unix_socket)
    if not any(k.lower() == "accept-encoding" for k in (headers or {})):
        headers = {**(headers or {}), "Accept-Encoding": ACCEPTED_ENCODINGS}
    try:
        async with asyncio.timeout(timeout):  # the one timer: aiohttp's are off
            async with session.request(
                method,
                url,
                headers=headers,
                json=json_body,
                data=data,
                timeout=_NO_AIOHTTP_TIMEOUT,
                allow_redirects=follow_redirects,
            ) as response:
                body, truncated = await _read_capped(response, max_body_bytes)
    except TimeoutError:
        raise RequestFailed(method, url, f"timed out after {timeout:g}s", timed_out=True) from None
    except (aiohttp.ClientError, ValueError, OSError) as exc:
        raise RequestFailed(method, url, _reason(exc, url)) from None
    return Response(status=response.status, headers=response.headers, body=body, truncated=truncated,
                    url=str(response.url), charset=response.charset)


async def get_ok(url: str, *, timeout: float, verify_tls: bool = True,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Response:
    """GET ``url`` through the shared session: the response when it is HTTP 200 with a whole body.

    Raises :class:`RequestFailed` when no response arrives, as :func:`request` does, when the
    status is not 200 (``GET http://host/path failed: HTTP 503``, ``status`` set), and when the
    body is larger than ``max_body_bytes`` (``... failed: body larger than 1048576 bytes``).
    """
    response = await request("GET", url, timeout=timeout, verify_tls=verify_tls, max_body_bytes=max_body_bytes)
    if response.status != 200:
        raise RequestFailed("GET", url, f"HTTP {response.status}", status=response.status)
    if response.truncated:
        raise RequestFailed("GET", url, f"body larger than {max_body_bytes} bytes", status=response.status)
    return response


class _Decoder:
    """Decodes one body's content coding with a hard output cap per call (gzip bomb safe)."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zlib: Any = None  # created on the first byte (deflate: zlib-wrapped or raw)

    def decode(self, chunk: bytes, max_out: int) -> tuple[bytes, bool]:
        """Up to ``max_out`` decoded bytes of ``chunk``, and whether input was left over (more
        output than ``max_out`` was waiting)."""
        if self.coding == "identity":
            return chunk[:max_out], len(chunk) > max_out
        out = bytearray()
        data = chunk
        try:
            while data and len(out) < max_out:
                if self._zlib is None or (self._zlib.eof and self.coding == "gzip"):  # (next) gzip member
                    wbits = 31 if self.coding == "gzip" else (15 if data[0] & 0x0F == 8 else -15)
                    self._zlib = zlib.decompressobj(wbits)
                elif self._zlib.eof:
                    return bytes(out), False  # bytes after the end of a deflate stream: ignored
                out += self._zlib.decompress(data, max_out - len(out))
                data = self._zlib.unconsumed_tail or (self._zlib.unused_data if self._zlib.eof else b"")
        except zlib.error as exc:
            raise ValueError(f"the body is not valid {self.coding}: {exc}") from None
        return bytes(out), bool(data)


def _decoder(response: aiohttp.ClientResponse) -> _Decoder:
    coding = response.headers.get("Content-Encoding", "identity").strip().lower() or "identity"
    coding = {"x-gzip": "gzip"}.get(coding, coding)
    if coding not in ("identity", "gzip", "deflate"):
        raise ValueError(f"unsupported Content-Encoding {coding[:40]!r} (the agent accepts {ACCEPTED_ENCODINGS})")
    return _Decoder(coding)


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` decoded body bytes, and whether there was more (the rest is not read).

    The bytes on the wire are capped at ``limit`` too (a compressed body is never longer than
    what it decodes to, except by a few header bytes): a stream that decodes to nothing cannot
    be read for ever either.
    """
    decoder = _decoder(response)
    body = bytearray()
    wire, wire_cap = 0, limit + _WIRE_SLACK
    while True:
        chunk = await response.content.read(min(_READ_CHUNK, wire_cap + 1 - wire))
        if not chunk:
            return bytes(body), False
        wire += len(chunk)
        decoded, more = decoder.decode(chunk, limit + 1 - len(body))
        body += decoded
        if more or len(body) > limit or wire > wire_cap:
            return bytes(body[:limit]), True


def _reason(exc: BaseException, url: str) -> str:
    """The failure's reason, with the request URL reduced to :func:`safe_url`. A protocol error
    (e.g. a bad status line) may quote bytes the server sent, on several lines: callers that
    log or alert on it pass it through their redaction, as the heartbeat does."""
    # aiohttp spells the URL its own way (quoted, normalised) in these: never echo them.
    if isinstance(exc, aiohttp.NonHttpUrlClientError):
        return "not an http:// or https:// URL"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return f"too many redirects (last: HTTP {exc.status})"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} {exc.message}".rstrip()
    os_error = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else None
    if os_error is None:
        reason = str(exc) or type(exc).__name__
    elif not isinstance(os_error, ssl.SSLError) and isinstance(os_error.errno, int) and os_error.errno > 0:
        reason = os.strerror(os_error.errno)  # "Connection refused", not asyncio's "Connect call failed (...)"
    else:  # TLS ("certificate verify failed: ..."), name resolution ("Name or service not known")
        reason = os_error.strerror or str(os_error)
    return reason.replace(url, safe_url(url))


def safe_url(url: str) -> str:
    """``url`` without credentials, query or fragment, fit for messages and logs."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
