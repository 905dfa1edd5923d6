"""``agent events-listener``: supervisord's event listener that forwards PROCESS_STATE to the agent.

supervisord runs it as ``[eventlistener:agent-events]`` with ``events=PROCESS_STATE`` (see
templates/supervisord.conf.j2). It speaks supervisord's listener protocol on stdin/stdout
(READY, a header line, a payload, RESULT 2 OK): stdout belongs to that protocol, so this
command never prints anything else there; it logs to stderr. Each event becomes one datagram
to the resident agent's unix socket (agent/engine/watchers/supervisor_events.py). The event is
acknowledged whether or not the agent received it: supervisord must never stall waiting for us,
and the agent's pidfd watcher and polling cover a missed event.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from agent.cli import options
from agent.playbook.files import real_path

log = logging.getLogger("agent.events")


def events_listener(
    socket_path: Annotated[
        Path | None, typer.Option("--socket", help="the agent's event socket (default: settings agent.events_socket)")
    ] = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
) -> None:
    """Forward supervisord PROCESS_STATE events to the resident agent (run by supervisord only)."""
    from supervisor import childutils

    from agent.engine.watchers.supervisor_events import encode_event, forward

    if socket_path is None:
        from agent import stack

        st = stack.locate(inventory=real_path(inventory))
        socket_path = st.settings.path(st.settings.agent.events_socket)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    target = str(socket_path)
    log.info("forwarding supervisord events to %s", target)
    missed = 0
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        received = time.time()
        if headers.get("eventname", "").startswith("PROCESS_STATE_"):
            body = childutils.get_headers(payload.split("\n", 1)[0])
            if not forward(target, encode_event(headers, body, received)):
                missed += 1
                if missed in (1, 10, 100) or missed % 1000 == 0:
                    log.warning("agent not listening on %s; %d event(s) not forwarded", target, missed)
        childutils.listener.ok(sys.stdout)
