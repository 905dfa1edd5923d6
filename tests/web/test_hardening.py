"""Issue 17 (an operator-breaker's attack on the status page), through the real application:
the sign-in redirect stays on the site, confirmations are single-use, sign-in throttling does
not let one address lock out an operator, a halt shows while the bot is down, and /healthz
tells nothing but liveness to a visitor."""
from __future__ import annotations

import asyncio
import re
from urllib.parse import urljoin, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from agent.web.context import CTX
from agent.web.signin import local_path
from tests.web.conftest import OPERATOR_PW, VIEWER_PW, WebWorld, csrf_of, once, sign_in
from tests.web.test_handlers import _run_lines

PAGE = "https://ops.example/login"


def as_a_browser_follows(location: str) -> tuple[str, str]:
    """(scheme, host) a browser goes to for ``Location: location`` on ``PAGE``: the WHATWG URL
    parser drops tab, CR and LF anywhere, strips leading and trailing C0 controls and spaces, and
    reads a backslash as a slash in http(s) URLs."""
    cleaned = "".join(c for c in location if c not in "\t\r\n").strip("".join(map(chr, range(0x21))))
    target = urlsplit(urljoin(PAGE, cleaned.replace("\\", "/")))
    return target.scheme, target.netloc


ATTACKS = ["/\t/evil.example", "/\r\n/evil.example", "/\n/evil.example", "\t//evil.example", "/\\evil.example",
           "//evil.example/x", "https://evil.example/", " /\t/evil.example", "/\x00/evil.example",
           "javascript:alert(1)", "/%0d%0aSet-Cookie:x=1"]


@pytest.mark.parametrize("value", ATTACKS)
async def test_sign_in_never_redirects_off_the_site(client: TestClient, value: str) -> None:
    page = await client.get("/login")
    r = await client.post("/login", data={"csrf": csrf_of(await page.text()), "username": "viewer",
                                          "password": VIEWER_PW, "next": value}, allow_redirects=False)
    assert r.status == 303
    location = r.headers["Location"]
    assert as_a_browser_follows(location) == ("https", "ops.example"), location
    assert all(0x20 < ord(c) < 0x7F for c in location), location


async def test_sign_in_returns_to_the_local_page_asked_for(client: TestClient) -> None:
    page = await client.get("/login?next=/incidents/1%3Fx%3D1")
    r = await client.post("/login", data={"csrf": csrf_of(await page.text()), "username": "viewer",
                                          "password": VIEWER_PW, "next": "/incidents/1?x=1"}, allow_redirects=False)
    assert r.headers["Location"] == "/incidents/1?x=1"


@given(st.text())
@example("/\t/evil.example")
@example("/\u3002/x")
def test_any_next_value_becomes_a_local_path(value: str) -> None:
    path = local_path(value)
    assert path.startswith("/") and not path.startswith("//")
    assert all(0x20 < ord(c) < 0x7F for c in path)
    assert as_a_browser_follows(path) == ("https", "ops.example")
    assert path in (value, "/")  # kept as given, or the overview


