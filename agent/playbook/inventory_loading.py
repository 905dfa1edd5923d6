"""Load and check ``inventory.yaml`` and the stack settings it points at.

Rules: at least one host; ``all`` is reserved; a name is a host or a group, not both; group
members exist; there is a catch-all route (an alert is never lost); route names are unique
and their targets exist; target URLs render (with the
settings' vars and ``env``) to apprise URLs whose schemes apprise knows (every URL of a target
that holds several), or to nothing for an ``optional`` target; named
alert templates that are set explicitly exist and parse.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.apprise_plugins import is_known_scheme, parse_urls, url_scheme
from agent.core.redaction import url_secrets
from agent.playbook.diagnostics import Diagnostic, suggest
from agent.playbook.inventory import Inventory, default_inventory_data
from agent.playbook.templating import TemplateError, Templating
from agent.playbook.validation import diagnostics_from_validation
from agent.playbook.yaml_source import Marks, SourceDocument, load_yaml
from botwarden.settings import StackSettings, load_settings


def read_inventory(path: Path) -> tuple[SourceDocument, Inventory | None, list[Diagnostic]]:
    """Parse and validate the inventory file (or the default one when it does not exist)."""
    if path.exists():
        doc = load_yaml(path)
    else:
        doc = SourceDocument(f"{path} (built-in default)", data=default_inventory_data())
        doc.marks[()] = Marks((0, 0))
    diagnostics = list(doc.diagnostics)
    if doc.diagnostics and doc.data is None:
        return doc, None, diagnostics
    try:
        return doc, Inventory.model_validate(doc.data if doc.data is not None else {}), diagnostics
    except ValidationError as exc:
        diagnostics.extend(diagnostics_from_validation(exc, doc, doc.data, model=Inventory))
        return doc, None, diagnostics


def inventory_rules(doc: SourceDocument, inv: Inventory) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if not inv.hosts:
        out.append(doc.diagnostic(("hosts",), "the inventory has no hosts", "add e.g. hosts: {local: {}}"))
    for kind, names in (("host", inv.hosts), ("group", inv.groups)):
        if "all" in names:
            out.append(doc.diagnostic((f"{kind}s", "all"), f"'all' is reserved (every host); rename this {kind}",
                                      at_key=True))
    for name in inv.groups:
        if name in inv.hosts:
            out.append(doc.diagnostic(("groups", name), f"{name!r} is both a host and a group",
                                      "rename one so playbooks' `hosts:` is unambiguous", at_key=True))
        for j, member in enumerate(inv.groups[name].hosts):
            if member not in inv.hosts:
                out.append(doc.diagnostic(("groups", name, "hosts", j), f"group {name!r} lists unknown host "
                                          f"{member!r}", suggest(member, inv.hosts) or _known(inv.hosts)))
    routes = inv.notify.routes
    if not routes:
        out.append(doc.diagnostic(("notify",), "no notification routes: every alert would be lost",
                                  "add notify.routes with a last route without `match`, e.g. "
                                  "{name: default, targets: [inbox]}"))
    elif not any(route.match.is_catch_all for route in routes):
        out.append(doc.diagnostic(("notify", "routes", len(routes) - 1), "no catch-all route: an alert that "
                                  "matches no route would be lost", "add a last route without `match`"))
    seen: set[str] = set()
    for i, route in enumerate(routes):
        if route.name in seen:
            out.append(doc.diagnostic(("notify", "routes", i, "name"), f"duplicate route name {route.name!r}"))
        seen.add(route.name)
        for j, target in enumerate(route.targets):
            if target not in inv.notify.targets:
                out.append(doc.diagnostic(("notify", "routes", i, "targets", j), f"route {route.name!r} sends to "
                                          f"unknown target {target!r}",
                                          suggest(target, inv.notify.targets) or _known(inv.notify.targets)))
        for j, step in enumerate(route.escalate):  # lifecycle: escalation (issue 4)
            if step.to not in {r.name for r in routes}:
                out.append(doc.diagnostic(("notify", "routes", i, "escalate", j, "to"), f"route {route.name!r} "
                                          f"escalates to unknown route {step.to!r}",
                                          suggest(step.to, [r.name for r in routes]) or _known([r.name for r in routes])))
    return out


def read_settings(doc: SourceDocument, inv: Inventory | None, inventory_path: Path
                  ) -> tuple[StackSettings, list[Diagnostic]]:
    """The stack settings the inventory names (defaults when it names none)."""
    if inv is None or inv.settings is None:
        return load_settings(None), []
    path = Path(inv.settings)
    if not path.is_absolute():
        path = inventory_path.parent / path
    if not path.is_file():
        return load_settings(None), [doc.diagnostic(("settings",), f"settings file {inv.settings!r} not found "
                                                    f"(looked at {path})")]
    try:
        return load_settings(path), []
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors(include_input=False, include_url=False))
        return load_settings(None), [doc.diagnostic(("settings",), f"settings file {inv.settings!r} is invalid: "
                                                    f"{problems}")]
    except Exception as exc:  # yaml errors and the like: say which file, not a traceback
        return load_settings(None), [doc.diagnostic(("settings",), f"settings file {inv.settings!r} cannot "
                                                    f"be read: {type(exc).__name__}")]


def render_targets(doc: SourceDocument, inv: Inventory, settings_vars: dict[str, Any],
                   templating: Templating) -> list[Diagnostic]:
    """Render every target URL into ``Target.rendered_url`` and register its secrets with the
    configuration's redactor (:func:`~agent.core.redaction.url_secrets`). Messages never show the URL."""
    out: list[Diagnostic] = []
    for name, target in inv.notify.targets.items():
        path = ("notify", "targets", name, "url")
        problem = templating.check_syntax(target.url)
        if problem:
            out.append(doc.diagnostic(path, f"target {name!r}: {problem}"))
            continue
        try:
            url = templating.render_str(target.url, settings_vars).strip()
        except TemplateError as exc:
            out.append(doc.diagnostic(path, f"target {name!r}: {exc.message}"))
            continue
        if not url:
            if not target.optional:
                out.append(doc.diagnostic(path, f"target {name!r}: the URL renders empty",
                                          "set the environment variable it reads, or add optional: true"))
        elif "://" not in url:
            out.append(doc.diagnostic(path, f"target {name!r}: the rendered URL is not an apprise URL "
                                      "(scheme://...)"))
        elif (problem := _unknown_scheme(url)) is not None:
            out.append(doc.diagnostic(path, f"target {name!r}: apprise does not know the URL's scheme"
                                      f"{problem}",
                                      "see https://github.com/caronc/apprise/wiki for supported services"))
        target._rendered_url = url or None
        if url:  # redacted everywhere from now on: a webhook URL is a credential
            templating.redactor.add(url_secrets(url))
    return out


