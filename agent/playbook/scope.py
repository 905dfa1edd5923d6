"""The variables a template or expression will see when it runs, for checking it at load.

A value known at load (host vars, the stack settings, play vars, ``env``) is the real value,
so a misspelt attribute (``bot.helth_url``) fails here exactly as it would at run time. A value
that exists only when the task or check runs (a registered result, ``result``, ``check``, a
check's facts) is a :class:`RunTime` placeholder: every attribute, item, call and operation on
it succeeds, so only what is certainly wrong is reported. Where each name comes from:

=====================  =====================================================================
checks' expressions    vars + the module's facts (by name and under ``facts``) + ``value``
tasks, handlers        vars + ``host`` + ``check_mode`` + names registered by earlier tasks
remediation steps      the same + ``check`` (the check that fired: name, state, value, facts)
``until``/``*_when``   the same + ``result`` (the task's own result)
=====================  =====================================================================
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2 import TemplateAssertionError, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import SecurityError

from agent.playbook.diagnostics import Diagnostic, ran_as_read, suggest
from agent.playbook.placeholders import RUNTIME, OrderedAgainstText, RunTime, number_written
from agent.playbook.templating import Templating, has_template


def check_scope(vars: Mapping[str, Any], facts: Iterable[str]) -> dict[str, Any]:
    """What a check's ``expect``/``value``/thresholds see, facts as placeholders."""
    names = list(facts)
    return {**vars, **dict.fromkeys(names, RUNTIME), "facts": RUNTIME, "value": RUNTIME}


CHECK_KEYS = ("name", "key", "play", "state", "previous_state", "value", "error", "facts")
"""What a remediation's steps read of the failing check, ``check.<key>`` (the engine's
``check_vars`` gives exactly these): another attribute is certainly a mistake (``check.fact`` for
``check.facts`` failed the crash restart at run time, every run counting against the budget)."""


SET_BY_THE_AGENT = {
    "host": "the host's name, in tasks and steps",
    "check_mode": "whether the play runs with --check",
    "check": "the check that fired, in remediation steps",
    "result": "a task's own result, in until, changed_when and failed_when",
    "facts": "the check's facts, in its expressions",
    "value": "the check's value, in its expressions",
}
"""Names the scopes above set over the vars: a var of that name is never read where they are set."""


def reserved_var_problems(doc: Any, places: Iterable[tuple[tuple[Any, ...], Mapping[str, Any]]]) -> list[Diagnostic]:
    """An error at each var (``places``: YAML path of a ``vars`` mapping, and the mapping) named
    like what the agent sets itself (:data:`SET_BY_THE_AGENT`: silently never read there), or
    ``env``, which hides the environment from every template it reaches (``{{ env.X }}`` then
    fails, or reads the var)."""
    out: list[Diagnostic] = []
    for path, given in places:
        for key in given:
            if key == "env":
                out.append(ran_as_read(doc.diagnostic(
                    (*path, key), "a var named 'env' hides the environment: every {{ env.NAME }} it reaches would "
                    "read this var instead", "give it another name (environment: ..., stage: ...)", at_key=True)))
            elif key in SET_BY_THE_AGENT:
                out.append(ran_as_read(doc.diagnostic(
                    (*path, key), f"a var named {key!r} is not read where the agent sets {key} itself "
                    f"({SET_BY_THE_AGENT[key]}): the two would be taken for each other",
                    f"give it another name ({key}_label, my_{key}...)", at_key=True)))
    return out


def task_scope(vars: Mapping[str, Any], host: str, registered: Iterable[str], *,
               remediation: bool) -> dict[str, Any]:
    """What a task's parameters and ``when`` see (add ``result`` for ``until``/``*_when``)."""
    scope = {**vars, "host": host, "check_mode": False}
    scope.update(dict.fromkeys(registered, RUNTIME))
    if remediation:
        scope["check"] = dict.fromkeys(CHECK_KEYS, RUNTIME)
    return scope


