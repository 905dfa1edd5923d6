"""The prometheus check against real exposition text served over HTTP on 127.0.0.1."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from agent.modules.checks.prometheus import PrometheusCheck

pytestmark = pytest.mark.usefixtures("shared_clients")


@pytest.fixture
def metrics(http_server):
    """Exposition text produced by prometheus_client itself, as the bot will serve it."""
    registry = CollectorRegistry()
    equity = Gauge("bot_equity_usd", "account equity", registry=registry)
    equity.set(10_250.5)
    position = Gauge("bot_position_size", "position size", ["coin"], registry=registry)
    position.labels(coin="BTC").set(0.5)
    position.labels(coin="ETH").set(-2.0)
    position.labels(coin="SOL").set(4.0)
    orders = Counter("bot_orders", "orders sent", ["side"], registry=registry)
    orders.labels(side="buy").inc(3)
    orders.labels(side="sell").inc(2)
    http_server.metrics_text = generate_latest(registry).decode()
    return http_server.url + "/metrics"


def params(url, **kw):
    return PrometheusCheck.Params.model_validate({"url": url, **kw})


@pytest.mark.parametrize(
    ("kw", "value", "n_series"),
    [
        ({"metric": "bot_equity_usd"}, 10_250.5, 1),
        ({"metric": "bot_position_size", "labels": {"coin": "ETH"}}, -2.0, 1),
        ({"metric": "bot_position_size", "aggregate": "sum"}, 2.5, 3),
        ({"metric": "bot_position_size", "aggregate": "max"}, 4.0, 3),
        ({"metric": "bot_position_size", "aggregate": "min"}, -2.0, 3),
        ({"metric": "bot_position_size", "aggregate": "avg"}, 2.5 / 3, 3),
        ({"metric": "bot_position_size", "aggregate": "count"}, 3, 3),
        ({"metric": "bot_orders_total", "labels": {"side": "sell"}}, 2.0, 1),
        ({"metric": "bot_orders_total", "aggregate": "sum"}, 5.0, 2),
    ],
)
async def test_selects_and_aggregates(metrics, make_ctx, kw, value, n_series) -> None:
    result = await PrometheusCheck().run(params(metrics, **kw), make_ctx())
    assert result.error is None
    assert result.value == pytest.approx(value) and result.facts["value"] == result.value
    assert len(result.facts["series"]) == n_series
    assert result.facts["latency_ms"] >= 0


async def test_series_carry_labels(metrics, make_ctx) -> None:
    result = await PrometheusCheck().run(
        params(metrics, metric="bot_position_size", labels={"coin": "BTC"}), make_ctx()
    )
    assert result.facts["series"] == [{"labels": {"coin": "BTC"}, "value": 0.5}]


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"metric": "bot_missing"}, "metric 'bot_missing' not found"),
        ({"metric": "bot_position_size", "labels": {"coin": "DOGE"}}, "no series of 'bot_position_size'"),
        ({"metric": "bot_position_size"}, "3 series of 'bot_position_size' match"),
    ],
)
async def test_selection_errors(metrics, make_ctx, kw, error) -> None:
    result = await PrometheusCheck().run(params(metrics, **kw), make_ctx())
    assert result.error is not None and result.error.startswith(error)
    assert result.value is None


@pytest.mark.parametrize(
    ("path", "text", "error"),
    [
        ("/status/500", "", "failed: HTTP 500"),
        ("/metrics", "this is { not exposition\n", "not Prometheus exposition text"),
    ],
)
async def test_bad_endpoints(http_server, make_ctx, path, text, error) -> None:
    http_server.metrics_text = text
    result = await PrometheusCheck().run(params(http_server.url + path, metric="x"), make_ctx())
    assert result.error is not None and error in result.error


async def test_timeout(http_server, make_ctx) -> None:
    result = await PrometheusCheck().run(params(http_server.url + "/slow", metric="x"), make_ctx(timeout=0.2))
    assert result.error == f"GET {http_server.url}/slow timed out after 0.2s"


def test_bad_aggregate() -> None:
    with pytest.raises(ValueError, match="aggregate"):
        params("http://x/metrics", metric="m", aggregate="median")
