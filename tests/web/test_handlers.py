"""Every page and action of the web page, as a signed-out visitor, a viewer and an operator.

The rules under test (agent/web/app.py): signed out, pages redirect to the sign-in form and
everything else is 401; a viewer sees every page but no control and is refused every action
(403); an operator's actions land in the store and the audit trail as ``web:<user>``, exactly
as the CLI's do; no POST is accepted without the session's CSRF token.
"""
from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient

from tests.web.conftest import OPERATOR_PW, VIEWER_PW, WebWorld, csrf_of, once, sign_in

PAGES = ["/", "/incidents", "/incidents/1", "/checks", "/trading", "/agent", "/plays"]
ACTIONS = ["/act/ack/1", "/act/silence", "/act/silence/1/expire", "/act/play/touch"]


async def test_healthz_needs_no_sign_in(client: TestClient) -> None:
    r = await client.get("/healthz")
    assert r.status == 200
    assert (await r.json())["status"] == "ok"


@pytest.mark.parametrize("path", PAGES)
async def test_signed_out_pages_redirect_to_sign_in(client: TestClient, path: str) -> None:
    r = await client.get(path, allow_redirects=False)
    assert r.status == 302
    assert r.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", [*ACTIONS, "/logout"])
async def test_signed_out_actions_are_401(client: TestClient, path: str) -> None:
    r = await client.post(path, data={"csrf": "anything"}, allow_redirects=False)
    assert r.status == 401


async def test_signed_out_event_stream_is_401(client: TestClient) -> None:
    r = await client.get("/events/overview", allow_redirects=False)
    assert r.status == 401


async def test_wrong_password_is_refused_and_sets_no_session(client: TestClient) -> None:
    page = await client.get("/login")
    r = await client.post("/login", data={"csrf": csrf_of(await page.text()), "username": "operator",
                                          "password": "wrong"}, allow_redirects=False)
    assert r.status == 401
    assert "bw_session" not in r.cookies
    assert (await client.get("/", allow_redirects=False)).status == 302


