"""Where the configuration comes from, what to run when the files on disk are broken, and a
cheap fingerprint to notice edits.

Nothing here raises for what is on disk: a file that cannot be read, listed or even stat'ed
(a symbolic link that loops, a FIFO, no permission) is a diagnostic of :meth:`ConfigSource.load`
and a distinct value of :meth:`ConfigSource.fingerprint`; an unexpected exception while loading
becomes a diagnostic too (a rejection, with a request to report it), never the end of the caller.

:meth:`ConfigSource.choose` picks what to run, in the caller's order of preference, among

* ``disk``: the files as they are, when everything is valid;
* ``last-good``: the last configuration that loaded (:mod:`agent.playbook.last_good`), saved
  after every good load by :meth:`ConfigSource.save_last_good`;
* ``as-read``: when an error on disk is only of a rule that refuses what runs otherwise than
  plainly meant (:func:`~agent.playbook.diagnostics.ran_as_read`: an empty ``when:``), the files
  as they read, those errors taken as warnings (as for the last good configuration), with only
  the playbooks that still do not load left out: an agent upgraded on a fresh ``var/`` (no last
  good configuration) with an empty ``when:`` in the emergency dropped the emergency and every
  play whose budget hands over to it (the shipped files: 16 checks of 41, none of the bot's);
* ``valid-part``: the inventory and settings on disk with only the playbooks that are valid
  themselves and whose references resolve (a playbook is left out with what it needs);
* ``built-in``: no playbook, only enough to tell operators that the agent cannot guard: the
  inventory and settings on disk when they load, else the built-in inventory with the settings
  file the inventory names when that one loads, else the built-in inventory and settings.
"""
from __future__ import annotations

import logging
import os
import stat
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

from agent.core.redaction import Redactor
from agent.modules.registry import Registry, default_registry
from agent.playbook.diagnostics import Diagnostic
from agent.playbook.files import PLAYBOOK_SUFFIXES, ConfigReader, DiskReader, FrozenReader, key, real_path
from agent.playbook.inventory import default_inventory_data
from agent.playbook.last_good import Snapshot, find_snapshot, save_snapshot
from botwarden import safe_yaml
from botwarden.safe_files import FileProblem, read_file

if TYPE_CHECKING:
    from agent.playbook.loader import Config, LoadResult

log = logging.getLogger("agent")
Origin = Literal["disk", "last-good", "as-read", "valid-part", "built-in", "as-started"]
"""``as-started``: the files on disk with the stack settings the supervised programs were started
with, not the edited ones on disk (:func:`agent.engine.settings_changes.started_on_other_settings`)."""
Fingerprint = tuple[tuple[str, object], ...]
START_ORDER: tuple[Origin, ...] = ("disk", "last-good", "as-read", "valid-part", "built-in")
"""What the resident agent (and the web page) start on: the files on disk; when they do not
load, the last good configuration; without one, the files as they read (when a rule that refuses
only what runs otherwise than meant refuses them), or the valid part of the files on disk; else
the built-in inventory, only to say that it cannot guard (never a silent crash loop)."""

ACT_ORDER: tuple[Origin, ...] = ("disk", "valid-part", "as-read", "last-good")
"""What an operator's acting command (``agent run-playbook``, ``halt``, ...) runs on: the files on
disk before the last good configuration (the operator's latest edit); of the files, the valid
part, else the files as they read (a play a newer rule refuses, the emergency with an empty
``when:``, runs as written, as the resident agent runs it: ``agent run-playbook emergency`` on a
fresh ``var/`` refused while the agent ran that very playbook)."""


@dataclass(frozen=True)
class Chosen:
    """The configuration to run and why it is that one."""

    config: Config
    origin: Origin
    problems: list[Diagnostic] = field(default_factory=list)
    """What is wrong on disk (empty when ``origin`` is ``disk``)."""
    snapshot: Snapshot | None = None
    """The last good configuration run (``origin`` ``last-good``)."""
    left_out: list[str] = field(default_factory=list)
    """Playbook files left out (``origin`` ``valid-part`` or ``as-read``)."""

    @property
    def guards_fully(self) -> bool:
        return self.origin in ("disk", "last-good", "as-started")

    def summary(self) -> str:
        """One line for operators: what runs and the first problem (``file:line:col: message``)."""
        first = _one_line(self.problems[0]) if self.problems else ""
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        if self.origin == "disk":
            return "the configuration on disk"
        if self.origin == "last-good":
            assert self.snapshot is not None
            return f"running on last good configuration from {self.snapshot.when}: {first}{more}"
        if self.origin == "as-started":
            return f"running the files on disk with the stack settings the programs were started with: {first}{more}"
        if self.origin == "as-read":
            left = (f"; left out {', '.join(Path(f).name for f in self.left_out)}" if self.left_out else "")
            return (f"no last good configuration: running the files as written ({len(self.config.playbooks)} "
                    f"playbook(s){left}), though they do not say what they plainly mean: {first}{more}")
        if self.origin == "valid-part":
            return (f"no last good configuration: running only the valid part ({len(self.config.playbooks)} "
                    f"playbook(s); left out {', '.join(Path(f).name for f in self.left_out) or 'none'}): "
                    f"{first}{more}")
        return f"no valid configuration and no last good one: the agent cannot guard: {first}{more}"

    def details(self) -> str:
        """Every problem, as ``agent validate`` prints them."""
        return "\n".join(str(d) for d in self.problems)


