"""Issue 17, broken as an operator would (web6): the agent stops watching under an open page,
its store is deleted or replaced, secrets reach a halt reason, an unreadable store under an
incident's page, odd ids in a live stream's path. Each through the real application and a real
SQLite store; what happens in the browser (the page's width on a phone) in Debian's chromium."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.core.states import State
from agent.store import Store
from agent.web.verdict import Facts, decide
from tests.web.chromium import chromium
from tests.web.conftest import ENV, VIEWER_PW, WebWorld, load_config, sign_in
from tests.web.sse import server_events


def _app(world: WebWorld, env: dict[str, str] | None = None) -> Any:
    from agent.web import make_context

    return make_context(load_config(world), store_url=world.store_url, env=env or ENV,
                        templates_dir=world.root / "templates", charts=False)


def _facts(**changed: Any) -> Facts:
    base: dict[str, Any] = {"agent_running": True, "agent_fresh": True, "store_readable": True, "bot_running": True,
                            "bot_status": "healthy", "halted_reason": None, "exchange_ok": True, "open_incidents": 0}
    return Facts(**{**base, **changed})


def test_the_verdict_says_when_the_agent_is_not_watching() -> None:
    assert decide(_facts()).unwatched is None
    assert decide(_facts(agent_missed_last_read=True)).unwatched is None  # one miss: busy, still watching
    for facts, words in ((_facts(agent_running=False), "not running"),
                         (_facts(agent_answers=False), "does not answer"),
                         (_facts(agent_loop_blocked=True, agent_loop_stale_s=9.0), "event loop"),
                         (_facts(agent_fresh=False), "stopped coming in"),
                         (_facts(programs_known=False, agent_running=False), "supervisord does not answer")):
        verdict = decide(facts)
        assert verdict.unwatched is not None and words in verdict.unwatched, verdict
        assert verdict.level == "UNPROTECTED" and verdict.unwatched in verdict.reasons


async def test_check_states_and_incidents_are_never_shown_as_current_while_the_agent_does_not_watch(
        client: TestClient, web_world: WebWorld) -> None:
    """Nothing watches here (no supervisord answers, so whether the agent runs is unknown): the
    checks page listed "disk used CRITICAL" and the incidents page "Open (1)" as if current,
    and after the agent's death would have listed a dead bot's checks as OK. Every page that
    shows the agent's records says they are what it last recorded."""
    await sign_in(client, "viewer", VIEWER_PW)
    pages = {path: await (await client.get(path)).text()
             for path in ("/", "/checks", "/incidents", f"/incidents/{web_world.incident_id}", "/agent")}
    for path, html in pages.items():
        assert 'id="unwatched"' in html and "NOT CURRENT" in html, (path, html)
        assert "supervisord does not answer" in html, (path, html)
        assert "what it last recorded (its last check result at" in html, (path, html)
    assert "PENDING, as last recorded" in pages["/checks"], pages["/checks"]
    assert 'Open (1) <small class="error">as last recorded</small>' in pages["/incidents"], pages["/incidents"]
    assert 'Open incidents (1) <small class="error">as last recorded</small>' in pages["/"], pages["/"]