async def test_session_cookie_is_httponly_and_samesite(client: TestClient) -> None:
    page = await client.get("/login")
    r = await client.post("/login", data={"csrf": csrf_of(await page.text()), "username": "viewer",
                                          "password": VIEWER_PW, "next": "//evil.example/x"}, allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"] == "/"  # no open redirect
    cookie = r.cookies["bw_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"


async def test_sign_in_without_the_forms_token_is_refused(client: TestClient) -> None:
    r = await client.post("/login", data={"csrf": "forged", "username": "operator", "password": OPERATOR_PW},
                          allow_redirects=False)
    assert r.status == 403
    assert (await client.get("/", allow_redirects=False)).status == 302


async def test_sign_in_is_throttled_after_repeated_failures(client: TestClient) -> None:
    page = await client.get("/login")
    token = csrf_of(await page.text())
    for _ in range(5):
        r = await client.post("/login", data={"csrf": token, "username": "operator", "password": "nope"})
        assert r.status == 401
    r = await client.post("/login", data={"csrf": token, "username": "operator", "password": OPERATOR_PW},
                          allow_redirects=False)
    assert r.status == 429  # even the right password, until the window has passed
    assert int(r.headers["Retry-After"]) > 0


@pytest.mark.parametrize("path", PAGES)
async def test_viewer_sees_pages_without_controls(client: TestClient, path: str) -> None:
    await sign_in(client, "viewer", VIEWER_PW)
    r = await client.get(path)
    assert r.status == 200
    html = await r.text()
    assert "/act/" not in html
    assert "viewer (viewer)" in html


@pytest.mark.parametrize("path", ACTIONS)
async def test_viewer_is_refused_every_action(client: TestClient, web_world: WebWorld, path: str) -> None:
    csrf = await sign_in(client, "viewer", VIEWER_PW)
    r = await client.post(path, data={"csrf": csrf, "matchers": "host=local", "mode": "apply",
                                      "confirm_hosts": "local"}, allow_redirects=False)
    assert r.status == 403
    st = web_world.store()
    try:
        assert st.get_incident(web_world.incident_id).acknowledged_at is None
        assert st.silences() == []
        assert st.action_runs() == []
    finally:
        st.close()
    assert not web_world.marker.exists()


@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_operator_action_without_the_csrf_token_is_refused(client: TestClient, web_world: WebWorld,
                                                                 path: str, token: str | None) -> None:
    await sign_in(client, "operator", OPERATOR_PW)
    data = {"matchers": "host=local", "mode": "check"} | ({"csrf": token} if token else {})
    r = await client.post(path, data=data, allow_redirects=False)
    assert r.status == 403
    st = web_world.store()
    try:
        assert st.get_incident(web_world.incident_id).acknowledged_at is None
        assert st.silences() == []
    finally:
        st.close()


async def test_operator_pages_show_controls(client: TestClient) -> None:
    await sign_in(client, "operator", OPERATOR_PW)
    overview = await (await client.get("/")).text()
    assert 'action="/act/ack/1"' in overview
    assert "#1 disk used" in overview
    incident = await (await client.get("/incidents/1")).text()
    assert "Timeline" in incident and "OK -&gt; CRITICAL" in incident
    checks = await (await client.get("/checks")).text()
    assert '<svg class="spark"' in checks  # five numeric results drawn with the thresholds
    assert "stroke-dasharray" in checks


async def test_operator_acknowledges_like_the_cli(client: TestClient, web_world: WebWorld,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    r = await client.post("/act/ack/1", data={"csrf": csrf, "once": once(client, "/act/ack/1"), "comment": "on it"}, allow_redirects=False)
    assert r.status == 303
    st = web_world.store()
    try:
        inc = st.get_incident(web_world.incident_id)
        events = st.recent_events(kind="ack")
    finally:
        st.close()
    assert inc.acknowledged_by == "web:operator" and inc.ack_comment == "on it"
    assert events[0].message == "acknowledged by web:operator: on it"
    page = await (await client.get("/incidents/1")).text()
    assert "acknowledged by web:operator" in page
    # `agent history` and `agent explain` show it, like an acknowledgement from the CLI.
    from agent.cli.common import console
    from agent.cli.main import main

    monkeypatch.setattr(console, "width", 240)
    assert main(["history", "--inventory", str(web_world.inventory), "--store", web_world.store_url]) == 0
    assert "web:operator" in capsys.readouterr().out
    assert main(["explain", "1", "--inventory", str(web_world.inventory), "--store", web_world.store_url]) == 0
    assert "acknowledged by web:operator" in capsys.readouterr().out
    # A second acknowledgement is refused with the CLI's message, shown once on the next page.
    await client.post("/act/ack/1", data={"csrf": csrf, "once": once(client, "/act/ack/1")})
    r = await client.post("/act/ack/99", data={"csrf": csrf, "once": once(client, "/act/ack/99")})
    assert "no incident #99" in await r.text()


async def test_named_operator_is_audited_under_its_name(client: TestClient, web_world: WebWorld) -> None:
    csrf = await sign_in(client, "alice", "alice-" + "z" * 26)
    await client.post("/act/ack/1", data={"csrf": csrf, "once": once(client, "/act/ack/1")})
    st = web_world.store()
    try:
        assert st.get_incident(web_world.incident_id).acknowledged_by == "web:alice"
    finally:
        st.close()


async def test_operator_silences_and_expires(client: TestClient, web_world: WebWorld) -> None:
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    r = await client.post("/act/silence", data={"csrf": csrf, "once": once(client, "/act/silence"), "matchers": "host=local check=disk*",
                                                "duration": "2h", "reason": "disk swap"})
    assert "silence #1 active" in await r.text()
    st = web_world.store()
    try:
        (silence,) = st.silences()
        assert silence.created_by == "web:operator" and silence.reason == "disk swap"
        assert dict(silence.matchers) == {"host": "local", "check": "disk*"}
        assert (silence.ends_at - silence.starts_at).total_seconds() == 7200
    finally:
        st.close()
    bad = await client.post("/act/silence", data={"csrf": csrf, "once": once(client, "/act/silence"), "matchers": "colour=red", "duration": "1h"})
    assert "bad matcher" in await bad.text()
    r = await client.post("/act/silence/1/expire", data={"csrf": csrf, "once": once(client, "/act/silence/1/expire")})
    assert "silence #1 expired" in await r.text()
    st = web_world.store()
    try:
        assert st.silences() == []
        assert [e.message for e in st.recent_events(kind="silence-expired")] == ["silence #1 expired by web:operator"]
    finally:
        st.close()
    again = await client.post("/act/silence/1/expire", data={"csrf": csrf, "once": once(client, "/act/silence/1/expire")})
    assert "silence #1 already ended at " in await again.text()  # said with its time (issue 17, w3 6)


async def _run_lines(client: TestClient, location: str) -> str:
    for _ in range(200):
        html = await (await client.get(location)).text()
        if "PLAY RECAP" in html or "FAILED" in html:
            return html
        await asyncio.sleep(0.05)
    raise AssertionError(f"the run at {location} did not finish:\n{html}")


async def test_operator_runs_a_play_in_check_mode_at_once(client: TestClient, web_world: WebWorld) -> None:
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    r = await client.post("/act/play/touch", data={"csrf": csrf, "once": once(client, "/act/play/touch"), "mode": "check"}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/runs/")
    html = await _run_lines(client, r.headers["Location"])
    assert "check mode" in html and "touch the marker" in html
    assert not web_world.marker.exists()
    st = web_world.store()
    try:
        (run,) = st.action_runs()
    finally:
        st.close()
    assert run.actor == "web:operator" and run.check_mode


async def test_destructive_play_needs_the_host_typed(client: TestClient, web_world: WebWorld) -> None:
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    ask = await client.post("/act/play/touch", data={"csrf": csrf, "once": once(client, "/act/play/touch"), "mode": "apply"}, allow_redirects=False)
    assert ask.status == 200
    question = await ask.text()
    assert "Touch the marker on local?" in question and "<code>local</code>" in question
    # Every form of the page carries the session's CSRF token (its header's sign-out too).
    assert 'name="csrf" value=""' not in question and question.count(f'name="csrf" value="{csrf}"') >= 2
    wrong = await client.post("/act/play/touch", data={"csrf": csrf, "once": once(client, "/act/play/touch"), "mode": "apply", "confirm_hosts": "prod"},
                              allow_redirects=False)
    wrong_page = await wrong.text()
    assert wrong.status == 400 and "did not match" in wrong_page
    assert not web_world.marker.exists()
    st = web_world.store()
    try:
        assert st.action_runs() == []
    finally:
        st.close()
    # The confirmation page's own form (its hidden fields carry the single-use confirmation).
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', wrong_page))
    assert fields["csrf"] == csrf and fields["mode"] == "apply" and fields["confirmation"]
    r = await client.post("/act/play/touch", data={**fields, "confirm_hosts": "local"}, allow_redirects=False)
    assert r.status == 303
    html = await _run_lines(client, r.headers["Location"])
    assert "changed: [local] touch the marker" in html
    assert web_world.marker.exists()
    st = web_world.store()
    try:
        (run,) = st.action_runs()
    finally:
        st.close()
    assert run.actor == "web:operator" and not run.check_mode and run.changed


async def test_unknown_play_is_said_not_run(client: TestClient) -> None:
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    r = await client.post("/act/play/tuoch", data={"csrf": csrf, "once": once(client, "/act/play/tuoch"), "mode": "check"})
    assert "no playbook named &#39;tuoch&#39;" in await r.text()


async def test_sign_out_ends_the_session(client: TestClient) -> None:
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    r = await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 303
    assert (await client.get("/", allow_redirects=False)).status == 302


async def test_live_stream_sends_a_new_incident_without_a_reload(client: TestClient, web_world: WebWorld) -> None:
    from agent.core.states import State

    await sign_in(client, "viewer", VIEWER_PW)
    resp = await client.get("/events/overview")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")

    async def next_update() -> str:
        data: list[str] = []
        event = None
        while True:
            line = (await asyncio.wait_for(resp.content.readline(), 20)).decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif line == "" and data:
                if event == "update":
                    return "\n".join(data)
                data, event = [], None

    first = await next_update()
    assert "#1 disk used" in first and "#2" not in first
    st = web_world.store()
    try:
        st.open_incident(play="health", host="local", check="memory", state=State.WARNING, severity="warning",
                         opened_at=datetime.now(UTC))
    finally:
        st.close()
    while "#2 memory" not in (update := await next_update()):
        pass
    assert "Open incidents (2)" in update
    resp.close()


async def test_a_second_sign_in_page_does_not_void_the_first_form(client: TestClient) -> None:
    """A browser fetches the form, then (another tab, a redirected favicon) the page again."""
    first = csrf_of(await (await client.get("/login")).text())
    await client.get("/login?next=/favicon.ico")
    r = await client.post("/login", data={"csrf": first, "username": "operator", "password": OPERATOR_PW},
                          allow_redirects=False)
    assert r.status == 303
