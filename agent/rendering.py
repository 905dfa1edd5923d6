"""Message bodies from templates, with a fallback that never loses an alert.

Any object with ``render_template(name, vars) -> str`` renders (the playbook's
``Templating``); :class:`SandboxedTemplates` is a small stand-alone one over ``templates/``.
If a template is missing or broken the body is built in code instead and a warning is
logged: a typo in a template must not cost the operator the alert.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from jinja2 import FileSystemLoader, StrictUndefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"


class TemplateRenderer(Protocol):
    def render_template(self, name: str, vars: Mapping[str, Any]) -> str: ...


class SandboxedTemplates:
    """Jinja2 in a sandbox over a templates directory (strict: an unknown variable is an error)."""

    def __init__(self, templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> None:
        self.env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(str(templates_dir)), undefined=StrictUndefined,
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, autoescape=False,
        )

    def render_template(self, name: str, vars: Mapping[str, Any]) -> str:
        return self.env.get_template(name).render(**vars)


def render_or_fallback(renderer: TemplateRenderer, name: str, vars: Mapping[str, Any]) -> str:
    """Render ``name``; on any error, a plain body listing the facts (and a warning)."""
    try:
        return renderer.render_template(name, vars).strip()
    except Exception as exc:  # noqa: BLE001 - the alert goes out regardless
        log.warning("template %s failed (%s: %s); sending a plain message instead", name,
                    type(exc).__name__, exc)
    lines = [f"{k}: {v}" for k, v in vars.items() if v not in (None, "", (), []) and not isinstance(v, Mapping)]
    return "\n".join(lines)


def env_references(tree: nodes.Node) -> set[str]:
    """Names of the ``env`` variables a parsed template reads literally (``env.X``, ``env['X']``,
    ``env.get('X')``): what a configuration needs from the environment (the playbook sandbox
    reports them, ``agent stack`` passes them to the agent). A name computed at run time is not seen."""
    names: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if not (isinstance(target, nodes.Name) and target.name == "env"):
            continue
        if isinstance(node, nodes.Getattr) and node.attr not in ("get", "items", "keys", "values"):
            names.add(node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            names.add(node.arg.value)
    for call in tree.find_all(nodes.Call):
        fn = call.node
        if (isinstance(fn, nodes.Getattr) and fn.attr == "get" and isinstance(fn.node, nodes.Name)
                and fn.node.name == "env" and call.args and isinstance(call.args[0], nodes.Const)):
            names.add(str(call.args[0].value))
    return names