def template_problem(templating: Templating, value: Any, scope: Mapping[str, Any], *,
                     expression: bool = False) -> tuple[Any, str | None, str | None]:
    """Render (or evaluate) ``value`` in ``scope``: ``(rendered, problem, hint)``.

    ``problem`` is set for what will certainly fail at run time: an undefined name or
    attribute, an unknown filter or test, a sandbox refusal, a syntax error; or any other error
    when the template uses no run-time value (then it is not a guess). Rendered values are
    never put in messages (they may hold secrets from ``env``).
    """
    rendered, exc = templating.probe(value, scope, expression=expression)
    if exc is None or isinstance(exc, UndefinedError):
        missing = _unknown_names(templating, value, scope, expression=expression)
        if missing:
            return None, f"{missing!r} is undefined", _undefined_hint(f"'{missing}' is undefined", scope)
    if exc is None:
        return rendered, None, None
    if isinstance(exc, UndefinedError):
        message = exc.message or "undefined"
        hint = _attribute_hint(templating, value, message, scope, expression=expression) \
            or _undefined_hint(message, scope)
        return None, templating.redact(message), hint
    if isinstance(exc, SecurityError):
        return None, f"refused by the sandbox: {templating.redact(str(exc))}", None
    if isinstance(exc, (TemplateSyntaxError, TemplateAssertionError)):
        problem = (templating.check_expression(value) if expression else templating.check_syntax(value)) \
            if isinstance(value, str) else None
        return None, problem or f"Jinja2: {exc.message}", None
    if isinstance(exc, (RecursionError, MemoryError)):
        return None, "the template is too deeply nested or too large to evaluate", None
    if isinstance(exc, OrderedAgainstText):  # whatever the run-time value: never what was meant
        return None, str(exc), (f"write the number without quotes where it is defined ({number_written(exc.text)}, "
                                f"not \"{exc.text}\")")
    if _uses_runtime(templating, value, scope, expression=expression):
        return RUNTIME, None, None  # e.g. a filter applied to a placeholder: cannot know
    return None, templating.redact(f"{type(exc).__name__}: {exc}"), None


def _unknown_names(templating: Templating, value: Any, scope: Mapping[str, Any], *,
                   expression: bool) -> str | None:
    """The first name a template reads that nothing defines, even on a branch not taken now.

    A name only tested (``x is defined``) or given a default (``x | default(1)``) anywhere in
    the template counts as guarded.
    """
    env = templating.environment
    for src in _sources(value, expression=expression):
        try:
            tree = templating.tree(src, expression=expression)
        except Exception:  # noqa: BLE001 - syntax is reported by the template pass
            continue
        guarded = {node.node.name for node in tree.find_all((nodes.Test, nodes.Filter))
                   if isinstance(node.node, nodes.Name)
                   and node.name in ("defined", "undefined", "default", "d", "none")}
        for name in sorted(meta.find_undeclared_variables(tree) - guarded):
            if name not in scope and name not in env.globals:
                return name
    return None


def _sources(value: Any, *, expression: bool) -> list[str]:
    out: list[str] = []

    def collect(obj: Any) -> None:
        if isinstance(obj, str) and (expression or has_template(obj)):
            out.append(obj)
        elif isinstance(obj, Mapping):
            for item in obj.values():
                collect(item)
        elif isinstance(obj, (list, tuple)):
            for item in obj:
                collect(item)

    collect(value)
    return out


def _attribute_hint(templating: Templating, value: Any, message: str, scope: Mapping[str, Any], *,
                    expression: bool) -> str | None:
    """For "has no attribute 'helth_url'": the nearest key of the very mapping read (bot.health_url)."""
    match = re.search(r"has no attribute '([^']+)'$", message)
    if not match:
        return None
    for src in _sources(value, expression=expression):
        try:
            tree = templating.tree(src, expression=expression)
        except Exception:  # noqa: BLE001 - syntax is reported elsewhere
            continue
        for node in tree.find_all(nodes.Getattr):
            chain = _name_chain(node.node)
            if node.attr != match[1] or chain is None:
                continue
            obj: Any = scope
            for part in chain:
                obj = obj.get(part) if isinstance(obj, Mapping) else None
            if isinstance(obj, Mapping):
                keys = sorted(k for k in obj if isinstance(k, str))
                close = difflib.get_close_matches(match[1], keys, n=1, cutoff=0.6)
                if close:
                    return f"did you mean {'.'.join([*chain, close[0]])!r}?"
                return f"{'.'.join(chain)} has: {', '.join(keys[:15])}{', ...' if len(keys) > 15 else ''}"
    return None


def _name_chain(node: nodes.Node) -> list[str] | None:
    if isinstance(node, nodes.Name):
        return [node.name]
    if isinstance(node, nodes.Getattr):
        inner = _name_chain(node.node)
        return None if inner is None else [*inner, node.attr]
    return None


