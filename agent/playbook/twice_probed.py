"""The same probe twice on one host: each problem alerted twice, and remediated twice.

A playbook copied to try a variant (``cp bot-health.yaml bot-health-v2.yaml``, the name changed)
loads: every check of it is a check of another play. Each crash of the bot was then two alerts,
and two remediations each under its own budget (six restarts in 30 minutes where the operator
wrote three). A check whose module, rendered parameters and condition (``expect``, ``value``,
thresholds, and what makes the problem hard and how it is told: ``severity``, ``after``, ``for``,
``clear``) are those of another check on the same host is a warning at the later one.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent.playbook.binding import BoundCheck
from agent.playbook.diagnostics import Diagnostic, warning
from agent.playbook.yaml_source import SourceDocument


def twice_probed(bound: Sequence[BoundCheck], docs: Mapping[str, SourceDocument]) -> list[Diagnostic]:
    """A warning per check that repeats an earlier one on a host (``docs``: play name -> its file)."""
    first: dict[tuple[object, ...], BoundCheck] = {}
    said: set[tuple[str, str]] = set()
    pairs: dict[tuple[str, str], list[tuple[BoundCheck, BoundCheck]]] = {}
    for bc in bound:
        c = bc.check
        # what makes a problem hard, and how it is told, is part of the condition: the same probe warned at
        # once and paged after 30 failures is an escalation ladder written on purpose, not a copy
        probe = (bc.host.name, c.module, bc.params.model_dump_json(), c.expect, c.value, c.warning, c.critical,
                 c.occurrence, c.severity, c.after, c.for_, c.clear, c.recover_after)
        earlier = first.setdefault(probe, bc)
        if earlier is bc or (bc.play.name, c.name) in said or bc.play.name not in docs:
            continue
        said.add((bc.play.name, c.name))
        pairs.setdefault((bc.play.name, earlier.play.name), []).append((bc, earlier))
    out: list[Diagnostic] = []
    for (play, other), repeated in pairs.items():
        if len(repeated) >= 3 and play != other:  # a copied playbook: said once, at its name
            fixed = sum(1 for bc, earlier in repeated if bc.check.remediate and earlier.check.remediate)
            out.append(warning(docs[play].diagnostic(
                ("name",), f"playbook {play!r} repeats {len(repeated)} checks of {other!r} on the same hosts, with "
                "the same conditions: each of their problems would be alerted twice"
                + (f", and {fixed} remediated twice, each under its own budget" if fixed else ""),
                f"remove one of the two files (a copy of {other}'s left beside it?), or make the checks differ")))
            continue
        out += [_one(docs[play], bc, earlier) for bc, earlier in repeated]
    return out


def _one(doc: SourceDocument, bc: BoundCheck, earlier: BoundCheck) -> Diagnostic:
    c = bc.check
    index = next(i for i, other in enumerate(bc.play.checks) if other is c)
    both_fix = c.remediate and earlier.check.remediate
    return warning(doc.diagnostic(
        ("checks", index, "name"), f"check {c.name!r} probes what {earlier.play.name}/{earlier.check.name} "
        f"probes on host {bc.host.name!r}, with the same condition: each problem would be alerted twice"
        + ((", and remediated by both" if bc.play.name == earlier.play.name else
            ", and remediated twice, each under its own budget") if both_fix else ""),
        "remove one of them, or make them differ"))
