"""Deliver one message to one target through apprise, bounded in time, never raising.

One :class:`apprise.Apprise` object per target URL, holding the plugin objects of that URL built
by :mod:`agent.apprise_plugins`: only the plugin modules of the schemes in use are imported,
not every plugin apprise ships (``Apprise.add(url)`` would load them all, ~20 MB of RSS).
Creating an :class:`AppriseDelivery` imports nothing of apprise; :meth:`~AppriseDelivery.prepare`
builds the targets not built yet, importing apprise and those plugin modules, in a worker thread.
The outbox prepares when it starts and again after a reload that adds or changes targets (only
those are rebuilt), so no alert waits for a build; a target not prepared (an outbox that is only
drained, a build that failed) is built at its first delivery, off the event loop too.
Delivery uses apprise's own ``async_notify``
(blocking plugins run in apprise's worker pool, so the event loop never blocks), bounded in time.

Timeouts, one budget: a delivery may take ``timeout`` (20 s) in all, enforced by apprise's call
deadline and an ``asyncio.wait_for`` behind it. apprise's own socket timeouts (its ``cto`` and
``rto`` URL parameters: connect 5 s, read 15 s) are given to each plugin as constructor
arguments, never written into the URL, and fit that budget exactly (connect + read =
``timeout``): a receiver that answers within the delivery timeout is never given up on
earlier by apprise. (With a read timeout shorter than the budget, a receiver answering after
10 s was counted failed although it had the message, and the retry sent it a second time.)
A URL that sets ``cto``/``rto`` itself keeps its own values. A receiver slower than the whole
budget is given up on and retried, so it may get a message twice: delivery is at-least-once
there (see :mod:`agent.notify.outbox`).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agent.notify.routing import TargetSpec

# apprise is imported where an Apprise object is built or used (see the module docstring).
if TYPE_CHECKING:
    import apprise

log = logging.getLogger(__name__)

_NOTIFY_TYPES = {"critical": "FAILURE", "warning": "WARNING", "resolved": "SUCCESS", "ok": "SUCCESS"}
"""Severity -> name of the ``apprise.NotifyType`` member (looked up once apprise is loaded)."""
_UNBUILT = object()
"""Placeholder of a target whose Apprise object is built on its first delivery."""


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    error: str | None = None
    permanent: bool = False
    """True when retrying cannot help (unknown target, URL apprise does not accept)."""


DELIVERY_TIMEOUT = 20.0
"""Seconds one delivery may take in all (apprise's call deadline)."""
CONNECT_TIMEOUT = 5.0
"""apprise's socket connect timeout (``cto``); the read timeout is the rest of the budget."""


class AppriseDelivery:
    """Holds one apprise object per target; :meth:`deliver` returns a result, never raises."""

    def __init__(
        self, targets: Mapping[str, TargetSpec], *, timeout: float = DELIVERY_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float | None = None,
        redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        """``read_timeout`` defaults to ``timeout - connect_timeout``; together they may not exceed
        ``timeout`` (see the module docstring)."""
        read_timeout = timeout - connect_timeout if read_timeout is None else read_timeout
        if not (0 < connect_timeout and 0 < read_timeout and connect_timeout + read_timeout <= timeout):
            raise ValueError(f"socket timeouts connect {connect_timeout:g}s + read {read_timeout:g}s must be "
                             f"positive and fit the delivery timeout {timeout:g}s")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.redact = redact
        self._targets: dict[str, TargetSpec] = {}
        self._apprise: dict[str, apprise.Apprise | object | None] = {}
        """Per target: its Apprise object, None when apprise rejects its URL, or ``_UNBUILT``."""
        self.update_targets(targets)

    def update_targets(self, targets: Mapping[str, TargetSpec]) -> None:
        """Adopt a new target set; apprise objects of unchanged URLs are kept, the others are
        built by the next :meth:`prepare` (or at their first delivery)."""
        fresh: dict[str, apprise.Apprise | object | None] = {}
        for name, spec in targets.items():
            old = self._targets.get(name)
            if old is not None and old.url == spec.url and name in self._apprise:
                fresh[name] = self._apprise[name]
                continue
            fresh[name] = _UNBUILT if spec.url else None
        self._targets, self._apprise = dict(targets), fresh

    def _build(self, spec: TargetSpec) -> apprise.Apprise | None:
        if not spec.url:
            return None
        import apprise  # heavy: see the module docstring

        from agent.apprise_plugins import instantiate, parse_urls

        ap = apprise.Apprise()
        # What ``ap.add(url)`` does (a string may hold several URLs), one plugin module at a time;
        # each URL gets the socket timeouts it does not set itself.
        urls = parse_urls(spec.url)
        timeouts = {"cto": self.connect_timeout, "rto": self.read_timeout}
        plugins = [plugin for url in urls if (plugin := instantiate(url, ap.asset, timeouts)) is not None]
        if not plugins or len(plugins) != len(urls):
            log.error("notification target %s: apprise does not accept its URL; check the inventory",
                      spec.name)
            return None
        ap.add(plugins)
        return ap

    async def prepare(self) -> None:
        """Build the apprise object of every target not built yet (when the outbox starts, and
        after a reload for the targets it added or changed).

        The first build imports apprise and the URL's plugin module, about 100 ms (measured: the
        first crash alert of a run took 181 ms where the others took 33-60 ms); done beforehand, no
        alert waits for it. A target whose build fails is left to be built (and fail) at delivery.
        """
        for name, spec in list(self._targets.items()):
            try:
                await self._built(name, spec)
            except Exception:  # the delivery reports it; starting must not fail here
                log.warning("notification target %s could not be prepared", name, exc_info=True)

    @property
    def unbuilt(self) -> list[str]:
        """Targets whose apprise object is not built yet."""
        return [name for name, ap in self._apprise.items() if ap is _UNBUILT]

    async def _built(self, target: str, spec: TargetSpec) -> Any:
        """The target's apprise object (None: rejected), built in a worker thread the first time."""
        ap = self._apprise.get(target)
        if ap is _UNBUILT:
            ap = await asyncio.to_thread(self._build, spec)
            if self._targets.get(target) is spec:  # not replaced by a reload meanwhile
                self._apprise[target] = ap
        return ap

    async def deliver(self, target: str, *, title: str, body: str, severity: str = "info",
                      attachments: Sequence[str] = ()) -> DeliveryResult:
        """Send one message; ``attachments`` (file paths) are attached for email targets only
        (``mailto``/``mailtos``); a file that is gone is left out and said in a warning."""
        spec = self._targets.get(target)
        if spec is None:
            return DeliveryResult(False, f"target {target!r} is not configured (any more)", permanent=True)
        ap = await self._built(target, spec)
        if ap is None:
            why = "its URL is empty (environment variable unset?)" if not spec.url else "apprise rejects its URL"
            return DeliveryResult(False, f"target {target!r}: {why}", permanent=True)
        import apprise  # already loaded by _build; a dictionary lookup here

        attach = _email_attachments(spec.url, attachments, target)
        try:
            result = await asyncio.wait_for(
                ap.async_notify(
                    body=body, title=title,
                    notify_type=apprise.NotifyType[_NOTIFY_TYPES.get(severity, "INFO")],
                    body_format=apprise.NotifyFormat.MARKDOWN, timeout=self.timeout,
                    **({"attach": apprise.AppriseAttachment(attach)} if attach else {}),
                ),
                # apprise enforces ``timeout`` itself; this is the backstop if it does not.
                timeout=self.timeout + 2.0,
            )
        except TimeoutError:
            return DeliveryResult(False, f"no answer within {self.timeout:g}s")
        except Exception as exc:  # a notifier returns a result, it never raises
            log.debug("apprise raised delivering to %s", target, exc_info=True)
            return DeliveryResult(False, self.redact(f"{type(exc).__name__}: {exc}"))
        try:
            if result:
                return DeliveryResult(True)
            details = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
            return DeliveryResult(False, self.redact("; ".join(details)[-500:] or result.status.name))
        finally:
            result.close()


EMAIL_SCHEMES = ("mailto", "mailtos")


def _email_attachments(url: str, attachments: Sequence[str], target: str) -> list[str]:
    """The files to attach for a target: only an email target's, only files still there."""
    if not attachments or urlsplit(url).scheme.lower() not in EMAIL_SCHEMES:
        return []
    present = [a for a in attachments if Path(a).is_file()]
    if len(present) < len(attachments):
        log.warning("sending to %s without %d attachment(s) that no longer exist", target,
                    len(attachments) - len(present))
    return present
