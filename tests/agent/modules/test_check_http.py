"""The http check against a real HTTP server on 127.0.0.1."""
from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from agent.http import new_session
from agent.modules.checks.http import HttpCheck
from tests.agent.modules.test_tls import make_cert
from tests.support.ports import free_port

pytestmark = pytest.mark.usefixtures("shared_clients")


def params(**kw):
    return HttpCheck.Params.model_validate(kw)


@pytest.mark.parametrize(
    ("path", "status", "json_fact", "text_fact"),
    [
        ("/health", 200, {"status": "healthy", "loop_age_s": 1.5}, None),
        ("/text", 200, None, "héllo"),
        ("/badjson", 200, None, '{"status": '),
        ("/status/503", 503, None, "status"),
        ("/missing", 404, None, "not found"),
        ("/redirect", 302, None, ""),
    ],
)
async def test_status_json_and_text(http_server, make_ctx, path, status, json_fact, text_fact) -> None:
    result = await HttpCheck().run(params(url=http_server.url + path), make_ctx())
    assert result.error is None
    assert result.value == status == result.facts["status_code"]
    assert result.facts["json"] == json_fact
    if text_fact is not None:
        assert result.facts["text"] == text_fact
    assert result.facts["latency_ms"] >= 0
    assert set(result.facts) == set(HttpCheck.facts)


async def test_follow_redirects(http_server, make_ctx) -> None:
    result = await HttpCheck().run(params(url=http_server.url + "/redirect", follow_redirects=True), make_ctx())
    assert result.value == 200
    assert result.facts["json"]["status"] == "healthy"
    assert result.facts["url"].endswith("/health")


async def test_headers_both_ways(http_server, make_ctx) -> None:
    result = await HttpCheck().run(
        params(url=http_server.url + "/echo", headers={"Authorization": "Bearer s3cret"}), make_ctx()
    )
    assert result.facts["json"]["headers"]["Authorization"] == "Bearer s3cret"
    health = await HttpCheck().run(params(url=http_server.url + "/health"), make_ctx())
    assert health.facts["headers"]["x-bot"] == "1"


@pytest.mark.parametrize(
    ("kw", "method", "body"),
    [
        ({"method": "POST", "json": {"a": 1}}, "POST", '{"a":1}'),
        ({"method": "PUT", "body": "plain"}, "PUT", "plain"),
        ({}, "GET", ""),
    ],
)
async def test_method_and_body(http_server, make_ctx, kw, method, body) -> None:
    result = await HttpCheck().run(params(url=http_server.url + "/echo", **kw), make_ctx())
    assert result.facts["json"]["method"] == method
    assert result.facts["json"]["body"].replace(" ", "") == body


async def test_body_is_capped(http_server, make_ctx) -> None:
    result = await HttpCheck().run(params(url=http_server.url + "/big", max_body_bytes=100), make_ctx())
    assert result.facts["truncated"] is True
    assert result.facts["text"] == "x" * 100
    assert result.facts["json"] is None


@pytest.mark.parametrize("timeout_source", ["param", "context"])
async def test_timeout_is_an_error_result(http_server, make_ctx, timeout_source) -> None:
    if timeout_source == "param":
        p, ctx = params(url=http_server.url + "/slow?token=abc", timeout="200ms"), make_ctx()
    else:
        p, ctx = params(url=http_server.url + "/slow?token=abc", timeout="30s"), make_ctx(timeout=0.2)
    result = await HttpCheck().run(p, ctx)
    assert result.error == f"GET {http_server.url}/slow timed out after 0.2s"
    assert "abc" not in result.error  # query strings may carry tokens


async def test_connection_refused(make_ctx) -> None:
    port = free_port()  # a port that was free a moment ago and has no listener
    result = await HttpCheck().run(params(url=f"http://user:pw@127.0.0.1:{port}/health"), make_ctx())
    assert result.error == f"GET http://127.0.0.1:{port}/health failed: Connection refused"


async def test_one_session_per_loop_and_tls_setting_serves_every_check(
    http_server, make_ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests share the loop's pooled session: however many checks run, the transport opens
    one aiohttp session per TLS-verification setting, never one per request."""
    opened: list[aiohttp.ClientSession] = []
    session_class = aiohttp.ClientSession

    def counting_session(*args, **kwargs) -> aiohttp.ClientSession:
        opened.append(session_class(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(aiohttp, "ClientSession", counting_session)
    url = http_server.url + "/health"
    for _ in range(2):
        results = await asyncio.gather(
            *(HttpCheck().run(params(url=url, verify_tls=i % 2 == 0), make_ctx()) for i in range(50))
        )
        assert {r.value for r in results} == {200}
    assert len(opened) == 2


async def test_tls_is_verified_unless_the_check_turns_it_off(tmp_path: Path, make_ctx) -> None:
    """An https server on 127.0.0.1 with a self-signed certificate: the check refuses it by
    default (the certificate is verified against the system's CA store) and reads it with
    ``verify_tls: false``."""
    cert, key = make_cert(tmp_path, 20)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
    try:
        url = f"https://127.0.0.1:{port}/health"
        refused = await HttpCheck().run(params(url=url), make_ctx())
        read = await HttpCheck().run(params(url=url, verify_tls=False), make_ctx())
    finally:
        await runner.cleanup()
    assert refused.value is None and "certificate" in (refused.error or "").lower(), refused.error
    assert read.error is None and read.value == 200 and read.facts["json"] == {"status": "healthy"}


async def test_a_session_loads_no_ca_store_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session verifies TLS with aiohttp's verifying context (made once, when aiohttp is
    imported): one SSL context per session loaded the system's CA certificates again, about
    0.8 MB of the resident agent's idle RSS each (docs/performance.md)."""
    made: list[object] = []
    create = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(args)
        return create(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    async with new_session() as verifying, new_session(verify_tls=False) as trusting, new_session(trust_env=True):
        assert not verifying.closed and not trusting.closed
    assert made == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"url": "ftp://x/"}, "not an http"),
        ({"url": "http://x/", "json": {}, "body": "x"}, "either json or body"),
        ({"url": "http://x/", "method": "FETCH"}, "method"),
        ({"url": "http://x/", "timeout": "soon"}, "not a duration"),
        ({"url": "http://x/", "max_body_bytes": 0}, "greater than 0"),
        ({"url": "http://x/", "verify": False}, "Extra inputs"),
    ],
)
def test_bad_params(kw, message) -> None:
    with pytest.raises(ValueError, match=message):
        params(**kw)


def test_secrets_hidden_from_repr() -> None:
    p = params(url="http://x/", headers={"Authorization": "Bearer s3cret"}, json={"key": "s3cret"})
    assert "s3cret" not in repr(p)
