"""The tests' own HTTP requests (all to 127.0.0.1): one ``httpx.Client`` per test process.

httpx's module-level functions (``httpx.get``, ``httpx.post``, ``httpx.request``) build a new
client for every call, and with it an SSL context loaded with certifi's CA bundle, even for an
``http://`` URL: 22 ms of CPU a request, against 1 ms with a client made once (measured on the
2-core machine). The suite polls /health and the paper exchange every 0.1-0.2 s while it waits,
from four workers at once: those contexts were a tenth of a core per waiting test.

The shared client keeps no connection alive between requests (``max_keepalive_connections=0``):
every request opens its own connection, as the module-level functions did, so a test never
meets a pooled connection to a server that restarted since. Timeouts, redirects, headers and the
environment's settings are httpx's defaults, as before; ``timeout=`` per request as with httpx.
"""
from __future__ import annotations

import threading
from typing import Any

import httpx

_lock = threading.Lock()
_client: httpx.Client | None = None


def client() -> httpx.Client:
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
        return _client


def request(method: str, url: str, **kw: Any) -> httpx.Response:
    return client().request(method, url, **kw)


def get(url: str, **kw: Any) -> httpx.Response:
    return client().get(url, **kw)


def post(url: str, **kw: Any) -> httpx.Response:
    return client().post(url, **kw)