def form_fields(html: str) -> dict[str, str]:
    """The hidden fields of the page's form, as a browser would send them."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


async def confirmation_form(client: TestClient, csrf: str) -> dict[str, str]:
    ask = await client.post("/act/play/touch", data={"csrf": csrf, "once": once(client, "/act/play/touch"), "mode": "apply"}, allow_redirects=False)
    assert ask.status == 200
    return {**form_fields(await ask.text()), "confirm_hosts": "local"}


async def test_a_confirmation_runs_the_play_once_however_often_it_is_sent(client: TestClient,
                                                                          web_world: WebWorld) -> None:
    """Three concurrent POSTs of one confirmation (a double tap, a replay): one run."""
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    form = await confirmation_form(client, csrf)
    answers = await asyncio.gather(*(client.post("/act/play/touch", data=form, allow_redirects=False)
                                     for _ in range(3)))
    started = [r for r in answers if r.status == 303 and r.headers["Location"].startswith("/runs/")]
    assert len(started) == 1, [r.status for r in answers]
    refused = [r for r in answers if r not in started]
    for r in refused:
        text = await r.text()  # refused by the form's one-time token, or else by the confirmation's
        assert r.status == 409 and ("already done" in text or "already used" in text), text
    await _run_lines(client, started[0].headers["Location"])
    again = await client.post("/act/play/touch", data=form, allow_redirects=False)  # a replay later
    assert again.status == 409
    st = web_world.store()
    try:
        assert len(st.action_runs()) == 1
    finally:
        st.close()
    fresh = await confirmation_form(client, csrf)  # a new confirmation runs it again
    r = await client.post("/act/play/touch", data=fresh, allow_redirects=False)
    assert r.status == 303


async def test_a_confirmation_is_for_one_play_and_one_session(client: TestClient, web_world: WebWorld) -> None:
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    form = await confirmation_form(client, csrf)
    other = await sign_in(client, "alice", "alice-" + "z" * 26)  # the same browser signs in again: a new session
    r = await client.post("/act/play/touch", data={**form, "csrf": other, "once": once(client, "/act/play/touch")},
                          allow_redirects=False)
    assert r.status == 409
    assert not web_world.marker.exists()


async def failed_sign_ins(client: TestClient, name: str, times: int) -> list[tuple[int, str]]:
    page = await client.get("/login")
    token = csrf_of(await page.text())
    out = []
    for _ in range(times):
        r = await client.post("/login", data={"csrf": token, "username": name, "password": "guess"})
        text = re.sub(r'value="[^"]{20,}"', "", await r.text()).replace(name, "NAME")
        out.append((r.status, re.sub(r"\d+ s\b", "N s", text)))
    return out


async def test_failures_on_other_names_from_one_address_do_not_lock_the_operator_out(client: TestClient) -> None:
    """Behind one proxy or NAT everyone has one address: a stranger guessing there must not lock
    the operator out; only the (name, address) pair that failed is held back."""
    assert [s for s, _ in await failed_sign_ins(client, "mallory", 6)] == [401] * 5 + [429]
    assert [s for s, _ in await failed_sign_ins(client, "viewer", 5)] == [401] * 5
    await sign_in(client, "operator", OPERATOR_PW)
    r = await client.post("/login", data={"csrf": csrf_of(await (await client.get("/login")).text()),
                                          "username": "viewer", "password": VIEWER_PW}, allow_redirects=False)
    assert r.status == 429  # the pair that failed five times waits out its window


async def test_throttling_says_nothing_about_which_names_exist(client: TestClient) -> None:
    assert await failed_sign_ins(client, "operator", 7) == await failed_sign_ins(client, "nobody", 7)


async def test_a_halt_shows_while_the_bot_is_down(client: TestClient, web_world: WebWorld) -> None:
    """The halt file holds the halts whatever happens to the bot: the page reads it, so a halt
    taken while the bot is dead (or before it restarts) shows as one."""
    from botwarden.halts import HaltFile
    from tests.web.conftest import load_config

    settings = load_config(web_world).settings
    HaltFile(settings.path(settings.bot.halt_file)).add("control", "operator stopped trading", by="agent (test)")
    await sign_in(client, "viewer", VIEWER_PW)
    html = await (await client.get("/")).text()
    banner = html[html.index('id="banner"'):html.index("</section>", html.index('id="banner"'))]
    assert "new entries: no: halted (control: operator stopped trading)" in banner, banner
    assert "new entries halted: control: operator stopped trading" in banner, banner


async def test_an_unreadable_halt_file_shows_as_a_halt(client: TestClient, web_world: WebWorld) -> None:
    from tests.web.conftest import load_config

    settings = load_config(web_world).settings
    path = settings.path(settings.bot.halt_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{ torn")
    await sign_in(client, "viewer", VIEWER_PW)
    html = await (await client.get("/")).text()
    assert "new entries: no: halted (unreadable: the halt file" in html


async def test_healthz_tells_a_visitor_only_that_the_page_is_alive(client: TestClient) -> None:
    await sign_in(client, "viewer", VIEWER_PW)
    await client.get("/")  # a snapshot exists: the verdict is known to the page
    await client.post("/logout", data={"csrf": csrf_of(await (await client.get("/")).text())})
    assert (await client.get("/", allow_redirects=False)).status == 302  # signed out
    r = await client.get("/healthz")
    assert r.status == 200
    assert await r.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["//evil.example/incidents/1", "/\\evil.example/x", "/\t/evil.example"])
async def test_an_action_never_goes_back_off_the_site(client: TestClient, path: str) -> None:
    """After an action the page goes back to the page the form was on (its Referer), only when
    that is a path on this site: aiohttp serves ``http://host//evil.example/...`` as a page of its
    own, whose forms then sent a Referer that became ``Location: //evil.example/...``."""
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    base = str(client.make_url("/")).rstrip("/")
    r = await client.post("/act/ack/1", allow_redirects=False, headers={"Referer": base + path},
                          data={"csrf": csrf, "once": once(client, "/act/ack/1"), "comment": "on it"})
    assert r.status in (302, 303), r.status
    location = r.headers["Location"]
    assert as_a_browser_follows(location) == ("https", "ops.example"), location


