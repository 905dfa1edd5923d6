"""Values that validate but are read otherwise than they are written (issue 15, "accepted but wrong").

Two shapes pass the models and do not do what the operator wrote:

* **an empty key** (``when:`` with nothing after it): YAML reads it as null, and a field whose
  default is null takes it as "not written". ``when:`` left empty ran the step unconditionally,
  ``timeout:`` left empty took the default, ``register:`` registered nothing. A key with nothing
  after it is a value forgotten (or indented away), so it is an error at it: write the value, or
  remove the key. A null written as such (``~``, ``null``) says "none" on purpose, what the
  default means: ``schedule: ~`` is the documented "on demand", and is not judged. (Nor is the
  inventory: its ``settings: null`` is the documented way to say "the built-in defaults".)
* **a bare number where a duration is wanted** (``every: 30``, ``cooldown: 600``,
  ``timeout: 2``): read as seconds, while an operator who writes ``within: 30`` for a budget may
  mean minutes. Durations are written with their unit (``30s``, ``10m``); only ``0`` needs none.
  A warning, not an error: seconds is what such a file always meant, and a configuration that
  ran before must not stop the agent (with no last good one it could not guard at all).

The walk follows the model's annotations over the raw (pre-processed) data, so every field of
every model is covered, a module's parameters included (by its ``Params``), and a field added
later too. It works on what was written, never on models built in code (which pass seconds).
"""
from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from agent.core.values import Between, format_duration, parse_duration
from agent.modules.registry import Registry
from agent.playbook.diagnostics import Diagnostic, ran_as_read, warning
from agent.playbook.validation import unwrap
from agent.playbook.yaml_source import Path_, SourceDocument

ParamsOf = Callable[[str, str], type[BaseModel] | None]
"""The ``Params`` model of a module, by where it is used (``"checks"`` or a task section) and name."""


def written_value_problems(doc: SourceDocument, data: Any, model: type[BaseModel], *,
                           empty_is_absent: bool, registry: Registry | None = None) -> list[Diagnostic]:
    """An error at every empty key (when ``empty_is_absent``) and a warning at every duration written
    as a bare number in ``data``, read as ``model`` (a check's or task's module parameters as its module's
    ``Params``, found in ``registry``)."""
    out: list[Diagnostic] = []
    for path, key, value, info, annotation in _fields(data, model, (), registry, section=""):
        if key == "name" and empty_is_absent and path[-2:-1] != () and isinstance(path[-2], int) and (
                value is None or value == ""):
            # a check's or task's name left empty took its default, '<module> <params>', silently
            out.append(ran_as_read(doc.diagnostic(
                path, "name: is empty: it would be named after its module and parameters (such as 'supervisor "
                "action=restart program=bot'), in every alert and reference",
                "write the name, or remove 'name:' to take that one on purpose")))
        elif (value is None and empty_is_absent and _default_is_none(info) and _optional(annotation)
              and not _written_null(doc, path)):
            out.append(ran_as_read(doc.diagnostic(path, f"{key}: is empty (YAML reads '{key}:' with nothing after "
                                                  "it as no value): it is taken as not written", _empty_hint(key))))
        elif (isinstance(value, (int, float)) and not isinstance(value, bool) and value != 0
              and _is_duration(info, annotation, value)):
            out.append(warning(doc.diagnostic(path, f"{key}: {value!r} is a duration without its unit: it is read "
                                              f"as {value!r} seconds", _duration_hint(key, value))))
    return out


_NULL_WORD = re.compile(r"(?:~|null|Null|NULL)(?=$|[\s,\]}#])")


def _written_null(doc: SourceDocument, path: Path_) -> bool:
    """The value is written ``~`` or ``null``: "none" on purpose (``schedule: ~``, on demand), which is
    what the field's default means; only a key left with nothing after it (``when:``, the condition
    forgotten, or its value indented away) is judged."""
    line, column = doc.position(path)
    return 0 < line <= len(doc.lines) and _NULL_WORD.match(doc.lines[line - 1], max(column - 1, 0)) is not None


_BARE_NAME = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")


