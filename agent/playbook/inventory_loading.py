"""Load and check ``inventory.yaml`` and the stack settings it points at.

Rules: at least one host; ``all`` is reserved; a name is a host or a group, not both; group
members exist; there is a catch-all route (an alert is never lost); route names are unique
and their targets exist; target URLs render (with the
settings' vars and ``env``) to apprise URLs whose schemes apprise knows and that apprise builds
a plugin from, as the delivery does (every URL of a target that holds several), or to nothing
for an ``optional`` target; named
alert templates that are set explicitly exist and parse.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.apprise_plugins import is_known_scheme, parse_urls, url_scheme, why_refused
from agent.core.redaction import url_secrets
from agent.core.values import format_duration
from agent.playbook.cron import schedule_traps, timezone_trap, timezone_unused
from agent.playbook.diagnostics import Diagnostic, ran_as_read, suggest, warning
from agent.playbook.file_kinds import wrong_kind
from agent.playbook.files import DISK, ConfigReader, real_path
from agent.playbook.inventory import (
    AlertTemplates,
    Inventory,
    MaintenanceWindow,
    RouteMatch,
    Target,
    default_inventory_data,
)
from agent.playbook.literal_secrets import SECRET_HINT as _SECRET_HINT
from agent.playbook.literal_secrets import (
    comment_secret_problems,
    hide_secrets,
    literal_secret_problems,
    literal_secrets,
    secret_lines,
)
from agent.playbook.message_vars import MESSAGE_VARS, TEXT_VARS
from agent.playbook.placeholders import is_runtime
from agent.playbook.scope import reserved_var_problems, template_file_diagnostic, unknown_in_template_file
from agent.playbook.templating import TemplateError, Templating
from agent.playbook.validation import diagnostics_from_validation
from agent.playbook.written_values import written_value_problems
from agent.playbook.yaml_source import Marks, SourceDocument, base60_problems, load_yaml
from botwarden.settings import (
    EMPTY_SETTINGS,
    EMPTY_SETTINGS_HINT,
    AgentSettings,
    BotSettings,
    ExchangeSettings,
    InboxSettings,
    StackSettings,
    SupervisorSettings,
    has_no_content,
)


def read_inventory(path: Path, *, required: bool = False, reader: ConfigReader | None = None
                   ) -> tuple[SourceDocument, Inventory | None, list[Diagnostic]]:
    """Parse and validate the inventory file, or use the default one when it does not exist
    and is not ``required`` (it was not named by the operator). Anything at the path that is
    not a readable file (a dangling or looping symbolic link, a FIFO) is reported, never
    replaced by the default."""
    reader = reader or DISK
    if reader.exists(path):
        doc = load_yaml(path, reader=reader)
    elif required:
        doc = SourceDocument(str(path))
        return doc, None, [doc.at(0, 0, "inventory file not found",
                                  "check the path given to --inventory (without it, ./inventory.yaml is read, "
                                  "or a built-in default when there is none)")]
    else:
        doc = SourceDocument(f"{path} (built-in default)", data=default_inventory_data())
        doc.marks[()] = Marks((0, 0))
    diagnostics = list(doc.diagnostics)
    if doc.diagnostics and doc.data is None:
        return doc, None, diagnostics
    if (kind := wrong_kind(doc, doc.data, "inventory")) is not None:
        return doc, None, [*diagnostics, kind]
    try:
        return doc, Inventory.model_validate(doc.data if doc.data is not None else {}), diagnostics
    except ValidationError as exc:
        diagnostics.extend(diagnostics_from_validation(exc, doc, doc.data, model=Inventory))
        return doc, None, diagnostics


def inventory_rules(doc: SourceDocument, inv: Inventory) -> list[Diagnostic]:
    out: list[Diagnostic] = written_value_problems(doc, doc.data, Inventory, empty_is_absent=False)
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
    route_names = [route.name for route in routes]
    # an escalation to a misspelt name is reported below; the route it meant counts as reached
    escalation_targets = {(difflib.get_close_matches(step.to, route_names, n=1, cutoff=0.6) or [step.to])[0]
                          for route in routes for step in route.escalate}
    catch_all = next((i for i, route in enumerate(routes) if route.match.is_catch_all and not route.continue_), None)
    if catch_all is not None:
        for i in range(catch_all + 1, len(routes)):
            if routes[i].name not in escalation_targets:
                out.append(doc.diagnostic(("notify", "routes", i), f"route {routes[i].name!r} is never reached: "
                                          f"route {routes[catch_all].name!r} before it matches every alert",
                                          "move the catch-all route last, or give it continue: true"))
    if (unused := timezone_unused(inv.notify.digest)) is not None:
        out.append(warning(doc.diagnostic(("notify", "digest", "timezone"), f"digest: {unused[0]}", unused[1])))
    for message, hint in schedule_traps(inv.notify.digest.cron, inv.notify.digest.timezone):
        out.append(warning(doc.diagnostic(("notify", "digest", "cron"), f"digest: {message}", hint)))
    if inv.notify.digest.cron and (trap := timezone_trap(inv.notify.digest.timezone)) is not None:
        out.append(warning(doc.diagnostic(("notify", "digest", "timezone"), f"digest: {trap[0]}", trap[1])))
    for i, window in enumerate(inv.maintenance):
        if (trap := timezone_trap(window.timezone)) is not None:
            out.append(warning(doc.diagnostic(("maintenance", i, "timezone"), f"maintenance window "
                                              f"{window.name!r}: {trap[0]}", trap[1])))
        out += _maintenance_problems(doc, i, window)
    if inv.notify.group_wait > inv.notify.group_interval:
        out.append(warning(doc.diagnostic(("notify", "group_wait"), _group_wait_message(
            "notify.group_wait", inv.notify.group_wait, inv.notify.group_interval), _GROUP_WAIT_HINT)))
    for i, route in enumerate(routes):
        if route.group_wait is not None and route.group_wait > inv.notify.group_interval:
            out.append(warning(doc.diagnostic(("notify", "routes", i, "group_wait"), _group_wait_message(
                f"route {route.name!r}: group_wait", route.group_wait, inv.notify.group_interval), _GROUP_WAIT_HINT)))
        for j, step in enumerate(route.escalate):
            if step.to == route.name:
                out.append(doc.diagnostic(("notify", "routes", i, "escalate", j, "to"), f"route {route.name!r} "
                                          "escalates to itself: its own targets are told again, nobody new",
                                          "escalate to the route of whoever must be told next (a pager, a "
                                          "second person); to remind the same people, use repeat:"))
            elif step.to in [earlier.to for earlier in route.escalate[:j]]:
                first = next(k for k, earlier in enumerate(route.escalate) if earlier.to == step.to)
                out.append(warning(doc.diagnostic(
                    ("notify", "routes", i, "escalate", j, "to"), f"route {route.name!r}: escalation step {j + 1} "
                    f"goes to {step.to!r} again (step {first + 1} does): it tells nobody new",
                    "escalate each step to whoever must be told next; to remind the same people, use repeat:")))
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


_GROUP_WAIT_HINT = ("keep group_wait (how long the first message of a host waits for more problems) shorter than "
                   "notify.group_interval (how long an update waits): seconds for the first, a minute or more for "
                   "updates")


def _group_wait_message(what: str, wait: float, interval: float) -> str:
    return (f"{what} {format_duration(wait)} is longer than notify.group_interval {format_duration(interval)}: the "
            "first message of a problem would wait longer than any update about it, so a new problem is told "
            "last")


def _matches_everything(match: RouteMatch) -> bool:
    """Every alert: nothing narrows it (empty lists), or only globs that match any name (``*``)."""
    if match.severity or match.tags:
        return False
    return all(not patterns or any(set(p) <= {"*"} for p in patterns)
               for patterns in (match.host, match.play, match.check))


def _maintenance_problems(doc: SourceDocument, i: int, window: MaintenanceWindow) -> list[Diagnostic]:
    """A window whose ``match:`` is written and matches every alert (``tags: []``, ``check: ["*"]``:
    bot-crash pages held back too), one that is never active (``start`` == ``end``), and the
    daylight-saving traps of its start in its timezone, as for the digest and play schedules."""
    out: list[Diagnostic] = []
    written = doc.marks.get(("maintenance", i, "match")) is not None
    if written and _matches_everything(window.match):
        out.append(warning(doc.diagnostic(("maintenance", i, "match"), f"maintenance window {window.name!r} "
                                          "matches every alert (an empty list or '*' matches anything): while it is "
                                          "active every page is held back, a crash of the bot included",
                                          "name what the planned work touches (e.g. match: {tags: [exchange]}); "
                                          "leave match: out only when every alert is meant")))
    if window.start is not None and window.start == window.end:
        out.append(doc.diagnostic(("maintenance", i, "end"), f"maintenance window {window.name!r}: start and end "
                                  f"are both {window.start}: the window is never active",
                                  "give the time it ends (an end before start runs past midnight)"))
    if window.cron is not None:
        cron, where = window.cron, ("maintenance", i, "cron")
    elif window.start is not None:
        hours, minutes = window.start.split(":")
        days = ",".join(window.weekdays) if window.weekdays else "*"
        cron, where = f"{int(minutes)} {int(hours)} * * {days}", ("maintenance", i, "start")
    else:
        return out
    for message, hint in schedule_traps(cron, window.timezone):
        out.append(warning(doc.diagnostic(where, f"maintenance window {window.name!r}: {message}", hint)))
    return out


def settings_path(inv: Inventory | None, inventory_path: Path) -> Path | None:
    """The stack settings file the configuration reads: the one the inventory names, else
    ``$BOTWARDEN_SETTINGS`` (None: the built-in defaults)."""
    if inv is not None and inv.settings is not None:
        path = Path(inv.settings)
        return path if path.is_absolute() else inventory_path.parent / path
    named = os.environ.get("BOTWARDEN_SETTINGS")
    return Path(named) if named else None


def read_settings(doc: SourceDocument, inv: Inventory | None, inventory_path: Path,
                  reader: ConfigReader | None = None) -> tuple[StackSettings, list[Diagnostic]]:
    """The stack settings the inventory names (defaults when it names none, or the file
    ``$BOTWARDEN_SETTINGS`` names when the inventory names none).

    The file is read with the positioned loader, so a problem in it is reported at its line in
    the settings file, and scanned for secrets written literally as the inventory is (only a
    variable's name belongs there: ``private_key_env: BOTWARDEN_PRIVATE_KEY``); the inventory's ``settings:`` line when the file cannot be used (not
    found, not a file, a symbolic link that loops), with what is wrong with it.
    """
    reader = reader or DISK
    if inv is None:
        return _default_settings(), []
    settings, found = _read_settings(doc, inv, inventory_path, reader)
    named = os.environ.get("BOTWARDEN_SETTINGS")
    if inv.settings is not None and named:
        found = [*found, dataclasses.replace(doc.diagnostic(
            ("settings",), f"$BOTWARDEN_SETTINGS ({named}) is ignored: the inventory names its settings file "
            f"({inv.settings!r}), which wins", "unset $BOTWARDEN_SETTINGS, or set the inventory's `settings:` to null "
            "to use it"), severity="warning")]
    return settings, found


def _read_settings(doc: SourceDocument, inv: Inventory, inventory_path: Path,
                   reader: ConfigReader) -> tuple[StackSettings, list[Diagnostic]]:
    path = settings_path(inv, inventory_path)
    if path is None:
        return _default_settings(), settings_lookalikes(doc, inventory_path, reader, None)
    problem = reader.problem(path)
    if problem is not None:
        what = "not found" if problem.message == "no such file or directory" else problem.message
        if inv.settings is None:
            return _default_settings(), [Diagnostic(str(path), 0, 0, f"settings file named by $BOTWARDEN_SETTINGS: "
                                                    f"{what}", problem.hint or "set $BOTWARDEN_SETTINGS to the "
                                                    "stack settings file, or unset it")]
        said = (f"settings file {inv.settings!r} not found (looked at {path})" if what == "not found"
                else f"settings file {inv.settings!r} ({path}): {what}")
        hint = problem.hint or "name the stack settings file, relative to the inventory, or null for the defaults"
        if inv.settings.startswith("~") and what == "not found":  # no shell here to expand it
            hint = (f"~ is not expanded (no shell reads this file): write the path in full "
                    f"({os.path.expanduser(inv.settings)}) or relative to the inventory")
        return _default_settings(), [doc.diagnostic(("settings",), said, hint)]
    settings_doc = load_yaml(path, reader=reader)
    # secrets are refused here as in the inventory, also in a file that is wrong otherwise
    secrets = [*literal_secret_problems(settings_doc), *comment_secret_problems(settings_doc)]
    shown = {settings_doc.file: secret_lines(settings_doc)}
    if settings_doc.diagnostics:
        return _default_settings(), hide_secrets([*settings_doc.diagnostics, *secrets], shown)
    data = settings_doc.data if settings_doc.data is not None else {}
    # emptied: the built-in settings, ports another stack may use (taken so in a last good configuration)
    emptied = [ran_as_read(settings_doc.at(1, 1, EMPTY_SETTINGS, EMPTY_SETTINGS_HINT))] \
        if settings_doc.data is None and has_no_content("\n".join(settings_doc.lines)) else []
    if not isinstance(data, dict):
        return _default_settings(), [settings_doc.at(1, 1, "the settings file must be a mapping (key: value)",
                                                     "an env-file line NAME=value belongs in the agent's "
                                                     "environment, not here"),
                                     *secrets]
    try:
        settings = StackSettings.model_validate({"root": str(real_path(path).parent), **data})
    except ValidationError as exc:
        refused = [_at_the_setting_named(d, settings_doc, data)
                   for d in diagnostics_from_validation(exc, settings_doc, data, model=StackSettings)]
        return _default_settings(), hide_secrets([*refused, *base60_problems(settings_doc, refused), *secrets], shown)
    secrets += base60_problems(settings_doc)
    if secrets:
        return _default_settings(), hide_secrets(secrets, shown)
    return settings, [*emptied, *settings_lookalikes(doc, inventory_path, reader, path),
                      *state_left_behind(settings_doc, data)]


_NAMED_SETTING = re.compile(r"\b(bot|exchange|inbox|web|agent|supervisor)\.([a-z_]+)\b(?: '([^']*)')?")


def _at_the_setting_named(d: Diagnostic, doc: SourceDocument, data: Mapping[str, Any]) -> Diagnostic:
    """A rule of the whole file (``StackSettings``' own validators: a coin the paper exchange does
    not list, two programs on one port) has no place of its own: pydantic puts it at the top of
    the file. It is said at the first setting it names that is written in the file (the coin
    itself in ``bot.coins``), else where it was."""
    top = doc.position(())
    if (d.line, d.column) != top:
        return d
    for section, name, quoted in _NAMED_SETTING.findall(d.message):
        path: tuple[Any, ...] = (section, name)
        given = data.get(section)
        value = given.get(name) if isinstance(given, Mapping) else None
        if value is None:
            continue
        if quoted and isinstance(value, list) and quoted in value:
            path = (*path, value.index(quoted))
        return dataclasses.replace(doc.diagnostic(path, d.message, d.hint), severity=d.severity,
                                   ran_as_read=d.ran_as_read)
    return d


def state_left_behind(doc: SourceDocument, data: Mapping[str, Any]) -> list[Diagnostic]:
    """A warning at ``var_dir`` when it is moved (``var_dir: /var/lib/botwarden``) and paths of the
    runtime state are not: their defaults are under ``var/`` of the root, not under ``var_dir``
    (the databases, sockets, logs, the bot's halt file), so the state would be split between two
    places while only the secrets, the snapshot and the backups follow ``var_dir``. Moving them
    silently could lose a halt in force, so the file says where each one goes."""
    var_dir = data.get("var_dir")
    if not isinstance(var_dir, str) or var_dir.rstrip("/") in ("var", ""):
        return []
    left: list[str] = []
    for section, model in (("supervisor", SupervisorSettings), ("exchange", ExchangeSettings), ("bot", BotSettings),
                           ("agent", AgentSettings), ("inbox", InboxSettings)):
        given = data.get(section)
        written = given if isinstance(given, Mapping) else {}
        left += [f"{section}.{name}" for name, f in model.model_fields.items()
                 if name not in written and isinstance(f.default, str) and f.default.startswith("var/")]
    if not left:
        return []
    example = left[0].split(".")
    return [warning(doc.diagnostic(("var_dir",), f"var_dir is {var_dir!r}, but {len(left)} path(s) of the runtime "
                                   f"state stay under var/ of the root, where their defaults are: {', '.join(left)}",
                                   f"write each under var_dir too ({example[0]}: {{{example[1]}: "
                                   f"{var_dir.rstrip('/')}/...}}), moving the file it names there while the stack is "
                                   "down (the halt file holds a halt in force), or leave var_dir at var"))]


SETTINGS_LOOKALIKES = ("settings.yaml", "settings.yml", "var/settings.yaml", "var/settings.yml")
"""Where an operator may leave a stack settings file expecting it to act (relative to the
inventory): only the file the inventory (or ``$BOTWARDEN_SETTINGS``) names is read."""


def settings_lookalikes(doc: SourceDocument, inventory_path: Path, reader: ConfigReader,
                        named: Path | None) -> list[Diagnostic]:
    """A warning for each file of :data:`SETTINGS_LOOKALIKES` beside the inventory that is not the
    settings file read (``named``; None: the built-in defaults): it is not read, say so (the file an
    operator edits expecting it to act, and that the backup playbooks archive)."""
    read = real_path(named) if named is not None else None
    out: list[Diagnostic] = []
    for rel in SETTINGS_LOOKALIKES:
        beside = inventory_path.parent / rel
        if reader.problem(beside) is not None or (read is not None and real_path(beside) == read):
            continue
        if named is None:
            said = (f"{beside} is not read: the inventory names no settings file (settings: null) and "
                    "$BOTWARDEN_SETTINGS is unset, so the built-in defaults apply")
            hint = f"name it (`settings: {rel}`) to use it, or remove it"
        else:
            said = f"{beside} is not read: the stack settings come from {named} only"
            hint = f"move what it holds into {named.name}, or remove it"
        out.append(warning(doc.diagnostic(("settings",), said, hint)))
    return out


def _default_settings() -> StackSettings:
    """The built-in settings (rooted at ``$BOTWARDEN_ROOT`` or the current directory)."""
    return StackSettings.model_validate({"root": os.environ.get("BOTWARDEN_ROOT", os.getcwd())})


def settings_overrides(doc: SourceDocument, inv: Inventory, settings_vars: Mapping[str, Any]) -> list[Diagnostic]:
    """Vars of the inventory, a group or a host that override the stack settings' ``bot.*``,
    ``exchange.*``... (merged over them, key by key): one that replaces such a mapping with a single
    value breaks every ``{{ bot.X }}`` (said here once, not at each use), and a key that is the
    misspelling of one of the settings' (``bot: {programm: mybot}``) adds a key nobody reads while
    ``bot.program`` keeps its value, silently."""
    places: list[tuple[tuple[Any, ...], Mapping[str, Any]]] = [(("vars",), inv.vars)]
    places += [(("groups", name, "vars"), group.vars) for name, group in inv.groups.items()]
    places += [(("hosts", name, "vars"), host.vars) for name, host in inv.hosts.items()]
    out: list[Diagnostic] = reserved_var_problems(doc, places)
    for path, given in places:
        for key, value in given.items():
            setting = settings_vars.get(key)
            if not isinstance(setting, Mapping):
                continue
            if not isinstance(value, Mapping):
                out.append(doc.diagnostic((*path, key), f"{key!r} replaces the stack settings' {key}.* (a mapping: "
                                          f"{', '.join(f'{key}.{k}' for k in list(setting)[:3])}...) with a single "
                                          f"value: every {{{{ {key}.X }}}} of the playbooks would fail",
                                          f"override one key of it ({key}: {{{next(iter(setting), 'x')}: ...}}), or "
                                          f"give this var another name"))
                continue
            out += _derived_left_behind(doc, (*path, key), key, value, setting)
            for sub in value:
                if sub in setting or not isinstance(sub, str):
                    continue
                near = suggest(sub, [k for k in setting if isinstance(k, str)])
                if near is not None:
                    out.append(doc.diagnostic((*path, key, sub), f"{key}.{sub} is no key of the stack settings' "
                                              f"{key}.*: it adds a var nobody reads, and the setting meant keeps "
                                              "its value", near, at_key=True))
    return out


DERIVED_SETTINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "bot": {"host": ("url", "health_url", "metrics_url"), "port": ("url", "health_url", "metrics_url"),
            "db": ("db_path",), "control_socket": ("control_socket_path",), "heartbeat_file": ("heartbeat_path",),
            "halt_file": ("halt_path",)},
    "exchange": {"host": ("url",), "port": ("url",), "state": ("state_path",)},
    "supervisor": {"socket": ("url", "socket_path")},
    "agent": {"db": ("db_path",), "events_socket": ("events_socket_path",)},
    "inbox": {"host": ("url",), "port": ("url",)},
}
"""What :meth:`botwarden.settings.StackSettings.template_vars` makes from a setting: ``bot.health_url``
from ``bot.host`` and ``bot.port``..."""


def _derived_left_behind(doc: SourceDocument, path: tuple[Any, ...], key: str, value: Mapping[str, Any],
                         setting: Mapping[str, Any]) -> list[Diagnostic]:
    """A warning at a var that overrides a setting others are made from (``bot: {port: 8089}``),
    when those are not overridden with it: ``bot.health_url``, what the checks read, stays on the
    settings' port, and the bot this stack starts listens there. Meant to move the bot, it moved
    nothing (the settings file does, applied by ``agent stack up``)."""
    out: list[Diagnostic] = []
    for sub, derived in DERIVED_SETTINGS.get(key, {}).items():
        if sub not in value or value[sub] == setting.get(sub) or any(d in value for d in derived):
            continue
        made = ", ".join(f"{key}.{d}" for d in derived)
        out.append(warning(doc.diagnostic(
            (*path, sub), f"{key}.{sub}: {value[sub]!r} here, but {made} (what playbooks read, such as "
            f"{{{{ {key}.{derived[0]} }}}}) are made from the stack settings' {key}.{sub} ({setting.get(sub)!r}) and "
            f"do not follow; the programs this stack starts use the settings too",
            f"to move it, set {key}.{sub} in the stack settings file (agent stack up applies it); for another "
            f"host's, override {made} here as well", at_key=True)))
    return out


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
        secrets = literal_secrets(target.url)
        if secrets:
            out.append(doc.diagnostic(path, f"target {name!r}: {secrets[0]}", _SECRET_HINT))
        try:
            url = templating.render_str(target.url, settings_vars).strip()
        except TemplateError as exc:
            out.append(doc.diagnostic(path, f"target {name!r}: {exc.message}", exc.hint or _unset_hint(exc, target)))
            continue
        if is_runtime(url):  # reads a variable not set here, loaded for reading only: not known
            continue
        if not url:
            if not target.optional:
                out.append(doc.diagnostic(path, f"target {name!r}: the URL renders empty",
                                          "set the environment variable it reads, or add optional: true"))
        elif "://" not in url:
            out.append(doc.diagnostic(path, f"target {name!r}: the rendered URL is not an apprise URL "
                                      "(scheme://...)"))
        elif (problem := _unknown_scheme(url)) is not None:
            native = _native_service(url)
            if native is not None:  # Slack's own https://hooks.slack.com/... address, and the like
                out.append(doc.diagnostic(path, f"target {name!r}: the URL is {native}'s own web address, not an "
                                          f"apprise URL{problem}", f"write it as apprise's {native}:// URL (the "
                                          f"parts of the address in the order the {native} page of "
                                          "https://github.com/caronc/apprise/wiki gives)"))
            else:
                out.append(doc.diagnostic(path, f"target {name!r}: apprise does not know the URL's scheme"
                                          f"{problem}",
                                          "see https://github.com/caronc/apprise/wiki for supported services"))
        elif (problem := _refused(url)) is not None:
            templating.redactor.add(url_secrets(url))  # apprise's reason may quote a part of the URL
            out.append(doc.diagnostic(path, f"target {name!r}: apprise refuses the URL"
                                      f"{templating.redactor.redact(problem)}",
                                      "the delivery would refuse it too (apprise's own parser, at load as at "
                                      "send): see the service's page at https://github.com/caronc/apprise/wiki"))
        target._rendered_url = url  # "" for an optional target that sends nothing (known empty)
        if url:  # redacted everywhere from now on: a webhook URL is a credential
            templating.redactor.add(url_secrets(url))
    return out


def routes_telling_nobody(doc: SourceDocument, inv: Inventory, templating: Templating) -> list[Diagnostic]:
    """A route whose every target is optional and rendered empty tells nobody: an alert that
    takes it is lost (first match wins), and so is an escalation to it. An error at load, in
    the environment the agent is given (Alertmanager accepts a receiver with no integration and
    drops silently; here a lost alert is a real loss). A route with ``continue: true`` that no
    escalation names only passes its alerts on, so it may send to nothing while its variables
    are unset. Run after :func:`render_targets`."""
    out: list[Diagnostic] = []
    escalated = {step.to for route in inv.notify.routes for step in route.escalate}
    targets = inv.notify.targets
    for i, route in enumerate(inv.notify.routes):
        if route.continue_ and route.name not in escalated:
            continue
        if not route.targets or not all(name in targets and targets[name].renders_empty for name in route.targets):
            continue
        unset = sorted({var for name in route.targets for var in templating.env_names(targets[name].url)})
        why = f" ({', '.join('$' + v for v in unset)} not set)" if unset else ""
        told = "an escalation to it" if route.continue_ else "an alert that takes this route"
        out.append(doc.diagnostic(
            ("notify", "routes", i, "targets"),
            f"route {route.name!r} tells nobody: every target it names is optional and its URL renders "
            f"empty{why}; {told} would be lost",
            (f"set {', '.join(unset)} in the agent's environment, or " if unset else "")
            + "add a target that always sends (e.g. the json:// inbox or an email address) to this route"))
    return out


def _unset_hint(exc: TemplateError, target: Target) -> str | None:
    """What to write when a target's URL reads an environment variable that is not set."""
    unset = re.search(r"environment variable '([^']+)' is not set", exc.message)
    if unset is None:
        return None
    var = unset[1]
    if target.optional:
        return (f"an optional target is skipped when its URL renders empty: write "
                f"{{{{ env.{var} | default('') }}}} so that it is, or set {var} in the agent's environment")
    return (f"set {var} in the agent's environment (run `agent validate` with the agent's environment); "
            f"or, if the target may be absent, add optional: true and write {{{{ env.{var} | default('') }}}}")


def template_files(doc: SourceDocument, inv: Inventory, templating: Templating) -> list[Diagnostic]:
    """Every alert template the notifications will use must parse and stay in the sandbox.

    One named explicitly in the inventory must also exist; a default name that does not exist
    is fine (the notify layer falls back to a built-in message), but one that exists is used,
    so it is checked too.
    """
    out: list[Diagnostic] = []
    raw = doc.data.get("notify", {}).get("templates", {}) if isinstance(doc.data, dict) else {}
    explicit = set(raw) if isinstance(raw, dict) else set()
    directory = templating.templates_dir
    names_checked: set[str] = set()
    for kind in AlertTemplates.model_fields:
        name = getattr(inv.notify.templates, kind)
        path = ("notify", "templates", kind) if kind in explicit else ("notify",)
        exists = directory is not None and templating.reader.exists(directory / name)
        if not exists:
            if kind in explicit:
                out.append(doc.diagnostic(path, f"template {name!r} not found in "
                                          f"{directory or '(no templates directory)'}"))
            continue
        where = "" if kind in explicit else f" (the default {kind} template)"
        problem = templating.check_template_file(name)
        if problem:
            out.append(template_file_diagnostic(templating, name, f"template {name!r}: {problem}",
                                                doc.diagnostic(path, f"template {name!r}{where}: {problem}"),
                                                f"the {'default ' if kind not in explicit else ''}{kind} template"))
            continue
        if name in names_checked:
            continue  # one file for several kinds (alert and repeat): checked against what both give
        names_checked.add(name)
        kinds = [k for k in AlertTemplates.model_fields if getattr(inv.notify.templates, k) == name]
        required = frozenset.intersection(*(MESSAGE_VARS[k].required for k in kinds))
        optional = frozenset.union(*(MESSAGE_VARS[k].optional | MESSAGE_VARS[k].required for k in kinds)) - required
        for message, hint, line in unknown_in_template_file(templating, name, required, optional, TEXT_VARS):
            if directory is not None:
                out.append(_in_template_file(directory / name, line, message.split("'")[1],
                                             f"{message} (as the {' and '.join(kinds)} template)", hint))
    return out


def _in_template_file(path: Path, line: int, name: str, message: str, hint: str | None) -> Diagnostic:
    """A diagnostic at the first use of ``name`` on ``line`` of a template file."""
    try:
        text = path.read_text(encoding="utf-8").splitlines()[line - 1]
    except (OSError, UnicodeDecodeError, IndexError):
        return Diagnostic(str(path), line, 1, message, hint)
    # the name as the template reads it (``was.name``, ``{{ was }}``) before the same word in prose
    match = re.search(rf"\b{re.escape(name)}\b(?=\s*[.\[|}})~+*/-])", text) or \
        re.search(rf"\b{re.escape(name)}\b", text)
    return Diagnostic(str(path), line, match.start() + 1 if match else 1, message, hint, source_line=text)


def heartbeat_problems(doc: SourceDocument, inv: Inventory, settings_vars: dict[str, Any],
                       templating: Templating) -> list[Diagnostic]:
    """The heartbeat URL renders, as the agent renders it, to nothing or to an http(s) URL."""
    if inv.heartbeat is None:
        return []
    path = ("heartbeat", "url")
    problem = templating.check_syntax(inv.heartbeat.url)
    if problem:
        return [doc.diagnostic(path, f"heartbeat: {problem}")]
    try:
        url = templating.render_str(inv.heartbeat.url, settings_vars).strip()
    except TemplateError as exc:
        return [doc.diagnostic(path, f"heartbeat: {exc.message}")]
    if is_runtime(url):  # reads a variable not set here, loaded for reading only: not known
        url = ""
    if url and not url.startswith(("http://", "https://")):
        return [doc.diagnostic(path, "heartbeat: the rendered URL is not an http:// or https:// URL")]
    out = [doc.diagnostic(path, f"heartbeat: {secret}", _SECRET_HINT) for secret in literal_secrets(inv.heartbeat.url)]
    return out[:1]


def _known(names: Any) -> str:
    return f"known: {', '.join(sorted(names))}" if names else "none defined"


def _refused(url: str) -> str | None:
    """None when apprise builds a plugin from every URL of the target, as the delivery builds
    them (:func:`~agent.apprise_plugins.instantiate`), else which URL and apprise's reason."""
    urls = parse_urls(url)
    for i, one in enumerate(urls, 1):
        reason = why_refused(one)
        if reason is not None:
            return (f" (URL {i} of {len(urls)})" if len(urls) > 1 else "") + f": {reason}"
    return None


def _native_service(url: str) -> str | None:
    """The apprise service a web address of a target is the service's own form of (Slack's
    ``https://hooks.slack.com/services/...`` is ``slack``), for the first URL of the target whose
    scheme apprise has no plugin for; None when it is no service's address."""
    from apprise.plugins import url_to_dict

    for one in parse_urls(url):
        scheme = url_scheme(one)
        if scheme is None or not is_known_scheme(scheme):
            try:
                parsed = url_to_dict(one)
            except Exception:  # noqa: BLE001 - apprise's parsers: any failure means "not known"
                return None
            schema = parsed.get("schema") if isinstance(parsed, dict) else None
            return str(schema) if schema else None
    return None


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
