"""What a reload takes away from the plays that run when nobody is there to decide.

A play named by a remediation's ``budget.then`` (and the ``emergency``) runs when a budget is
spent: a human only learns that it lost steps when it is too late. Any cut of a playbook at a
task boundary is valid YAML (a half-written copy, a bad merge), so a reload that removes tasks
from such a play is told once, as a [CONFIG] warning, with the tasks it no longer has (issue 15,
F5). Adding or changing tasks is not told: that is what edits are for.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from agent.playbook.models import Playbook
from agent.playbook.rules import iter_tasks

EMERGENCY = "emergency"


def handover_plays(playbooks: Mapping[str, Playbook]) -> set[str]:
    """Names of the plays a ``budget.then`` hands over to, and the emergency when there is one."""
    names = {rem.budget.then for play in playbooks.values() for rem in play.remediations.values()
             if rem.budget is not None and rem.budget.then}
    return names | ({EMERGENCY} if EMERGENCY in playbooks else set())


def removed_handover_tasks(old: Mapping[str, Playbook], new: Mapping[str, Playbook]) -> dict[str, list[str]]:
    """Play name -> the task names a reload from ``old`` to ``new`` removes, for each hand-over
    play of either version that loses tasks (or is gone)."""
    out: dict[str, list[str]] = {}
    for name in sorted(handover_plays(old) | handover_plays(new)):
        before = old.get(name)
        if before is None:
            continue
        after = new.get(name)
        gone = _labels(before) - (_labels(after) if after is not None else Counter())
        if gone:
            out[name] = sorted(gone.elements())
    return out


def message(removed: Mapping[str, list[str]]) -> tuple[str, str]:
    """Title and body of the [CONFIG] warning for :func:`removed_handover_tasks`."""
    plays = ", ".join(repr(name) for name in removed)
    lines = [f"- {name}: {', '.join(tasks)}" for name, tasks in removed.items()]
    body = ("The configuration reloaded, and a play that runs when a remediation budget is spent (or the "
            "emergency) lost tasks:\n" + "\n".join(lines) + "\n\nIf that was not meant (a half-written or "
            "truncated file, a bad merge), restore the playbook; `agent validate` and `agent run-playbook NAME "
            "--check` show what it now does.")
    return f"[CONFIG] reload removed tasks from {plays}", body


def _labels(play: Playbook) -> Counter[str]:
    tasks = [task for _, task in iter_tasks(play.tasks, ("tasks",))]
    return Counter(task.name for task in tasks)
