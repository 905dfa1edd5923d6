"""Async calls to supervisord's XML-RPC API, shared by the supervisor and process modules.

Uses supervisor's own client (``supervisor.xmlrpc.SupervisorTransport``), which speaks HTTP
over the ``unix://`` socket (or ``http://`` for an inet_http_server). The stdlib client is
blocking, so every call runs in a worker thread, and the socket itself carries the timeout
so the thread cannot outlive it by much.

Contract: transport failures (no socket, refused, timeout, protocol error) raise
:class:`botwarden.errors.ModuleError` naming the URL; supervisor ``Fault``\\ s are raised as
:class:`xmlrpc.client.Fault` so callers can map them (``supervisor.xmlrpc.Faults``), except
in :func:`process_info`, which turns ``BAD_NAME`` into "no such program 'x'".
"""
from __future__ import annotations

import asyncio
import http.client
import socket
import xmlrpc.client
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import AfterValidator
from supervisor.xmlrpc import Faults, SupervisorTransport, UnixStreamHTTPConnection

from agent.modules.base import RunContext
from botwarden.errors import ModuleError

RUNNING_STATES = frozenset({"RUNNING", "STARTING", "BACKOFF"})
"""States in which supervisord considers a program started (start is a no-op, stop acts)."""


def _check_url(url: str) -> str:
    if not (url.startswith("unix://") or url.startswith("http://")):
        raise ValueError(f"{url!r} is not a supervisord URL; write unix:///abs/path.sock or http://host:port")
    return url


SupervisorUrl = Annotated[str, AfterValidator(_check_url)]
"""A supervisord server URL: ``unix:///abs/supervisor.sock`` or ``http://127.0.0.1:9001``."""


def resolve_url(url: str | None, ctx: RunContext) -> str:
    """The module's ``url`` param, else the host's ``supervisor.url`` var."""
    resolved = url or ctx.host.supervisor_url
    if not resolved:
        raise ModuleError(
            f"no supervisord URL for host {ctx.host.name!r}",
            hint="set supervisor.url in the inventory vars or the module's url parameter",
        )
    return _check_url(resolved)


class _UnixConnection(UnixStreamHTTPConnection):
    """supervisor's unix-socket connection, with the socket timeout it lacks."""

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socketfile)


def _transport(url: str, timeout: float) -> SupervisorTransport:
    transport = SupervisorTransport(None, None, url)
    # SupervisorTransport builds connections without a timeout; replace its factory (the one
    # hook it has) so a wedged supervisord cannot hang the worker thread forever.
    if url.startswith("unix://"):

        def connect_unix() -> http.client.HTTPConnection:
            conn = _UnixConnection("localhost", timeout=timeout)
            conn.socketfile = url[len("unix://"):]
            return conn

        transport._get_connection = connect_unix
    else:
        parsed = urlparse(url)

        def connect_http() -> http.client.HTTPConnection:
            return http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=timeout)

        transport._get_connection = connect_http
    return transport


def _call_blocking(url: str, timeout: float, method: str, args: tuple[Any, ...]) -> Any:
    transport = _transport(url, timeout)
    proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
    try:
        return getattr(proxy.supervisor, method)(*args)
    finally:
        transport.close()


async def call(url: str, method: str, *args: Any, timeout: float) -> Any:
    """``supervisor.<method>(*args)`` on the server at ``url``, off the event loop."""
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(_call_blocking, url, timeout, method, args), timeout + 1.0
        )
    except xmlrpc.client.Fault:
        raise
    except TimeoutError:
        raise ModuleError(f"supervisord at {url} did not answer within {timeout:g}s") from None
    except (OSError, xmlrpc.client.ProtocolError, http.client.HTTPException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ModuleError(
            f"cannot reach supervisord at {url}: {reason}",
            hint="is supervisord running, and is supervisor.url its socket?",
        ) from None


async def process_info(url: str, program: str, *, timeout: float) -> dict[str, Any]:
    """``getProcessInfo(program)``; an unknown program raises ModuleError "no such program"."""
    try:
        info: dict[str, Any] = await call(url, "getProcessInfo", program, timeout=timeout)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode == Faults.BAD_NAME:
            raise ModuleError(f"no such program {program!r}", hint="see `supervisorctl status`") from None
        raise ModuleError(f"supervisord refused getProcessInfo({program!r}): {fault.faultString}") from None
    return info


def uptime_s(info: dict[str, Any]) -> float | None:
    """Seconds since the program started, when it is in a running state; else None."""
    if info.get("statename") not in RUNNING_STATES or not info.get("start"):
        return None
    return float(max(0, int(info["now"]) - int(info["start"])))
