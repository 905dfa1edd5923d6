"""supervisord PROCESS_STATE events, forwarded to the resident agent over a unix datagram socket.

Two halves share the wire format defined here:

* ``agent events-listener`` (agent/cli/events_cmd.py) runs as a supervisord ``[eventlistener]``
  subscribed to PROCESS_STATE; for each event it sends one JSON datagram (see
  :func:`encode_event`) to the agent's socket (settings ``agent.events_socket``) and
  acknowledges the event to supervisord whether or not the agent was there to receive it
  (a missed event is covered by polling; a listener that blocks would stall supervisord's
  event queue);
* the agent binds that socket (:func:`open_event_socket`, mode 0600) and hands each decoded
  :class:`SupervisorEvent` to a callback.

Datagrams, not a stream: the listener holds no connection, so the agent can restart freely and
a dead agent costs the listener one failed ``sendto``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.engine.internal_errors import costs

log = logging.getLogger("agent.watch")

MAX_SOCKET_PATH = 107
"""sun_path is 108 bytes on Linux, including the terminating NUL."""

EXIT_STATES = frozenset({"EXITED", "FATAL", "BACKOFF", "STOPPED", "UNKNOWN"})
START_STATES = frozenset({"STARTING", "RUNNING"})


@dataclass(frozen=True)
class SupervisorEvent:
    """One PROCESS_STATE event: ``state`` is the new state (``EXITED`` for PROCESS_STATE_EXITED)."""

    state: str
    program: str
    group: str
    pid: int | None
    from_state: str
    expected: bool | None
    received_at: float
    """The listener's time.time() when supervisord handed it the event."""

    def names(self) -> tuple[str, ...]:
        """The names a check may use for this program: ``name`` and ``group:name``."""
        return (self.program, f"{self.group}:{self.program}")


def encode_event(headers: Mapping[str, str], payload: Mapping[str, str], received_at: float) -> bytes:
    """The datagram for one event (``headers``: the listener protocol header; ``payload``: its body)."""
    data: dict[str, Any] = {"event": headers.get("eventname", ""), "received_at": received_at, **payload}
    return json.dumps(data).encode()


def decode_event(data: bytes) -> SupervisorEvent | None:
    """The event in a datagram, or None for anything that is not a PROCESS_STATE event."""
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    name = str(obj.get("event", ""))
    if not name.startswith("PROCESS_STATE_"):
        return None
    pid = str(obj.get("pid") or "")
    expected = obj.get("expected")
    return SupervisorEvent(
        state=name.removeprefix("PROCESS_STATE_"), program=str(obj.get("processname", "")),
        group=str(obj.get("groupname", "")), pid=int(pid) if pid.isdigit() else None,
        from_state=str(obj.get("from_state", "")),
        expected=None if expected is None else str(expected) == "1",
        received_at=float(obj.get("received_at") or 0.0),
    )


def forward(path: str, datagram: bytes) -> bool:
    """Send one datagram to the agent's socket; False when nobody listens (never raises)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.5)
            sock.sendto(datagram, path)
        return True
    except OSError:
        return False


class _EventProtocol(asyncio.DatagramProtocol):
    def __init__(self, callback: Callable[[SupervisorEvent], None]) -> None:
        self._callback = callback

    def datagram_received(self, data: bytes, addr: Any) -> None:
        event = decode_event(data)
        if event is None:
            return
        try:
            self._callback(event)
        except Exception:  # a handler bug must not close the socket
            log.exception("supervisor event handler failed", extra=costs(
                "supervisord's event is not acted on; the checks still run at their intervals"))


def _bind_datagram_socket(path: Path) -> socket.socket:
    """A unix datagram socket bound at ``path`` (a stale socket there replaced), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    old = os.umask(0o177)  # created 0600: only this user may inject events
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    return sock


async def open_event_socket(path: Path, callback: Callable[[SupervisorEvent], None]) -> asyncio.BaseTransport | None:
    """Bind ``path`` (replacing a stale socket, mode 0600) and deliver events to ``callback``.

    Returns None (and logs why) when the path is unusable: events are a second source, polling
    and the pidfd watcher still work without them.
    """
    if len(str(path).encode()) > MAX_SOCKET_PATH:
        log.warning("event socket path %s is longer than %d bytes; supervisord events are not received",
                    path, MAX_SOCKET_PATH)
        return None
    try:
        sock = await asyncio.to_thread(_bind_datagram_socket, path)
    except OSError as exc:
        log.warning("cannot bind the event socket %s: %s; supervisord events are not received", path, exc)
        return None
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _EventProtocol(callback), sock=sock)
    return transport