async def test_a_live_stream_ends_when_its_session_does(client: TestClient) -> None:
    """A stream opened before sign-out kept sending the positions and orders afterwards."""
    client.server.app[CTX].config.settings.web.heartbeat_seconds = 0.5
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    stream = await client.get("/events/overview")
    assert stream.status == 200
    while not (await asyncio.wait_for(stream.content.readline(), 30)).startswith(b"event: update"):
        pass  # pings until the first update
    await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)

    async def rest() -> bytes:
        return await stream.content.read()  # to the end of the stream

    await asyncio.wait_for(rest(), 30)  # was: never ends (updates kept coming after sign-out)
    assert stream.content.at_eof()


async def test_a_live_stream_ends_at_sign_out_not_at_its_next_heartbeat(client: TestClient) -> None:
    """Between its heartbeats (15 s shipped; 60 s here) a stream of a signed-out browser stayed
    open, and a change meanwhile would have been sent to it: it ends when the session does."""
    client.server.app[CTX].config.settings.web.heartbeat_seconds = 60.0  # the most it may be
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    stream = await client.get("/events/overview")
    assert stream.status == 200
    while not (await asyncio.wait_for(stream.content.readline(), 30)).startswith(b"event: update"):
        pass
    await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    await asyncio.wait_for(stream.content.read(), 30)  # was: open until the heartbeat
    assert stream.content.at_eof()


async def test_an_unreadable_store_shows_the_incidents_last_read_never_none(web_world: WebWorld) -> None:
    """Issue 17 (F1's class): a fact the page shows that becomes unreadable shows its last known
    value with its time, never an empty, healthy-looking one ("Open incidents (0)", "none"). The
    agent's store is really moved away here, as a lost disk or a wrong path would."""
    import aiohttp
    from aiohttp.test_utils import TestServer

    from agent.web import build_app, make_context
    from tests.web.conftest import ENV, load_config

    ctx = make_context(load_config(web_world), store_url=web_world.store_url, env=ENV,
                       templates_dir=web_world.root / "templates", charts=False)
    gatherer = ctx.live.gatherer
    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client, aiohttp.ClientSession() as http:
        seen = await gatherer.snapshot(http)
        assert len(seen.open_incidents) == 1 and seen.store_error is None
        db = web_world.root / "var" / "agent.db"
        db.rename(db.with_name("moved.db"))
        gatherer.close()  # the next read opens the file again, as after any failed read
        lost = await gatherer.snapshot(http)
        await sign_in(client, "viewer", VIEWER_PW)
        await ctx.live.gather()
        html = await (await client.get("/")).text()
        incidents = await (await client.get("/incidents")).text()
    assert lost.store_error is not None and lost.store_at is not None
    assert [i.id for i in lost.open_incidents] == [web_world.incident_id]  # the last read, not none
    assert lost.verdict.level != "SAFE" and any("store cannot be read" in r for r in lost.verdict.reasons)
    for page in (html, incidents):
        assert 'id="store-stale"' in page and "as last read at" in page, page
        assert f'id="incident-{web_world.incident_id}"' in page, page


async def test_a_store_never_read_is_unknown_not_empty(client: TestClient, web_world: WebWorld) -> None:
    db = web_world.root / "var" / "agent.db"
    db.rename(db.with_name("moved.db"))
    await sign_in(client, "viewer", VIEWER_PW)
    html = await (await client.get("/incidents")).text()
    assert "Open (?)" in html and "Active silences (?)" in html and "unknown" in html, html
    assert ">none<" not in html, html


