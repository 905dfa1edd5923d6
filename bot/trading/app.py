"""``bot run``: wire settings, logs, store, HTTP surface and the trading loop; handle SIGTERM.

Start-up: take the active lock (asking an interim bot to hand over), fork the warm spare
(:mod:`bot.trading.standby`), then open the store, serve HTTP, start the websocket feed,
connect, reconcile and trade. The spare runs the same path from the lock onwards when the bot
dies.

Exit codes (botwarden.errors.ExitCode): 0 after a clean stop, 3 when configuration (the key, the
database) is unusable, 4 when another bot stays active, 1 when a forced exit was needed to
honour supervisord's stop timeout.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bot import __version__
from bot.trading.engine import INTERVAL_SECONDS, TradingEngine
from bot.trading.gateway import Gateway, GatewayError
from bot.trading.http_api import BotHttpServer
from bot.trading.jsonlog import configure_logging
from bot.trading.market_feed import MarketFeed
from bot.trading.metrics import BotMetrics
from bot.trading.standby import (
    HANDOVER_SIGNAL,
    ActiveLock,
    fork_spare,
    stop_spare,
    take_active,
    wait_for_takeover,
)
from bot.trading.status import RuntimeStatus
from bot.trading.store import Store
from botwarden.errors import BotwardenError, ConfigError, ExitCode, TransientError
from botwarden.halts import HaltFile
from botwarden.keys import address_of
from botwarden.settings import SigningKey, StackSettings

log = logging.getLogger("bot.trading.app")

# supervisord's stopwaitsecs is 10 s: finish (or abandon) the current iteration well before.
STOP_GRACE_S = 8.0
# How long a new bot waits for an interim to finish its iteration and hand over.
HANDOVER_WAIT_S = STOP_GRACE_S + 4.0


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
        signer = settings.signing_key("bot")
    except (RuntimeError, ValueError) as err:
        configure_logging([token] if token else [])
        log.error("cannot start", extra={"event": "config_error", "error": str(err)})
        return ExitCode.CONFIG
    formatter = configure_logging([s for s in (token, signer.key) if s])
    if bot.candle_interval not in INTERVAL_SECONDS:
        log.error("cannot start", extra={"event": "config_error",
                                         "error": f"unknown candle_interval {bot.candle_interval!r}"})
        return ExitCode.CONFIG
    lock = ActiveLock(settings.path(bot.lock_file))
    if not take_active(lock, HANDOVER_WAIT_S):
        why = f"{lock.path} is held by pid {lock.holder_pid()}, which is not an interim bot (stop it first)"
        log.error("cannot start: another bot stays active", extra={"event": "config_error", "error": why})
        return ExitCode.OPERATIONAL
    try:
        Store(settings.path(bot.db)).close()  # create the schema once, before two processes open it
    except ConfigError as err:
        log.error("cannot start", extra={"event": "config_error", "error": str(err)})
        return ExitCode.CONFIG
    spare = fork_spare(lock) if bot.warm_spare else None
    role = "interim" if spare == 0 else "active"
    ready = _prepare(settings, signer, role)
    ready.status.redact = formatter.redact  # /health quotes the exchange's words, never a secret
    if role == "interim":
        _rehearse(settings, ready)
        wait_for_takeover(lock, settings.path(settings.supervisor.logdir) / f"{bot.program}.log")
        log.warning("the active bot died; this spare takes over until it is relieved",
                    extra={"event": "spare_takeover", "tenure_s": bot.spare_tenure_s})
    lock.write_pid()
    return _serve(settings, signer, token, role, spare or None, lock, ready)


@dataclass
class Prepared:
    """What a bot opens before it is active (the spare: long before)."""

    metrics: BotMetrics
    status: RuntimeStatus
    store: Store
    gateway: Gateway | None
    """None when the exchange was not reachable: :func:`_connect` builds it (and retries)."""


def _prepare(settings: StackSettings, signer: SigningKey, role: str) -> Prepared:
    bot = settings.bot
    metrics = BotMetrics()
    status = RuntimeStatus(loop_seconds=bot.loop_seconds,
                           candle_seconds=INTERVAL_SECONDS[bot.candle_interval], role=role)
    store = Store(settings.path(bot.db))
    gateway: Gateway | None = None
    if role == "interim":  # the spare has time: the exchange's metadata now, not after a crash
        try:
            gateway = _gateway(settings, signer, metrics)
        except (BotwardenError, OSError):
            gateway = None
    return Prepared(metrics, status, store, gateway)


def _gateway(settings: StackSettings, signer: SigningKey, metrics: BotMetrics) -> Gateway:
    return Gateway(settings.exchange_url, signer.key, timeout_s=settings.bot.api_timeout_s, metrics=metrics,
                   account_address=signer.account)


def _rehearse(settings: StackSettings, ready: Prepared) -> None:
    """Run, once, the CPU paths a takeover needs (the store's reads, the strategy on made-up
    candles, a signature), so that nothing is imported or compiled for the first time after a
    crash. No request is sent and nothing is written."""
    from hyperliquid.utils.signing import sign_l1_action

    from bot.trading.strategy import MacdParams, candles_to_frame, closed_only, evaluate

    store = ready.store
    store.live_orders(), store.open_trades(), store.order_by_cloid("0x" + "0" * 32)
    HaltFile(settings.path(settings.bot.halt_file)).active()
    s = settings.bot.strategy
    rows = [{"t": i * 60_000, "T": i * 60_000 + 59_999, "o": "1", "h": "1", "l": "1",
             "c": str(1 + (i % 7) / 100), "v": "1", "n": 1} for i in range(s.slow + s.signal + 20)]
    evaluate(closed_only(candles_to_frame(rows), len(rows) * 60_000), MacdParams(s.fast, s.slow, s.signal))
    if ready.gateway is not None:
        sign_l1_action(ready.gateway.exchange.wallet, {"type": "noop"}, None, 1, None, False)
    json.dumps(ready.status.health())


def _serve(settings: StackSettings, signer: SigningKey, token: str | None, role: str, spare: int | None,
           lock: ActiveLock, ready: Prepared) -> int:
    """Everything that needs the lock: HTTP, feed, connect, reconcile, the loop."""
    bot = settings.bot
    metrics, status, store = ready.metrics, ready.status, ready.store
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
            stop_spare(spare)  # stopping on purpose: nobody takes over
            if not forced.wait(STOP_GRACE_S):
                log.error("iteration did not finish in time; exiting without it (pending orders are "
                          "resolved by cloid at start-up)", extra={"event": "forced_exit"})
                logging.shutdown()
                os._exit(1)

        threading.Thread(target=deadline, name="stop-deadline", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if role == "interim":
        signal.signal(HANDOVER_SIGNAL, on_signal)  # the next supervised bot relieves us
        tenure = threading.Timer(bot.spare_tenure_s, lambda: on_signal(HANDOVER_SIGNAL, None))
        tenure.daemon = True
        tenure.start()
    else:
        signal.signal(HANDOVER_SIGNAL, signal.SIG_IGN)  # an active bot hands over to nobody
        if spare is not None:
            threading.Thread(target=_watch_spare, args=(spare,), name="spare-reaper", daemon=True).start()
    log.info("bot starting", extra={"event": "start", "version": __version__, "network": bot.network,
                                    "exchange": settings.exchange_url, "coins": bot.coins,
                                    "http": f"{bot.host}:{http.port}", "control_enabled": token is not None,
                                    "api_wallet": signer.name if signer.api_wallet else None,
                                    "account": signer.account, "role": role, "spare_pid": spare})
    feed = _start_feed(settings, signer, metrics, status)
    # A bot that is starting (connecting, waiting for its API wallet, retrying an exchange that is
    # down) is alive: it beats too, so a fresh start is not reported as a hang; one that stops
    # beating in start-up is hung there. The exchange checks say when the exchange is the cause.
    _beat(heartbeat)
    try:
        engine = _connect(settings, signer, store, metrics, status, stop, feed, ready.gateway,
                          set_leverage=role != "interim", beat=lambda: _beat(heartbeat))
        if engine is not None:
            engine_box.append(engine)
            _run_loop(engine, status, metrics, heartbeat, stop, bot.loop_seconds, bot.signer_check_s)
    finally:
        forced.set()
        # The port and the lock first: a bot waiting to take over needs exactly these two.
        http.stop()
        store.close()
        lock.release()
        log.info("bot stopped", extra={"event": "stop"})
        if feed is not None:
            feed.stop()
    return ExitCode.OK


def _watch_spare(pid: int) -> None:
    """Reap the spare and say so (when the bot is not stopping, there is no spare until the
    next start: forking again from a process with threads is not safe)."""
    try:
        _, code = os.waitpid(pid, 0)
    except ChildProcessError:
        return
    log.info("warm spare exited", extra={"event": "spare_exited", "pid": pid, "status": code})


def _start_feed(settings: StackSettings, signer: SigningKey, metrics: BotMetrics,
                status: RuntimeStatus) -> MarketFeed | None:
    """The websocket feed of mids, candles and the account's fills, connecting in the background
    while the bot connects over REST (it falls back to REST whenever the feed has nothing fresh)."""
    account = signer.account or _address(signer.key)
    def fresh(at: float) -> None:
        status.market_data_wall = at

    feed = MarketFeed(settings.exchange_url, account, settings.bot.coins, settings.bot.candle_interval,
                      stale_s=settings.bot.ws_stale_s, on_candle=fresh,
                      outage_file=settings.path(settings.bot.ws_outage_file))
    status.websocket = feed.status
    metrics.watch_websocket(feed.status)
    feed.start()
    return feed


def _address(key: str) -> str:
    return address_of(key)


def _beat(heartbeat: Path) -> None:
    try:
        write_heartbeat(heartbeat, time.time())
    except OSError as err:
        log.error("heartbeat not written", extra={"event": "heartbeat_error", "error": str(err)})


def _connect(settings: StackSettings, signer: SigningKey, store: Store, metrics: BotMetrics,
             status: RuntimeStatus, stop: threading.Event, feed: MarketFeed | None,
             gateway: Gateway | None = None, *, set_leverage: bool = True,
             beat: Callable[[], None] = lambda: None) -> TradingEngine | None:
    """Connect, check that the API wallet is approved, reconcile; retry with backoff while
    /health says degraded (an unapproved or revoked API wallet is retried too: the operator
    approves it and the bot carries on). An interim skips the leverage settings: the bot it
    stands in for made them."""
    backoff = 1.0
    engine: TradingEngine | None = None
    while not stop.is_set():
        try:
            if engine is None:
                gw = gateway or _gateway(settings, signer, metrics)
                gateway = None  # a failure below builds a fresh one on the next try
                gw.feed = feed
                if signer.api_wallet:
                    _check_approved(gw, signer)
                engine = TradingEngine(settings, gw, store, metrics, status)
                for coin in settings.bot.coins if set_leverage else ():
                    try:
                        gw.update_leverage(coin, max(1, int(settings.bot.risk.max_leverage)))
                    except BotwardenError as err:  # sizing enforces the cap regardless
                        log.warning("leverage not set", extra={"event": "leverage", "coin": coin,
                                                               "error": err.message})
            engine.reconcile()
            status.connected, status.last_error, status.exchange_refusal = True, None, gw.refusal
            return engine
        except (BotwardenError, OSError) as err:
            status.connected = False
            if isinstance(err, GatewayError) and err.kind == "auth":
                status.exchange_refusal = err.message
            status.last_error = f"start-up: {getattr(err, 'message', err)}"
            log.error("exchange not reachable at start-up; retrying",
                      extra={"event": "connect_failed", "error": str(err), "retry_in_s": backoff})
            beat()
            stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)
    return None


def _check_approved(gw: Gateway, signer: SigningKey) -> None:
    role = gw.signer_role()
    master = (role.get("data") or {}).get("user") if role.get("role") == "agent" else None
    if str(master).lower() != gw.address.lower():
        raise GatewayError(f"API wallet {gw.signer} ({signer.name}) is not approved for account {gw.address} "
                           f"(userRole: {role.get('role', 'unknown')})", kind="auth",
                           hint="approve it with the account's key (paper: `bot drill approve bot`)")


def _run_loop(engine: TradingEngine, status: RuntimeStatus, metrics: BotMetrics, heartbeat: Path,
              stop: threading.Event, loop_seconds: float, signer_check_s: float) -> None:
    signer_checked = time.monotonic()  # _connect has just checked it
    while not stop.is_set():
        started = time.monotonic()
        try:
            if started - signer_checked >= signer_check_s:
                # A revoked or expired API wallet fails only the next signed request, which may be
                # far away (no signal, stops resting): ask the exchange about it every signer_check_s.
                signer_checked, before = started, engine.gw.refusal
                try:
                    refused = engine.gw.verify_signer()
                except (TransientError, GatewayError) as err:  # asked again at the next check; stops all the same
                    refused = engine.gw.refusal
                    # its own event: the iteration's failure, if the exchange is down, is the loop_error
                    # (one per failed iteration, as the bot's API error rate counts them)
                    log.warning("API wallet not checked", extra={"event": "signer_check_error", "error": err.message})
                if refused not in (None, before):  # said once, not every 30 s
                    log.error("the exchange does not accept the bot's API wallet",
                              extra={"event": "api_wallet_refused", "error": engine.gw.refusal})
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
        status.exchange_refusal = engine.gw.refusal
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