def bare_duration_vars(doc: SourceDocument, play: Any, registry: Registry) -> list[Diagnostic]:
    """A module's duration parameter written as just ``{{ name }}`` of a play var holding a bare
    number (``vars: {wait: 5}``, ``timeout: "{{ wait }}"``): the number is read as seconds, as if
    written in place. Said where the var is defined, naming the parameter that reads it."""
    out: list[Diagnostic] = []
    said: set[str] = set()
    items: list[tuple[str, int, Any, Mapping[str, Any]]] = [
        ("checks", i, c, registry.checks) for i, c in enumerate(play.checks)]
    items += [(section, i, t, registry.actions) for section in ("tasks", "handlers")
              for i, t in enumerate(getattr(play, section))]
    items += [(f"remediations.{name}.steps", i, t, registry.actions)
              for name, rem in play.remediations.items() for i, t in enumerate(rem.steps)]
    for section, index, item, modules in items:
        params_model = getattr(modules.get(item.module or ""), "Params", None)
        if params_model is None:
            continue
        for key, raw in item.params.items():
            bare = _BARE_NAME.match(raw) if isinstance(raw, str) else None
            value = play.vars.get(bare[1]) if bare else None
            info = params_model.model_fields.get(key)
            if (bare is None or bare[1] in said or info is None or not isinstance(value, (int, float))
                    or isinstance(value, bool) or value == 0 or not _is_duration(info, info.annotation, value)):
                continue
            said.add(bare[1])
            out.append(warning(doc.diagnostic(
                ("vars", bare[1]), f"vars.{bare[1]}: {value!r} is a duration without its unit (the value of "
                f"{section}[{index}].{item.module}.{key}): it is read as {value!r} seconds",
                _duration_hint(bare[1], value))))
    return out


def _empty_hint(key: str) -> str:
    if key in ("when", "until", "changed_when", "failed_when"):
        return f"write the condition ({key}: \"...\"), or remove '{key}:' (without it the step runs as if it " \
               "were not there)"
    return f"write its value, or remove '{key}:' to take the default"


def _duration_hint(key: str, value: float) -> str:
    if value == int(value) and value < 60:
        return f"write the unit: {key}: {value}s for seconds, {key}: {value}m for minutes"
    return f"write the unit: {key}: {format_duration(float(value)) if value >= 1 else f'{value}s'}"


def _fields(data: Any, model: type[BaseModel], path: Path_, registry: Registry | None,
            section: str) -> Iterator[tuple[Path_, str, Any, FieldInfo, Any]]:
    """(YAML path, key, value, field, annotation) for every key of ``data`` that is a field of
    ``model``, depth first."""
    if not isinstance(data, dict):
        return
    by_key = {(f.alias or name): f for name, f in model.model_fields.items()}
    module = data.get("module") if isinstance(data.get("module"), str) else None
    for key, value in data.items():
        if key == "params" and module and registry is not None:
            params = (registry.checks if section == "checks" else registry.actions).get(module)
            params_model = getattr(params, "Params", None)
            if isinstance(params_model, type) and issubclass(params_model, BaseModel):
                yield from _fields(value, params_model, (*path, module), registry, section)
            continue
        info = by_key.get(key) if isinstance(key, str) else None
        if info is None or key in ("module", "source"):
            continue
        here = (*path, key)
        yield here, key, value, info, info.annotation
        yield from _below(value, info.annotation, here, registry, section or key)


def _below(value: Any, annotation: Any, path: Path_, registry: Registry | None,
           section: str) -> Iterator[tuple[Path_, str, Any, FieldInfo, Any]]:
    inner = unwrap(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        yield from _fields(value, inner, path, registry, section)
        return
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if origin is list and args and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _below(item, args[0], (*path, index), registry, section)
    elif origin is dict and len(args) == 2 and isinstance(value, dict):
        for name, item in value.items():
            yield from _below(item, args[1], (*path, name), registry, section)


def _optional(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _optional(typing.get_args(annotation)[0])
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)


def _default_is_none(info: FieldInfo) -> bool:
    return info.default is None and info.default_factory is None


def _metadata(info: FieldInfo, annotation: Any) -> Iterator[Any]:
    yield from info.metadata
    stack = [annotation]
    while stack:
        current = stack.pop()
        origin = typing.get_origin(current)
        if origin is typing.Annotated:
            base, *extra = typing.get_args(current)
            yield from extra
            stack.append(base)
        elif origin in (typing.Union, types.UnionType):
            stack.extend(typing.get_args(current))


def _is_duration(info: FieldInfo, annotation: Any, value: float) -> bool:
    """A duration field that takes ``value`` seconds (one out of its range is its own error, and so
    is a number that is no duration at all: ``.nan``, ``.inf``, an integer too large for a float,
    which the range lets through or cannot compare)."""
    try:
        seconds = float(value)
    except OverflowError:
        return False
    if not math.isfinite(seconds):
        return False
    found = False
    for m in _metadata(info, annotation):
        if isinstance(m, Between):
            try:
                m(seconds)
            except ValueError:
                return False
            found = True
        found |= isinstance(m, BeforeValidator) and m.func is parse_duration
    return found
