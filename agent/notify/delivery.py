"""Deliver one message to one target through apprise, bounded in time, never raising.

One :class:`apprise.Apprise` object per target URL, built once (and rebuilt only when the
URL changes on a reload). Delivery uses apprise's own ``async_notify`` (blocking plugins
run in apprise's worker pool, so the event loop never blocks), with socket connect/read
timeouts (``cto``/``rto`` URL parameters) and an overall ``asyncio.wait_for``.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import apprise

from agent.notify.routing import TargetSpec

log = logging.getLogger(__name__)

_NOTIFY_TYPES = {
    "critical": apprise.NotifyType.FAILURE,
    "warning": apprise.NotifyType.WARNING,
    "resolved": apprise.NotifyType.SUCCESS,
    "ok": apprise.NotifyType.SUCCESS,
}


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    error: str | None = None
    permanent: bool = False
    """True when retrying cannot help (unknown target, URL apprise does not accept)."""


def with_socket_timeouts(url: str, connect: float, read: float) -> str:
    """Add apprise's ``cto``/``rto`` parameters unless the operator already set them."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = {k for k, _ in query}
    extra = [f"{k}={v:g}" for k, v in (("cto", connect), ("rto", read)) if k not in names]
    if not extra:
        return url
    joined = "&".join(([parts.query] if parts.query else []) + extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


class AppriseDelivery:
    """Holds one apprise object per target; :meth:`deliver` returns a result, never raises."""

    def __init__(
        self, targets: Mapping[str, TargetSpec], *, timeout: float = 20.0, connect_timeout: float = 5.0,
        read_timeout: float = 10.0, redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.redact = redact
        self._targets: dict[str, TargetSpec] = {}
        self._apprise: dict[str, apprise.Apprise | None] = {}
        self.update_targets(targets)

    def update_targets(self, targets: Mapping[str, TargetSpec]) -> None:
        """Adopt a new target set; apprise objects of unchanged URLs are kept."""
        fresh: dict[str, apprise.Apprise | None] = {}
        for name, spec in targets.items():
            old = self._targets.get(name)
            if old is not None and old.url == spec.url and name in self._apprise:
                fresh[name] = self._apprise[name]
                continue
            fresh[name] = self._build(spec)
        self._targets, self._apprise = dict(targets), fresh

    def _build(self, spec: TargetSpec) -> apprise.Apprise | None:
        if not spec.url:
            return None
        ap = apprise.Apprise()
        if not ap.add(with_socket_timeouts(spec.url, self.connect_timeout, self.read_timeout)):
            log.error("notification target %s: apprise does not accept its URL; check the inventory",
                      spec.name)
            return None
        return ap

    async def deliver(self, target: str, *, title: str, body: str, severity: str = "info") -> DeliveryResult:
        spec = self._targets.get(target)
        if spec is None:
            return DeliveryResult(False, f"target {target!r} is not configured (any more)", permanent=True)
        ap = self._apprise.get(target)
        if ap is None:
            why = "its URL is empty (environment variable unset?)" if not spec.url else "apprise rejects its URL"
            return DeliveryResult(False, f"target {target!r}: {why}", permanent=True)
        try:
            result = await asyncio.wait_for(
                ap.async_notify(
                    body=body, title=title, notify_type=_NOTIFY_TYPES.get(severity, apprise.NotifyType.INFO),
                    body_format=apprise.NotifyFormat.MARKDOWN, timeout=self.timeout,
                ),
                # apprise enforces ``timeout`` itself; this is the backstop if it does not.
                timeout=self.timeout + 2.0,
            )
        except asyncio.TimeoutError:
            return DeliveryResult(False, f"no answer within {self.timeout:g}s")
        except Exception as exc:  # noqa: BLE001 - a notifier returns a result, it never raises
            log.debug("apprise raised delivering to %s", target, exc_info=True)
            return DeliveryResult(False, self.redact(f"{type(exc).__name__}: {exc}"))
        try:
            if result:
                return DeliveryResult(True)
            details = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
            return DeliveryResult(False, self.redact("; ".join(details)[-500:] or result.status.name))
        finally:
            result.close()
