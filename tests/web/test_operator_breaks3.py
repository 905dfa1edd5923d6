"""Issue 17, broken again as an operator would (r17): the live pages' "send only what changed"
after a connection dropped and the browser's own reconnection, and secrets in what the stream
says about a failed read. Through the real application and a real SQLite store; the browser is
Debian's chromium."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.stack import free_port
from tests.web.chromium import chromium
from tests.web.conftest import ENV, OPERATOR_PW, VIEWER_PW, WebWorld, load_config, once, sign_in


def _app(world: WebWorld) -> Any:
    from agent.web import make_context

    return make_context(load_config(world), store_url=world.store_url, env=ENV,
                        templates_dir=world.root / "templates", charts=False)


class _Cuttable:
    """A TCP relay in front of the page (a reverse proxy, a phone's network): ``cut()`` drops
    every connection through it and refuses new ones until ``resume()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.port = target_port, free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.accepted = 0
        """Connections accepted since the last ``resume()``."""

    async def resume(self) -> None:
        self.accepted = 0
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in list(self.writers):
            w.transport.abort()
        await self.server.wait_closed()
        self.server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self.writers -= {writer, up_writer}


@pytest.mark.parametrize("loop_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                     # ahead of the page's clock: counted as "just now" for ever, the
                                     # bot looked alive whatever its loop_age_s said
                                     "9999-12-31T23:59:59+14:00", "3000-01-01T00:00:00+00:00"])
async def test_a_bot_s_loop_time_out_of_range_is_shown_as_its_age_not_a_500(
        web_world: WebWorld, monkeypatch: pytest.MonkeyPatch, loop_at: str) -> None:
    """The overview's bot card shows the bot's last loop as a counted age (``last_loop_at`` of its
    ``/health``, read with ``datetime.fromisoformat``): a time that parses but lies at the edge of
    the calendar (year 1 at +14:00, a broken clock, something else on the bot's port) raised
    OverflowError while rendering, and the overview, the page an operator opens first, was a 500
    (its live stream died at every read). It now says the bot's own ``loop_age_s``."""
    from aiohttp import web as aioweb

    from agent.web import build_app

    async def health(request: aioweb.Request) -> aioweb.Response:
        return aioweb.json_response({"status": "running", "last_loop_at": loop_at, "loop_age_s": 4.2,
                                     "open_orders": 0})

    bot = aioweb.Application()
    bot.router.add_get("/health", health)
    ctx = _app(web_world)
    runner = aioweb.AppRunner(bot)
    await runner.setup()
    await aioweb.TCPSite(runner, "127.0.0.1", ctx.config.settings.bot.port).start()
    try:
        async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client:
            await sign_in(client, "viewer", VIEWER_PW)
            page = await client.get("/")
            text = await page.text()
            assert page.status == 200, text[:500]
            assert "loop 4.2 s ago" in text, text
    finally:
        await runner.cleanup()


async def test_two_tabs_silencing_the_same_alerts_make_one_silence(client: TestClient, web_world: WebWorld) -> None:
    """An action form's one-time token is one per path and session, so two tabs carry the same
    one, and a second send with other fields runs (another silence). But a silence is its
    matchers: tab A silenced ``check=disk* host=local`` (reason "deploy", 1h), tab B the same
    alerts (``host=local check=disk*``, no reason, 2h), and two silences held them; expiring
    "the" silence from the incidents page left the other holding the alerts. Tab B is now told
    the same was already sent; a silence of other alerts still runs."""
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    token = once(client, "/act/silence")
    sends = [({"matchers": "check=disk* host=local", "duration": "1h", "reason": "deploy"}, 303),
             ({"matchers": "host=local  check=disk*", "duration": "2h", "reason": ""}, 409),
             ({"matchers": "check=bot*", "duration": "1h", "reason": ""}, 303)]
    for fields, status in sends:
        r = await client.post("/act/silence", data={"csrf": csrf, "once": token, **fields}, allow_redirects=False)
        assert r.status == status, (fields, r.status, await r.text())
    with web_world.store() as st:
        assert sorted(tuple(sorted(s.matchers.items())) for s in st.silences()) == [
            (("check", "bot*"),), (("check", "disk*"), ("host", "local"))]


def test_a_spray_of_names_does_not_give_a_key_one_failure_short_of_its_lock_out_a_new_count() -> None:
    """The sign-in throttle keeps at most ``max_keys`` (name, address) pairs and forgot the oldest
    one not locked out to make room: four wrong passwords for ``operator``, then 10 000 other
    names (3.8 s from one client on a live stack), and ``operator`` was counted from zero again:
    five more guesses, and again, about 60 a minute instead of 5 in 5 minutes."""
    import secrets

    from agent.web.auth import SignInThrottle

    now = [0.0]
    t = SignInThrottle(clock=lambda: now[0])
    operator = "user:operator\naddr:10.0.0.9"
    for round_ in range(3):
        for _ in range(t.limit - 1):
            now[0] += 0.001
            t.failed(operator)
        assert t.retry_after(operator) == 0 or round_ > 0
        for _ in range(t.max_keys + 1):
            now[0] += 0.001  # all inside the window
            t.failed(f"user:{secrets.token_hex(8)}\naddr:10.0.0.9")
        assert len(t) <= t.max_keys
        now[0] += 0.001
        t.failed(operator)
        assert t.retry_after(operator) > 0, round_  # its fifth failure inside the window locks it out
    now[0] += t.window + 1  # the window passed: counted from zero again
    assert t.retry_after(operator) == 0


