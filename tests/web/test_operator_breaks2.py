"""Issue 17, broken again as an operator would (brk17): two tabs of one session acting, a spray
of sign-in names, live pages left open for minutes (what each update sends, what the banner's
time says), a page loaded while a source hangs. Through the real application and a real SQLite
store; what happens in the browser in Debian's chromium."""
from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.web.conftest import OPERATOR_PW, WebWorld, once, sign_in


async def test_a_second_tab_s_different_action_is_not_refused_as_already_done(
        client: TestClient, web_world: WebWorld) -> None:
    """An action form's one-time token is one per path and session, so two tabs (or an older
    page) carry the same one. Tab A ran a play in check mode; tab B's "Run…" of that play (it
    only asks for the confirmation) was answered 409 "already done: this form was already
    sent", and tab B's silence of another check after tab A's silence too: the operator was
    told that something was done that never was. A form sending the same fields again is still
    refused (a double submit), with the time it was first sent."""
    csrf = await sign_in(client, "operator", OPERATOR_PW)
    play, silence = once(client, "/act/play/touch"), once(client, "/act/silence")
    a = await client.post("/act/play/touch", data={"csrf": csrf, "once": play, "mode": "check"},
                          allow_redirects=False)
    assert a.status == 303 and a.headers["Location"].startswith("/runs/")
    b = await client.post("/act/play/touch", data={"csrf": csrf, "once": play, "mode": "apply"},
                          allow_redirects=False)
    assert b.status == 200 and 'id="confirm-hosts"' in await b.text(), (b.status, await b.text())
    first = {"csrf": csrf, "once": silence, "matchers": "host=local", "duration": "1h", "reason": "tab A"}
    second = {**first, "matchers": "check=disk*", "reason": "tab B"}
    for form in (first, second):
        r = await client.post("/act/silence", data=form, allow_redirects=False)
        assert r.status == 303, (r.status, await r.text())
    again = await client.post("/act/silence", data=second, allow_redirects=False)
    text = await again.text()
    assert again.status == 409 and "already done" in text and " UTC" in text, text
    with web_world.store() as st:
        assert sorted(s.reason for s in st.silences()) == ["tab A", "tab B"]
    assert not web_world.marker.exists()


def test_a_spray_of_sign_in_names_keeps_the_throttle_bounded_and_the_lock_out() -> None:
    """Failed sign-ins were kept per (name, address) for the whole 5 minutes, the name itself as
    the key (a form allows 64 KiB), and swept only of entries already out of the window: a spray
    of random names inside the window grew without bound. Now at most ``max_keys`` digests are
    kept, and the spray does not push out a name that is locked out."""
    import secrets

    from agent.web.auth import SignInThrottle

    kept = 10_000  # the bound the README states
    now = [0.0]
    t = SignInThrottle(clock=lambda: now[0])
    operator = "user:operator\naddr:10.0.0.9"
    for _ in range(t.limit):
        t.failed(operator)
    assert t.retry_after(operator) > 0
    for i in range(3 * kept):
        now[0] = i * 0.001  # all inside the window
        t.failed(f"user:{secrets.token_hex(8)}{'x' * 2000}\naddr:10.0.0.9")
    assert len(t._failures) <= kept
    assert all(len(k) == 32 for k in t._failures)  # digests, not 2 KiB names
    assert t.retry_after(operator) > 0  # still locked out
