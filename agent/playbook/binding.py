"""Binding: a check of a play on one host, with its module and rendered, validated params.

Checks are bound at load, so a template or parameter that does not fit a host is reported
before anything runs. Binding registers every parameter marked :class:`~agent.modules.base.Secret`
with the configuration's redactor. Tasks may use run-time vars (registered results), so they are bound
when run, by :func:`bind_task_params`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import meta
from pydantic import ValidationError

from agent.core.values import HARD_WITHIN_MAX, format_duration
from agent.modules.base import CheckModule, HostContext, Params, secret_values
from agent.modules.registry import Registry
from agent.playbook.diagnostics import Diagnostic, suggest, warning
from agent.playbook.hints import bare_word_hint, exponent_read_as_text
from agent.playbook.models import Check, Playbook, Task
from agent.playbook.placeholders import ascii_digits, is_runtime, lookalike_digits
from agent.playbook.preprocess import CHECK_KEYS, TASK_KEYS
from agent.playbook.scope import check_scope, template_problem
from agent.playbook.templating import TemplateError, Templating, has_template
from agent.playbook.thresholds import Threshold, as_number, is_number
from agent.playbook.validation import diagnostics_from_validation
from agent.playbook.yaml_source import Path_, SourceDocument
from botwarden.errors import ConfigError


@dataclass(frozen=True, eq=False)
class BoundCheck:
    """One check of one play on one host, ready to schedule.

    ``vars`` is what expressions see besides the facts: the host's vars with the play's
    (rendered) vars on top. ``interval`` is seconds between runs (the check's ``every``, else
    the play's ``schedule.every``), ``None`` for cron or on-demand plays.
    """

    play: Playbook
    check: Check
    host: HostContext
    module: type[CheckModule]
    params: Params
    key: str
    interval: float | None
    timeout: float
    vars: Mapping[str, Any]

    @property
    def value_expr(self) -> str | None:
        """The expression thresholds compare: the check's ``value``, else the module's default."""
        return self.check.value or self.module.default_value


class VarError(TemplateError):
    """A play var that cannot be rendered; ``name`` is the var, so the error is shown where it is
    defined, not where it is used."""

    def __init__(self, name: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.name = name


def play_vars(play: Playbook, host: HostContext, templating: Templating) -> dict[str, Any]:
    """Host vars with the play's vars rendered on top (play vars win).

    A play var may read the host's vars and the play's other vars, as in Ansible: each is
    rendered after the vars it reads (a var that reads its own name reads the host's var of that
    name, so ``limit: "{{ limit * 2 }}"`` overrides a host var with it). Raises :class:`VarError`
    naming the var that does not render, or the vars that read each other in a circle."""
    pending = {name: (value, _names_read(value, templating) & set(play.vars) - {name})
               for name, value in play.vars.items()}
    rendered: dict[str, Any] = {}
    while pending:
        ready = [name for name, (_, needs) in pending.items() if not needs - rendered.keys()]
        if not ready:
            circle = sorted(pending)
            raise VarError(circle[0], f"vars {', '.join(map(repr, circle))} read each other: none can be rendered",
                           "one of them must be a value, not a template of the others")
        for name in ready:
            value, _ = pending.pop(name)
            try:
                rendered[name] = templating.render_value(value, {**host.vars, **rendered})
            except TemplateError as exc:
                undefined = re.search(r"'([^']+)' is undefined", exc.message)
                near = suggest(undefined[1], [*host.vars, *play.vars]) if undefined else None
                raise VarError(name, f"vars.{name}: {exc.message}", exc.hint or near) from None
    return {**host.vars, **{name: rendered[name] for name in play.vars}}


def _names_read(value: Any, templating: Templating) -> set[str]:
    """The names the templates in ``value`` read (any that does not parse reads none: its syntax
    is reported elsewhere)."""
    if isinstance(value, str):
        if not has_template(value):
            return set()
        try:
            return set(meta.find_undeclared_variables(templating.tree(value)))
        except Exception:  # noqa: BLE001 - a syntax error is reported by the template pass
            return set()
    if isinstance(value, Mapping):
        return set().union(*(_names_read(v, templating) for v in value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(*(_names_read(v, templating) for v in value))
    return set()


def bind_checks(doc: SourceDocument, play: Playbook, hosts: list[HostContext], registry: Registry,
                templating: Templating) -> tuple[list[BoundCheck], list[Diagnostic]]:
    """Bind every check of ``play`` to every host; problems become diagnostics."""
    bound: list[BoundCheck] = []
    out: list[Diagnostic] = []
    for host in hosts:
        try:
            vars = play_vars(play, host, templating)
        except VarError as exc:
            out.append(doc.diagnostic(("vars", exc.name), f"on host {host.name!r}: {exc.message}", exc.hint))
            continue
        except TemplateError as exc:
            out.append(doc.diagnostic(("vars",), f"on host {host.name!r}: {exc.message}"))
            continue
        for i, check in enumerate(play.checks):
            module = registry.checks.get(check.module)
            if module is None:
                continue  # already reported by the pre-processor
            path: Path_ = ("checks", i, check.module)
            if _has_template_problem(check.params, templating):
                continue  # reported once by the syntax pass; rendering would only repeat it
            rendered, problems = _render_params(doc, path, check, host, vars, templating)
            if problems:
                out.extend(problems)
                continue
            try:
                params = module.Params.model_validate(rendered)
            except ValidationError as exc:
                if _only_placeholders_refused(exc, rendered):
                    # Loaded for reading only, a parameter reads an unset variable: nothing runs
                    # this check here, so it is listed with its parameters as written.
                    bound.append(_bound(play, check, host, module, module.Params.model_construct(**rendered), vars))
                    continue
                out.extend(at_definition(doc, play, path, check.params, diagnostics_from_validation(
                    exc, doc, rendered, model=module.Params, prefix=path, redact=templating.redact,
                    misplaced=misplaced_in_params("check", check.module))))
                continue
            templating.redactor.add(secret_values(params))
            out.extend(hard_within_a_day(doc, ("checks", i), check, play))
            out.extend(_timeout_above_the_checks(doc, path, check, params))
            out.extend(threshold_order(doc, ("checks", i), check, vars, templating))
            out.extend(expression_names(doc, ("checks", i), check, module, vars, templating))
            bound.append(_bound(play, check, host, module, params, vars))
    return bound, out


def _timeout_above_the_checks(doc: SourceDocument, path: Path_, check: Any, params: Any) -> list[Diagnostic]:
    """A module's own ``timeout`` above the check's: the check is cut at its own timeout first, so
    the module's never applies (the http module caps it there; others are cut off unknown)."""
    own = getattr(params, "timeout", None)
    if not isinstance(own, (int, float)) or isinstance(own, bool) or own <= check.timeout:
        return []
    return [warning(doc.diagnostic((*path, "timeout"), f"{check.module}: timeout {format_duration(own)} is longer "
                                   f"than the check's timeout {format_duration(check.timeout)}: the check is cut "
                                   f"at {format_duration(check.timeout)} first, so this one never applies",
                                   f"lower it below {format_duration(check.timeout)}, or raise the check's timeout: "
                                   f"(timeout: {format_duration(own)} beside the module, not under it)"))]


_BARE_NAME = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")


def at_definition(doc: SourceDocument, play: Playbook, path: Path_, params: Mapping[str, Any],
                  diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """A parameter written as just ``{{ name }}`` of a play var whose value is written literally
    takes the var's value as is: a value of the wrong type is wrong where the var is defined.
    Its diagnostic moves there, and says which parameter reads it."""
    moved: dict[tuple[int, int], tuple[str, str]] = {}
    for key, raw in params.items():
        bare = _BARE_NAME.match(raw) if isinstance(raw, str) else None
        if bare and bare[1] in play.vars and not has_template(play.vars[bare[1]]):
            use = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in (*path, key)).lstrip(".")
            moved[doc.position((*path, key))] = (bare[1], use)
    out: list[Diagnostic] = []
    for d in diagnostics:
        where = moved.get((d.line, d.column))
        if where is None:
            out.append(d)
            continue
        name, use = where
        _, _, said = d.message.partition(": ") if d.message.startswith(("checks[", "checks.")) else ("", "", d.message)
        out.append(doc.diagnostic(("vars", name), f"vars.{name}: {said} (the value of {use})", d.hint))
    return out


def _bound(play: Playbook, check: Check, host: HostContext, module: type[CheckModule], params: Params,
           vars: Mapping[str, Any]) -> BoundCheck:
    every = check.every or (play.schedule.every if play.schedule else None)
    return BoundCheck(play=play, check=check, host=host, module=module, params=params,
                      key=f"{play.name}/{host.name}/{check.name}", interval=every, timeout=check.timeout, vars=vars)


def _only_placeholders_refused(exc: ValidationError, rendered: Mapping[str, Any]) -> bool:
    """Every error is about a parameter whose value holds a placeholder: in a check's parameters
    only an unset variable's (:class:`~agent.playbook.placeholders.UnsetEnv`), which exist only
    in a configuration loaded for reading only."""
    errors = exc.errors(include_input=False, include_url=False)
    return bool(errors) and all(err["loc"] and is_runtime(rendered.get(str(err["loc"][0]))) for err in errors)


def _render_params(doc: SourceDocument, path: Path_, check: Check, host: HostContext, vars: Mapping[str, Any],
                   templating: Templating) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Render each parameter separately so an error points at the parameter that failed."""
    rendered: dict[str, Any] = {}
    problems: list[Diagnostic] = []
    for key, value in check.params.items():
        result, problem, hint = template_problem(templating, value, vars)
        if problem is None:
            rendered[key] = result
        else:
            problems.append(doc.diagnostic((*path, key), f"check {check.name!r} on host {host.name!r}: "
                                           f"{key}: {problem}", hint))
    return rendered, problems


def _has_template_problem(value: Any, templating: Templating) -> bool:
    if isinstance(value, dict):
        return any(_has_template_problem(v, templating) for v in value.values())
    if isinstance(value, list):
        return any(_has_template_problem(v, templating) for v in value)
    return has_template(value) and templating.check_syntax(value) is not None


def misplaced_in_params(kind: str, module: str) -> Callable[[str], str | None]:
    """Explain a check's or task's own key written inside its module's parameters."""
    keys = CHECK_KEYS if kind == "check" else TASK_KEYS

    def hint(key: str) -> str | None:
        if key in keys:
            return (f"{key!r} belongs to the {kind}, not to the parameters of {module!r}: indent it like "
                    f"'{module}:'")
        return None
    return hint


def expression_names(doc: SourceDocument, path: Path_, check: Check, module: type[CheckModule],
                     vars: Mapping[str, Any], templating: Templating) -> list[Diagnostic]:
    """``expect``, ``value`` and ``occurrence`` name only facts the module produces and vars that exist."""
    out: list[Diagnostic] = []
    if not module.facts:
        return out  # a module that does not list its facts: any name may be one
    scope = check_scope(vars, module.facts)
    for key in ("expect", "value", "occurrence"):
        expr = getattr(check, key)
        if expr is None or templating.check_expression(expr) is not None:
            continue  # absent, or reported by the template pass
        _, problem, hint = template_problem(templating, expr, scope, expression=True)
        if problem is None:
            continue
        if problem.endswith(" is undefined") and problem.startswith("'"):
            name = problem[1:].split("'", 1)[0]
            facts = sorted(module.facts)
            compared = re.search(rf"(==|!=|\bin)\s*{re.escape(name)}\b|\b{re.escape(name)}\s*(==|!=)", expr)
            out.append(doc.diagnostic((*path, key), f"{key}: {name!r} is neither a fact of the {module.name!r} "
                                      "module nor a variable", suggest(name, facts) or hint
                                      or (bare_word_hint(name) if compared else None)
                                      or f"facts of {module.name!r}: {', '.join(facts)}"))
        else:
            out.append(doc.diagnostic((*path, key), f"{key}: {problem}", hint))
    return out


def hard_within_a_day(doc: SourceDocument, path: Path_, check: Check, play: Playbook) -> list[Diagnostic]:
    """``after`` consecutive results at the check's interval must be possible within a day: a
    problem that cannot become hard sooner never alerts in time (``for`` has that bound itself)."""
    every = check.every or (play.schedule.every if play.schedule else None)
    if every is None or (check.after - 1) * every <= HARD_WITHIN_MAX:
        return []
    most = int(HARD_WITHIN_MAX // every) + 1
    return [doc.diagnostic((*path, "after"), f"after: {check.after} results every {format_duration(every)} take "
                           f"{format_duration((check.after - 1) * every)} to make a problem hard, longer than "
                           f"{format_duration(HARD_WITHIN_MAX)}", f"after: {most} or less at this interval, or "
                           "use for: to wait")]


def threshold_order(doc: SourceDocument, path: Path_, check: Check, vars: Mapping[str, Any],
                    templating: Templating) -> list[Diagnostic]:
    """Warning must trip before critical, and ``clear`` must sit on the good side."""
    out: list[Diagnostic] = []
    bounds: dict[str, Any] = {}
    for key in ("warning", "critical", "clear"):
        threshold: Threshold | None = getattr(check, f"{key}_threshold")
        if threshold is None:
            continue
        syntax = templating.check_syntax if has_template(threshold.expr_src) else templating.check_expression
        if syntax(threshold.expr_src) is not None:
            continue  # reported by the template pass
        try:
            written = threshold.written_bound(vars, templating)
        except TemplateError as exc:
            out.append(doc.diagnostic((*path, key), f"{key}: {exc.message}"))
            continue
        if isinstance(written, float) and not math.isfinite(written):
            continue  # .nan or .inf: reported where YAML read it
        if threshold.direction and not is_number(written) and not is_runtime(written):
            out.append(doc.diagnostic((*path, key), f"{key}: '{threshold.op}' compares numbers, and its bound "
                                      f"{threshold.expr_src!r} is {_kind_of(written)}", _bound_hint(threshold, written)))
            continue
        bounds[key] = (threshold, as_number(written))
    warning, critical, clear = bounds.get("warning"), bounds.get("critical"), bounds.get("clear")
    if warning and critical and is_number(warning[1]) and is_number(critical[1]):
        direction = critical[0].direction
        if direction == 1 and not warning[1] < critical[1]:
            out.append(doc.diagnostic((*path, "critical"), f"thresholds out of order: critical ({critical[1]:g}) "
                                      f"must be above warning ({warning[1]:g}) for '{critical[0].op}'",
                                      "swap them, or fix the numbers"))
        elif direction == -1 and not warning[1] > critical[1]:
            out.append(doc.diagnostic((*path, "critical"), f"thresholds out of order: critical ({critical[1]:g}) "
                                      f"must be below warning ({warning[1]:g}) for '{critical[0].op}'",
                                      "swap them, or fix the numbers"))
    first_bad = warning or critical
    if clear and first_bad and is_number(clear[1]) and is_number(first_bad[1]):
        direction = first_bad[0].direction
        if (direction == 1 and clear[1] > first_bad[1]) or (direction == -1 and clear[1] < first_bad[1]):
            out.append(doc.diagnostic((*path, "clear"), f"'clear' ({clear[1]:g}) is on the bad side of the "
                                      f"threshold ({first_bad[1]:g})", "hysteresis clears on the good side"))
    return out


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "text" + (" (a quoted number?)" if is_number(as_number(value)) else "")
    if value is None:
        return "empty (null: YAML reads a key with nothing after its colon as null)"
    return {"list": "a list", "dict": "a mapping"}.get(type(value).__name__, f"a {type(value).__name__}")


def _bound_hint(threshold: Threshold, written: Any = "") -> str:
    name = re.fullmatch(r"\s*\{\{\s*([A-Za-z_][\w.]*)\s*\}\}\s*", threshold.expr_src)
    key = name[1].rsplit('.', 1)[-1] if name else ""
    if not isinstance(written, str):  # not a quoted number: there is no number to unquote
        return f"write one number {f'where {name[1]} is defined ({key}: 80)' if name else 'in the threshold'}"
    if (text := exponent_read_as_text(written)) is not None:  # 1.0e400 unquoted: text to YAML 1.1, not quoted
        return f"{text}{f' where {name[1]} is defined' if name else ''}"
    number = written.strip() if is_number(as_number(written)) else "80"  # the value written, unquoted
    if lookalike_digits(number):  # fullwidth 60 unquoted is text too: no quotes to take away
        where = f"where {name[1]} is defined ({key}: {ascii_digits(number)})" if name else "in the threshold"
        return f"write the number in ASCII digits {where}: {number!r} has look-alike digits, which YAML reads as text"
    where = f"where {name[1]} is defined ({key}: {number}, not \"{number}\")" if name else "in the threshold"
    return f"write the number without quotes {where}"


def bind_task_params(task: Task, registry: Registry, templating: Templating, vars: Mapping[str, Any]) -> Params:
    """Render ``task.params`` with ``vars``, validate them with the action's ``Params`` and register
    their secret fields with the configuration's redactor.

    Raises :class:`ConfigError` whose message starts with the task's ``file:line``; the
    message never carries a rendered value (those may come from ``env``).
    """
    where = f"{task.source}: " if task.source else ""
    if task.module is None:
        raise ConfigError(f"{where}task {task.name!r} is a block, it has no module parameters")
    module = registry.action(task.module)
    try:
        rendered = templating.render_value(task.params, vars)
    except TemplateError as exc:
        raise ConfigError(f"{where}task {task.name!r}: {exc.message}") from None
    try:
        params = module.Params.model_validate(rendered)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or task.module}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigError(templating.redact(f"{where}task {task.name!r}: invalid {task.module!r} "
                                            f"parameters: {problems}")) from None
    templating.redactor.add(secret_values(params))  # before the module runs: its messages are redacted
    return params
