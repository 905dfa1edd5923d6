"""Every task, handler and remediation step checked at load, templated or not.

Tasks are rendered when they run (a registered result may feed a later step), so they cannot
be bound at load the way checks are. What can be known is checked on every host of the play,
in the scope the step will have (:mod:`agent.playbook.scope`):

* every parameter key exists in the module's ``Params`` (a misspelt key next to a template too);
* every templated value compiles and renders: undefined variables and attributes, filters and
  tests that do not exist, sandbox escapes;
* values known at load (plain, or rendered from vars) are validated with the module's
  ``Params``, which checks the rendered type where the module declares one; a value that
  depends on run-time results is checked for what it certainly is (a string stays a string);
* parameters marked :class:`agent.modules.base.Refers` name a route of the inventory or a
  template file that exists and compiles;
* ``when``/``until``/``changed_when``/``failed_when`` evaluate in their scope;
* a registered name is used only after the task that registers it.
"""
from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from agent.core.values import DEFAULT_TASK_TIMEOUT, format_duration
from agent.modules.base import HostContext, Refers, secret_values
from agent.modules.registry import Registry
from agent.playbook.binding import misplaced_in_params, play_vars
from agent.playbook.diagnostics import Diagnostic, suggest, valid_keys_hint, warning
from agent.playbook.models import Playbook, Task
from agent.playbook.placeholders import RUNTIME, is_runtime
from agent.playbook.rules import all_tasks
from agent.playbook.scope import (
    task_scope,
    template_file_diagnostic,
    template_problem,
    unknown_in_template_file,
)
from agent.playbook.templating import TemplateError, Templating, has_template
from agent.playbook.validation import diagnostics_from_validation, model_keys_at
from agent.playbook.yaml_source import Path_, SourceDocument

_TASK_EXPRESSIONS = ("when", "until", "changed_when", "failed_when")


