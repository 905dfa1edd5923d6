"""``load_config``: inventory + playbooks -> a validated :class:`Config`, or diagnostics.

Order of work (every step collects problems and carries on, so one run reports them all):

1. inventory (or the built-in default), its rules, the stack settings, target URLs;
2. each playbook: YAML, module keys, structure (pydantic), templates, in-play rules;
3. across files: unique play names, ``hosts`` patterns, ``budget.then`` references;
4. binding: every check on every host of its play, params rendered and validated; every task,
   handler and remediation step checked in the scope it will run in (task_validation).

``config`` is set only when there is no diagnostic at all: a configuration with an error
never starts.
"""
from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from agent.core.redaction import Redactor
from agent.modules.base import HostContext
from agent.modules.registry import Registry
from agent.playbook.binding import BoundCheck, bind_checks
from agent.playbook.diagnostics import Diagnostic, order, suggest, warning
from agent.playbook.file_kinds import wrong_kind
from agent.playbook.files import (
    PLAYBOOK_SUFFIXES,
    ConfigReader,
    DiskReader,
    FrozenReader,
    playbook_files,
    real_path,
)
from agent.playbook.inventory import Inventory, host_vars, resolve_hosts
from agent.playbook.inventory_loading import (
    heartbeat_problems,
    inventory_rules,
    read_inventory,
    read_settings,
    render_targets,
    routes_telling_nobody,
    settings_overrides,
    settings_path,
    template_files,
)
from agent.playbook.invisible_names import invisible_name_problems
from agent.playbook.literal_secrets import (
    comment_secret_problems,
    hide_secrets,
    literal_secret_problems,
    secret_lines,
    template_file_secret_problems,
)
from agent.playbook.models import Playbook
from agent.playbook.preprocess import Preprocessor
from agent.playbook.route_reach import unreached_route_entries
from agent.playbook.rules import playbook_rules, template_problems
from agent.playbook.task_validation import TaskChecker
from agent.playbook.templating import Templating
from agent.playbook.twice_probed import twice_probed
from agent.playbook.validation import diagnostics_from_validation
from agent.playbook.written_values import written_value_problems
from agent.playbook.yaml_source import Path_, SourceDocument, base60_problems, load_yaml
from botwarden.settings import StackSettings


