"""``-e key=value`` of ``agent run-playbook``: parsed as YAML, and a name no part of the play reads
said as a warning (``-e report_untl=...`` for ``report_until`` ran the weekly report over the default
window without a word: Ansible ignores an unused extra var too, silently)."""
from __future__ import annotations

import difflib
import logging
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import yaml
from jinja2 import meta

from agent.modules.base import HostContext
from agent.modules.registry import Registry
from agent.playbook.diagnostics import Diagnostic
from agent.playbook.models import Playbook
from agent.playbook.templating import Templating, has_template
from botwarden import safe_yaml

if TYPE_CHECKING:
    from agent.playbook.loader import Config

log = logging.getLogger("agent")

EXPRESSION_KEYS = frozenset({"when", "until", "changed_when", "failed_when", "expect", "value"})
"""Keys whose string value is an expression written without ``{{ }}``."""


def parse_extra_vars(pairs: list[str] | None) -> dict[str, Any]:
    """``-e key=value`` pairs, each value read as YAML (``-e n=3`` is a number); a pair that is not
    one, or a value YAML cannot read (``[unclosed``, ``*alias``, ``a: b: c``, ``2026-02-30``, nested
    past :data:`botwarden.safe_yaml.MAX_DEPTH`), is a command-line
    mistake (exit 2), never an internal error."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            raise typer.BadParameter(f"{pair!r}: expected key=value (e.g. -e report_until=2024-03-17)",
                                     param_hint="-e")
        try:
            out[k.strip()] = safe_yaml.load(v) if v else ""  # bounded; 2026-02-30 is a YAMLError too
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
            raise typer.BadParameter(f"{pair!r}: the value is read as YAML and YAML cannot read it ({problem}); "
                                     f"quote it to pass it as text: -e '{k.strip()}=\"{v}\"'",
                                     param_hint="-e") from None
    return out


def unread_extra_vars(play: Playbook, templating: Templating, extra: Iterable[str],
                      host_vars: Iterable[Mapping[str, Any]] = ()) -> list[str]:
    """A warning for each ``-e`` name that nothing of ``play`` reads (its tasks, handlers, checks,
    remediations, vars, confirmation and the template files they name) and that overrides no var
    of the play or its hosts."""
    read = _names_read(play, templating)
    defined = set(play.vars).union(*(set(v) for v in host_vars))
    out = []
    for name in extra:
        if name in read or name in defined:
            continue
        near = difflib.get_close_matches(name, sorted(read | defined), n=1, cutoff=0.6)
        odd = next((c for c in name if not c.isascii()), None)  # a look-alike letter prints like the name meant
        named = f"; {name!r} has U+{ord(odd):04X} {unicodedata.name(odd, '?')}, not an ASCII letter" if odd else ""
        out.append(f"warning: -e {name}: playbook {play.name!r} reads no variable of that name, so it changes "
                   "nothing" + (f" (did you mean {near[0]!r}?{named})" if near else f" ({named[2:]})" if odd else ""))
    return out


def _names_read(play: Playbook, templating: Templating) -> set[str]:
    names: set[str] = set()
    data = play.model_dump(mode="python", exclude={"source"})
    for key, text in _strings(data, ""):
        sources = [(text, has_template(text) or key not in EXPRESSION_KEYS)]
        if text.endswith(".j2") and templating.templates_dir is not None:
            try:
                sources.append(((Path(templating.templates_dir) / text).read_text(encoding="utf-8"), True))
            except (OSError, UnicodeDecodeError, ValueError):
                pass
        for src, is_template in sources:
            try:
                tree = templating.tree(src, expression=not is_template)
            except Exception:  # noqa: BLE001 - not an expression after all (a plain word): it reads nothing
                continue
            names |= meta.find_undeclared_variables(tree)
    return names


def _strings(node: Any, key: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield key, node
    elif isinstance(node, Mapping):
        for k, v in node.items():
            yield from _strings(v, str(k))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _strings(item, key)


def extra_var_problems(play: Playbook, config: Config, hosts: Sequence[HostContext], extra: Mapping[str, Any],
                       registry: Registry) -> list[str]:
    """What ``-e`` breaks in ``play``'s steps, each said before anything runs: a value a module
    refuses through a parameter that reads it (``-e close_attempts=abc`` for ``attempts: "{{
    close_attempts }}"``), as load-time validation says it of the play's own vars. Only what the
    values change is said (the steps are checked without them too): ``agent run-playbook
    emergency -e close_slippage_pct=5%`` failed its flatten step when it ran, ignored, and the
    emergency went on with the positions open (brk15)."""
    from agent.playbook.task_validation import TaskChecker
    from agent.playbook.yaml_source import load_yaml

    if not extra or play.source is None:
        return []
    doc = load_yaml(Path(play.source), reader=config.templating.reader)
    if doc.data is None:
        return []
    routes = [route.name for route in config.inventory.notify.routes]

    def errors(of: Playbook) -> list[Diagnostic]:
        found = TaskChecker(doc, of, registry, config.templating, routes).run(list(hosts))
        return [d for d in found if d.severity == "error"]

    try:
        before = {(d.line, d.column, d.message) for d in errors(play)}
        after = errors(play.model_copy(update={"vars": {**play.vars, **extra}}))
    except Exception:  # a fault of this check never stops the play (the emergency) from running
        log.exception("the -e values could not be checked against playbook %r; running it unchecked", play.name)
        return []
    out: list[str] = []
    for d in after:
        if (d.line, d.column, d.message) in before:
            continue
        where = f"{Path(d.file).name}:{d.line}: " if d.line else ""
        said = f"with -e {', '.join(sorted(extra))}: {where}{d.message}" + (f" ({d.hint})" if d.hint else "")
        if said not in out:
            out.append(said)
    return out