async def test_a_watching_agent_s_pages_carry_no_such_note(web_world: WebWorld, monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    ctx = _app(web_world)

    async def programs() -> dict[str, str]:
        return {"agent": "RUNNING", "bot": "RUNNING"}

    monkeypatch.setattr(ctx.live.gatherer, "_programs", programs)
    st = Store(web_world.store_url)
    try:
        st.record_result(play="health", host="local", check="disk used", state=State.CRITICAL,
                         observed_at=datetime.now(UTC), value=96)
    finally:
        st.close()
    from agent.web import build_app

    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client:
        await sign_in(client, "viewer", VIEWER_PW)
        html = await (await client.get("/checks")).text()
    assert 'id="unwatched"' not in html and "as last recorded" not in html, html


async def test_a_deleted_store_is_said_so_not_read_from_the_deleted_file(web_world: WebWorld) -> None:
    """The page kept its connection to the store's file: deleted (or moved away), the page went
    on reading the deleted file, its incidents frozen, as current, without a word."""
    ctx = _app(web_world)
    gatherer = ctx.live.gatherer
    async with aiohttp.ClientSession() as http:
        seen = await gatherer.snapshot(http)
        assert [i.id for i in seen.open_incidents] == [web_world.incident_id] and seen.store_error is None
        db = web_world.root / "var" / "agent.db"
        db.rename(db.with_name("deleted.db"))  # no close(): the page's connection is still open
        lost = await gatherer.snapshot(http)
        await asyncio.to_thread(gatherer.close)
    assert lost.store_error is not None and "does not exist" in lost.store_error, lost.store_error
    assert lost.store_at == seen.at  # the last read, said with its time


async def test_a_replaced_store_is_read_anew(web_world: WebWorld) -> None:
    """The agent restarted on a new store (the old one deleted, or a backup restored over it):
    the page read the old file for ever, showing an incident the agent no longer has as open."""
    ctx = _app(web_world)
    gatherer = ctx.live.gatherer
    async with aiohttp.ClientSession() as http:
        seen = await gatherer.snapshot(http)
        assert [i.id for i in seen.open_incidents] == [web_world.incident_id]
        db = web_world.root / "var" / "agent.db"
        for part in db.parent.glob("agent.db*"):
            part.rename(part.with_name("old-" + part.name))
        fresh = Store(web_world.store_url)  # the restarted agent's new store, nothing open in it
        try:
            fresh.migrate()
            fresh.record_result(play="health", host="local", check="disk used", state=State.OK,
                                observed_at=datetime.now(UTC), value=12)
        finally:
            fresh.close()
        now = await gatherer.snapshot(http)
        await asyncio.to_thread(gatherer.close)
    assert now.store_error is None, now.store_error
    assert now.open_incidents == ()
    assert [[v for _, v, _ in c.values] for c in now.checks if c.check == "disk used"] == [[12.0]]


async def test_an_incident_page_survives_an_unreadable_store(client: TestClient, web_world: WebWorld) -> None:
    await sign_in(client, "viewer", VIEWER_PW)
    db = web_world.root / "var" / "agent.db"
    db.rename(db.with_name("deleted.db"))
    r = await client.get(f"/incidents/{web_world.incident_id}")
    html = await r.text()
    assert r.status == 200, html
    assert 'id="incident-unknown"' in html and "is unknown now" in html, html
    assert "No incident" not in html  # unknown is not "none"


@pytest.mark.parametrize("page", ["incident-99999999999999999999999", "run-99999999999999999999999",
                                  "incident-\u00b2", "run-\u00b2"])
async def test_a_live_stream_of_an_id_no_row_can_have_is_not_found(client: TestClient, page: str) -> None:
    await sign_in(client, "viewer", VIEWER_PW)
    r = await client.get(f"/events/{page}", timeout=aiohttp.ClientTimeout(total=10))
    assert r.status == 404, (r.status, await r.text())


SECRET = "s3cret-" + "k" * 25


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A secret in the page's environment, under a name that says so (as the bot's token)."""
    monkeypatch.setenv("BOTWARDEN_BOT_TOKEN", SECRET)
    yield {**ENV, "BOTWARDEN_BOT_TOKEN": SECRET}


async def test_a_secret_in_any_text_shown_is_masked(web_world: WebWorld, secret_env: dict[str, str]) -> None:
    """A halt reason (the bot's, or one written by hand) that carries a secret: the banner printed
    it three times, masked nowhere (only some fields went through the ``redact`` filter). Every
    value printed on every page and every live update now goes through the redactor."""
    from agent.web import build_app
    from botwarden.halts import HaltFile

    ctx = _app(web_world, secret_env)
    settings = ctx.config.settings
    HaltFile(settings.path(settings.bot.halt_file)).add("control", f"exchange said: bad token {SECRET} <b>x</b>",
                                                        by="test")
    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client:
        await sign_in(client, "viewer", VIEWER_PW)
        pages = [await (await client.get(path)).text() for path in ("/", "/checks", "/incidents", "/agent")]
        update = (await _events(client, "/events/overview", "update", 1))[0]
    assert "halted (control: exchange said: bad token *** &lt;b&gt;x&lt;/b&gt;)" in pages[0], pages[0]
    for text in (*pages, update):
        assert SECRET not in text
    assert "bad token ***" in update


async def _events(client: TestClient, path: str, kind: str, count: int, until: Any = None) -> list[str]:
    """The data of the first ``count`` events of ``kind`` on the stream at ``path`` (or of them
    until one satisfies ``until``)."""
    found: list[str] = []
    events = server_events(client, path)
    try:
        async for event, data in events:
            if event == kind and (until is None or until(data)):
                found.append(data)
                if len(found) >= count:
                    break
    finally:
        await events.aclose()
    return found


async def test_a_ping_s_reason_is_masked(web_world: WebWorld, secret_env: dict[str, str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """When no view can be made, the pings say why (an exception's text): masked too."""
    from agent.web import build_app, gather

    ctx = _app(web_world, secret_env)
    ctx.config.settings.web.heartbeat_seconds = 0.3
    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client:
        await sign_in(client, "viewer", VIEWER_PW)

        def broken(facts: object) -> object:
            raise RuntimeError(f"cannot read: token {SECRET}")

        monkeypatch.setattr(gather, "decide", broken)
        ping = json.loads((await _events(client, "/events/incidents", "ping", 1,
                                         until=lambda data: json.loads(data).get("old")))[0])
    assert "token ***" in ping["why"] and SECRET not in ping["why"], ping


@pytest.fixture
def phone() -> Iterator[Any]:
    with chromium(phone_pixel_ratio=1) as driver:
        yield driver


@pytest.mark.slow
async def test_a_long_unbroken_reason_does_not_widen_the_page_past_a_phone(web_world: WebWorld, phone: Any) -> None:
    """A 3000-character halt reason with no space (an exchange's error, a hostile one) made the
    overview 34,000 px wide on a 375 px phone: every line of the banner ran off the screen."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from agent.web import build_app
    from botwarden.halts import HaltFile

    ctx = _app(web_world)
    settings = ctx.config.settings
    HaltFile(settings.path(settings.bot.halt_file)).add("control", "E" * 3000, by="test")
    st = Store(web_world.store_url)
    try:
        st.record_result(play="health", host="local", check="disk used", state=State.CRITICAL,
                         observed_at=datetime.now(UTC) - timedelta(seconds=1), value="W" * 500)
    finally:
        st.close()
    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client:
        base = str(client.make_url("/")).rstrip("/")

        def drive() -> list[tuple[str, int, int]]:
            phone.get(f"{base}/login")
            phone.find_element(By.ID, "username").send_keys("viewer")
            phone.find_element(By.ID, "password").send_keys(VIEWER_PW)
            phone.find_element(By.ID, "sign-in").click()
            WebDriverWait(phone, 60).until(lambda d: "/login" not in d.current_url)
            widths = []
            for path in ("/", "/checks", "/incidents"):
                phone.get(f"{base}{path}")
                phone.find_element(By.ID, "live")
                assert "EEEEEEEEEE" in phone.find_element(By.TAG_NAME, "main").text or path != "/"
                widths.append((path, *phone.execute_script(
                    "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")))
            phone.get("about:blank")  # closes the page's live stream before the server stops
            return widths

        widths = await asyncio.to_thread(drive)
    for path, scroll, client_width in widths:
        assert client_width <= 375 and scroll <= client_width, (path, scroll, client_width)


def _seconds(text: str) -> float:
    """``1m2s ago`` -> 62 (``just now`` -> 0)."""
    import re

    if text.strip() == "just now":
        return 0.0
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)(ms|d|h|m|s)", text)
    assert parts, text
    return sum(int(n) / 1000 if u == "ms" else int(n) * units[u] for n, u in parts)


@pytest.mark.slow
async def test_ages_on_an_open_page_go_on_while_nothing_changes(web_world: WebWorld, phone: Any) -> None:
    """A live page is re-rendered only when something in it changes: "opened 40s ago" and "last
    result 10s ago" stood still on the open page for as long as nothing changed (a dead agent
    changes nothing: "last result 7s ago" ten minutes later). The ages now go on counting."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from agent.web import build_app

    ctx = _app(web_world)
    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client:
        base = str(client.make_url("/")).rstrip("/")
        selector = f"#incident-{web_world.incident_id} time"

        def drive() -> tuple[float, float]:
            phone.get(f"{base}/login")
            phone.find_element(By.ID, "username").send_keys("viewer")
            phone.find_element(By.ID, "password").send_keys(VIEWER_PW)
            phone.find_element(By.ID, "sign-in").click()
            WebDriverWait(phone, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))
            phone.execute_script("window.__sameDocument = 'yes';")

            def age() -> float:
                return _seconds(str(phone.execute_script(f"return document.querySelector('{selector}').textContent")))

            first = age()
            later = WebDriverWait(phone, 60).until(lambda d: (a := age()) >= first + 2 and a)
            assert phone.execute_script("return window.__sameDocument") == "yes"  # not by a reload
            phone.get("about:blank")  # closes the page's live stream before the server stops
            return first, later

        first, later = await asyncio.to_thread(drive)
    assert later >= first + 2, (first, later)