def template_files(doc: SourceDocument, inv: Inventory, templating: Templating) -> list[Diagnostic]:
    """Alert templates named explicitly in the inventory must exist and parse.

    Defaults are not required here: the notify layer falls back to a built-in message.
    """
    out: list[Diagnostic] = []
    raw = doc.data.get("notify", {}).get("templates", {}) if isinstance(doc.data, dict) else {}
    if not isinstance(raw, dict):
        return out
    for kind in raw:
        name = getattr(inv.notify.templates, kind)
        path = ("notify", "templates", kind)
        if templating.templates_dir is None or not (templating.templates_dir / name).is_file():
            out.append(doc.diagnostic(path, f"template {name!r} not found in "
                                      f"{templating.templates_dir or '(no templates directory)'}"))
            continue
        problem = templating.check_template_file(name)
        if problem:
            out.append(doc.diagnostic(path, f"template {name!r}: {problem}"))
    return out


def _known(names: Any) -> str:
    return f"known: {', '.join(sorted(names))}" if names else "none defined"


def _unknown_scheme(url: str) -> str | None:
    """None when apprise knows the scheme of every URL of the target, else which URL it does not.

    The URLs are split as the delivery splits them (a target may hold several, and the delivery
    refuses the whole target when apprise refuses any one of them); schemes are read by
    apprise's rule and looked up in its plugin sources, without loading every plugin.
    """
    urls = parse_urls(url)
    for i, one in enumerate(urls, 1):
        scheme = url_scheme(one)
        if scheme is None or not is_known_scheme(scheme):
            return f" (URL {i} of {len(urls)})" if len(urls) > 1 else ""
    return None