class TaskChecker:
    """Checks the steps of one play on its hosts; problems go to ``diagnostics``."""

    def __init__(self, doc: SourceDocument, play: Playbook, registry: Registry, templating: Templating,
                 routes: Collection[str], *, registers_uncertain: bool = False,
                 silent_routes: Collection[str] = ()) -> None:
        """``registers_uncertain``: a task of the play has an unknown key (already reported) that
        may have been meant as ``register:``; undefined names are then not reported again.
        ``silent_routes``: routes every target of which sends nothing (optional, rendered empty):
        a step naming one would tell nobody."""
        self.doc, self.play, self.registry, self.templating = doc, play, registry, templating
        self.routes = routes
        self.silent_routes = silent_routes
        self.registers_uncertain = registers_uncertain
        self.diagnostics: list[Diagnostic] = []

    def run(self, hosts: list[HostContext]) -> list[Diagnostic]:
        for host in hosts:
            try:
                vars = play_vars(self.play, host, self.templating)
            except TemplateError:
                continue  # reported by the binding of checks
            if self.play.confirm is not None:
                confirm_scope = task_scope(vars, host.name, (), remediation=False)
                self._template(("confirm",), self.play.confirm, confirm_scope)
            registered: list[str] = []
            self._tasks(self.play.tasks, ("tasks",), vars, host, registered, remediation=False)
            self._tasks(self.play.handlers, ("handlers",), vars, host, list(registered), remediation=False)
            for name, rem in self.play.remediations.items():
                self._tasks(rem.steps, ("remediations", name, "steps"), vars, host, [], remediation=True)
        return self.diagnostics

    def _tasks(self, tasks: list[Task] | None, path: Path_, vars: Mapping[str, Any], host: HostContext,
               registered: list[str], *, remediation: bool) -> None:
        for index, task in enumerate(tasks or []):
            here = (*path, index)
            scope = task_scope(vars, host.name, registered, remediation=remediation)
            self._task(here, task, scope)
            for key in ("block", "rescue", "always"):
                self._tasks(getattr(task, key), (*here, key), vars, host, registered, remediation=remediation)
            if task.register:
                registered.append(task.register)

    def _task(self, path: Path_, task: Task, scope: dict[str, Any]) -> None:
        for key in _TASK_EXPRESSIONS:
            expr = getattr(task, key)
            if expr is None or self.templating.check_expression(expr) is not None:
                continue  # absent, or its syntax is reported by the template pass
            where = scope if key == "when" else {**scope, "result": RUNTIME}
            _, problem, hint = template_problem(self.templating, expr, where, expression=True)
            if problem:
                self._error((*path, key), f"{key}: {problem}",
                            hint or _later_register_hint(problem, self.play))
        if "delay" in task.model_fields_set and task.effective_retries == 0:
            self.diagnostics.append(warning(self.doc.diagnostic(
                (*path, "delay"), f"delay: {format_duration(task.delay)} is the pause between retries, and this task "
                "has none (no retries: or until:): it never waits", "add retries: N (and until: for a condition "
                "to wait for), or remove delay:")))
        module = self.registry.actions.get(task.module or "")
        if module is not None:
            self._params(path, task, module.Params, scope, module.template_vars)

    def _params(self, path: Path_, task: Task, model: type[BaseModel], scope: dict[str, Any],
                template_vars: frozenset[str] = frozenset()) -> None:
        base = (*path, task.module)
        keys = model_keys_at(model, ()) or []
        known: dict[str, Any] = {}
        unsure: set[str] = set()
        for key, value in task.params.items():
            if key not in keys:
                hint = misplaced_in_params("task", str(task.module))(str(key))
                self._error((*base, key), f"unknown key {key!r}", hint or valid_keys_hint(str(key), keys),
                            at_key=True)
                nearest = difflib.get_close_matches(str(key), sorted(keys), n=1, cutoff=0.6)
                if nearest and nearest[0] not in task.params:
                    unsure.add(nearest[0])  # 'acton' for 'action': not also "missing required key 'action'"
                continue
            if not _contains_template(value):
                known[key] = value
                continue
            if _has_syntax_problem(value, self.templating):
                unsure.add(key)  # reported once by the template pass
                continue
            rendered, problem, hint = template_problem(self.templating, value, scope)
            if problem:
                self._error((*base, key), f"{key}: {problem}",
                            hint or _later_register_hint(problem, self.play))
                unsure.add(key)
            elif is_runtime(rendered):
                unsure.add(key)
                if isinstance(rendered, str):  # text around a run-time value: a string, whatever it holds
                    self._check_field_accepts_text(base, key, model)
            else:
                known[key] = rendered
        refused = self._validate(base, model, known, unsure)
        self._timeout_above_the_tasks(base, task, model, known)
        # a value the model refused (a template named by a path) is not looked up as well
        self._references(base, model, {k: v for k, v in known.items() if k not in refused}, {*scope, *template_vars})

    def _validate(self, base: Path_, model: type[BaseModel], known: dict[str, Any], unsure: set[str]) -> set[str]:
        """Report what the model refuses of ``known``; return the keys it refused."""
        # The secrets written literally are known from load on (not only once the task runs): the
        # configuration's redactor covers everything kept of it, the last good snapshot included.
        try:
            unset = dict.fromkeys(model.model_fields)
            self.templating.redactor.add(secret_values(model.model_construct(**{**unset, **known})))
        except Exception:  # noqa: BLE001 - values the model refuses are reported below; they run nowhere
            pass
        try:
            model.model_validate(known)
        except ValidationError as exc:
            def certain(err: Any) -> bool:
                loc = tuple(err["loc"])
                if err["type"] == "extra_forbidden":
                    return False  # reported with the nearest key above
                if not loc:
                    return not unsure  # a rule across fields may depend on an unknown one
                return loc[0] not in unsure
            self.diagnostics += diagnostics_from_validation(exc, self.doc, known, model=model, prefix=base,
                                                            redact=self.templating.redact, keep=certain)
            return {str(err["loc"][0]) for err in exc.errors(include_input=False, include_url=False) if err["loc"]}
        except Exception as exc:  # noqa: BLE001 - a module validator raising anything but ValueError
            self._error(base, f"the parameters cannot be checked: {type(exc).__name__}: "
                              f"{self.templating.redact(str(exc))}")
        return set()

    def _timeout_above_the_tasks(self, base: Path_, task: Task, model: type[BaseModel],
                                 known: Mapping[str, Any]) -> None:
        """A module's own ``timeout`` above the task's: the task is cut at its own timeout first (the
        ``bot`` module caps its requests there), so the module's never applies."""
        field = model.model_fields.get("timeout")
        if field is None or "timeout" not in known:
            return
        annotation: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
        try:
            own: Any = TypeAdapter(annotation).validate_python(known["timeout"])
        except ValidationError:
            return  # reported by the validation above
        limit = task.timeout or DEFAULT_TASK_TIMEOUT
        if not isinstance(own, (int, float)) or isinstance(own, bool) or own <= limit:
            return
        whose = "the task's timeout" if task.timeout else "the default task timeout"
        self.diagnostics.append(warning(self.doc.diagnostic(
            (*base, "timeout"), f"{task.module}: timeout {format_duration(own)} is longer than {whose} "
            f"{format_duration(limit)}: the task is cut at {format_duration(limit)} first, so this one never applies",
            f"lower it below {format_duration(limit)}, or raise the task's timeout: (timeout: "
            f"{format_duration(own)} beside the module, not under it)")))

    def _check_field_accepts_text(self, base: Path_, key: str, model: type[BaseModel]) -> None:
        field = next((f for n, f in model.model_fields.items() if key in (n, f.alias)), None)
        if field is None:
            return
        try:
            annotation: Any = field.annotation
            if field.metadata:
                annotation = Annotated[annotation, *field.metadata]
            TypeAdapter(annotation).validate_python("text")
        except ValidationError as exc:
            kinds = {err["type"] for err in exc.errors(include_input=False, include_url=False)}
            if kinds & {"int_parsing", "float_parsing", "bool_parsing", "list_type", "dict_type"} \
                    and not kinds & {"literal_error", "enum", "string_pattern_mismatch"}:
                self._error((*base, key), f"{key}: text around a template renders to a string, and "
                            f"{key!r} needs {_wanted(kinds)}", "write the whole value as one expression: "
                            f"{key}: \"{{{{ ... }}}}\" (it then keeps its type)")
        except Exception:  # noqa: BLE001 - a type pydantic cannot build alone: nothing to learn here
            return

    def _references(self, base: Path_, model: type[BaseModel], known: Mapping[str, Any],
                    given: set[str]) -> None:
        for name, field in model.model_fields.items():
            key = field.alias or name
            refers = next((m for m in field.metadata if isinstance(m, Refers)), None)
            value = known.get(key, None if key in known or field.is_required() else field.default)
            if refers is None or not isinstance(value, str):
                continue
            explicit = key in known
            if refers.kind == "route" and value not in self.routes:
                self._error((*base, key), f"{key}: no route named {value!r} in the inventory",
                            suggest(value, self.routes)
                            or f"routes: {', '.join(sorted(self.routes)) or 'none'}")
            elif refers.kind == "route" and value in self.silent_routes:
                self._error((*base, key), f"{key}: route {value!r} tells nobody: every target it names is "
                            "optional and its URL renders empty, so this step's message would be lost",
                            "set the environment variables its targets read, add a target that always sends "
                            "to the route, or name another route")
            elif refers.kind == "template":
                problem = self._template_file_problem(value)
                if problem and (explicit or "not found" not in problem):
                    named_at = self.doc.diagnostic((*base, key) if explicit else base,
                                                   f"{key}: template {value!r}: {problem}")
                    self.diagnostics.append(template_file_diagnostic(self.templating, value,
                                                                     f"template {value!r}: {problem}", named_at))
                elif not problem:  # it compiles: does it read only what this step gives it?
                    for message, hint, line in unknown_in_template_file(self.templating, value, given):
                        self._error((*base, key) if explicit else base,
                                    f"{key}: template {value!r} (line {line}): {message} by this step", hint)

    def _template_file_problem(self, name: str) -> str | None:
        directory = self.templating.templates_dir
        if directory is None or not self.templating.reader.exists(directory / name):
            return f"not found in {directory or '(no templates directory)'}"
        return self.templating.check_template_file(name)

    def _template(self, path: Path_, value: Any, scope: Mapping[str, Any]) -> None:
        if not _contains_template(value) or _has_syntax_problem(value, self.templating):
            return
        _, problem, hint = template_problem(self.templating, value, scope)
        if problem:
            self._error(path, f"{path[-1]}: {problem}", hint)

    def _error(self, path: Path_, message: str, hint: str | None = None, *, at_key: bool = False) -> None:
        if self.registers_uncertain and message.endswith(" is undefined"):
            return  # one mistake, one message: the misspelt key above is the cause
        self.diagnostics.append(self.doc.diagnostic(path, message, hint, at_key=at_key))