async def test_the_page_after_an_action_shows_what_it_did(web_world: WebWorld) -> None:
    """Issue 17 (F4): without JavaScript, the page a silence (or its expiry, or an ack) redirects
    to was rendered from the snapshot read before the action, and listed the silences of before.
    The refresh is long here, so a snapshot of before is still "fresh" when the page is asked."""
    from aiohttp.test_utils import TestServer

    from agent.web import build_app, make_context
    from tests.web.conftest import ENV, OPERATOR_PW, load_config

    config = load_config(web_world)
    config.settings.web.refresh_seconds = 60.0
    ctx = make_context(config, store_url=web_world.store_url, env=ENV, templates_dir=web_world.root / "templates",
                       charts=False)
    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client:
        csrf = await sign_in(client, "operator", OPERATOR_PW)
        before = await (await client.get("/incidents")).text()
        assert "Active silences (0)" in before
        r = await client.post("/act/silence", data={"csrf": csrf, "once": once(client, "/act/silence"), "matchers": "host=local", "duration": "1h",
                                                    "reason": "maintenance"}, allow_redirects=False)
        after = await (await client.get(r.headers["Location"])).text()
        assert "Active silences (1)" in after and 'id="silence-1"' in after, after
        r = await client.post("/act/silence/1/expire", data={"csrf": csrf, "once": once(client, "/act/silence/1/expire")}, allow_redirects=False)
        expired = await (await client.get(r.headers["Location"])).text()
        assert "Active silences (0)" in expired, expired
        await client.get("/")
        r = await client.post(f"/act/ack/{web_world.incident_id}", data={"csrf": csrf, "once": once(client, f"/act/ack/{web_world.incident_id}")}, allow_redirects=False)
        assert r.status == 303
        overview = await (await client.get("/")).text()
    assert "acknowledged by web:operator" in overview, overview
    assert f'id="ack-{web_world.incident_id}"' not in overview, overview


async def test_a_quiet_stream_sends_ping_events_a_script_can_hear(client: TestClient) -> None:
    """Issue 17 (F2): the stream's heartbeats were SSE comments, which EventSource never shows to
    the page's script: a hung server or a dead connection looked live forever. With nothing new
    to show, the stream sends a named ``ping`` event every heartbeat."""
    client.server.app[CTX].config.settings.web.heartbeat_seconds = 0.5
    await sign_in(client, "viewer", VIEWER_PW)
    stream = await client.get("/events/incidents")  # nothing on it changes in this world
    events: list[bytes] = []
    while events.count(b"event: ping") < 3:
        line = (await asyncio.wait_for(stream.content.readline(), 30)).strip()
        if line.startswith(b"event: "):
            events.append(line)
    stream.close()
    assert events[0] == b"event: update" and set(events[1:]) == {b"event: ping"}, events
    page = await (await client.get("/incidents")).text()
    assert 'data-heartbeat="0.5"' in page  # what the page's watchdog counts on


async def test_supervisord_silent_is_unknown_not_stopped(client: TestClient) -> None:
    """supervisord not answering (here: not running at all) said "the agent is not running" and
    "the bot is not running": unknown, said as unknown (and still UNPROTECTED: nothing known watches)."""
    await sign_in(client, "viewer", VIEWER_PW)
    html = await (await client.get("/")).text()
    banner = html[html.index('id="banner"'):html.index("</section>", html.index('id="banner"'))]
    assert "UNPROTECTED" in banner and "supervisord does not answer" in banner, banner
    assert "is not running" not in banner, banner


async def test_an_unreadable_bot_database_shows_the_fills_last_read(web_world: WebWorld) -> None:
    """The bot's database (the day, trades, fills) moved away after a read: the page keeps what it
    read, with its time, instead of "none"."""
    import aiohttp
    from aiohttp.test_utils import TestServer

    from agent.web import build_app, make_context
    from tests.agent.reports.history import build_bot_db
    from tests.web.conftest import ENV, load_config

    config = load_config(web_world)
    db = config.settings.path(config.settings.bot.db)
    build_bot_db(db)
    ctx = make_context(config, store_url=web_world.store_url, env=ENV, templates_dir=web_world.root / "templates",
                       charts=False)
    gatherer = ctx.live.gatherer
    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client, aiohttp.ClientSession() as http:
        seen = await gatherer.snapshot(http)
        assert seen.fills and seen.trading_error is None
        db.rename(db.with_name("moved.db"))
        lost = await gatherer.snapshot(http)
        await sign_in(client, "viewer", VIEWER_PW)
        await ctx.live.gather()
        html = await (await client.get("/trading")).text()
    assert lost.trading_error is not None and lost.trading_at is not None
    assert lost.fills == seen.fills and lost.trades == seen.trades  # the last read, not none
    assert 'id="day-stale"' in html and "as last read at" in html, html
    assert "unknown" not in html.split("Last fills", 1)[1], html


