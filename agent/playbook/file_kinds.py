"""A configuration file given in the wrong role: the inventory named as a playbook, or a playbook
named as the inventory (``agent validate inventory.yaml``, ``agent validate -i playbooks/x.yaml``).

Validated as what it is not, such a file gives one "unknown key" per top-level key, none of
which says what happened. Its top-level keys say what it is: one diagnostic at the first key that
belongs to the other kind, with the command line to write, replaces them."""
from __future__ import annotations

from typing import Any, Literal

from agent.playbook.diagnostics import Diagnostic
from agent.playbook.yaml_source import SourceDocument

INVENTORY_ONLY = ("groups", "notify", "maintenance", "heartbeat", "settings")
PLAYBOOK_ONLY = ("name", "checks", "tasks", "remediations", "handlers", "schedule", "confirm", "on_interrupt")


def wrong_kind(doc: SourceDocument, data: Any, expected: Literal["playbook", "inventory"]) -> Diagnostic | None:
    """One error when ``data`` (a top-level mapping) is plainly the other kind of file, else None."""
    if not isinstance(data, dict):
        return None
    keys = [k for k in data if isinstance(k, str)]
    mine, theirs = (PLAYBOOK_ONLY, INVENTORY_ONLY) if expected == "playbook" else (INVENTORY_ONLY, PLAYBOOK_ONLY)
    found = [k for k in keys if k in theirs]
    if not found or any(k in mine for k in keys):
        return None
    written = ", ".join(f"{k}:" for k in found)
    if expected == "playbook":
        return doc.diagnostic((found[0],), f"this is an inventory file ({written}), not a playbook",
                              "the inventory is ./inventory.yaml or the file --inventory (-i) names; playbooks "
                              "are the files of playbooks/ or those given as arguments: move it out of them, or "
                              f"name it with -i {doc.file}", at_key=True)
    return doc.diagnostic((found[0],), f"this is a playbook ({written}), not an inventory file",
                          "give the playbook as an argument (agent validate FILE) and the inventory, if not "
                          "./inventory.yaml, with -i", at_key=True)
