"""The module reference (``agent modules``, docs/modules.md), generated from the modules.

Everything comes from the modules themselves: the ``Params`` models (field annotations,
defaults, ``description``), ``description``, ``facts``, ``default_value``,
``supports_check_mode`` and ``destructive``. :func:`undocumented` lists what lacks a
description, so a test can fail on it.
"""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from agent.core.values import Between, format_duration, parse_duration
from agent.modules.base import ActionModule, CheckModule
from agent.modules.registry import Registry


@dataclass(frozen=True)
class ParamDoc:
    """One parameter as the reference shows it (``name`` is the YAML key)."""

    name: str
    type: str
    default: str
    required: bool
    description: str


def parameters(model: type[BaseModel]) -> list[ParamDoc]:
    """The documented view of every field of a ``Params`` model, in declaration order."""
    docs = []
    for field_name, info in model.model_fields.items():
        type_text = _type_name(info.annotation, info.metadata)
        docs.append(
            ParamDoc(
                name=info.alias or field_name,
                type=type_text,
                default="" if info.is_required() else _default(info, type_text),
                required=info.is_required(),
                description=(info.description or "").strip(),
            )
        )
    return docs


def undocumented(registry: Registry) -> list[str]:
    """Every module, parameter or fact without a description, as ``kind name: what``."""
    missing = []
    modules: list[tuple[str, type[CheckModule] | type[ActionModule]]] = [
        *(("check", m) for m in registry.checks.values()),
        *(("action", m) for m in registry.actions.values()),
    ]
    for kind, module in modules:
        if not getattr(module, "description", "").strip():
            missing.append(f"{kind} {module.name}: module description")
        for param in parameters(module.Params):
            if not param.description:
                missing.append(f"{kind} {module.name}: parameter {param.name!r}")
        if isinstance(module, type) and issubclass(module, CheckModule):
            missing += [f"{kind} {module.name}: fact {f!r}" for f, d in module.facts.items() if not d.strip()]
    return missing


def render_reference(registry: Registry, fmt: str = "markdown") -> str:
    """Every check and action module of ``registry`` as ``markdown`` or plain ``text``."""
    if fmt not in ("markdown", "text"):
        raise ValueError(f"unknown reference format {fmt!r}; use markdown or text")
    render = _markdown if fmt == "markdown" else _text
    parts = [render(m, "check") for _, m in sorted(registry.checks.items())]
    parts += [render(m, "action") for _, m in sorted(registry.actions.items())]
    if fmt == "markdown":
        header = "# Module reference\n\nGenerated from the modules' parameter models by `agent modules`.\n"
        return header + "\n" + "\n".join(parts)
    return "\n".join(parts)


def _markdown(module: Any, kind: str) -> str:
    lines = [f"## {kind} `{module.name}`", "", module.description, ""]
    if kind == "action":
        lines += [f"- check mode: {'supported' if module.supports_check_mode else 'not supported'}",
                  f"- destructive: {'yes (asks for confirmation unless --yes)' if module.destructive else 'no'}", ""]
    lines += ["| parameter | type | default | required | description |", "|---|---|---|---|---|"]
    for p in parameters(module.Params):
        lines.append(f"| `{p.name}` | {_cell(p.type)} | {_cell(p.default)} | {'yes' if p.required else 'no'} | "
                     f"{_cell(p.description)} |")
    if kind == "check":
        lines += ["", f"Default value: `{module.default_value}`" if module.default_value
                  else "Default value: none (name one with `value:`)", "",
                  "| fact | description |", "|---|---|"]
        lines += [f"| `{name}` | {_cell(text)} |" for name, text in module.facts.items()]
    return "\n".join(lines) + "\n"


def _text(module: Any, kind: str) -> str:
    lines = [f"{kind} {module.name}: {module.description}"]
    if kind == "action":
        lines.append(f"  check mode: {'yes' if module.supports_check_mode else 'no'}; "
                     f"destructive: {'yes' if module.destructive else 'no'}")
    lines.append("  parameters:")
    for p in parameters(module.Params):
        flag = "required" if p.required else f"default {p.default}"
        lines.append(f"    {p.name} ({p.type}, {flag}): {p.description}")
    if kind == "check":
        lines.append(f"  default value: {module.default_value or 'none (set value:)'}")
        lines.append("  facts:")
        lines += [f"    {name}: {text}" for name, text in module.facts.items()]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") if text else ""


def _is_duration(metadata: list[Any]) -> bool:
    return any(getattr(m, "func", None) is parse_duration or isinstance(m, Between) for m in metadata)


def _range(metadata: list[Any]) -> str:
    """`` (1 to 65535)``, `` (100ms to 1h)``: the range a number's metadata declares, if any."""
    for m in metadata:
        if isinstance(m, Between):
            return f" ({m})"
    lo = next((f">= {_num(m.ge)}" if isinstance(m, annotated_types.Ge) else f"> {_num(m.gt)}" for m in metadata
               if isinstance(m, (annotated_types.Ge, annotated_types.Gt))), None)
    hi = next((f"<= {_num(m.le)}" if isinstance(m, annotated_types.Le) else f"< {_num(m.lt)}" for m in metadata
               if isinstance(m, (annotated_types.Le, annotated_types.Lt))), None)
    return f" ({', '.join(b for b in (lo, hi) if b)})" if lo or hi else ""


def _num(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _type_name(annotation: Any, metadata: list[Any] | None = None) -> str:
    """An operator-facing type: ``duration (100ms to 1h)``, ``integer (>= 1, <= 20)``,
    ``string or none``, ``one of: a, b``."""
    if metadata and _is_duration(metadata):
        return "duration" + _range(metadata)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0], list(args[1:]) + list(metadata or []))
    if annotation in (int, float) and metadata:
        return ("integer" if annotation is int else "number") + _range(metadata)
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        text = " or ".join(names)
        return f"{text} or none" if type(None) in args else text
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}" if args else "mapping"
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", Any: "any"}
    if annotation in simple:
        return simple[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo, type_text: str) -> str:
    value = info.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return "none"
    if type_text.startswith("duration") and isinstance(value, (int, float)):
        return format_duration(float(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if value in ({}, []):
        return "{}" if isinstance(value, dict) else "[]"
    return str(value)
