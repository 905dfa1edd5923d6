"""Who watches the agent: a dead-man's switch pinged while the agent is alive.

Every ``heartbeat.every`` the agent POSTs a short text to the configured URL (healthchecks.io,
a Gatus external endpoint, any HTTP receiver); when the pings stop (the agent hung, its box
died, supervisord gave up) that service alerts through its own channels. A failed ping is
logged (the URL redacted) and retried at the next beat; it never stops the agent. The URL is a
template rendered with the settings' vars and ``env``, like notification targets; an empty
rendering disables the heartbeat.

Transport: the agent's HTTP transport (:mod:`agent.http`), with a session of the heartbeat's
own, closed when the heartbeat stops. Unlike the checks' shared sessions it honours proxy
variables (``trust_env=True``): the heartbeat's receiver is an outside service, which some
hosts reach only through a proxy. The timeout bounds the whole ping; redirects are not
followed (a 3xx counts as delivered, as any status below 400).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.core.redaction import url_secrets
from agent.engine.store_thread import StoreThread
from agent.engine.waits import stopped_within
from agent.http import RequestFailed, new_session, request

if TYPE_CHECKING:
    from agent.engine.live_config import LiveConfig
    from agent.notify import Notifications
    from agent.store import Store

log = logging.getLogger(__name__)

_MAX_BODY = 4096
"""Bytes of a ping's answer read (and discarded): only the status matters."""


def heartbeat_settings(config: Any) -> tuple[Any, str]:
    """A loaded configuration's heartbeat section (``None`` without one) and its rendered URL.

    The URL is ``""`` when the heartbeat is disabled: always without a section, and when the
    section's URL is empty, renders empty or cannot be rendered.
    """
    hb = getattr(config.inventory, "heartbeat", None)
    if hb is None or not hb.url:
        return hb, ""
    try:
        return hb, config.templating.render_str(hb.url, config.settings.template_vars()).strip()
    except Exception as exc:  # noqa: BLE001 - a broken template disables the heartbeat, loudly
        log.error("heartbeat URL cannot be rendered (%s); no heartbeat is sent", type(exc).__name__)
        return hb, ""


def heartbeat_url(config: Any) -> str:
    """The rendered heartbeat URL of a loaded configuration, or ``""`` (disabled)."""
    return heartbeat_settings(config)[1]


async def run_heartbeat(config: Callable[[], Any], stop: asyncio.Event, *, redact: Callable[[str], str],
                        on_result: Callable[[bool, str], Any] | None = None) -> None:
    """Ping until ``stop``; reads the configuration each beat so a reload takes effect."""
    last_ok: bool | None = None
    async with new_session(trust_env=True) as session:
        while not stop.is_set():
            hb, url = heartbeat_settings(config())
            every = float(hb.every) if hb is not None else 60.0
            if url:  # so hb is not None
                try:
                    resp = await request("POST", url, data=b"botwarden agent alive", timeout=float(hb.timeout),
                                         max_body_bytes=_MAX_BODY, session=session)
                    ok, detail = resp.status < 400, f"HTTP {resp.status}"
                except RequestFailed as exc:  # its reason only: the URL itself may be the secret
                    ok, detail = False, redact(exc.reason)
                if not ok:
                    log.warning("heartbeat to %s failed: %s", redact(url), detail)
                if ok != last_ok and on_result is not None:
                    await on_result(ok, detail)
                last_ok = ok
            if await stopped_within(stop, every):
                return


class DeadMansSwitch:
    """The agent's own heartbeat (see the module docstring), its result changes audited."""

    def __init__(self, *, config: LiveConfig, notifications: Notifications, store: Store,
                 store_thread: StoreThread) -> None:
        self._config = config
        self._notifications = notifications
        self._store = store
        self._thread = store_thread

    async def run(self, stop: asyncio.Event) -> None:
        async def on_result(ok: bool, detail: str) -> None:
            try:
                await self._thread.call(self._store.add_event, "heartbeat", None, None,
                                        f"heartbeat {'delivered' if ok else 'failed'}: {detail}", {"ok": ok})
            except Exception:  # the ping matters, not its audit row
                log.warning("heartbeat result not stored", exc_info=True)

        url = heartbeat_url(self._config.current)
        self._notifications.redactor.add(url_secrets(url) if url else set())
        await run_heartbeat(lambda: self._config.current, stop, redact=self._notifications.redactor.redact,
                            on_result=on_result)