async def test_a_source_that_raises_fails_alone(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17 (w3, 2): one source raising (any exception: an answer never seen, a bug) escaped
    asyncio.gather and failed the whole snapshot. Now it is that source's error: the page loads,
    and the rest of it is read."""
    gatherer = client.server.app[CTX].live.gatherer

    def broken(now: object) -> dict[str, object]:
        raise TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(gatherer, "_bot_db_reads", broken)
    await sign_in(client, "viewer", VIEWER_PW)
    r = await client.get("/trading")
    text = await r.text()
    assert r.status == 200, text
    assert "TypeError" in text and "not subscriptable" in text
    snap = client.server.app[CTX].live.snapshot
    assert snap is not None and snap.verdict.level in ("HALTED", "UNPROTECTED")  # the halt file unread: a halt
    assert any("halt file: not read" in r for r in snap.verdict.reasons), snap.verdict


async def test_pings_over_a_frozen_view_say_it_is_old(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17 (w3, 2): when no snapshot could be made, every open page froze at its last view
    while the stream's pings kept it looking live, and new loads gave 500. Now pings say the view
    is old (and why, and as of when), and a page load shows the last snapshot."""
    import json

    from agent.web import gather

    ctx = client.server.app[CTX]
    ctx.config.settings.web.heartbeat_seconds = 0.3
    await sign_in(client, "viewer", VIEWER_PW)
    assert (await client.get("/")).status == 200
    seen_at = ctx.live.snapshot.at.strftime("%H:%M:%S")

    def broken(facts: object) -> object:
        raise RuntimeError("no verdict")

    monkeypatch.setattr(gather, "decide", broken)
    stream = await client.get("/events/incidents")
    pings: list[dict[str, object]] = []
    event = ""
    while not any(p.get("old") for p in pings) and len(pings) < 200:
        line = (await asyncio.wait_for(stream.content.readline(), 30)).decode().strip()
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: ") and event == "ping":
            pings.append(json.loads(line[len("data: "):]))
    stream.close()
    old = [p for p in pings if p.get("old")]
    assert old and "RuntimeError: no verdict" in str(old[0]["why"]) and old[0]["view_at"] == seen_at, pings
    page = await client.get("/")
    text = await page.text()
    assert page.status == 200 and "cannot read its sources (RuntimeError: no verdict)" in text, text
    script = await (await client.get("/static/live.js")).text()
    assert "ping.old" in script  # the watchdog reads it


HUGE = "9" * 23


async def test_ids_beyond_any_row_are_not_found(client: TestClient) -> None:
    """Issue 17 (w3, 6): ids SQLite cannot hold gave 500 (OverflowError): no such page is 404."""
    await sign_in(client, "viewer", VIEWER_PW)
    assert (await client.get(f"/incidents/{HUGE}")).status == 404
    assert (await client.get(f"/runs/{HUGE}")).status == 404
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    for path in (f"/act/ack/{HUGE}", f"/act/silence/{HUGE}/expire"):
        r = await client.post(path, data={"csrf": csrf, "once": once(client, path)}, allow_redirects=False)
        assert r.status == 404, (path, r.status, await r.text())


async def test_silence_form_errors_speak_the_page_s_words(client: TestClient, web_world: WebWorld) -> None:
    """Issue 17 (w3, 6): a 0 s silence said "--for must be longer than zero" (the CLI's flag);
    a reason had no length limit; expiring a silence that had just run out said only "no active
    silence #N"."""
    from datetime import UTC, datetime, timedelta

    csrf = await sign_in(client, "operator", OPERATOR_PW)
    r = await client.post("/act/silence", data={"csrf": csrf, "once": once(client, "/act/silence"), "matchers": "host=local", "duration": "0s"})
    text = await r.text()
    assert "the duration must be longer than zero" in text and "--for" not in text
    r = await client.post("/act/silence", data={"csrf": csrf, "once": once(client, "/act/silence"), "matchers": "host=local", "duration": "1h",
                                                 "reason": "x" * 501})
    assert "at most 500 characters" in await r.text()
    with web_world.store() as st:
        assert st.silences() == []
        past = datetime.now(UTC) - timedelta(hours=2)
        sid = st.add_silence(matchers={"host": "local"}, starts_at=past, ends_at=past + timedelta(hours=1),
                             reason="", created_by="cli:op", created_at=past)
    r = await client.post(f"/act/silence/{sid}/expire", data={"csrf": csrf, "once": once(client, f"/act/silence/{sid}/expire")})
    ran_out = (past + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"silence #{sid} already ran out at {ran_out}" in await r.text()


async def test_concurrent_acks_keep_the_first_and_say_so(client: TestClient, web_world: WebWorld) -> None:
    """Issue 17 (w3, 4): concurrent acks all "succeeded" and the last comment overwrote the first.
    One form sent four times (a double tap) acknowledges once, the others are "already done"
    (409); acks from two operators' own forms at once: one acknowledges, the other is told by
    whom and when, and the first comment stands."""
    path = f"/act/ack/{web_world.incident_id}"
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    form = {"csrf": csrf, "once": once(client, path), "comment": "first"}
    posts = await asyncio.gather(*(client.post(path, data=form, allow_redirects=False) for _ in range(4)))
    assert sorted(p.status for p in posts) == [303, 409, 409, 409], [p.status for p in posts]
    for p in posts:
        if p.status == 409:
            assert "already done" in await p.text()
    other = await sign_in(client, "alice", "alice-" + "z" * 26)
    r = await client.post(path, data={"csrf": other, "once": once(client, path), "comment": "second"})
    assert "already acknowledged by web:operator at " in await r.text() and "(first)" in await r.text()
    with web_world.store() as st:
        inc = st.get_incident(web_world.incident_id)
        events = st.recent_events(kind="ack")
    assert inc is not None and inc.acknowledged_by == "web:operator" and inc.ack_comment == "first"
    assert len(events) == 1, events


async def test_a_form_sent_twice_acts_once(client: TestClient, web_world: WebWorld) -> None:
    """Issue 17 (w3, 4): two concurrent identical silence POSTs made two silences, and a
    double-tapped play without a confirmation ran twice. Every action form carries a one-time
    token: the second is 409 "already done" and nothing runs; a form without one runs nothing."""
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    silence = {"csrf": csrf, "once": once(client, "/act/silence"), "matchers": "host=local", "duration": "1h"}
    play = {"csrf": csrf, "once": once(client, "/act/play/touch"), "mode": "check"}
    answers = await asyncio.gather(*(client.post("/act/silence", data=silence, allow_redirects=False)
                                     for _ in range(2)),
                                   *(client.post("/act/play/touch", data=play, allow_redirects=False)
                                     for _ in range(2)))
    assert sorted(r.status for r in answers) == [303, 303, 409, 409], [r.status for r in answers]
    bare = await client.post("/act/silence", data={"csrf": csrf, "matchers": "host=local", "duration": "1h"},
                             allow_redirects=False)
    assert bare.status == 400 and "nothing was run" in await bare.text()
    with web_world.store() as st:
        assert len(st.silences()) == 1
    runs = client.server.app[CTX].runs
    assert runs.get(1) is not None and runs.get(2) is None  # one run started


async def test_the_exchange_state_is_said_with_the_time_it_was_asked(client: TestClient) -> None:
    """Issue 17 (w3, 3): "Exchange answering" was shown for up to 30 s after the exchange died
    (the account is read at most every 30 s): the answer is said with the time it was asked."""
    await sign_in(client, "viewer", VIEWER_PW)
    text = await (await client.get("/")).text()
    snap = client.server.app[CTX].live.snapshot
    assert snap is not None and snap.exchange_at is not None
    word = "answering" if snap.exchange_ok else "not answering"
    assert f"{word} at {snap.exchange_at.strftime('%H:%M:%S')} UTC" in text, text
