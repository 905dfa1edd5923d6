"""Async calls to supervisord's XML-RPC API, shared by the supervisor and process modules.

Uses the standard library's XML-RPC client with a transport of ours (:class:`_Transport`, through
``Transport.make_connection``, the hook the standard library documents for this) that speaks
HTTP over the ``unix://`` socket (or ``http://`` for an inet_http_server). The client is
blocking, so every call runs in a worker thread, and the socket itself carries the timeout
so the thread cannot outlive it by much.

Contract: transport failures (no socket, refused, timeout, protocol error) raise
:class:`botwarden.errors.ModuleError` naming the URL; supervisor ``Fault``\\ s are raised as
:class:`xmlrpc.client.Fault` so callers can map them (``supervisor.xmlrpc.Faults``), except
in :func:`process_info`, which turns ``BAD_NAME`` into "no such program 'x'".
"""
from __future__ import annotations

import asyncio
import functools
import http.client
import socket
import xmlrpc.client
from collections.abc import Callable, Sequence
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import AfterValidator
from supervisor.xmlrpc import Faults

from agent.modules.base import RunContext
from botwarden.errors import ModuleError

RUNNING_STATES = frozenset({"RUNNING", "STARTING", "BACKOFF"})
"""States in which supervisord considers a program started (start is a no-op, stop acts)."""


def _check_url(url: str) -> str:
    if not url.startswith(("unix://", "http://")):
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


class _UnixSocketConnection(http.client.HTTPConnection):
    """HTTP over supervisord's unix socket, with a socket timeout."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _Transport(xmlrpc.client.Transport):
    """The standard library's XML-RPC transport, its documented hook ``make_connection``
    overridden: every connection carries the call's timeout (supervisor's own transport has no
    timeout, so a wedged supervisord would hang the worker thread forever) and ``unix://`` URLs
    go to the socket."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__()
        self._url = url
        self._call_timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._url.startswith("unix://"):
            return _UnixSocketConnection(self._url[len("unix://"):], self._call_timeout)
        parsed = urlparse(self._url)
        return http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80,
                                          timeout=self._call_timeout)


def _request(url: str, timeout: float, method: str, args: Sequence[Any]) -> Any:
    """``method`` (``supervisor.startProcess``, ``system.multicall``) called with ``args``."""
    transport = _Transport(url, timeout)
    proxy = xmlrpc.client.ServerProxy("http://127.0.0.1/RPC2", transport=transport)
    try:
        return getattr(proxy, method)(*args)
    finally:
        transport.close()


async def call(url: str, method: str, *args: Any, timeout: float) -> Any:
    """``supervisor.<method>(*args)`` on the server at ``url``, off the event loop."""
    return await _off_loop(url, timeout, functools.partial(_request, url, timeout, f"supervisor.{method}", args))


async def _off_loop(url: str, timeout: float, job: Callable[[], Any]) -> Any:
    """``job`` (one blocking request) in a worker thread; transport failures as ModuleError."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(job), timeout + 1.0)
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


async def multicall(url: str, calls: Sequence[tuple[str, Sequence[Any]]], *, timeout: float) -> list[Any]:
    """``supervisor.<method>(*args)`` for each of ``calls`` in order, in one request and one turn
    of supervisord's loop (its documented ``system.multicall``: a call that waits, such as
    ``stopProcess(name, True)``, holds the ones after it until it is done). Each result is the
    call's value or its :class:`xmlrpc.client.Fault` (not raised); transport failures raise as
    :func:`call`'s do."""
    body = [{"methodName": f"supervisor.{method}", "params": list(args)} for method, args in calls]
    results = await _off_loop(url, timeout, functools.partial(_request, url, timeout, "system.multicall", [body]))
    return [xmlrpc.client.Fault(r["faultCode"], r["faultString"]) if isinstance(r, dict) and "faultCode" in r
            else r for r in results]


def info_error(program: str, fault: xmlrpc.client.Fault) -> ModuleError:
    """What a refused ``getProcessInfo(program)`` means (:func:`process_info`)."""
    if fault.faultCode == Faults.BAD_NAME:
        return ModuleError(f"no such program {program!r}", hint="see `supervisorctl status`")
    return ModuleError(f"supervisord refused getProcessInfo({program!r}): {fault.faultString}")


async def process_info(url: str, program: str, *, timeout: float) -> dict[str, Any]:
    """``getProcessInfo(program)``; an unknown program raises ModuleError "no such program"."""
    try:
        info: dict[str, Any] = await call(url, "getProcessInfo", program, timeout=timeout)
    except xmlrpc.client.Fault as fault:
        raise info_error(program, fault) from None
    return info


def uptime_s(info: dict[str, Any]) -> float | None:
    """Seconds since the program started, when it is in a running state; else None."""
    if info.get("statename") not in RUNNING_STATES or not info.get("start"):
        return None
    return float(max(0, int(info["now"]) - int(info["start"])))
