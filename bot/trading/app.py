"""``bot run``: wire settings, logs, store, HTTP surface and the trading loop; handle SIGTERM.

Exit codes (botwarden.errors.ExitCode): 0 after a clean stop, 3 when configuration (the key, the
database) is unusable, 1 when a forced exit was needed to honour supervisord's stop timeout.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from bot import __version__
from bot.trading.engine import INTERVAL_SECONDS, TradingEngine
from bot.trading.gateway import Gateway, GatewayError
from bot.trading.http_api import BotHttpServer
from bot.trading.jsonlog import configure_logging
from bot.trading.metrics import BotMetrics
from bot.trading.status import RuntimeStatus
from bot.trading.store import Store
from botwarden.errors import BotwardenError, ConfigError, ExitCode, TransientError
from botwarden.halts import HaltFile
from botwarden.settings import StackSettings

log = logging.getLogger("bot.trading.app")

# supervisord's stopwaitsecs is 10 s: finish (or abandon) the current iteration well before.
STOP_GRACE_S = 8.0


def write_heartbeat(path: Path, wall: float) -> None:
    """Atomically replace ``path`` with the Unix time of the last completed iteration."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(f"{wall:.3f}\n", encoding="utf-8")
    os.replace(tmp, path)


def main(settings: StackSettings) -> int:
    """Run the bot until SIGTERM/SIGINT. See the module docstring for exit codes."""
    bot = settings.bot
    token = os.environ.get(bot.control_token_env) or None
    try:
        key = settings.private_key()
    except RuntimeError as err:
        configure_logging([token] if token else [])
        log.error("cannot start", extra={"event": "config_error", "error": str(err)})
        return ExitCode.CONFIG
    configure_logging([s for s in (token, key) if s])
    if bot.candle_interval not in INTERVAL_SECONDS:
        log.error("cannot start", extra={"event": "config_error",
                                         "error": f"unknown candle_interval {bot.candle_interval!r}"})
        return ExitCode.CONFIG
    metrics = BotMetrics()
    status = RuntimeStatus(loop_seconds=bot.loop_seconds, candle_seconds=INTERVAL_SECONDS[bot.candle_interval])
    try:
        store = Store(settings.path(bot.db))
    except ConfigError as err:
        log.error("cannot start", extra={"event": "config_error", "error": str(err)})
        return ExitCode.CONFIG
    heartbeat = settings.path(bot.heartbeat_file)
    heartbeat.parent.mkdir(parents=True, exist_ok=True)

    engine_box: list[TradingEngine] = []
    control_socket = settings.path(bot.control_socket) if bot.control_socket else None
    try:
        if control_socket is not None:
            control_socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        http = BotHttpServer(bot.host, bot.port, status=status, metrics=metrics, token=token,
                             token_env=bot.control_token_env, controls=lambda: engine_box[0] if engine_box else None,
                             halts=HaltFile(settings.path(bot.halt_file)), control_socket=control_socket)
    except (ValueError, OSError) as err:  # not loopback, port taken, socket path too long
        log.error("cannot start", extra={"event": "config_error", "error": f"HTTP surface: {err}"})
        store.close()
        return ExitCode.CONFIG
    http.start()
    stop = threading.Event()
    forced = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            return
        status.stopping = True  # no new entries from here on
        stop.set()
        log.warning("stopping", extra={"event": "shutdown_requested", "signal": signal.Signals(signum).name})

        def deadline() -> None:
            if not forced.wait(STOP_GRACE_S):
                log.error("iteration did not finish in time; exiting without it (pending orders are "
                          "resolved by cloid at start-up)", extra={"event": "forced_exit"})
                logging.shutdown()
                os._exit(1)

        threading.Thread(target=deadline, name="stop-deadline", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("bot starting", extra={"event": "start", "version": __version__, "network": bot.network,
                                    "exchange": settings.exchange_url, "coins": bot.coins,
                                    "http": f"{bot.host}:{http.port}", "control_enabled": token is not None})
    try:
        engine = _connect(settings, key, store, metrics, status, stop)
        if engine is not None:
            engine_box.append(engine)
            _run_loop(engine, status, metrics, heartbeat, stop, bot.loop_seconds)
    finally:
        forced.set()
        log.info("bot stopped", extra={"event": "stop"})
        http.stop()
        store.close()
    return ExitCode.OK


def _connect(settings: StackSettings, key: str, store: Store, metrics: BotMetrics, status: RuntimeStatus,
             stop: threading.Event) -> TradingEngine | None:
    """Connect and reconcile, retrying with backoff while /health says degraded."""
    backoff = 1.0
    engine: TradingEngine | None = None
    while not stop.is_set():
        try:
            if engine is None:
                gw = Gateway(settings.exchange_url, key, timeout_s=settings.bot.api_timeout_s, metrics=metrics)
                engine = TradingEngine(settings, gw, store, metrics, status)
                for coin in settings.bot.coins:
                    try:
                        gw.update_leverage(coin, max(1, int(settings.bot.risk.max_leverage)))
                    except BotwardenError as err:  # sizing enforces the cap regardless
                        log.warning("leverage not set", extra={"event": "leverage", "coin": coin,
                                                               "error": err.message})
            engine.reconcile()
            status.connected, status.last_error = True, None
            return engine
        except (BotwardenError, OSError) as err:
            status.connected = False
            status.last_error = f"start-up: {getattr(err, 'message', err)}"
            log.error("exchange not reachable at start-up; retrying",
                      extra={"event": "connect_failed", "error": str(err), "retry_in_s": backoff})
            stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)
    return None


def _run_loop(engine: TradingEngine, status: RuntimeStatus, metrics: BotMetrics, heartbeat: Path,
              stop: threading.Event, loop_seconds: float) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            engine.iterate()
            status.connected = True
        except TransientError as err:
            status.connected = False
            status.last_error = err.message
            log.warning("iteration failed", extra={"event": "loop_error", "error": err.message})
        except GatewayError as err:
            status.last_error = err.message
            log.error("exchange refused a request", extra={"event": "loop_error", "kind": err.kind,
                                                           "error": err.message})
        except Exception:  # a bug: keep the stop-losses resting, keep serving /health, say so
            status.last_error = "internal error (see logs)"
            log.exception("bug in the trading loop", extra={"event": "loop_bug"})
        # A completed iteration, failed or not, proves the loop is not hung: that is what the
        # heartbeat and loop_age_s mean. Degradation is reported separately.
        wall = time.time()
        status.last_loop_wall, status.last_loop_monotonic = wall, time.monotonic()
        metrics.last_loop.set(wall)
        try:
            write_heartbeat(heartbeat, wall)
        except OSError as err:
            log.error("heartbeat not written", extra={"event": "heartbeat_error", "error": str(err)})
        stop.wait(max(0.0, loop_seconds - (time.monotonic() - started)))