class ConfigSource:
    """Where the configuration comes from (see the module docstring)."""

    def __init__(self, inventory: Path, playbook_paths: Sequence[Path], *, env: Mapping[str, str] | None = None,
                 registry: Registry | None = None, templates_dir: Path | None = None,
                 unset_env: Literal["error", "placeholder"] = "error", inventory_required: bool = False) -> None:
        self.inventory = Path(inventory)
        self.unset_env: Literal["error", "placeholder"] = unset_env
        """``placeholder``: loaded for reading only (:func:`agent.playbook.load_config`)."""
        self.playbook_paths = list(playbook_paths)
        self.env = dict(env if env is not None else os.environ)
        self.registry = registry or default_registry()
        self.templates_dir = templates_dir or real_path(self.inventory).parent / "templates"
        self.redactor = Redactor.for_environment(self.env)
        """Every configuration loaded from here shares it: a secret learnt stays redacted after a reload."""
        self.settings_path: Path | None = None
        """The settings file the last load looked at (watched by :meth:`fingerprint`)."""
        self.var_dir: Path | None = None
        """``var/`` of the last settings that loaded (where the last good configuration is kept)."""
        self.inventory_required = inventory_required
        self._settings_overlay: bytes | None = None
        """Served for the settings file by a load from disk (:meth:`choose_with_settings`)."""
        """A missing inventory file is an error (it was named by ``--inventory``), not the built-in
        default. Set too once the file has been read: an inventory moved away or deleted under a
        running agent is a rejected reload, never a switch to the built-in inventory and settings
        (default ports: another stack's; the default inbox)."""

    # -- loading -------------------------------------------------------------------------------
    def load(self, paths: Sequence[Path] | None = None, *, reader: ConfigReader | None = None,
             inventory: Path | None = None, templates_dir: Path | None = None, last_good: bool = False) -> LoadResult:
        """Load and validate; never raises (an unexpected exception is a diagnostic). ``last_good``:
        the files are a last good configuration (``load_config``'s)."""
        from agent.playbook import load_config
        from agent.playbook.loader import LoadResult

        from_disk = reader is None and inventory is None
        inventory = inventory or self.inventory
        if from_disk and not self.inventory_required and os.path.lexists(inventory):
            self.inventory_required = True  # read once: from now on it must stay
        read_with = reader
        if from_disk and self._settings_overlay is not None and self.settings_path is not None:
            read_with = FrozenReader({key(self.settings_path): self._settings_overlay}, fallback=DiskReader())
        try:
            result = load_config(inventory, list(paths) if paths is not None else self.playbook_paths,
                                 self.registry, env=self.env, templates_dir=templates_dir or self.templates_dir,
                                 redactor=self.redactor, reader=read_with, unset_env=self.unset_env,
                                 inventory_required=from_disk and self.inventory_required, last_good=last_good)
        except Exception as exc:
            log.exception("loading the configuration failed unexpectedly")
            return LoadResult(None, [Diagnostic(str(inventory), 0, 0, "the configuration could not be loaded: "
                                                f"internal error {type(exc).__name__}: {exc}",
                                                "this is a bug: please report it with the agent's log; the "
                                                "last good configuration keeps running")])
        if reader is None:
            self.settings_path = result.settings_path
            if result.settings is not None:
                self.var_dir = result.settings.path(result.settings.var_dir)
        return result

    def save_last_good(self, config: Config, *, now: datetime | None = None) -> str | None:
        """Keep ``config`` (loaded from disk) as the last good configuration, saved at ``now``;
        the reason when it could not be written (the caller logs it: the agent runs on regardless)."""
        var_dir = config.settings.path(config.settings.var_dir)
        try:
            save_snapshot(var_dir, files=config.files, inventory=self.inventory, playbook_paths=self.playbook_paths,
                          playbook_files=config.playbook_files, templates_dir=self.templates_dir, now=now,
                          redact=config.templating.redactor.redact)
        except (OSError, ValueError) as exc:
            return f"the last good configuration could not be saved under {var_dir}: {exc}"
        return None

    def last_good(self) -> tuple[Snapshot | None, list[str]]:
        """The last good configuration saved for this source (and why others were not used).

        Looked for in ``var/`` of the settings on disk when they load, else of the settings
        last loaded, else ``var/`` beside the inventory and under ``$BOTWARDEN_ROOT``.
        """
        candidates = [d for d in (self.var_dir,) if d is not None]
        candidates.append(real_path(self.inventory).parent / "var")
        root = os.environ.get("BOTWARDEN_ROOT")
        if root:
            candidates.append(Path(root) / "var")
        return find_snapshot(candidates, self.inventory, self.playbook_paths)

    def load_snapshot(self, snap: Snapshot) -> LoadResult:
        """Load a last good configuration (validated again: the environment may have changed; a rule
        newer than the snapshot that refuses only what runs otherwise than meant warns: it ran so)."""
        return self.load([Path(p) for p in snap.playbook_files], reader=snap.reader(), inventory=Path(snap.inventory),
                         templates_dir=Path(snap.templates_dir) if snap.templates_dir else self.templates_dir,
                         last_good=True)

    def load_valid_part(self, result: LoadResult, *, as_read: bool = False) -> tuple[LoadResult, list[str]] | None:
        """The inventory and settings on disk with only the playbooks that load, each with what it
        refers to; None when a problem is outside the playbooks (inventory, settings, templates
        named by the inventory). ``as_read``: loaded as ``load(last_good=True)`` loads (an error of a
        rule refusing only what runs otherwise than meant is a warning), ``result`` too."""
        current = list(result.playbook_files)
        left_out: list[str] = []
        last = result
        for _ in range(len(current) + 1):
            by_name = {str(f): f for f in current}
            bad = {d.file for d in last.diagnostics}
            if bad - by_name.keys() - set(result.unusable):
                return None
            left_out += [name for name in by_name if name in bad]
            current = [f for f in current if str(f) not in bad]
            last = self.load(current, last_good=as_read)
            if last.config is not None:
                return last, left_out
        return None

    def load_built_in(self, disk: LoadResult | None = None) -> LoadResult:
        """What can tell operators that the agent cannot guard, with no playbook: the inventory
        and settings on disk when they load (its routes and ports: the [CONFIG] page reaches the
        configured targets); else the built-in inventory with the settings file the inventory on
        disk names (or ``disk.settings_path``) when that file is readable (the configured inbox
        port, metrics port, ``var/``); else the built-in inventory and settings."""
        own = self.load([], reader=DiskReader(), inventory=self.inventory) if self.inventory_exists() else None
        if own is not None and own.config is not None and not own.diagnostics:
            return own
        built_in = self.inventory.parent / "inventory (built-in)"
        settings = _named_settings(self.inventory) or (disk.settings_path if disk is not None else None)
        if settings is not None:
            try:  # never blocks: a FIFO or a device named as the settings hung the start (no page at all)
                data = read_file(settings)
            except FileProblem:
                data = None
            if data is not None:
                inventory = {**default_inventory_data(), "settings": str(settings.absolute())}
                reader = FrozenReader({key(built_in): yaml.safe_dump(inventory).encode(), key(settings): data})
                result = self.load([], reader=reader, inventory=built_in)
                if result.config is not None and not result.diagnostics:
                    return result
        return self.load([], reader=FrozenReader({}), inventory=built_in)

    def choose_with_settings(self, settings: bytes, order: Sequence[Origin]) -> Chosen | None:
        """:meth:`choose` among ``order``, the settings file read as ``settings`` (the ones applied
        by ``agent stack up``) and every other file from the disk."""
        saved, self._settings_overlay = self._settings_overlay, settings
        try:
            chosen, _ = self.choose(order)
        finally:
            self._settings_overlay = saved
        return chosen

    def inventory_exists(self) -> bool:
        return os.path.isfile(self.inventory)

    def choose(self, order: Sequence[Origin], *, first: LoadResult | None = None,
               need_play: str | None = None) -> tuple[Chosen | None, LoadResult]:
        """The first of ``order`` that loads (and holds playbook ``need_play`` when given).

        Returns it (None when none does) and the result of loading the disk (``first`` when
        given: the caller loaded it already)."""
        disk = first if first is not None else self.load()
        problems = list(disk.diagnostics)
        for origin in order:
            chosen = self._try(origin, disk, problems)
            if chosen is not None and (need_play is None or need_play in chosen.config.playbooks):
                return chosen, disk
        return None, disk

    def _try(self, origin: Origin, disk: LoadResult, problems: list[Diagnostic]) -> Chosen | None:
        if origin == "disk":
            return Chosen(disk.config, "disk") if disk.config is not None and not disk.diagnostics else None
        if origin == "last-good":
            snap, why = self.last_good()
            for line in why:
                log.warning("last good configuration not used: %s", line)
            if snap is None:
                return None
            result = self.load_snapshot(snap)
            if result.config is None:
                for d in result.diagnostics:
                    log.error("the last good configuration does not load now: %s", _one_line(d))
                return None
            return Chosen(result.config, "last-good", problems, snapshot=snap)
        if origin == "as-read":
            if not any(d.ran_as_read for d in disk.diagnostics):
                return None
            part = self.load_valid_part(self.load(last_good=True), as_read=True)
            if part is None or part[0].config is None:
                return None
            if not {d.file for d in disk.diagnostics if d.ran_as_read} - set(part[1]):
                return None  # every file it concerns is left out anyway: that is the valid part
            return Chosen(part[0].config, "as-read", problems, left_out=part[1])
        if origin == "valid-part":
            if disk.config is not None and not disk.diagnostics:
                return None
            part = self.load_valid_part(disk)
            if part is None:
                return None
            return Chosen(part[0].config, "valid-part", problems, left_out=part[1]) if part[0].config else None
        result = self.load_built_in(disk)
        if result.config is None:
            for d in result.diagnostics:
                log.error("the built-in configuration does not load: %s", _one_line(d))
            return None
        return Chosen(result.config, "built-in", problems)

    # -- noticing edits -----------------------------------------------------------------------
    def fingerprint(self) -> Fingerprint:
        """Changes when a file of the configuration changes (content, type, target, permission,
        appearance); never raises: what cannot be looked at is part of the value."""
        try:
            out: list[tuple[str, object]] = [_stamp(self.inventory)]
            if self.settings_path is not None:
                out.append(_stamp(self.settings_path))
            for path in self.playbook_paths:
                out.append(_stamp(path))
                out += [_stamp(entry) for entry in _entries(path, PLAYBOOK_SUFFIXES)]
            out += [_stamp(entry) for entry in _entries(self.templates_dir, None)]
            return tuple(out)
        except Exception as exc:  # noqa: BLE001 - a value that differs from any good one: a reload reports it
            return (("fingerprint failed", f"{type(exc).__name__}: {exc}"),)


