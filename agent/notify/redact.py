"""Keep secrets out of logs, stored messages and CLI output.

A :class:`Redactor` knows the secret values in play (rendered target URLs and their
credential/token parts, environment variables whose names look secret) and replaces each
occurrence with ``***``. :func:`install` puts it on a logger *and its handlers* as a
:class:`logging.Filter`: a filter on a logger alone does not see records propagated from
child loggers (``apprise``, ``aiohttp``), a filter on the root handlers does.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"
SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|WEBHOOK", re.IGNORECASE)
SECRET_QUERY_KEYS = re.compile(r"token|key|secret|pass|auth|sig", re.IGNORECASE)
MIN_SECRET_LEN = 4
"""Shorter values are not redacted: masking every ``1`` or ``ok`` would make logs unreadable."""


def _token_like(part: str) -> bool:
    # Path and host parts of webhook URLs (Slack T.../B.../XXX, Discord ids, Telegram bot
    # tokens) carry the secret; ordinary words such as "services" or "hooks" do not.
    return (len(part) >= 8 and any(c.isdigit() for c in part)) or len(part) >= 20


def url_secrets(url: str) -> set[str]:
    """The full URL plus its password, token-like host/path parts and secret query values."""
    found = {url}
    try:
        parts = urlsplit(url)
        password, hostname = parts.password, parts.hostname
    except ValueError:
        return found
    if password:
        found.update({password, unquote(password)})
    if parts.username and _token_like(parts.username):
        found.add(parts.username)
    if hostname and "." not in hostname and hostname != "localhost" and _token_like(hostname):
        found.add(hostname)
    for segment in parts.path.split("/"):
        if segment and _token_like(segment):
            found.update({segment, unquote(segment)})
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if SECRET_QUERY_KEYS.search(name) or _token_like(value):
            found.add(value)
    return found


def env_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of environment variables named like secrets (``*TOKEN*``, ``*KEY*``, ...)."""
    env = os.environ if environ is None else environ
    return {v for k, v in env.items() if SECRET_NAME.search(k) and v}


class Redactor:
    """Replaces every known secret value with ``***`` (longest first, so URLs go whole)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    @classmethod
    def for_targets(cls, urls: Iterable[str], environ: Mapping[str, str] | None = None) -> Redactor:
        """Built from rendered target URLs and the secret-looking environment."""
        secrets = env_secrets(environ)
        for url in urls:
            secrets |= url_secrets(url)
        return cls(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Learn more secret values (e.g. after a configuration reload)."""
        for s in secrets:
            if s and len(s) >= MIN_SECRET_LEN:
                self._secrets.add(s)
                if quote(s, safe="") != s:  # the same secret as it appears inside a URL
                    self._secrets.add(quote(s, safe=""))
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def redact(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def redact_data(self, value: object) -> object:
        """Redact every string inside nested dicts/lists/tuples (e.g. action params)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {k: self.redact_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_data(v) for v in value]
        return value


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (with its args merged in) through a :class:`Redactor`."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("botwarden.redact")
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix; leave the record as is
            return True
        redacted = self.redactor.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        return True


def install(logger: logging.Logger, redactor: Redactor) -> RedactingFilter:
    """Redact everything ``logger`` and its current handlers emit; returns the filter."""
    flt = RedactingFilter(redactor)
    logger.addFilter(flt)
    for handler in logger.handlers:
        handler.addFilter(flt)
    return flt


def uninstall(logger: logging.Logger, flt: RedactingFilter) -> None:
    """Undo :func:`install` (tests, reloads)."""
    logger.removeFilter(flt)
    for handler in logger.handlers:
        handler.removeFilter(flt)
