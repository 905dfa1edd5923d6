"""One shared ``httpx.AsyncClient`` per event loop, for the http and prometheus checks.

A client per request would cost a TLS context and a new connection every time; the agent
must sustain on the order of a thousand checks per second, so checks reuse pooled
keep-alive connections. Clients are bound to the loop that created them (their connections
are), hence one per running loop, forgotten with the loop (weak keys).

``trust_env=False``: proxy variables from the environment are ignored, because checks
probe the bot's own endpoints directly and must never be routed elsewhere.
"""
from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

_LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=128, keepalive_expiry=30.0)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[bool, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def shared_client(verify_tls: bool = True) -> httpx.AsyncClient:
    """The running loop's client for this TLS-verification setting (created on first use)."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(verify_tls)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(verify=verify_tls, limits=_LIMITS, trust_env=False)
        per_loop[verify_tls] = client
    return client


async def close_shared_clients() -> None:
    """Close the running loop's clients (the engine calls this at shutdown; tests too)."""
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    for client in per_loop.values():
        await client.aclose()
    for closer in _closers:  # other transports' pools (the http check's aiohttp sessions)
        await closer()


_closers: list[Callable[[], Awaitable[None]]] = []


def register_closer(closer: Callable[[], Awaitable[None]]) -> None:
    """Have :func:`close_shared_clients` also close another module's per-loop pool."""
    if closer not in _closers:
        _closers.append(closer)


def safe_url(url: str | httpx.URL) -> str:
    """``url`` without credentials, query or fragment, fit for messages and logs."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def http_error_message(exc: httpx.HTTPError, method: str, url: str, timeout: float) -> str:
    """A one-line reason for a failed request that never echoes headers, query or body."""
    if isinstance(exc, httpx.TimeoutException):
        return f"{method} {safe_url(url)} timed out after {timeout:g}s"
    reason = str(exc) or type(exc).__name__
    return f"{method} {safe_url(url)} failed: {reason}"
