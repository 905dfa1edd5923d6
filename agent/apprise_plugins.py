"""Apprise's notification plugins, one at a time: which schemes exist, and the plugin of one URL.

apprise finds the plugin of a URL scheme through its ``NotificationManager``, whose first use
imports every plugin it ships (``load_modules``: some 130 modules that pull in requests,
oauthlib, cryptography, smtplib...; about 20 MB of RSS, measured in the idle agent). The agent
needs one or two of them. This module reads the scheme of each plugin from the plugin sources
(the ``protocol`` and ``secure_protocol`` class attributes, which is where apprise itself takes
them from, see ``URLBase.schemas``) without importing anything, and imports only the plugin
module of a scheme actually used.

Why not apprise's public API: it offers no way to load one plugin, and ``Apprise().add()`` of a
``json://`` and a ``mailto://`` URL takes a fresh interpreter to 53.2 MB of RSS against 37.0 MB
through this module (measured on 2026-12-06, apprise 2.3.0): 16 MB kept by the resident agent.

Contract: the schemes this module accepts and the plugin class it returns for each are exactly
apprise's (tests/agent/notify/test_apprise_plugins.py compares them with apprise's own map for
every scheme). A scheme the source index does not resolve (a plugin that builds its scheme
names at run time, such as ``kodi://`` or ``dbus://``) is looked up through apprise's full
load: correct, only not light.
"""
from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apprise import AppriseAsset
    from apprise.plugins.base import NotifyBase

log = logging.getLogger(__name__)

PLUGIN_PACKAGE = "apprise.plugins"
MODULE_FILE_RE = re.compile(r"^(?P<name>(?!base|_)[a-z0-9_]+)(\.py)?$", re.IGNORECASE)
"""Which entries of the plugin folder apprise imports (``PluginManager.load_modules``)."""
PLUGIN_CLASS_RE = re.compile(r"^(?P<name>Notify(?!Base|Format|ImageSize|Type)[A-Za-z0-9]+)$")
"""Which names of a plugin module apprise considers (``NotificationManager.module_filter_re``)."""
SCHEME_RE = re.compile(r"^\s*(?P<schema>[a-z0-9]{1,32})://", re.IGNORECASE)
"""apprise's ``GET_SCHEMA_RE``: a scheme is 1 to 32 letters or digits."""
_PROTOCOL_ASSIGNMENT = re.compile(r"^    (?:secure_)?protocol[ \t]*(?::[^=\n]*)?=[ \t]*", re.MULTILINE)
"""A class-level ``protocol = ...`` or ``secure_protocol = ...`` (plugin classes are top-level)."""
_CLASS_LINE = re.compile(r"^class[ \t]+(?P<name>\w+)", re.MULTILINE)
_CLOSING = {"(": ")", "[": "]", "{": "}"}


def parse_urls(text: str) -> list[str]:
    """The URLs of one target string, split as ``Apprise.add`` splits it (commas, spaces)."""
    try:
        from apprise.utils.parse import parse_urls as split
    except ImportError:  # apprise < 1.9 kept its helpers in one module
        from apprise.utils import parse_urls as split  # type: ignore[attr-defined,no-redef]
    return list(split(text))


def url_scheme(url: str) -> str | None:
    """The lower-cased scheme of an apprise URL, None when it has none apprise could read."""
    match = SCHEME_RE.match(url)
    return match.group("schema").lower() if match else None


@functools.cache
def scheme_index() -> Mapping[str, str]:
    """Scheme -> name of the plugin module (``custom_json``, ``email``...) that declares it.

    Read from the installed apprise's sources, nothing imported. Empty when the plugins are not
    a folder of sources (a zipped install): every lookup then goes through apprise's full load.
    """
    spec = importlib.util.find_spec("apprise")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    index: dict[str, str] = {}
    for folder in folders:
        plugins = os.path.join(folder, "plugins")
        if not os.path.isdir(plugins):
            continue
        for entry in sorted(os.listdir(plugins)):
            match = MODULE_FILE_RE.match(entry)
            path = os.path.join(plugins, entry)
            if not match or not (entry.endswith(".py") or os.path.isdir(path)):
                continue
            files = [path] if entry.endswith(".py") else sorted(
                os.path.join(path, f) for f in os.listdir(path) if f.endswith(".py"))
            for file in files:
                for scheme in _declared_schemes(file):
                    index.setdefault(scheme, match.group("name"))
    return index


