"""Secrets written literally in a playbook or the inventory: refused at load.

Secrets come from the environment (``{{ env.NAME }}``), never from YAML under git. Every string
of every playbook and of the inventory is looked at (template parts taken out, so
``{{ env.SLACK_TOKEN }}`` is fine) for:

* credential shapes: Slack tokens and webhook URLs, Discord and Telegram bot credentials, a PEM
  private key, an Ethereum private key (``0x`` and 64 hex digits), a literal bearer token,
  common API key prefixes;
* a URL with a password, a token or key in its query, or a random-looking token in its path
  (an apprise URL such as ``slack://T.../B.../xyz``): :func:`literal_secrets`;
* a mapping key named like a secret (``token``, ``password``, ``api_key``, ``webhook_url``,
  ``Authorization``...) with a literal value shaped like one: a word of 6 or more characters,
  not a regular expression (a name ending in ``_env`` names a variable, fine).

Only the kind of secret is said, never the value.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from agent.apprise_plugins import parse_urls
from agent.playbook.diagnostics import Diagnostic
from agent.playbook.yaml_source import Path_, SourceDocument

SECRET_HINT = "keep secrets out of files under git: write {{ env.NAME }} and set NAME in the agent's environment"
_TEMPLATE_PART = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_TOKENISH = re.compile(r"[A-Za-z0-9_\-]{20,}")
_SECRET_QUERY = re.compile(r"[?&](token|key|apikey|api_key|secret|password|pass|auth)=([^&{]+)", re.IGNORECASE)
_SHAPES = [
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+")),
    ("a Slack webhook token (apprise URL)", re.compile(r"\bslack://T[A-Za-z0-9]{6,}/B[A-Za-z0-9]{6,}/[A-Za-z0-9]{16,}")),
    ("a Discord webhook URL", re.compile(r"discord(?:app)?\.com/api/webhooks/\d+/[\w-]{20,}")),
    ("a Telegram bot token", re.compile(r"\b\d{8,10}:[A-Za-z0-9_-]{35}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a private key (0x and 64 hex digits)", re.compile(r"\b0x[0-9a-fA-F]{64}\b")),
    ("a bearer token", re.compile(r"(?i:\bbearer)\s+[A-Za-z0-9._~+/=-]{16,}")),
    ("an API key", re.compile(r"\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|sk-[A-Za-z0-9_-]{20,})\b")),
]
_SECRET_KEY = re.compile(r"(?:^|[_-])(?:token|secret|password|passwd|passphrase|api_?key|private_?key|webhook(?:_url)?|"
                         r"credentials?)$|^authorization$", re.IGNORECASE)


def literal_secrets(url: str) -> list[str]:
    """What looks like a secret written literally in a URL template (not through ``env``)."""
    text = _TEMPLATE_PART.sub("", url)
    found: list[str] = []
    for one in parse_urls(text) if "://" in text else []:
        _, _, rest = one.partition("://")
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]  # before the path, query or fragment
        userinfo = authority.rpartition("@")[0]
        if ":" in userinfo and userinfo.split(":", 1)[1]:
            found.append("the URL holds a password written literally")
        if _SECRET_QUERY.search(rest):
            found.append("the URL holds a token or key written literally in its query")
        if any(_looks_random(word) for word in _TOKENISH.findall(rest.split("?", 1)[0])):
            found.append("the URL holds what looks like a token written literally")
    return found


def _looks_random(word: str) -> bool:
    # a webhook token mixes letters and digits; a long plain word or host name does not
    return any(c.isdigit() for c in word) and any(c.isalpha() for c in word) and len(set(word)) >= 10


def _value_shaped(text: str) -> bool:
    """A password or token: one word of 6 or more characters, not a pattern (a log check's
    ``private_key: "-----BEGIN [A-Z ]*PRIVATE KEY-----"`` is a regular expression that finds keys)."""
    word = text.strip()
    return len(word) >= 6 and not re.search(r"\s", word) and not re.search(r"[\\^$*()\[\]{}|]", word)


def secret_in_text(text: str, key: Any = None) -> str | None:
    """What kind of secret ``text`` (the value of ``key``) holds written literally, or None."""
    literal = _TEMPLATE_PART.sub("", text)
    for kind, shape in _SHAPES:
        if shape.search(literal):
            return f"{kind} is written literally"
    if re.search(r"[a-z][a-z0-9+.-]*://", literal, re.IGNORECASE):
        found = literal_secrets(text)
        if found:
            return found[0]
    if (isinstance(key, str) and _SECRET_KEY.search(key) and not key.lower().endswith("_env")
            and literal == text and _value_shaped(text)):  # the whole value literal: a template is fine
        return f"{key!r} holds a value written literally"
    return None


def _strings(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, str):
                yield (*path, key), key, value
            else:
                yield from _strings(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            if isinstance(value, str):
                yield (*path, i), None, value
            else:
                yield from _strings(value, (*path, i))


def literal_secret_problems(doc: SourceDocument, *, skip: tuple[Path_, ...] = ()) -> list[Diagnostic]:
    """One diagnostic per string of ``doc`` that holds a secret written literally; paths in
    ``skip`` (and below) are checked elsewhere (target URLs, with their own message)."""
    out: list[Diagnostic] = []
    for path, key, text in _strings(doc.data):
        if any(path[:len(s)] == s for s in skip):
            continue
        problem = secret_in_text(text, key)
        if problem:
            out.append(doc.diagnostic(path, problem, SECRET_HINT))
    return out
