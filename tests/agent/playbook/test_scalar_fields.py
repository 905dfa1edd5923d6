"""Every scalar an operator writes is taken as written and must lie in a range that makes sense.

The models used to validate in pydantic's lax mode, which converts: ``after: true`` became 1,
``after: "2"`` became 2, ``port: "8081"`` an integer, ``ignore_errors: "yes"`` true; and
numbers had no upper bounds (``port: 70000``, ``for: 3650d``, ``after: 1000000000``,
``every: 1ms``). These tests walk every model an operator's YAML reaches (the playbook, the
inventory, the stack settings and every module's parameters) and check each field, so a field
added later is covered too:

* every number (integer, float, duration) declares a lower and an upper bound;
* no scalar accepts a value of another type (a boolean for a number, a quoted number, a number
  for text, text for a boolean);
* a value just outside a field's range is refused at that field.
"""
from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import annotated_types
import pytest
from pydantic import BaseModel, BeforeValidator, ValidationError

from agent.core.values import Between, parse_duration
from agent.modules.registry import default_registry
from agent.playbook.inventory import Inventory
from agent.playbook.models import Playbook, _bool_to_expr
from botwarden.settings import StackSettings

CONVERTING_ON_PURPOSE = {_bool_to_expr: "an expression may be written true/false (Ansible's changed_when: false)"}
"""Before-validators that accept another type by design, and why."""


def _models() -> list[type[BaseModel]]:
    roots: list[type[BaseModel]] = [Playbook, Inventory, StackSettings]
    registry = default_registry()
    roots += [m.Params for m in [*registry.checks.values(), *registry.actions.values()]]
    seen: dict[type[BaseModel], None] = {}

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen[model] = None
        for info in model.model_fields.values():
            for leaf, _, _ in _leaves(info.annotation, list(info.metadata)):
                if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                    walk(leaf)
    for root in roots:
        walk(root)
    return list(seen)


def _leaves(annotation: Any, metadata: list[Any], in_list: bool = False) -> Iterator[tuple[Any, list[Any], bool]]:
    """(type, its metadata, inside a list) for each leaf type of an annotation."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _leaves(args[0], [*metadata, *args[1:]], in_list)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is not type(None):
                yield from _leaves(arg, metadata, in_list)
    elif origin in (list, tuple, set, frozenset):
        for arg in args:
            yield from _leaves(arg, [], True)
    elif origin is dict:
        yield from _leaves(args[1], [], in_list)
    else:
        yield annotation, metadata, in_list


@dataclass(frozen=True)
class ScalarField:
    model: type[BaseModel]
    key: str
    kind: str  # integer, number, boolean, text, duration
    metadata: tuple[Any, ...]
    in_list: bool

    def __str__(self) -> str:
        return f"{self.model.__module__}.{self.model.__name__}.{self.key}"


def _kind(leaf: Any, metadata: list[Any]) -> str | None:
    if any(isinstance(m, Between) or getattr(m, "func", None) is parse_duration for m in metadata):
        return "duration"
    if leaf is bool:
        return "boolean"
    if leaf is int:
        return "integer"
    if leaf is float:
        return "number"
    if leaf is str:
        return "text"
    return None


def _fields() -> list[ScalarField]:
    out = []
    for model in _models():
        for name, info in model.model_fields.items():
            for leaf, metadata, in_list in _leaves(info.annotation, list(info.metadata)):
                kind = _kind(leaf, metadata)
                if kind is not None:
                    out.append(ScalarField(model, info.alias or name, kind, tuple(metadata), in_list))
    return out


FIELDS = _fields()
NUMBERS = [f for f in FIELDS if f.kind in ("integer", "number", "duration")]


def _bounds(field: ScalarField) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in field.metadata:
        if isinstance(m, Between):
            return m.lo, m.hi
        if isinstance(m, (annotated_types.Ge, annotated_types.Gt)):
            lo = m.ge if isinstance(m, annotated_types.Ge) else m.gt
        if isinstance(m, (annotated_types.Le, annotated_types.Lt)):
            hi = m.le if isinstance(m, annotated_types.Le) else m.lt
    return lo, hi


def test_the_walk_reaches_every_kind_of_model() -> None:
    names = {m.__name__ for m in _models()}
    assert {"Playbook", "Check", "Task", "Budget", "Inventory", "Route", "Heartbeat", "StackSettings",
            "BotSettings", "RiskSettings", "HttpCheckParams", "ExchangeActionParams", "Retention"} <= names
    assert len(NUMBERS) > 70


@pytest.mark.parametrize("field", NUMBERS, ids=str)
def test_every_number_declares_its_range(field: ScalarField) -> None:
    lo, hi = _bounds(field)
    assert lo is not None and hi is not None, f"{field}: declare both bounds (Field(ge=, le=) or Between)"


def _wrong_values(field: ScalarField) -> list[Any]:
    return {
        "integer": [True, "1", 1.5],
        "number": [True, "1.5"],
        "boolean": ["yes", "true", 1, 0],
        "text": [1, True, 1.5],
        "duration": [True, False],
    }[field.kind]


def _refused_at(field: ScalarField, value: Any) -> bool:
    data = {field.key: [value] if field.in_list else value}
    try:
        field.model.model_validate(data)
    except ValidationError as exc:
        return any(err["loc"][:1] == (field.key,) for err in exc.errors())
    return False


SCALARS = [f for f in FIELDS
           if not any(isinstance(m, BeforeValidator) and m.func in CONVERTING_ON_PURPOSE for m in f.metadata)]


@pytest.mark.parametrize("field", SCALARS, ids=str)
def test_no_scalar_accepts_a_value_of_another_type(field: ScalarField) -> None:
    accepted = [v for v in _wrong_values(field) if not _refused_at(field, v)]
    assert not accepted, f"{field} ({field.kind}) accepts {accepted!r}"


@pytest.mark.parametrize("field", NUMBERS, ids=str)
def test_a_value_outside_the_range_is_refused_at_its_field(field: ScalarField) -> None:
    lo, hi = _bounds(field)
    assert lo is not None and hi is not None
    step = 1 if field.kind == "integer" else max(abs(hi) * 1e-6, 1e-6)
    above: Any = int(hi) + 1 if field.kind == "integer" else hi + step
    assert _refused_at(field, above), f"{field}: {above} accepted"
    below: Any = int(lo) - 1 if field.kind == "integer" else lo - step
    if field.kind == "duration" and below < 0:
        return  # a negative duration is refused by the duration parser already
    assert _refused_at(field, below), f"{field}: {below} accepted"


def test_fields_that_take_text_for_another_type_do_so_on_purpose() -> None:
    """Enums, paths and literals take their YAML text; nothing else does."""
    others = set()
    for model in _models():
        for name, info in model.model_fields.items():
            for leaf, _, _ in _leaves(info.annotation, list(info.metadata)):
                if isinstance(leaf, type) and issubclass(leaf, (Enum, Path)):
                    others.add(f"{model.__name__}.{name}")
                elif typing.get_origin(leaf) is Literal:
                    continue
    assert others == {"Check.severity", "Playbook.source"}