@dataclass(frozen=True, eq=False)
class Config:
    """A fully validated configuration: what the engine schedules and runs."""

    inventory: Inventory
    playbooks: dict[str, Playbook]
    settings: StackSettings
    hosts: dict[str, HostContext]
    bound_checks: list[BoundCheck]
    templating: Templating
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Every file this configuration was loaded from, as read (by absolute path): inventory,
    settings, playbooks and the templates validated. It runs on these bytes
    (``templating.reader``) and they are what :mod:`agent.playbook.last_good` keeps."""
    playbook_files: tuple[str, ...] = ()
    """The playbook files loaded, in order (absolute paths)."""

    def hosts_of(self, play: Playbook) -> list[HostContext]:
        """The hosts ``play`` runs on, in inventory order."""
        return [self.hosts[name] for name in resolve_hosts(self.inventory, play.hosts)]

    def skipped_targets(self) -> dict[str, list[str]]:
        """Optional notification targets whose URL rendered empty (nothing is sent to them):
        name -> the environment variables their URL reads (the ones to set)."""
        return {name: sorted(self.templating.env_names(target.url))
                for name, target in self.inventory.notify.targets.items()
                if target.optional and not target.rendered_url}


def skipped_target_message(name: str, variables: Sequence[str]) -> str:
    """Why optional target ``name`` sends nothing and what to do, for logs and ``agent status``."""
    if not variables:
        return f"notification target {name!r} is skipped: its URL renders empty"
    names = ", ".join(f"${v}" for v in variables)
    return (f"notification target {name!r} is skipped: its URL renders empty ({names} not set in the agent's "
            "environment; export it and run `make run` again)")


@dataclass
class LoadResult:
    """``config`` when everything is valid; otherwise ``None`` and the ``diagnostics``."""

    config: Config | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    settings: StackSettings | None = None
    """The stack settings as loaded when their file had no problem (also when other files
    have some: where ``var/`` is, to find the last good configuration)."""
    settings_path: Path | None = None
    """The settings file the inventory (or ``$BOTWARDEN_SETTINGS``) names, if any: watched for edits."""
    playbook_files: list[Path] = field(default_factory=list)
    """The playbook files found (directories expanded), loaded or not."""
    unusable: list[str] = field(default_factory=list)
    """Playbook paths and directory entries reported as unusable (a FIFO named ``x.yaml``, a
    symbolic link that loops): never loaded, so they are not part of any configuration."""
    warnings: list[Diagnostic] = field(default_factory=list)
    """What loads but is ignored or cannot do what it says (``severity == "warning"``), sorted
    like ``diagnostics``; never a reason to refuse the configuration."""

    @property
    def ok(self) -> bool:
        return self.config is not None and not self.diagnostics


@dataclass
class _LoadedPlay:
    doc: SourceDocument
    raw: Any
    play: Playbook | None
    registers_uncertain: bool = False


def load_config(
    inventory_path: Path,
    playbook_paths: Sequence[Path],
    registry: Registry,
    env: Mapping[str, str] | None = None,
    templates_dir: Path | None = None,
    redactor: Redactor | None = None,
    *,
    context_paths: Sequence[Path] = (),
    inventory_required: bool = False,
    unset_env: Literal["error", "placeholder"] = "error",
    reader: ConfigReader | None = None,
    last_good: bool = False,
) -> LoadResult:
    """Load and validate everything; never raises for bad input (see the module docstring).

    ``env`` is what templates see as ``env`` (default: ``os.environ``). ``templates_dir``
    defaults to ``templates/`` beside the inventory when that directory exists.
    ``context_paths`` are playbooks loaded only so that references resolve (``depends_on:
    [other-play/check]``, ``budget.then``) when one file is validated on its own: their own
    problems are not reported, and a given playbook replaces a context one of the same name.
    With ``inventory_required`` a missing inventory file is an error; otherwise the built-in
    default inventory is used. ``unset_env="placeholder"`` loads for reading only (``agent
    status``, ``explain``...): an environment variable a template reads that is not set is a
    placeholder instead of an error (target URLs, heartbeat and parameters that read one are not
    checked) and ``config.templating.unset_env_used`` names those used. ``redactor``
    (default: a new one) learns the configuration's secrets: target URLs, environment values
    read by templates, parameters marked secret; it is ``config.templating.redactor``.
    Files are read through ``reader`` (default: the disk, :class:`~agent.playbook.files.DiskReader`);
    ``config.files`` holds what was read and the configuration renders its templates from it.
    ``last_good``: the files are a last good configuration (they loaded before): an error of a rule
    that refuses what runs, only otherwise than plainly meant (:func:`~agent.playbook.diagnostics.ran_as_read`:
    an empty ``when:``) is a warning, so a configuration that ran keeps running after an upgrade.
    """
    inventory_path = Path(inventory_path)
    disk = reader if reader is not None else DiskReader()
    if templates_dir is None and disk.is_dir(inventory_path.parent / "templates"):
        templates_dir = inventory_path.parent / "templates"
    templating = Templating(templates_dir, env=os.environ if env is None else env, redactor=redactor,
                            unset_env=unset_env, reader=disk)
    diagnostics: list[Diagnostic] = []

    inv_doc, inventory, problems = read_inventory(inventory_path, required=inventory_required, reader=disk)
    diagnostics += problems
    settings, problems = read_settings(inv_doc, inventory, inventory_path, reader=disk)
    settings_ok = inventory is not None and not [p for p in problems if p.severity != "warning"]
    diagnostics += problems
    environ = os.environ if env is None else env
    shared = settings.shared_key_problem(environ)  # the guard's own wallet, refused at load when it is the bot's
    if shared is not None:
        diagnostics.append(Diagnostic(str(settings_path(inventory, inventory_path) or inventory_path), 0, 0, shared,
                                      f"or unset ${settings.agent.api_wallet_key_env}: the agent then signs with "
                                      "the account's own key"))
    templating.redactor.add(environ.get(name, "") for name in (
        settings.bot.control_token_env, settings.bot.private_key_env, settings.exchange.admin_token_env))
    settings_vars = settings.template_vars()
    hosts: dict[str, HostContext] = {}
    if inv_doc is not None:  # a secret is refused even in an inventory that is wrong otherwise
        diagnostics += literal_secret_problems(inv_doc, skip=(("notify", "targets"), ("heartbeat", "url")))
        diagnostics += comment_secret_problems(inv_doc)
    if inventory is not None:
        diagnostics += inventory_rules(inv_doc, inventory)
        diagnostics += settings_overrides(inv_doc, inventory, settings_vars)
        diagnostics += render_targets(inv_doc, inventory, settings_vars, templating)
        diagnostics += routes_telling_nobody(inv_doc, inventory, templating)
        diagnostics += template_files(inv_doc, inventory, templating)
        diagnostics += heartbeat_problems(inv_doc, inventory, settings_vars, templating)
        hosts = {name: HostContext(name, host_vars(inventory, name, settings_vars)) for name in inventory.hosts}

    files, problems = playbook_files(playbook_paths, disk)
    once: dict[Path, Path] = {}
    for f in files:  # a file named twice (a relative and an absolute path, a link) is loaded once
        once.setdefault(real_path(f), f)
    files = list(once.values())
    diagnostics += problems
    unusable = [d.file for d in problems if d.severity == "error"]
    loaded = [_load_playbook(path, registry, templating, diagnostics, disk) for path in files]
    given = {item.play.name for item in loaded if item.play is not None}
    ignored: list[Diagnostic] = []
    mine = {real_path(f) for f in files}
    context_files, _ = playbook_files([p for p in context_paths if real_path(p) not in mine], disk)
    # a context play that does not load is kept (unbuilt): a reference into it is not judged, as in a
    # run of every file; left out, it was "no playbook named 'bot-health'" in the one file validated
    context = [item for item in (_load_playbook(path, registry, templating, ignored, disk) for path in context_files)
               if _play_name(item) not in given]
    unreadable = [Path(f) for f in unusable if Path(f).suffix in PLAYBOOK_SUFFIXES]
    playbooks = _cross_file_rules(loaded, context, inventory, diagnostics, unreadable)

    bound: list[BoundCheck] = []
    if inventory is not None:
        for item in loaded:
            if item.play is None or playbooks.get(item.play.name) is not item.play:
                continue
            try:
                targets = [hosts[name] for name in resolve_hosts(inventory, item.play.hosts)]
            except Exception:  # noqa: BLE001 - reported by the cross-file rules
                continue
            if not targets:
                diagnostics.append(warning(item.doc.diagnostic(
                    ("hosts",), f"hosts: {item.play.hosts!r} has no hosts in the inventory: nothing of this play "
                    "runs (no check is scheduled, run-playbook does nothing)",
                    f"add hosts to the group {item.play.hosts!r} in the inventory, or point hosts: at a group "
                    "that has some")))
            new, problems = bind_checks(item.doc, item.play, targets, registry, templating)
            bound += new
            diagnostics += problems
            routes = [route.name for route in inventory.notify.routes]
            silent = [route.name for route in inventory.notify.routes if route.targets and all(
                name in inventory.notify.targets and inventory.notify.targets[name].renders_empty
                for name in route.targets)]
            diagnostics += TaskChecker(item.doc, item.play, registry, templating, routes,
                                       registers_uncertain=item.registers_uncertain,
                                       silent_routes=silent).run(targets)

    if last_good:  # it loaded before the rules that refuse what runs otherwise than meant: it runs as it ran
        diagnostics[:] = [warning(d) if d.ran_as_read else d for d in diagnostics]
    if inventory is not None and not bound and not any(d.severity == "error" for d in diagnostics):
        diagnostics += _guard_off(loaded, inventory, inv_doc)
    diagnostics += twice_probed(bound, {item.play.name: item.doc for item in loaded if item.play is not None})
    if inventory is not None and not any(d.severity == "error" for d in diagnostics):
        every_play = [item for item in [*loaded, *context] if item.play is not None]
        diagnostics += unreached_route_entries(inv_doc, inventory, [item.play for item in every_play if item.play],
                                               [item.raw for item in every_play], registry)
    for doc in [d for d in [inv_doc, *(item.doc for item in loaded)] if d is not None]:  # 1:30 read as 90
        diagnostics += base60_problems(doc, diagnostics)
        diagnostics += invisible_name_problems(doc)
    read = dict(disk.files) if isinstance(disk, FrozenReader) else dict(getattr(disk, "read_files", {}))
    diagnostics += template_file_secret_problems(read, templating.templates_dir)
    secrets = {doc.file: secret_lines(doc) for doc in [inv_doc, *(item.doc for item in loaded)] if doc is not None}
    everything = _unique(hide_secrets(diagnostics, secrets))
    diagnostics = [d for d in everything if d.severity == "error"]
    warnings = [d for d in everything if d.severity != "error"]
    where = settings_path(inventory, inventory_path)
    good_settings = settings if settings_ok else None
    if diagnostics or inventory is None:
        return LoadResult(None, diagnostics, settings=good_settings, settings_path=where, playbook_files=files,
                          unusable=unusable, warnings=warnings)
    # From now on templates render from what was validated; a later edit needs a reload.
    templating.reader = FrozenReader(read, fallback=DiskReader())
    config = Config(inventory=inventory, playbooks=playbooks, settings=settings, hosts=hosts,
                    bound_checks=bound, templating=templating, files=read,
                    playbook_files=tuple(os.path.abspath(f) for f in files))
    return LoadResult(config, [], settings=good_settings, settings_path=where, playbook_files=files,
                      unusable=unusable, warnings=warnings)


def _load_playbook(path: Path, registry: Registry, templating: Templating,
                   diagnostics: list[Diagnostic], reader: ConfigReader) -> _LoadedPlay:
    doc = load_yaml(path, reader=reader)
    diagnostics += doc.diagnostics
    if doc.data is None:
        diagnostics += literal_secret_problems(doc)  # a file YAML cannot read: line by line
        if not doc.diagnostics:
            diagnostics.append(doc.at(1, 1, "the playbook is empty", "a playbook starts with version: 1 and "
                                      "name: ...; delete the file if it is not needed"))
        return _LoadedPlay(doc, None, None)
    if (kind := wrong_kind(doc, doc.data, "playbook")) is not None:
        diagnostics.append(kind)
        diagnostics += literal_secret_problems(doc)
        return _LoadedPlay(doc, None, None)
    pre = Preprocessor(doc, registry)
    raw = pre.playbook(doc.data)
    diagnostics += pre.diagnostics
    diagnostics += written_value_problems(doc, raw, Playbook, empty_is_absent=True, registry=registry)
    diagnostics += template_problems(doc, raw, templating)
    diagnostics += literal_secret_problems(doc)
    diagnostics += comment_secret_problems(doc)
    try:
        play = Playbook.model_validate({**raw, "source": path} if isinstance(raw, dict) else raw)
    except ValidationError as exc:
        diagnostics += diagnostics_from_validation(exc, doc, raw, model=Playbook)
        return _LoadedPlay(doc, raw, None)
    diagnostics += playbook_rules(doc, raw, play, registry, templating)
    return _LoadedPlay(doc, raw, play, registers_uncertain=pre.task_with_unknown_key)


def _guard_off(loaded: list[_LoadedPlay], inventory: Inventory, inv_doc: SourceDocument | None) -> list[Diagnostic]:
    """Plays with checks and not one check on any host: the guard would be off, silently (issue 15,
    F5: ``bots: {hosts: []}`` loaded as 0 checks with a warning per play and no page). An error at
    the hosts of the group the first such play names (or at its ``hosts:``); one play on an empty
    group beside others that run stays a warning."""
    with_checks = [item for item in loaded if item.play is not None and item.play.checks]
    if not with_checks:
        return []
    first = with_checks[0]
    assert first.play is not None
    names = sorted({item.play.hosts for item in with_checks if item.play is not None})
    message = (f"no check runs on any host: every play with checks names hosts with no host in the inventory "
               f"({', '.join(repr(n) for n in names)}): the agent would guard nothing")
    hint = "add the bot's host to the group (e.g. hosts: [local]), or point hosts: at a group that has some"
    if inv_doc is not None and first.play.hosts in inventory.groups and inv_doc.marks.get(
            ("groups", first.play.hosts, "hosts")) is not None:
        return [inv_doc.diagnostic(("groups", first.play.hosts, "hosts"), message, hint)]
    return [first.doc.diagnostic(("hosts",), message, hint)]


def _cross_file_rules(loaded: list[_LoadedPlay], context: list[_LoadedPlay], inventory: Inventory | None,
                      diagnostics: list[Diagnostic], unreadable: Sequence[Path] = ()) -> dict[str, Playbook]:
    """Unique names, ``hosts`` patterns and ``budget.then`` references across playbooks
    (``context`` plays are only looked up; the returned playbooks are the ``loaded`` ones).

    A playbook file that does not parse (or cannot be read: ``unreadable``) still names its
    play for the references into it (:func:`_written_name`): a ``depends_on`` or ``budget.then``
    into it is not judged, so its error is reported in that file alone, not in every file that
    names it."""
    playbooks: dict[str, Playbook] = {}
    first_file: dict[str, str] = {}
    every = [*loaded, *context]
    unparsed = {_written_name(item.doc.lines, Path(item.doc.file)) for item in every
                if not (isinstance(item.raw, dict) and isinstance(item.raw.get("name"), str))}
    unparsed |= {path.stem for path in unreadable}
    names = {item.raw["name"] for item in every
             if isinstance(item.raw, dict) and isinstance(item.raw.get("name"), str)} | unparsed
    unbuilt: dict[str, set[str] | None] = dict.fromkeys(unparsed)
    unbuilt |= {item.raw["name"]: _raw_check_names(item.raw) for item in every
                if item.play is None and isinstance(item.raw, dict) and isinstance(item.raw.get("name"), str)}
    for item in loaded:
        play, doc = item.play, item.doc
        if play is None:
            continue
        if play.name in playbooks:
            diagnostics.append(doc.diagnostic(("name",), f"duplicate playbook name {play.name!r} "
                                              f"(also in {first_file[play.name]})", "playbook names are unique"))
            continue
        playbooks[play.name] = play
        first_file[play.name] = doc.file
        if inventory is not None:
            try:
                resolve_hosts(inventory, play.hosts)
            except Exception:  # noqa: BLE001 - any failure to resolve is the error reported here
                known = {"all", *inventory.groups, *inventory.hosts}
                diagnostics.append(doc.diagnostic(("hosts",), f"no host or group named {play.hosts!r} in the "
                                                  "inventory", suggest(play.hosts, known)
                                                  or f"known: {', '.join(sorted(known))}"))
        for i, check in enumerate(play.checks):
            for j, parent in enumerate(check.depends_on):
                if parent in {c.name for c in play.checks} or "/" not in parent:
                    continue  # a check of this play (checked with the play)
                other_name, _, other_check = parent.partition("/")
                if (other_name, other_check) == (play.name, check.name):
                    diagnostics.append(doc.diagnostic(("checks", i, "depends_on", j), f"depends_on: check "
                                                      f"{parent!r} depends on itself", "depends_on names the check "
                                                      "this one needs to work (the process, the host); remove "
                                                      "this entry"))
                    continue
                other = next((x.play for x in every if x.play is not None and x.play.name == other_name), None)
                checks_of = {c.name for c in other.checks} if other is not None else unbuilt.get(other_name)
                if other is None and other_name in unbuilt and (checks_of is None or other_check in checks_of):
                    continue  # its playbook does not load: its own errors say why, this link is not judged
                if checks_of is None or other_check not in checks_of:
                    diagnostics.append(doc.diagnostic(("checks", i, "depends_on", j),
                                                      f"depends_on: no check named {parent!r}",
                                                      _depends_on_hint(other_name, other_check, checks_of, names)))
        for rem_name, rem in play.remediations.items():
            if rem.budget and rem.budget.then and rem.budget.then not in names:
                diagnostics.append(doc.diagnostic(("remediations", rem_name, "budget", "then"),
                                                  f"no playbook named {rem.budget.then!r}",
                                                  suggest(rem.budget.then, names)
                                                  or f"known playbooks: {', '.join(sorted(names))}"))
            elif rem.budget and rem.budget.then:
                then = next((x.play for x in every if x.play is not None and x.play.name == rem.budget.then), None)
                if then is not None and not then.tasks:
                    diagnostics.append(doc.diagnostic(
                        ("remediations", rem_name, "budget", "then"), f"playbook {then.name!r} has no tasks: "
                        "once the budget is spent, running it does nothing", "name a playbook with tasks (the "
                        "emergency), or add tasks: to it (the checks of a play are not run by budget.then)"))
                elif then is not None and not _runs_something(then.tasks):
                    diagnostics.append(doc.diagnostic(
                        ("remediations", rem_name, "budget", "then"), f"playbook {then.name!r} does nothing: "
                        "every task of it is skipped (when: always false) or an empty block, so once the budget "
                        "is spent the hand-over does nothing", "name a playbook whose tasks run (the emergency), "
                        "or fix the when: of its tasks"))
    diagnostics += _depends_on_circles(loaded, every)
    diagnostics += _silence_until_ok_references(loaded, every, unbuilt, names)
    return playbooks


def _runs_something(tasks: Sequence[Any] | None) -> bool:
    """Whether any task of ``tasks`` can run: a module task whose ``when:`` is not always false,
    or a block (with its rescue and always) holding one."""
    from agent.playbook.constant_expressions import constant_truth

    for task in tasks or []:
        if task.when is not None and constant_truth(task.when) is False:
            continue
        if task.module is not None or any(_runs_something(getattr(task, part)) for part in ("block", "rescue", "always")):
            return True
    return False


def _silence_until_ok_references(loaded: list[_LoadedPlay], every: list[_LoadedPlay],
                                 unbuilt: dict[str, set[str] | None], names: set[str]) -> list[Diagnostic]:
    """Each ``silence_until_ok`` of a task names a check that exists: CHECK of the task's own
    play, or PLAYBOOK/CHECK. A warning, not an error: a silence of nothing only lets through an
    alert it meant to hold, and an emergency must never be refused for that."""
    from agent.playbook.rules import all_tasks

    built = {x.play.name: {c.name for c in x.play.checks} for x in every if x.play is not None}
    out: list[Diagnostic] = []
    for item in loaded:
        if item.play is None:
            continue
        for path, task in all_tasks(item.play):
            for j, ref in enumerate(task.silence_until_ok):
                play_name, _, check = ref.partition("/") if "/" in ref else (item.play.name, "", ref)
                checks = built.get(play_name, unbuilt.get(play_name))
                if play_name not in built and play_name in unbuilt and (checks is None or check in checks):
                    continue  # its playbook does not load: its own errors say why
                if checks is not None and check in checks:
                    continue
                hint = (_depends_on_hint(play_name, check, checks, names) if "/" in ref else
                        (f"did you mean {near!r}?" if (near := _nearest(check, checks or set())) else
                         f"a check of another playbook is written PLAYBOOK/CHECK (e.g. 'bot-health/{check}')"))
                out.append(warning(item.doc.diagnostic((*path, "silence_until_ok", j),
                                                       f"silence_until_ok: no check named {ref!r}: its alerts "
                                                       "are not silenced", hint)))
    return out


_NAME_LINE = re.compile(r"""^name:[ \t]*(["']?)([A-Za-z0-9][A-Za-z0-9_.-]*)\1[ \t]*(?:#.*)?$""")


def _play_name(item: _LoadedPlay) -> str:
    """The name of the play ``item`` holds, or says it has when it does not load."""
    if item.play is not None:
        return item.play.name
    if isinstance(item.raw, dict) and isinstance(item.raw.get("name"), str):
        return str(item.raw["name"])
    return _written_name(item.doc.lines, Path(item.doc.file))


def _written_name(lines: Sequence[str], path: Path) -> str:
    """The play name a file that does not parse says it has: its top-level ``name:`` line,
    else its file name without the suffix (how the shipped playbooks are named)."""
    for text in lines:
        match = _NAME_LINE.match(text.rstrip("\r"))
        if match:
            return match[2]
    return path.stem


def _raw_check_names(raw: dict[str, Any]) -> set[str] | None:
    """The check names written in a playbook that did not load; None when they cannot be read."""
    checks = raw.get("checks")
    if not isinstance(checks, list):
        return None
    names = [c.get("name") for c in checks if isinstance(c, dict)]  # a list, not a set: a name may be a list
    return {n for n in names if isinstance(n, str)} if all(isinstance(n, str) for n in names) else None


def _depends_on_hint(play: str, check: str, checks: set[str] | None, plays: set[str]) -> str:
    """What to write for a ``PLAYBOOK/CHECK`` that names nothing: the nearest playbook, or the
    nearest check of the playbook it names."""
    if checks is None:
        return (f"did you mean '{near}/{check}'?" if (near := _nearest(play, plays)) else
                f"no playbook named {play!r}; known playbooks: {', '.join(sorted(plays))}")
    near = _nearest(check, checks)
    return (f"did you mean '{play}/{near}'?" if near else
            f"checks of {play!r}: {', '.join(sorted(checks))}" if checks else f"playbook {play!r} has no checks")


def _nearest(word: str, candidates: set[str]) -> str | None:
    found = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def _depends_on_circles(loaded: list[_LoadedPlay], every: list[_LoadedPlay]) -> list[Diagnostic]:
    """A circle of ``depends_on`` (each check would suppress the other's alerts, so a problem
    of both is never sent): reported once, at the first link written in a validated file."""
    edges: dict[str, list[tuple[str, _LoadedPlay, Path_]]] = {}
    for item in every:
        if item.play is None:
            continue
        local = {c.name for c in item.play.checks}
        for i, check in enumerate(item.play.checks):
            node = f"{item.play.name}/{check.name}"
            for j, parent in enumerate(check.depends_on):
                target = f"{item.play.name}/{parent}" if parent in local else parent
                if target == node:
                    continue  # depending on itself: reported with the play's own rules, once
                edges.setdefault(node, []).append((target, item, ("checks", i, "depends_on", j)))
    out: list[Diagnostic] = []
    reported: set[frozenset[str]] = set()
    validated = {id(item) for item in loaded}
    for start in edges:
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, trail = stack.pop()
            for target, item, path in edges.get(node, []):
                if target == start:
                    circle = frozenset(trail)
                    first = edges[start][0]
                    if circle in reported or id(first[1]) not in validated:
                        continue
                    reported.add(circle)
                    link = next(e for e in edges[start] if e[0] == trail[1]) if len(trail) > 1 else (target, item, path)
                    names = " -> ".join([*trail, start])
                    out.append(link[1].doc.diagnostic(link[2], f"depends_on makes a circle: {names}; each check "
                                                      "would suppress the other's alerts, so none is ever sent",
                                                      "a check depends on what it needs to work (the process, "
                                                      "the host); remove one link"))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, [*trail, target]))
    return out


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Each problem once (the same one is found for several hosts, or through an anchor merged
    into several places), sorted by file, line and column."""
    seen: set[tuple[str, int, int, str]] = set()
    out: list[Diagnostic] = []
    for diag in diagnostics:
        ident = (diag.file, diag.line, diag.column, _without_label(diag.message))
        if ident not in seen:
            seen.add(ident)
            out.append(diag)
    return sorted(out, key=order)


def _without_label(message: str) -> str:
    # "checks[2].timeout: ..." and "checks[0].timeout: ..." at one place: one anchored value;
    # "... on host 'a': ..." and "... on host 'b': ...": one line to change, said once
    head, sep, rest = message.partition(": ")
    message = rest if sep and "[" in head and " " not in head else message
    return re.sub(r" on host '[^']*'", "", message)