@pytest.mark.slow
async def test_without_javascript_a_page_says_when_it_was_read(web_world: WebWorld, phone_without_js: Any) -> None:
    """Without JavaScript nothing updates a page, and only the overview's banner said when it was
    read: a checks page left open in a tab showed "since 40s ago" and "CRITICAL" an hour later
    with nothing to say it was old. Every page now says when it was read."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from agent.web import build_app

    ctx = _app(web_world)
    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client:
        base = str(client.make_url("/")).rstrip("/")

        def drive() -> dict[str, str]:
            d = phone_without_js
            d.get(f"{base}/login")
            d.find_element(By.ID, "username").send_keys("viewer")
            d.find_element(By.ID, "password").send_keys(VIEWER_PW)
            d.find_element(By.ID, "sign-in").click()
            WebDriverWait(d, 60).until(lambda d: "/login" not in d.current_url)
            seen = {}
            for path in ("/", "/checks", "/incidents", "/trading", "/agent", f"/incidents/{web_world.incident_id}"):
                d.get(f"{base}{path}")
                notes = d.find_elements(By.ID, "no-script")
                seen[path] = notes[0].text if notes and notes[0].is_displayed() else ""
            return seen

        seen = await asyncio.to_thread(drive)
    for path, text in seen.items():
        assert text.startswith("read at ") and "does not update itself" in text, (path, text)


@pytest.fixture
def phone_without_js() -> Iterator[Any]:
    with chromium(phone_pixel_ratio=None, javascript=False) as driver:
        yield driver
