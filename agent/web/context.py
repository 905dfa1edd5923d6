"""What the web handlers share: the application's context, and the cookie names."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from agent.web.auth import Session, Sessions, SignInThrottle, Users
from agent.web.live import Live
from agent.web.runs import PlayRuns

COOKIE = "bw_session"
LOGIN_COOKIE = "bw_login"


@dataclass
class WebContext:
    """What the handlers share (one per application)."""

    config: Any
    store_url: str
    users: Users
    live: Live
    runs: PlayRuns
    templates: jinja2.Environment
    sessions: Sessions
    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    secure_cookie: bool = False
    static_dir: Path | None = None
    charts: Any = None
    config_watch: Any = None
    """:class:`agent.web.config_watch.ConfigWatch` (None: the configuration is fixed, in tests)."""

    @property
    def config_state(self) -> Any:
        """What the page runs on and what is wrong with the files (None without a watch)."""
        return self.config_watch.state if self.config_watch is not None else None

    def use_config(self, config: Any) -> None:
        """Run on ``config`` from now on (the files were loaded again)."""
        self.config = config
        self.live.gatherer.use_config(config)

    def _once(self, csrf: str, path: str) -> str:
        session = self.sessions.for_csrf(csrf)
        return session.action_token(path) if session is not None else ""

    def render(self, name: str, **values: Any) -> str:
        values.setdefault("config_state", self.config_state)
        values.setdefault("heartbeat_s", self.config.settings.web.heartbeat_seconds)
        values.setdefault("live_failing", self.live.failing)
        values.setdefault("server_now", time.time())  # the script counts ages on the server's clock
        csrf = str(values.get("csrf") or getattr(values.get("session"), "csrf", "") or "")
        values.setdefault("once", lambda path: self._once(csrf, str(path)))
        return self.templates.get_template(name).render(**values)


def row_id(request: web.Request) -> int:
    """The ``{id}`` of the path (digits, by the route), 404 when larger than any row id SQLite can
    hold: ``/incidents/99999999999999999999999`` is a page that does not exist, not an overflow."""
    from agent.engine.operator_actions import MAX_ROW_ID

    value = int(request.match_info["id"])
    if value > MAX_ROW_ID:
        raise web.HTTPNotFound(text=f"no such id {request.match_info['id'][:30]}\n")
    return value


CTX = web.AppKey("ctx", WebContext)
# A typed request key where aiohttp has them (3.13+); the plain name before.
SESSION: Any = web.RequestKey("session", Session) if hasattr(web, "RequestKey") else "session"


def ctx_of(request: web.Request) -> WebContext:
    return request.app[CTX]


def session_of(request: web.Request) -> Session:
    session: Session = request[SESSION]
    return session
