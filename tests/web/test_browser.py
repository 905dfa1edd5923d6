"""The page in a real browser (Debian's chromium, driven by Selenium) on a real stack, the way an
operator on call uses it from a phone: sign in; the bot is stopped (``supervisorctl stop bot``)
and its incident appears on the open page without a reload; acknowledge it; run the emergency
in check mode and read its lines; sign out.

A screenshot of each step (375 px wide) is kept under the directory the test prints
(``$BOTWARDEN_ARTIFACTS`` or a fresh one in /tmp).
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import loopback
from tests.support.stack import StackUnderTest, wait_until
from tests.web.chromium import chromium

pytestmark = pytest.mark.slow

WAIT_S = 60.0
HEARTBEAT_S = 1.0
"""The live streams' heartbeat here (15 s shipped): a silent page is called stale after 2.5 of them."""


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium(phone_pixel_ratio=2, page_load_timeout=WAIT_S) as driver:
        yield driver


@pytest.fixture
def artifacts() -> Path:
    base = os.environ.get("BOTWARDEN_ARTIFACTS")
    path = Path(base) / "web" if base else Path(tempfile.mkdtemp(prefix="botwarden-web-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nweb page screenshots: {path}")
    return path


def secrets_of(stack: StackUnderTest) -> dict[str, str]:
    lines = (stack.var / "secrets.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_operator_on_a_phone(running_stack: Callable[..., StackUnderTest], browser: Any, artifacts: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    stack = running_stack(shipped_playbooks=True, settings={"web": {"heartbeat_seconds": HEARTBEAT_S}})
    stack.wait_running()
    stack.wait_state("web", "RUNNING")
    url = f"http://127.0.0.1:{stack.settings.web.port}"
    password = secrets_of(stack)[stack.settings.web.operator_password_env]
    from selenium.common.exceptions import StaleElementReferenceException

    wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))

    def click(element_id: str) -> None:
        # found and clicked in one attempt, retried while the live updates replace the node
        wait.until(lambda d: d.find_element(By.ID, element_id).click() or True)

    def shot(name: str) -> None:
        browser.save_screenshot(str(artifacts / f"{name}.png"))

    def live_text() -> str:
        return str(browser.execute_script("var e = document.getElementById('live'); return e ? e.innerText : '';"))

    def main_text() -> str:
        # Read in one script: the live updates replace nodes, and a node found in one call may be
        # gone by the next ("Node with given id does not belong to the document").
        return str(browser.execute_script("var e = document.querySelector('main'); return e ? e.innerText : '';"))

    # 1. sign in
    def healthz() -> bool:
        try:
            import httpx

            return loopback.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthz, WAIT_S, what="the web page's /healthz")
    browser.get(f"{url}/")
    assert "/login" in browser.current_url
    browser.find_element(By.ID, "username").send_keys("operator")
    browser.find_element(By.ID, "password").send_keys(password)
    shot("01-sign-in")
    browser.find_element(By.ID, "sign-in").click()
    wait.until(lambda d: "/login" not in d.current_url and d.find_elements(By.ID, "banner"))
    wait.until(lambda d: "SAFE" in live_text() or "DEGRADED" in live_text())
    shot("02-overview")

    # 2. the bot is stopped; its incident appears on the open page, without a reload
    browser.execute_script("window.__sameDocument = 'yes';")
    stack.ctl("stop", "bot")
    wait.until(lambda d: "bot process" in live_text())
    assert browser.execute_script("return window.__sameDocument") == "yes", "the page was reloaded"
    assert "DEGRADED" in live_text() or "UNPROTECTED" in live_text()
    shot("03-incident-appears")

    # 3. acknowledge it
    incident_id = wait.until(lambda d: next((e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, "li.incident")
                                             if "bot process" in e.text), None)).removeprefix("incident-")
    click(f"ack-{incident_id}")
    wait.until(lambda d: "acknowledged" in main_text())
    wait.until(lambda d: "acknowledged by web:operator" in live_text())
    shot("04-acknowledged")
    from agent.store import Store

    store = Store(stack.store_url())
    try:
        assert store.get_incident(int(incident_id)).acknowledged_by == "web:operator"
    finally:
        store.close()

    # 4. the emergency in check mode: its lines, nothing changed
    browser.get(f"{url}/")
    click("check-emergency")
    wait.until(lambda d: "/runs/" in d.current_url)
    wait.until(lambda d: "PLAY RECAP" in d.find_element(By.ID, "lines").text)
    lines = browser.find_element(By.ID, "lines").text
    assert "check mode" in main_text()
    assert "flatten (close first" in lines and "every position still open has a reduce-only stop" in lines
    assert "would" in lines
    shot("05-emergency-check-mode")
    store = Store(stack.store_url())
    try:
        runs = [r for r in store.action_runs() if r.play == "emergency"]
    finally:
        store.close()
    assert runs and all(r.actor == "web:operator" and r.check_mode for r in runs)

    # 5. sign out
    click("sign-out")
    wait.until(lambda d: "/login" in d.current_url)
    browser.get(f"{url}/")
    assert "/login" in browser.current_url
    shot("06-signed-out")

    # 6. the page's server hangs, then restarts, under an open page: the page says its view is old
    # (after a restart it goes to sign-in: the session died with the server): it never keeps
    # looking live.
    browser.find_element(By.ID, "username").send_keys("operator")
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "sign-in").click()
    wait.until(lambda d: "/login" not in d.current_url and d.find_elements(By.ID, "banner"))
    wait.until(lambda d: "SAFE" in live_text() or "DEGRADED" in live_text())

    def stale_note() -> str:
        return str(browser.execute_script(
            "var e = document.getElementById('stale'); return e && !e.hidden ? e.innerText : '';"))

    # 6a. the page's server hangs (SIGSTOP) under the open page: no error reaches the browser (the
    # connection stays open), yet within a few heartbeats the page says its view is old; when the
    # server answers again, the page is live again by itself.
    web_pid = int(stack.info("web")["pid"])
    os.kill(web_pid, signal.SIGSTOP)
    try:
        wait.until(lambda d: "live updates STOPPED" in stale_note() and "nothing heard" in stale_note())
        shot("07-server-hung")
    finally:
        os.kill(web_pid, signal.SIGCONT)
    wait.until(lambda d: stale_note() == "")
    assert "/login" not in browser.current_url

    # 6b. the page's server restarts
    stack.ctl("restart", "web")
    wait.until(lambda d: "live updates STOPPED" in stale_note())
    shot("08-server-restarted")
    wait.until(lambda d: "/login" in d.current_url)
    assert sorted(p.name for p in artifacts.glob("*.png")) == [
        "01-sign-in.png", "02-overview.png", "03-incident-appears.png", "04-acknowledged.png",
        "05-emergency-check-mode.png", "06-signed-out.png", "07-server-hung.png", "08-server-restarted.png"]
    if os.environ.get("BOTWARDEN_README_SHOT"):  # how docs/img/web-overview.png is made
        shutil.copy(artifacts / "03-incident-appears.png", os.environ["BOTWARDEN_README_SHOT"])