def _declared_schemes(path: str) -> list[str]:
    """The literal scheme names assigned to ``protocol``/``secure_protocol`` in one source file."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return []
    out: list[str] = []
    classes = [(m.start(), m.group("name")) for m in _CLASS_LINE.finditer(text)]
    for match in _PROTOCOL_ASSIGNMENT.finditer(text):
        owner = next((name for start, name in reversed(classes) if start < match.start()), "")
        if not PLUGIN_CLASS_RE.match(owner):
            continue  # not in the body of a plugin class
        source = _expression_at(text, match.end())
        try:
            value: Any = ast.literal_eval(source)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue  # computed at run time (kodi, dbus...): left to apprise's full load
        values = [value] if isinstance(value, str) else list(value) if isinstance(value, (tuple, list, set)) else []
        out.extend(v.lower() for v in values if isinstance(v, str) and SCHEME_RE.match(f"{v}://"))
    return out


def _expression_at(text: str, start: int) -> str:
    """The expression starting at ``start``: up to its closing bracket, else to the end of the line."""
    closing = _CLOSING.get(text[start:start + 1])
    if closing is None:
        end = text.find("\n", start)
        return text[start:] if end < 0 else text[start:end]
    depth = 0
    for i in range(start, len(text)):
        if text[i] in _CLOSING:
            depth += 1
        elif text[i] in ")]}":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
    return text[start:]


def is_known_scheme(scheme: str) -> bool:
    """Whether apprise has a plugin for ``scheme`` (disabled plugins included, as apprise lists them)."""
    scheme = scheme.lower()
    return scheme in scheme_index() or scheme in _all_schemes()


@functools.cache
def _all_schemes() -> frozenset[str]:
    """Every scheme apprise knows, the heavy way (imports every plugin); the fallback only."""
    from apprise.manager_plugins import NotificationManager

    return frozenset(s.lower() for s in NotificationManager().schemas())


def plugin_class(scheme: str) -> type[NotifyBase] | None:
    """The class apprise would use for ``scheme``, importing only its plugin module when it can."""
    scheme = scheme.lower()
    module_name = scheme_index().get(scheme)
    if module_name is not None:
        try:
            module = importlib.import_module(f"{PLUGIN_PACKAGE}.{module_name}")
        except ImportError:
            log.debug("apprise plugin module %s did not import; using apprise's full load", module_name,
                      exc_info=True)
        else:
            # As load_modules does: the first matching name that carries an app_id is the plugin.
            for name in dir(module):
                candidate = getattr(module, name)
                if PLUGIN_CLASS_RE.match(name) and hasattr(candidate, "app_id"):
                    if scheme in {s.lower() for s in candidate.schemas(candidate)}:
                        return candidate  # type: ignore[no-any-return]
                    break
    if scheme not in _all_schemes():
        return None
    from apprise.manager_plugins import NotificationManager

    return NotificationManager()[scheme]  # type: ignore[no-any-return]


def instantiate(url: str, asset: AppriseAsset, defaults: Mapping[str, Any] | None = None) -> NotifyBase | None:
    """The plugin object of one apprise URL, or None when apprise would refuse it.

    The steps of ``Apprise.instantiate`` for a URL string (``url_to_dict``, the enabled checks,
    construction with exceptions suppressed), with the plugin looked up by :func:`plugin_class`.
    A URL whose scheme is no plugin's (apprise's "native" service URLs such as
    ``https://hooks.slack.com/...``, which the inventory check refuses anyway) is parsed by
    apprise's ``url_to_dict`` and built by ``Apprise.instantiate`` from that dictionary.

    ``defaults`` are constructor arguments for what the URL does not say itself: apprise's URL
    parameters (``cto``, ``rto``...) as the keys its ``parse_url`` gives them. They are added to
    the parsed URL, never written into the URL text: text surgery misreads apprise's URL shapes
    (a Slack ``#channel`` is part of the path, not a fragment) and lost the channel once.
    """
    scheme = url_scheme(url)
    cls = plugin_class(scheme) if scheme else None
    if cls is None:
        from apprise import Apprise
        from apprise.plugins import url_to_dict

        parsed = url_to_dict(url, secure_logging=asset.secure_logging)
        if not parsed:
            return None
        return Apprise.instantiate(_with_defaults(parsed, defaults), asset=asset)  # type: ignore[no-any-return]
    results = cls.parse_url(url.replace("/#", "/%23"))  # url_to_dict: a '#' starts a channel, not a fragment
    if not results or not cls.enabled:
        return None
    results = _with_defaults(results, defaults)
    results["tag"] = set()
    results["asset"] = asset
    try:
        plugin = cls(**results)
    except Exception:  # apprise's instantiate suppresses them the same way
        log.debug("apprise could not build a %s plugin from the URL", cls.__name__, exc_info=True)
        return None
    return plugin if plugin.enabled else None


def why_refused(url: str) -> str | None:
    """None when apprise builds a plugin from ``url`` (one URL, as :func:`instantiate` builds it
    for the delivery), else why not, in apprise's words (the warnings it logs while refusing;
    they may quote parts of the URL: redact before showing them)."""
    from urllib.parse import urlsplit

    from apprise import AppriseAsset

    # A numeric port out of range is taken by apprise and fails only at send (json://host:99999/).
    # Only a port that is all digits is read: a Telegram token (tgram://123:ABC/...) has a colon too.
    port = re.fullmatch(r"(?:\[[^\]]*\]|[^:]*):(\d+)", urlsplit(url).netloc.rpartition("@")[2])
    if port is not None and not 0 < int(port[1]) < 65536:
        return f"port {port[1]} is out of range (1-65535)"
    reasons: list[str] = []
    me = threading.get_ident()

    def collect(record: logging.LogRecord) -> bool:
        """Keeps apprise's warnings about this URL as the reason, instead of logging them (a check,
        not a send); records of other threads (a delivery under way during a reload) pass."""
        if record.thread != me:
            return True
        if record.levelno >= logging.WARNING:
            reasons.append(record.getMessage().strip().rstrip(":").strip())
        return False

    apprise_log = logging.getLogger("apprise")  # the one logger every apprise plugin logs to
    apprise_log.addFilter(collect)
    try:
        plugin = instantiate(url, AppriseAsset())
    finally:
        apprise_log.removeFilter(collect)
    if plugin is not None:
        return None
    return "; ".join(dict.fromkeys(r for r in reasons if r)) or "apprise refuses it"


def _with_defaults(parsed: dict[str, Any], defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    """``parsed`` (apprise's dictionary of one URL) with ``defaults`` for the keys it lacks."""
    return {**(defaults or {}), **parsed}