def _undefined_hint(message: str, scope: Mapping[str, Any]) -> str | None:
    """The nearest name: for "'nme' is undefined" among the top-level names, for "'dict object'
    has no attribute 'helth_url'" among the keys of the mappings in scope (as a dotted path)."""
    if message.endswith(" is undefined") and message.startswith("'"):
        name = message[1:].split("'", 1)[0]
        return suggest(name, [k for k in scope if isinstance(k, str)])
    match = re.search(r"has no attribute '([^']+)'$", message)
    if match:
        paths = dict(_nested_keys(scope, "", 0))
        close = difflib.get_close_matches(match[1], sorted(set(paths)), n=1, cutoff=0.6)
        if close:
            return f"did you mean {paths[close[0]]!r}?"
    return None


def _nested_keys(value: Mapping[str, Any], prefix: str, depth: int) -> Iterator[tuple[str, str]]:
    for key, item in value.items():
        if not isinstance(key, str) or isinstance(item, RunTime):
            continue
        path = f"{prefix}.{key}" if prefix else key
        if depth:
            yield key, path
        if isinstance(item, Mapping) and depth < 3:
            yield from _nested_keys(item, path, depth + 1)


def _uses_runtime(templating: Templating, value: Any, scope: Mapping[str, Any], *, expression: bool) -> bool:
    for src in _sources(value, expression=expression):
        try:
            names = meta.find_undeclared_variables(templating.tree(src, expression=expression))
        except Exception:  # noqa: BLE001 - unparsable: reported elsewhere; count it as run-time
            return True
        if any(isinstance(scope.get(name), RunTime) for name in names):
            return True
    return False


def unknown_in_template_file(templating: Templating, name: str, given: Iterable[str],
                             optional: Iterable[str] = (), text: Iterable[str] = ()) -> list[tuple[str, str | None, int]]:
    """Each name template file ``name`` reads that it is not given: ``(problem, hint, line)``.

    A name read unguarded must be in ``given``; one only tested (``is defined``) or defaulted
    (``| default(...)``) may be anything, and the ``optional`` ones (given only sometimes) must be
    guarded. Names the template sets itself (``set``, ``for``, macros) and globals are fine.
    The line is where the file first reads the name. Empty when the file reads only what it is
    given (or cannot be read: reported elsewhere). An attribute of one of the ``text`` names that
    text has not (``check.name`` where ``check`` is the check's name) is a problem too: it fails
    whenever the template renders.
    """
    env = templating.environment
    try:
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        tree = templating.tree(source)
    except Exception:  # noqa: BLE001 - missing, unreadable or unparsable: reported by the syntax check
        return []
    out: list[tuple[str, str | None, int]] = []
    guarded = {node.node.name for node in tree.find_all((nodes.Test, nodes.Filter))
               if isinstance(node.node, nodes.Name) and node.name in ("defined", "undefined", "default", "d", "none")}
    known, maybe = set(given), set(optional)
    for read in sorted(meta.find_undeclared_variables(tree) - guarded - set(env.globals)):
        if read in known:
            continue
        line = min((n.lineno for n in tree.find_all(nodes.Name) if n.name == read and n.ctx == "load"), default=1)
        if read in maybe:
            out.append((f"{read!r} is not always given to this template", f"guard it: {{% if {read} is defined %}} "
                        f"or {{{{ {read} | default(...) }}}}", line))
        else:
            out.append((f"{read!r} is undefined: the template is not given it",
                        suggest(read, known) or f"it is given: {', '.join(sorted(known | maybe))}", line))
    texts = set(text) & (known | maybe)
    for node in tree.find_all(nodes.Getattr):
        target = node.node
        if isinstance(target, nodes.Name) and target.name in texts and not hasattr(str, node.attr):
            out.append((f"{target.name!r} is text here (a name, not a mapping): "
                        f"{target.name}.{node.attr} fails whenever the template renders",
                        f"write {{{{ {target.name} }}}}", node.lineno))
            texts.discard(target.name)  # once per name
    return out


def template_file_diagnostic(templating: Templating, name: str, message: str, named_at: Diagnostic,
                             used_as: str = "") -> Diagnostic:
    """A problem of template file ``name`` at its line in that file (a syntax error, an unknown
    filter, a sandbox escape), the hint saying where it is named; ``named_at`` (the place that
    names it) when the problem has no line in the file (missing, unreadable)."""
    where = templating.template_file_line(name)
    if where is None or templating.templates_dir is None:
        return named_at
    line, text = where
    quoted = [q for q in re.findall(r"'([^']+)'", message) if q != name and q in text]
    column = text.index(quoted[0]) + 1 if quoted else 1
    return Diagnostic(str(templating.templates_dir / name), line, column,
                      re.sub(r" \(line \d+\)", "", message, count=1),
                      f"{used_as + ', ' if used_as else ''}named at {named_at.file}:{named_at.line}", source_line=text)