@pytest.fixture
def phone() -> Iterator[Any]:
    with chromium(phone_pixel_ratio=1) as driver:
        yield driver


@pytest.mark.slow
async def test_a_page_reconnected_by_the_browser_is_sent_the_view_it_missed(
        web_world: WebWorld, monkeypatch: pytest.MonkeyPatch, phone: Any) -> None:
    """A page passes its stream the digest of the part it was loaded with (``?shown=``), and the
    stream sends nothing while that is still the view. When the connection dropped (a phone's
    network, a reverse proxy restarted), the BROWSER reconnected by itself, to the same address:
    the new stream took that digest for what the page showed, while the page showed what it was
    sent since. A silence was added (the open page showed it), the connection dropped, the
    silence was expired: the view was again the one loaded, so nothing was sent, and the page
    showed the expired silence as active for as long as nothing else changed."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from agent.engine.operator_actions import create_silence, end_silence
    from agent.web import build_app

    ctx = _app(web_world)

    async def programs() -> dict[str, str]:
        return {"agent": "RUNNING", "bot": "RUNNING"}

    monkeypatch.setattr(ctx.live.gatherer, "_programs", programs)
    ctx.config.settings.web.heartbeat_seconds = 60.0  # the page's own watchdog (150 s) stays out of it
    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client:
        relay = _Cuttable(client.server.port or 0)
        await relay.resume()
        base = f"http://127.0.0.1:{relay.port}"
        loop = asyncio.get_running_loop()

        def on_loop(coro: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

        def store(fn: Any) -> Any:
            def run() -> Any:
                with web_world.store() as st:
                    return fn(st)
            return on_loop(asyncio.to_thread(run))

        def silences(d: Any) -> str:
            return str(d.execute_script("var s = document.getElementById('silences'); return s ? s.textContent : ''"))

        def drive() -> dict[str, Any]:
            phone.get(f"{base}/login?next=/incidents")
            phone.find_element(By.ID, "username").send_keys("viewer")
            phone.find_element(By.ID, "password").send_keys(VIEWER_PW)
            phone.find_element(By.ID, "sign-in").click()
            WebDriverWait(phone, 60).until(lambda d: "Active silences (0)" in silences(d))
            time.sleep(1)  # its stream is open
            now = datetime.now(UTC)
            sid = store(lambda st: create_silence(st, {"check": "disk*"}, seconds=3600, reason="deploy",
                                                  by="cli:test", now=now))
            WebDriverWait(phone, 30).until(lambda d: "Active silences (1)" in silences(d))
            on_loop(relay.cut())
            store(lambda st: end_silence(st, sid, by="cli:test", now=datetime.now(UTC)))
            deadline = time.monotonic() + 30
            while ctx.live.snapshot is None or ctx.live.snapshot.silences:  # the server has read it
                assert time.monotonic() < deadline
                time.sleep(0.1)
            on_loop(relay.resume())
            # The browser reconnects by itself (after about 3 s), to the address it was given.
            WebDriverWait(phone, 60).until(lambda d: relay.accepted)
            try:
                WebDriverWait(phone, 15).until(lambda d: "Active silences (0)" in silences(d))
            except TimeoutException:
                pass
            shown = silences(phone)
            phone.get("about:blank")
            return {"shown": shown}

        try:
            seen = await asyncio.to_thread(drive)
        finally:
            if relay.server is not None:
                await relay.cut()
    assert "Active silences (0)" in seen["shown"], seen


def test_a_spray_that_locks_out_every_kept_pair_does_not_free_the_operators_lock_out() -> None:
    """With every kept (name, address) pair locked out, the pair counted last made room: the
    attacker's own guess at ``operator`` (its lock-out refreshed last) was forgotten for the next
    made-up name, and ``operator`` could be guessed again, one guess for every two requests once
    ``limit * max_keys`` failures (50 000, about 20 s) filled the table. A lock-out is never
    forgotten: a pair not kept is refused until one ends."""
    from agent.web.auth import SignInThrottle

    now = [0.0]
    t = SignInThrottle(clock=lambda: now[0])
    operator = "user:operator\naddr:127.0.0.1"
    n = 0

    def spray() -> None:
        nonlocal n
        n += 1
        now[0] += 0.0001  # all inside one window
        key = f"user:x{n}\naddr:127.0.0.1"
        if t.retry_after(key) == 0:  # as the sign-in handler: a refused pair is not tried
            t.failed(key)

    guesses = 0
    for _ in range(t.limit - 1):
        guesses += 1
        t.failed(operator)
    for _ in range(t.max_keys * t.limit + 100):  # every kept pair locked out
        spray()
    for _ in range(20):
        now[0] += 0.0001
        if t.retry_after(operator) == 0:
            guesses += 1
            t.failed(operator)
        spray()
    assert len(t) <= t.max_keys
    assert guesses <= t.limit  # five in the window at most, however the names were sent
    assert t.retry_after(operator) > 0
    assert t.retry_after("user:someone-new\naddr:127.0.0.1") > 0  # no room without forgetting a lock-out
    now[0] += t.window + 1  # the window passed: nobody is refused
    assert t.retry_after(operator) == 0 and t.retry_after("user:someone-new\naddr:127.0.0.1") == 0


async def test_a_tab_silences_again_what_another_tab_silenced_once_that_silence_did_nothing_or_ended(
        client: TestClient, web_world: WebWorld) -> None:
    """Tab B carries the silence form's token tab A used (one per path and session). A silence was
    refused as a repeat by its matchers alone, whatever became of the first: its duration mistyped
    (nothing silenced), or the silence since expired, and tab B's silence of those alerts (the
    operator fixing the duration, going Back) answered "already done" while nothing held them.
    A send is a repeat only while a silence of the same matchers is active."""
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    token = once(client, "/act/silence")

    async def send(fields: dict[str, str], status: int) -> None:
        r = await client.post("/act/silence", data={"csrf": csrf, "once": token, **fields}, allow_redirects=False)
        assert r.status == status, (fields, r.status, await r.text())

    def held() -> list[int]:
        with web_world.store() as st:
            return [s.id for s in st.silences() if s.matchers == {"check": "disk*", "host": "local"}]

    await send({"matchers": "check=disk* host=local", "duration": "1 hour", "reason": "deploy"}, 303)
    assert held() == []  # the duration was refused: nothing silenced
    await send({"matchers": "host=local check=disk*", "duration": "1h", "reason": "deploy"}, 303)
    first = held()
    assert len(first) == 1
    await send({"matchers": "check=disk* host=local", "duration": "2h", "reason": ""}, 409)  # still held: a repeat
    r = await client.post(f"/act/silence/{first[0]}/expire",
                          data={"csrf": csrf, "once": once(client, f"/act/silence/{first[0]}/expire")},
                          allow_redirects=False)
    assert r.status == 303 and held() == []
    await send({"matchers": "check=disk* host=local", "duration": "1h", "reason": "again"}, 303)
    assert len(held()) == 1
    await send({"matchers": "check=disk* host=local", "duration": "1h", "reason": "again"}, 409)  # a double tap
    assert len(held()) == 1


async def test_a_stream_the_browser_reconnected_sends_nothing_when_the_page_shows_the_view_already(
        client: TestClient) -> None:
    """A stream the browser reconnected by itself (Last-Event-ID) sent its first view whole, even
    when nothing had changed: at every drop of a phone's connection the live part was replaced,
    and an ack's comment the operator was typing in it was wiped. Each event's id now says what
    the page shows after it (``<ms>-<digest>``), so a reconnected stream sends the view only when
    it differs from that; an id without it (or another digest) gets the whole view."""
    import re

    from agent.web.context import CTX

    client.server.app[CTX].config.settings.web.heartbeat_seconds = 0.3
    await sign_in(client, "viewer", VIEWER_PW)

    async def first_events(headers: dict[str, str], url: str = "/events/incidents") -> tuple[list[str], str]:
        stream = await client.get(url, headers=headers)
        events: list[str] = []
        last_id = ""
        while "ping" not in events:
            line = (await asyncio.wait_for(stream.content.readline(), 30)).decode().strip()
            if line.startswith("event: "):
                events.append(line[7:])
            elif line.startswith("id: "):
                last_id = line[4:]
        stream.close()
        return events, last_id

    events, last_id = await first_events({})
    assert events[0] == "update", events
    assert re.fullmatch(r"[0-9]+-[0-9a-f]{32}", last_id), last_id
    page = await (await client.get("/incidents")).text()
    shown = re.search(r'data-live="/events/incidents\?shown=([0-9a-f]+)"', page)
    assert shown is not None and last_id.endswith("-" + shown[1]), (last_id, page[:300])
    events, _ = await first_events({"Last-Event-ID": last_id}, f"/events/incidents?shown={shown[1]}")
    assert events == ["ping"], events  # the page shows this view already: nothing replaced
    events, _ = await first_events({"Last-Event-ID": last_id.split("-")[0] + "-" + "0" * 32},
                                   f"/events/incidents?shown={shown[1]}")
    assert events[0] == "update", events  # the page was sent another view since it was loaded
    events, _ = await first_events({"Last-Event-ID": last_id.split("-")[0]}, f"/events/incidents?shown={shown[1]}")
    assert events[0] == "update", events
