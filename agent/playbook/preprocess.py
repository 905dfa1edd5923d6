"""Reshape raw playbook YAML for the models: the module key becomes ``module``/``params``.

In YAML a check is ``{name: ..., http: {url: ...}, expect: ...}``: the module is whichever
key names a registered module. This pass finds it, reports unknown keys (suggesting the
nearest field or module name), a missing module, two module keys, a module together with a
``block``, and stamps each check and task with its ``source`` (file and line). Everything
else is left for pydantic, so its errors keep the operator's paths. Top-level keys starting
with ``x-`` are dropped: they exist to hold anchors (``x-defaults: &defaults {...}``).
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from agent.modules.registry import Registry
from agent.playbook.diagnostics import Diagnostic, ran_as_read, suggest, valid_keys_hint, warning
from agent.playbook.models import Check, Task
from agent.playbook.yaml_source import Path_, SourceDocument

_LOADER_FIELDS = {"module", "params", "source"}


def user_keys(model: type[Check] | type[Task]) -> frozenset[str]:
    """Keys an operator may write on a check or task (besides the module key)."""
    return frozenset(f.alias or name for name, f in model.model_fields.items()) - _LOADER_FIELDS


CHECK_KEYS = user_keys(Check)
TASK_KEYS = user_keys(Task)
_BLOCK_KEYS = ("block", "rescue", "always")


class Preprocessor:
    """One pass over a playbook's raw data; problems go to ``diagnostics``."""

    def __init__(self, doc: SourceDocument, registry: Registry) -> None:
        self.doc = doc
        self.registry = registry
        self.diagnostics: list[Diagnostic] = []
        self.task_with_unknown_key = False
        """A task had a key that is not a task keyword (it may have been meant as `register`)."""

    def playbook(self, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # pydantic reports "should be a mapping" at the root
        # Top-level `x-...` keys hold YAML anchors for reuse (the docker-compose convention).
        out = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
        if "source" in out:
            self._error(("source",), "unknown key 'source'", "'source' is set by the loader", at_key=True)
            del out["source"]
        if isinstance(out.get("checks"), list):
            out["checks"] = [self.check(item, ("checks", i)) for i, item in enumerate(out["checks"])]
        for section in ("tasks", "handlers"):
            if section in out:
                out[section] = self.tasks(out[section], (section,))
        remediations = out.get("remediations")
        if isinstance(remediations, dict):
            out["remediations"] = {
                name: ({**rem, "steps": self.tasks(rem.get("steps"), ("remediations", name, "steps"))}
                       if isinstance(rem, dict) and "steps" in rem else rem)
                for name, rem in remediations.items()
            }
        return out

    def check(self, item: Any, path: Path_) -> Any:
        if not isinstance(item, dict):
            return item
        own, modules, reported = self._split(item, path, CHECK_KEYS, self.registry.checks,
                                             self.registry.actions, "check")
        if len(modules) > 1:
            self._error((*path, modules[1]), f"a check has exactly one module key; found "
                        f"{modules[0]!r} and {modules[1]!r}", "split it into two checks", at_key=True)
        if not modules and not reported:
            self._error(path, "this check names no check module",
                        f"add one key naming a check module: {_known(self.registry.checks)}")
        own["module"] = modules[0] if modules else ""
        own["params"] = self._params(item, path, modules[0]) if modules else {}
        own["source"] = {"file": self.doc.file, "line": self.doc.position(path)[0]}
        return own

    def tasks(self, items: Any, path: Path_) -> Any:
        if not isinstance(items, list):
            return items
        return [self.task(item, (*path, i)) for i, item in enumerate(items)]

    def task(self, item: Any, path: Path_) -> Any:
        if not isinstance(item, dict):
            return item
        own, modules, reported = self._split(item, path, TASK_KEYS, self.registry.actions,
                                             self.registry.checks, "action")
        for key in _BLOCK_KEYS:
            if key in own:
                own[key] = self.tasks(own[key], (*path, key))
        if len(modules) > 1:
            self._error((*path, modules[1]), f"a task has exactly one module key; found "
                        f"{modules[0]!r} and {modules[1]!r}", "split it into two tasks", at_key=True)
        if modules and "block" in own:
            self._error((*path, "block"), f"a task has either a module key or a block, not both "
                        f"(found {modules[0]!r} and 'block')", at_key=True)
        if own.get("block") == []:
            self.diagnostics.append(ran_as_read(self.doc.diagnostic(
                (*path, "block"), "an empty block: it holds no task to run",
                "indent the block's tasks under 'block:' (a '- name: ...' list), or remove the task")))
        for key in ("rescue", "always"):
            if own.get(key) == [] and "block" in own:
                self.diagnostics.append(warning(self.doc.diagnostic(
                    (*path, key), f"an empty {key!r}: nothing runs there",
                    f"indent its tasks under '{key}:', or remove '{key}:'")))
            if key in own and "block" not in own:
                self._error((*path, key), f"{key!r} belongs to a block", "add 'block:' with the tasks "
                            f"that {key!r} follows", at_key=True)
        if not modules and "block" not in own and not reported:
            self._error(path, "this task names no action module and has no block",
                        f"add one key naming an action module: {_known(self.registry.actions)}")
        if modules:
            own["module"] = modules[0]
            own["params"] = self._params(item, path, modules[0])
        own["source"] = {"file": self.doc.file, "line": self.doc.position(path)[0]}
        return own

    def _split(self, item: dict[Any, Any], path: Path_, keys: frozenset[str], modules: Mapping[str, Any],
               other_modules: Mapping[str, Any], kind: str) -> tuple[dict[str, Any], list[str], bool]:
        """Own keys, module keys found, and whether an unknown module was already reported."""
        own: dict[str, Any] = {}
        found: list[str] = []
        reported = False
        for key, value in item.items():
            # `notify` is both a task keyword (handler names) and an action module: a mapping
            # is the module's parameters, a name or list of names is the keyword.
            if key in keys and not (key in modules and isinstance(value, dict)):
                own[key] = value
            elif key in modules:
                found.append(key)
            else:
                reported |= self._unknown(item, path, key, value, keys, modules, other_modules, kind)
                self.task_with_unknown_key |= kind == "action"
        return own, found, reported

    def _unknown(self, item: dict[Any, Any], path: Path_, key: Any, value: Any, keys: Iterable[str],
                 modules: Mapping[str, Any], other_modules: Mapping[str, Any], kind: str) -> bool:
        """Report an unknown key; True when it was reported as an unknown module."""
        where = (*path, key)
        other = "check" if kind == "action" else "action"
        if key in other_modules:
            self._error(where, f"{key!r} is {_article(other)} {other} module; a {'task' if kind == 'action' else 'check'} "
                        f"needs {_article(kind)} {kind} module", f"{kind} modules: {_known(modules)}", at_key=True)
            return True
        key_text = str(key)
        near_field = difflib.get_close_matches(key_text, sorted(keys), n=1, cutoff=0.6)
        has_module = any(k in modules for k in item)
        owner = next((k for k in item if k in modules and key_text in _param_keys(modules[k])), None)
        if owner is not None:
            self._error(where, f"unknown key {key_text!r}", f"{key_text!r} is a parameter of {owner!r}: indent it "
                        f"under '{owner}:' (two more spaces than '{owner}:')", at_key=True)
            return False
        if not near_field and not has_module and (isinstance(value, dict) or value is None):
            hint = suggest(key_text, modules) or f"{kind} modules: {_known(modules)}"
            self._error(where, f"unknown {kind} module {key_text!r}", hint, at_key=True)
            return True
        self._error(where, f"unknown key {key_text!r}", valid_keys_hint(key_text, [*keys, *modules]), at_key=True)
        return False

    def _params(self, item: dict[Any, Any], path: Path_, module: str) -> dict[str, Any]:
        params = item[module]
        if params is None:
            return {}
        if not isinstance(params, dict):
            self._error((*path, module), f"the parameters of {module!r} must be a mapping (key: value)")
            return {}
        return params

    def _error(self, path: Path_, message: str, hint: str | None = None, *, at_key: bool = False) -> None:
        self.diagnostics.append(self.doc.diagnostic(path, message, hint, at_key=at_key))


def _param_keys(module: Any) -> set[str]:
    params = getattr(module, "Params", None)
    fields = getattr(params, "model_fields", {})
    return {field.alias or name for name, field in fields.items()}


def _known(modules: Mapping[str, Any]) -> str:
    return ", ".join(sorted(modules)) or "(none registered)"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
