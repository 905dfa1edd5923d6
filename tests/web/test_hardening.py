"""Issue 17 (an operator-breaker's attack on the status page), through the real application:
the sign-in redirect stays on the site, confirmations are single-use, sign-in throttling does
not let one address lock out an operator, a halt shows while the bot is down, and /healthz
tells nothing but liveness to a visitor."""
from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from agent.web.signin import local_path
from tests.web.conftest import VIEWER_PW, csrf_of

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
