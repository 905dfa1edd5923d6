"""``agent inbox``: the local json:// alert receiver of the offline stack."""
from __future__ import annotations

import logging
from typing import Annotated

import typer

from agent.cli import options
from agent.cli.common import console
from agent.playbook.files import real_path


def inbox(
    show: Annotated[bool, typer.Option("--show", help="print the last alerts received and exit")] = False,
    last: Annotated[int, typer.Option(help="how many to show")] = 20,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
) -> None:
    """Receive alerts posted by apprise's json:// target into var/inbox.jsonl (or show them)."""
    from agent import stack
    from agent.stack import inbox as inbox_mod

    st = stack.locate(inventory=real_path(inventory))
    path = st.settings.path(st.settings.inbox.file)
    if show:
        for rec in inbox_mod.read(path, last):
            console.print(f"[bold]{rec.get('received_at', '')}[/] {rec.get('type', '')}: {rec.get('title', '')}")
            console.print(rec.get("message", ""), markup=False)
            console.print()
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    server = inbox_mod.make_server(st.settings.inbox.host, st.settings.inbox.port, path)
    logging.getLogger("agent.inbox").info("listening on %s, writing %s", st.settings.inbox.url, path)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
