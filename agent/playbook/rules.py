"""Named cross-field rules, run after the structure of a file is valid.

Each rule reports at the node the operator has to change and says what to write instead.
:func:`template_problems` works on the raw (pre-processed) data so Jinja2 mistakes are
reported even when other parts of the file fail validation.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from keyword import iskeyword
from typing import Any

from agent.core.states import State
from agent.core.values import format_duration
from agent.modules.base import CheckModule
from agent.modules.registry import Registry
from agent.playbook.constant_expressions import constant_truth
from agent.playbook.cron import schedule_traps, timezone_trap, timezone_unused
from agent.playbook.diagnostics import Diagnostic, ran_as_read, suggest, warning
from agent.playbook.hints import expression_hint
from agent.playbook.models import BUDGET_HISTORY_S, Playbook, Task
from agent.playbook.scope import reserved_var_problems
from agent.playbook.templating import Templating, has_template
from agent.playbook.thresholds import Threshold
from agent.playbook.written_values import bare_duration_vars
from agent.playbook.yaml_source import Path_, SourceDocument

_EXPRESSION_KEYS = ("expect", "value", "occurrence", "when", "until", "changed_when", "failed_when")
_THRESHOLD_KEYS = ("warning", "critical", "clear")
_RESERVED_VARS = frozenset({"result", "host", "env", "item", "facts"})


def template_problems(doc: SourceDocument, data: Any, templating: Templating) -> list[Diagnostic]:
    """Syntax and sandbox problems in every template and expression of a playbook."""
    out: list[Diagnostic] = []

    def template(path: Path_, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                template((*path, key), item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                template((*path, index), item)
        elif has_template(value):
            problem = templating.check_syntax(value)
            if problem:
                label = next((p for p in reversed(path) if isinstance(p, str)), "")
                out.append(doc.diagnostic(path, f"{label}: {problem}"))

    def expression(path: Path_, value: Any) -> None:
        if isinstance(value, str):
            problem = templating.check_expression(value)
            if problem:
                out.append(doc.diagnostic(path, f"{path[-1]}: {problem}", expression_hint(value)))

    def item(path: Path_, raw: Any) -> None:
        if not isinstance(raw, dict):
            return
        if raw.get("module"):
            template((*path, raw["module"]), raw.get("params"))
        template((*path, "name"), raw.get("name"))
        for key in _EXPRESSION_KEYS:
            expression((*path, key), raw.get(key))
        for key in _THRESHOLD_KEYS:
            try:
                threshold = Threshold.parse(raw.get(key)) if isinstance(raw.get(key), str) else None
            except ValueError:
                continue  # the model reports the malformed threshold
            if threshold is not None:
                check = templating.check_syntax if has_template(threshold.expr_src) else templating.check_expression
                problem = check(threshold.expr_src)
                if problem:
                    out.append(doc.diagnostic((*path, key), f"{key}: {problem}", expression_hint(threshold.expr_src)))
        for key in ("block", "rescue", "always"):
            items((*path, key), raw.get(key))

    def items(path: Path_, raw: Any) -> None:
        if isinstance(raw, list):
            for index, entry in enumerate(raw):
                item((*path, index), entry)

    if not isinstance(data, dict):
        return out
    template(("vars",), data.get("vars"))
    template(("confirm",), data.get("confirm"))
    for section in ("checks", "tasks", "handlers"):
        items((section,), data.get(section))
    remediations = data.get("remediations")
    if isinstance(remediations, dict):
        for name, rem in remediations.items():
            if isinstance(rem, dict):
                items(("remediations", name, "steps"), rem.get("steps"))
    return out


def iter_tasks(tasks: list[Task] | None, path: Path_) -> Iterator[tuple[Path_, Task]]:
    """Every task with its YAML path, blocks included, depth first."""
    for index, task in enumerate(tasks or []):
        here = (*path, index)
        yield here, task
        for key in ("block", "rescue", "always"):
            yield from iter_tasks(getattr(task, key), (*here, key))


def all_tasks(play: Playbook) -> Iterator[tuple[Path_, Task]]:
    yield from iter_tasks(play.tasks, ("tasks",))
    yield from iter_tasks(play.handlers, ("handlers",))
    for name, rem in play.remediations.items():
        yield from iter_tasks(rem.steps, ("remediations", name, "steps"))


def playbook_rules(doc: SourceDocument, raw: Mapping[str, Any], play: Playbook,
                   registry: Registry, templating: Templating) -> list[Diagnostic]:
    """Rules inside one playbook: names, references, thresholds, registers, task params."""
    out: list[Diagnostic] = []
    if play.schedule is not None and (unused := timezone_unused(play.schedule)) is not None:
        out.append(warning(doc.diagnostic(("schedule", "timezone"), f"schedule: {unused[0]}", unused[1])))
    if play.schedule is not None:
        for message, hint in schedule_traps(play.schedule.cron, play.schedule.timezone):
            out.append(warning(doc.diagnostic(("schedule", "cron"), f"schedule: {message}", hint)))
        if play.schedule.cron and (trap := timezone_trap(play.schedule.timezone)) is not None:
            out.append(warning(doc.diagnostic(("schedule", "timezone"), f"schedule: {trap[0]}", trap[1])))
    out += reserved_var_problems(doc, [(("vars",), play.vars)])
    out += bare_duration_vars(doc, play, registry)
    if not play.checks and not play.tasks:
        what = "handlers and remediations" if play.handlers and play.remediations else \
            "handlers" if play.handlers else "remediations" if play.remediations else ""
        out.append(warning(doc.diagnostic(
            ("name",), f"playbook {play.name!r} has no checks and no tasks: it does nothing"
            + (f" (its {what} run only for a task or a check of the play)" if what else ""),
            "add checks: (run on the schedule) or tasks: (run by agent run-playbook), or delete the file")))
    seen: dict[str, int] = {}
    for i, check in enumerate(play.checks):
        path = ("checks", i)
        if check.name in seen:
            out.append(doc.diagnostic((*path, "name"), f"duplicate check name {check.name!r} (also check "
                                      f"#{seen[check.name] + 1})", "check names are unique within a play"))
        seen.setdefault(check.name, i)
        for j, name in enumerate(check.remediate):
            if name not in play.remediations:
                out.append(doc.diagnostic((*path, "remediate", j), f"no remediation named {name!r} in this play",
                                          suggest(name, play.remediations) or _known("remediations", play.remediations)))
            elif name in check.remediate[:j]:  # run once per name in order: the second ran again after the cooldown
                out.append(ran_as_read(doc.diagnostic(
                    (*path, "remediate", j), f"remediate: {name!r} is listed twice: it is decided twice for each "
                    "problem, the second deferred by its cooldown and run again while the problem lasts (its budget "
                    "spent twice as fast), each refusal told as 'not run: cooling down'",
                    f"list {name!r} once")))
        for j, parent in enumerate(check.depends_on):  # lifecycle: inhibition (issue 4)
            local = {c.name for c in play.checks}
            if parent not in local and "/" in parent:
                continue  # PLAYBOOK/CHECK of another play: checked across files (loader)
            if parent == check.name:
                out.append(doc.diagnostic((*path, "depends_on", j), f"depends_on: check {parent!r} depends on itself",
                                          "depends_on names the check this one needs to work (the process, the "
                                          "host); remove this entry"))
            elif parent not in local:
                out.append(doc.diagnostic((*path, "depends_on", j), f"depends_on: no other check named {parent!r} "
                                          "in this play", suggest(parent, [c.name for c in play.checks
                                                                           if c.name != check.name])))
        thresholds = [k for k in ("warning", "critical") if getattr(check, k) is not None]
        module = registry.checks.get(check.module)
        known = dict(module.fact_values) if module is not None else {}
        truth = constant_truth(check.expect, domains=known) if check.expect is not None else None
        if truth is not None:
            acts = not truth and bool(check.remediate)  # never passes, and acts each time: an error, not a note
            said = doc.diagnostic(
                (*path, "expect"), f"expect: {check.expect!r} is always {'true' if truth else 'false'}, whatever the "
                f"module finds: the check can never {'fail' if truth else 'pass'}"
                + (f", and it remediates ({', '.join(check.remediate)}): that would run at every failure, until "
                   "its budget hands over (the emergency)" if acts else ""),
                _values_hint(check.expect or "", known)
                or "compare a fact of the module with a value (expect: \"status_code == 200\"), or leave expect "
                "out to pass whenever the module itself succeeds")
            out.append(ran_as_read(said) if acts else warning(said))
        if check.expect is not None and thresholds:
            out.append(doc.diagnostic((*path, thresholds[0]), "a check has either 'expect' or thresholds "
                                      "('warning'/'critical'), not both", "keep one of them", at_key=True))
        if thresholds and "severity" in check.model_fields_set:
            out.extend(_severity_beside_thresholds(doc, path, check.severity, thresholds))
        if check.clear is not None and not thresholds:
            out.append(doc.diagnostic((*path, "clear"), "'clear' needs a 'warning' or 'critical' threshold",
                                      at_key=True))
        if thresholds and check.value is None and module is not None and module.default_value is None:
            out.append(doc.diagnostic(path, f"check {check.name!r} has thresholds but no 'value', and module "
                                      f"{check.module!r} has no default value", "add value: <fact name>"))
        out.extend(_threshold_directions(doc, path, check.warning_threshold, check.critical_threshold,
                                         check.clear_threshold))

    for name, rem in play.remediations.items():
        if rem.budget is not None and rem.budget.within > BUDGET_HISTORY_S:
            out.append(doc.diagnostic(("remediations", name, "budget", "within"), f"budget window "
                                      f"{format_duration(rem.budget.within)} is longer than the "
                                      f"{format_duration(BUDGET_HISTORY_S)} of runs the agent reads back at "
                                      "start-up: after a restart, older runs would no longer count",
                                      f"use within: {format_duration(BUDGET_HISTORY_S)} or less"))
        if rem.budget is not None and rem.cooldown and (rem.budget.max - 1) * rem.cooldown >= rem.budget.within:
            # runs start at least `cooldown` apart and count while younger than `within`: the
            # max-th run starts (max-1)*cooldown after the first, which has stopped counting by then
            fit = int(-(-rem.budget.within // rem.cooldown))
            out.append(doc.diagnostic(("remediations", name, "cooldown"), f"the budget can never be spent: "
                                      f"runs {format_duration(rem.cooldown)} apart fit at most {fit} into "
                                      f"{format_duration(rem.budget.within)}, fewer than max: {rem.budget.max}, so "
                                      f"{'`then` never runs and ' if rem.budget.then else ''}the remediation "
                                      "repeats forever", f"lengthen within: beyond "
                                      f"{format_duration((rem.budget.max - 1) * rem.cooldown)}, lower max: to "
                                      f"{max(1, fit)} or less, or shorten the cooldown"))
        out.extend(_budget_never_counted(doc, name, rem))

    handlers = {t.name for t in play.handlers}
    first_handler: dict[str, int] = {}
    for i, handler in enumerate(play.handlers):
        if handler.name in first_handler:  # both ran on a notify (Ansible runs one): said, not guessed
            out.append(ran_as_read(doc.diagnostic(
                ("handlers", i, "name"), f"duplicate handler name {handler.name!r} (also handler "
                f"#{first_handler[handler.name] + 1}): a notify of it runs both",
                "handler names are unique: rename one, and notify each by its name")))
        first_handler.setdefault(handler.name, i)
    for i, raw_handler in enumerate(raw.get("handlers") or []):
        if isinstance(raw_handler, dict) and not raw_handler.get("name"):
            out.append(doc.diagnostic(("handlers", i), "a handler needs a 'name' (tasks notify it by name)"))
    remediated = _remediated_modules(play, registry)
    for path, task in all_tasks(play):
        modules = remediated.get(str(path[1])) if path[0] == "remediations" else None
        out.extend(_constant_when(doc, path, task, _check_domains(modules) if modules is not None else {}))
        if modules:
            out.extend(_unknown_facts(doc, path, task, modules))
        if task.register is not None and (not task.register.isidentifier() or iskeyword(task.register)
                                          or task.register in _RESERVED_VARS):
            out.append(doc.diagnostic((*path, "register"), f"register name {task.register!r} is not usable as a "
                                      "variable", "use letters, digits and _ (not starting with a digit); "
                                      f"not one of {', '.join(sorted(_RESERVED_VARS))}"))
        for j, name in enumerate(task.notify):
            if name not in handlers:
                out.append(doc.diagnostic((*path, "notify", j), f"no handler named {name!r}",
                                          suggest(name, handlers) or _known("handlers", handlers)))
    return out


def _remediated_modules(play: Playbook, registry: Registry) -> dict[str, list[type[CheckModule]]]:
    """The check modules of the checks that run each remediation of ``play`` (its ``check``)."""
    out: dict[str, list[type[CheckModule]]] = {name: [] for name in play.remediations}
    for check in play.checks:
        module = registry.checks.get(check.module)
        for name in check.remediate:
            if module is not None and name in out and module not in out[name]:
                out[name].append(module)
    return out


def _check_domains(modules: list[type[CheckModule]]) -> dict[str, tuple[object, ...]]:
    """What ``check.state`` and ``check.facts.X`` can hold in a remediation run for a check of one
    of ``modules`` (a fact's values only when every such module declares them)."""
    out: dict[str, tuple[object, ...]] = {"check.state": tuple(s.name for s in State)}
    facts = set.intersection(*(set(m.fact_values) for m in modules)) if modules else set()
    for fact in facts:
        values = tuple(dict.fromkeys(v for m in modules for v in m.fact_values[fact]))
        out[f"check.facts.{fact}"] = values
        out[f"check.facts['{fact}']"] = values
        out[f'check.facts["{fact}"]'] = values
    return out


def _values_hint(expression: str, domains: Mapping[str, tuple[object, ...]]) -> str | None:
    """Which values the names an expression compares can hold (when it names one that is known)."""
    named = [(name, values) for name, values in domains.items()
             if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", expression)]
    if not named:
        return None
    return "; ".join(f"{name} is one of {', '.join(map(str, values))} (as written: upper case)"
                     for name, values in named[:2])


_FACT_READ = re.compile(r"(?<![\w.])check\.facts(?:\.(\w+)|\[\s*['\"](\w+)['\"]\s*\])")


def _unknown_facts(doc: SourceDocument, path: Path_, task: Task,
                   modules: list[type[CheckModule]]) -> list[Diagnostic]:
    """A remediation step's ``when:`` reading ``check.facts.X`` that none of the modules of the
    checks it runs for produces: undefined when it runs, so the condition is never what was meant."""
    if task.when is None or not all(m.facts for m in modules):
        return []
    produced = sorted({f for m in modules for f in m.facts})
    out: list[Diagnostic] = []
    for match in _FACT_READ.finditer(task.when):
        fact = match[1] or match[2]
        if fact not in produced:
            out.append(doc.diagnostic((*path, "when"), f"when: check.facts.{fact}: the "
                                      f"{'/'.join(m.name for m in modules)} module has no fact {fact!r} (it is "
                                      "undefined when the step runs)",
                                      suggest(fact, produced) or f"facts: {', '.join(produced)}"))
    return out


def _budget_never_counted(doc: SourceDocument, name: str, rem: Any) -> list[Diagnostic]:
    """A budget whose runs can never count: a run counts only if it changed something or failed (a
    run that changed nothing, such as a start of a bot supervisord is already starting, restarted
    nothing), and every step says ``changed_when: false``. A crash loop its steps answer (a
    ``command:`` that restarts the program, declared unchanged) never spends the budget: `then`
    never runs and the remediation repeats forever."""
    if rem.budget is None or not rem.steps:
        return []
    if not all(t.changed_when is not None and constant_truth(t.changed_when) is False for t in rem.steps):
        return []
    return [doc.diagnostic(("remediations", name, "steps", 0, "changed_when"),
                           f"every step of remediation {name!r} says changed_when: false, so no run that "
                           "succeeds counts in its budget (a run that changed nothing does not count): the budget "
                           f"is never spent, {'`then` never runs and ' if rem.budget.then else ''}the remediation "
                           "repeats forever", "remove changed_when: false from the step that acts (or write a "
                           "condition that is true when it acted)")]


def _constant_when(doc: SourceDocument, path: Path_, task: Task,
                   domains: Mapping[str, tuple[object, ...]]) -> list[Diagnostic]:
    """A ``when:`` whose truth is constant (``false``, ``"1 == 2"``, a quoted word, which is a
    non-empty string): the condition is not a condition. In a remediation step that never runs
    it is an error: the remediation would not do what it says when the check fails, and a run
    whose every step is skipped does not count, so its budget is never spent either; anywhere
    else (a task of an on-demand play, a handler, a step that always runs) a warning."""
    if task.when is None:
        return []
    truth = constant_truth(task.when, domains=domains)
    if truth is None:
        return []
    remediation = path[0] == "remediations"
    said = (f"when: {task.when!r} is always {'true' if truth else 'false'}, whatever the values: "
            + ("the step never runs" if not truth else "the condition never skips it"))
    if remediation and not truth:
        return [doc.diagnostic((*path, "when"), f"{said}, so the remediation does not do it when the check "
                               "fails (and a run whose every step is skipped does not count in the budget)",
                               _values_hint(task.when, domains) or "remove the step, or write a condition on "
                               "what the step needs (when: \"check.state == 'CRITICAL'\"); to switch the "
                               "remediation off, remove it from the check's remediate:")]
    hint = ("remove when: (the step always runs without it)" if truth else
            "remove the step, or write a condition that reads a value (when: \"halted.changed\")")
    return [warning(doc.diagnostic((*path, "when"), said, hint))]


def _severity_beside_thresholds(doc: SourceDocument, path: Path_, severity: str,
                                thresholds: list[str]) -> list[Diagnostic]:
    """``severity:`` on a check with thresholds: it is the state of a failed ``expect``, and here the
    threshold breached decides the state (``critical: "> 90"`` is CRITICAL and pages whatever
    ``severity`` says; ``severity: critical`` changes nothing). Only ``info`` or ``warning``
    without a ``critical:`` threshold does something an operator can mean: WARNING results go to
    the digest (info), an UNKNOWN is told as a warning."""
    if severity != "critical" and "critical" not in thresholds:
        return []
    if severity == "critical":
        said = ("severity: critical changes nothing on a check with thresholds: the threshold breached decides "
                "the state (warning: is WARNING, critical: is CRITICAL), and an UNKNOWN already pages as critical")
        hint = "remove severity: (it is the state of a failed expect:)"
    else:
        said = (f"severity: {severity} does not lower this check: its critical: threshold is CRITICAL and pages "
                f"as critical whatever severity says (severity is the state of a failed expect:)")
        hint = ("remove the critical: threshold to keep this check at WARNING" +
                (" (severity: info then sends its warnings to the digest)" if severity == "info" else "")
                + ", or remove severity:")
    return [warning(doc.diagnostic((*path, "severity"), said, hint))]


def _threshold_directions(doc: SourceDocument, path: Path_, warning: Threshold | None,
                          critical: Threshold | None, clear: Threshold | None) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if warning and critical and warning.direction and critical.direction and warning.direction != critical.direction:
        out.append(doc.diagnostic((*path, "critical"), f"'warning' ({warning.op}) and 'critical' ({critical.op}) "
                                  "compare in opposite directions", "use > / >= for both, or < / <= for both"))
    bad = warning or critical
    if clear and bad and clear.direction and bad.direction == clear.direction:
        out.append(doc.diagnostic((*path, "clear"), f"'clear' ({clear.op}) must compare the other way than the "
                                  f"threshold ({bad.op})", f"e.g. clear: '{bad.negated().op} ...'"))
    return out


def _known(kind: str, names: Any) -> str:
    names = sorted(names)
    return f"known {kind}: {', '.join(names)}" if names else f"this play has no {kind}"