def _later_register_hint(problem: str, play: Playbook) -> str | None:
    """For an undefined name: registered later, or how to give it a value."""
    if not problem.endswith(" is undefined") or not problem.startswith("'"):
        return None
    name = problem[1:].split("'", 1)[0]
    if any(task.register == name for _, task in all_tasks(play)):
        return f"{name!r} is registered by a task that runs later (or in another task list); " \
               "a step sees only what earlier steps registered"
    return f"define it in the play's vars ({name}: ...; `agent run-playbook -e {name}=...` overrides it), " \
           f"or write {name} | default(...)"


def _wanted(kinds: set[str]) -> str:
    for kind, text in (("int_parsing", "a whole number"), ("float_parsing", "a number"),
                       ("bool_parsing", "true or false"), ("list_type", "a list"),
                       ("dict_type", "a mapping")):
        if kind in kinds:
            return text
    return "another type"


def _contains_template(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_contains_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_template(v) for v in value)
    return has_template(value)


def _has_syntax_problem(value: Any, templating: Templating) -> bool:
    if isinstance(value, dict):
        return any(_has_syntax_problem(v, templating) for v in value.values())
    if isinstance(value, list):
        return any(_has_syntax_problem(v, templating) for v in value)
    return has_template(value) and templating.check_syntax(value) is not None