SETTLE_SECONDS = 1.0
"""A changed configuration is loaded once its files have stayed the same (content stamps: size,
mtime, inode) for this long: an editor or ``scp`` writing a playbook in pieces is not loaded
half-written (any cut at a task boundary is valid YAML: an emergency without its last steps)."""
SETTLE_MAX_ROUNDS = 30
"""Files that never stop changing are loaded after this many rounds anyway (a log written into
``playbooks/`` must not stop reloads for ever)."""


async def settled(fingerprint: Callable[[], Awaitable[Fingerprint]], seen: Fingerprint,
                  sleep: Callable[[float], Awaitable[object]], *, settle: float = SETTLE_SECONDS,
                  max_rounds: int = SETTLE_MAX_ROUNDS) -> Fingerprint:
    """Wait until ``fingerprint()`` returns the same value twice ``settle`` seconds apart,
    starting from ``seen`` (a value just taken); return that value."""
    for _ in range(max_rounds):
        await sleep(settle)
        now = await fingerprint()
        if now == seen:
            return now
        seen = now
    return seen


def _stamp(path: Path) -> tuple[str, object]:
    try:
        info = os.stat(path)
        return (str(path), (stat.S_IFMT(info.st_mode), info.st_mtime_ns, info.st_size, info.st_ino, info.st_dev,
                            stat.S_IMODE(info.st_mode)))
    except OSError as exc:
        try:
            link: object = os.readlink(path)
        except OSError:
            link = None
        return (str(path), ("error", exc.errno, link))
    except ValueError as exc:
        return (str(path), ("error", str(exc)))


def _entries(path: Path, suffixes: tuple[str, ...] | None) -> list[Path]:
    try:
        if not stat.S_ISDIR(os.stat(path).st_mode):
            return []
        names = sorted(os.listdir(path))
    except (OSError, ValueError):
        return []  # _stamp(path) carries the error
    return [Path(path) / n for n in names if suffixes is None or Path(n).suffix.lower() in suffixes]


def _named_settings(inventory: Path) -> Path | None:
    """The settings file an inventory names (``settings: stack.yaml``), read from its raw YAML:
    also when the inventory does not validate otherwise. None when it names none or cannot be read."""
    try:
        data = safe_yaml.load(read_file(inventory).decode("utf-8"))
    except (FileProblem, ValueError, yaml.YAMLError):
        return None
    named = data.get("settings") if isinstance(data, dict) else None
    if not isinstance(named, str) or not named.strip():
        return None
    path = Path(named)
    return path if path.is_absolute() else real_path(inventory).parent / path


def _one_line(d: Diagnostic) -> str:
    where = f"{d.file}:{d.line}:{d.column}" if d.line else d.file
    return f"{where}: {d.message}"

