"""Keep secrets out of everything the agent writes: logs, stored rows, console output, alerts.

A :class:`Redactor` is the set of secret values known to one process's configuration and
replaces each occurrence with ``***`` (longest first, so a URL goes whole before its parts).
It learns them where they enter, so nothing that writes has to know what a secret is:

* every value a template reads from ``env`` (the playbook sandbox registers it when it hands it
  out, see :mod:`agent.playbook.templating`), whatever the variable is called;
* every rendered notification target URL, with its password, token-like path parts and
  secret query values (:func:`url_secrets`), registered when the inventory is loaded;
* every module parameter marked secret (:class:`agent.modules.base.Secret`), registered when
  the parameters are bound, and the value of every environment variable a parameter names as
  holding a secret (the bot action's ``token_env``);
* environment variables whose *names* look secret (:data:`SECRET_NAME`), for values a module
  reads from the environment itself.

Where it is applied: the store redacts every free-text and JSON column on the way in
(:mod:`agent.store.models`), so rows and backups of ``agent.db`` never hold a secret; the
play runner redacts each task's outcome before it is printed or audited; notifications redact
titles and bodies before they are queued; :func:`install` redacts every log line *as
formatted* (tracebacks included) on the root logger's handlers.

Values shorter than :data:`MIN_SECRET_LEN` and flag words (:data:`NOT_SECRETS`) are not redacted:
masking every ``1``, ``ok`` or ``true`` would make logs unreadable (and such a value is no secret).
"""
from __future__ import annotations

import logging
import os
import re
import threading
import traceback
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"
SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASS|AUTH|CRED|PRIVATE|WEBHOOK|DSN", re.IGNORECASE)
"""Environment variable names whose values are secrets even when no template reads them."""
SECRET_QUERY_KEYS = re.compile(r"token|key|secret|pass|auth|sig", re.IGNORECASE)
MIN_SECRET_LEN = 4
NOT_SECRETS = frozenset({"true", "false", "none", "null", "yes", "no", "on", "off"})
"""Flag values are never secrets: masking every ``true`` would corrupt every JSON text shown."""


def _token_like(part: str) -> bool:
    # Path and host parts of webhook URLs (Slack T.../B.../XXX, Discord ids, Telegram bot
    # tokens) carry the secret; ordinary words such as "services" or "hooks" do not.
    return (len(part) >= 8 and any(c.isdigit() for c in part)) or len(part) >= 20


def url_credentials(url: str) -> set[str]:
    """The URL's password (as written and decoded) and the values of secret-named query keys."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return found
    if password:
        found.update({password, unquote(password)})
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if SECRET_QUERY_KEYS.search(name):
            found.add(value)
    return found


def url_secrets(url: str) -> set[str]:
    """A notification URL whole, its credentials, and its token-like user, host, path and query parts."""
    found = {url} | url_credentials(url)
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return found
    if parts.username and _token_like(parts.username):
        found.add(parts.username)
    if hostname and "." not in hostname and hostname != "localhost" and _token_like(hostname):
        found.add(hostname)
    for segment in parts.path.split("/"):
        if segment and _token_like(segment):
            found.update({segment, unquote(segment)})
    for _name, value in parse_qsl(parts.query, keep_blank_values=False):
        if _token_like(value):
            found.add(value)
    return found


def env_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of environment variables named like secrets (``*TOKEN*``, ``*PASS*``, ``*KEY*``...)."""
    env = os.environ if environ is None else environ
    return {v for k, v in env.items() if SECRET_NAME.search(k) and v}


def string_leaves(value: object) -> list[str]:
    """Every string inside ``value`` (mapping values, list items, nested), for registration."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in string_leaves(v)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for v in value for s in string_leaves(v)]
    return []


class Redactor:
    """The secret values of one configuration; :meth:`redact` replaces each with ``***``.

    Thread-safe: values are learnt on the event loop (templates) while the store's thread and
    logging handlers redact; the compiled pattern is replaced whole, never mutated.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        self.add(secrets)

    @classmethod
    def for_environment(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        """Starting with the values of secret-named environment variables."""
        return cls(env_secrets(environ))

    @classmethod
    def for_targets(cls, urls: Iterable[str], environ: Mapping[str, str] | None = None) -> Redactor:
        """Built from rendered target URLs and the secret-looking environment."""
        secrets = env_secrets(environ)
        for url in urls:
            secrets |= url_secrets(url)
        return cls(secrets)

    @property
    def secrets(self) -> frozenset[str]:
        """The values it redacts (for merging into another redactor; never print them)."""
        return frozenset(self._secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Learn more secret values; values already known cost a set lookup each."""
        fresh: set[str] = set()
        for s in secrets:
            if isinstance(s, str) and len(s) >= MIN_SECRET_LEN and s not in self._secrets \
                    and s.lower() not in NOT_SECRETS:
                fresh.add(s)
                quoted = quote(s, safe="")
                if quoted != s:  # the same secret as it appears inside a URL
                    fresh.add(quoted)
        if not fresh:
            return
        with self._lock:
            self._secrets |= fresh
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def redact_data(self, value: object) -> object:
        """Redact every string inside nested mappings and sequences (keys included)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {self.redact(k) if isinstance(k, str) else k: self.redact_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_data(v) for v in value]
        return value


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (args merged in), traceback and stack through a :class:`Redactor`.

    The traceback is formatted here, redacted, and cached on the record (``exc_text``), so every
    formatter that follows prints the redacted text; :class:`RedactingFormatter` then redacts
    the whole line as formatted, which also covers custom formatters and extra fields.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("botwarden.redact")
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a broken format string: the formatter still redacts
            return True
        redacted = self.redactor.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


class RedactingFormatter(logging.Formatter):
    """Formats with the handler's own formatter, then redacts the complete text."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.redact(self.inner.format(record))


def install(logger: logging.Logger, redactor: Redactor) -> RedactingFilter:
    """Redact everything ``logger`` and its current handlers emit; returns the filter.

    A filter on a logger alone does not see records propagated from child loggers
    (``apprise``, ``aiohttp``); the handlers' filters and formatters do.
    """
    flt = RedactingFilter(redactor)
    logger.addFilter(flt)
    for handler in logger.handlers:
        handler.addFilter(flt)
        handler.setFormatter(RedactingFormatter(handler.formatter or logging.Formatter(), redactor))
    return flt


def uninstall(logger: logging.Logger, flt: RedactingFilter) -> None:
    """Undo :func:`install` (tests, several agents in one process)."""
    logger.removeFilter(flt)
    for handler in logger.handlers:
        handler.removeFilter(flt)
        outer: logging.Formatter | None = None
        fmt = handler.formatter
        while isinstance(fmt, RedactingFormatter):  # splice out this filter's formatter only
            if fmt.redactor is flt.redactor:
                if outer is None:
                    handler.setFormatter(fmt.inner)
                else:
                    assert isinstance(outer, RedactingFormatter)
                    outer.inner = fmt.inner
                break
            outer, fmt = fmt, fmt.inner
