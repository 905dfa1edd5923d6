"""One read of everything the page shows: a :class:`Snapshot`, gathered by :class:`Gatherer`.

Where each fact comes from, and the bound on it:

* supervisord (program states): XML-RPC over its unix socket, 2 s timeout;
* the bot: ``GET /health``, 2 s timeout;
* the exchange: public ``/info`` reads (``allMids``, ``clearinghouseState``,
  ``frontendOpenOrders``) for the bot's account, 3 s timeout, at most every
  ``EXCHANGE_EVERY_S`` (they count against the account's API rate limit, shared with the bot);
* the agent: its Prometheus ``/metrics`` (scheduler lateness, RSS), 2 s timeout;
* the agent's store: :class:`agent.store.read_only.ReadOnlyStore` (``mode=ro``, no write lock,
  one short statement per read): check states, recent results, incidents, outbox, events;
* the bot's database (``mode=ro``): equity snapshots of the UTC day, closed trades, fills;
* the bot's halt file (:class:`botwarden.halts.HaltFile`, a small JSON file): the halts in
  force, so HALTED shows while the bot is dead or restarting and /health cannot say it.

Every source fails on its own: a dead bot or a missing store is a fact on the page, never an
error page. Nothing here writes anywhere.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from agent.store.read_only import ReadOnlyStore
from agent.web import trading
from agent.web.verdict import Facts, Verdict, decide
from botwarden.halts import HaltFile, utc_day

log = logging.getLogger("agent.web")

FRESH_RESULTS_S = 120.0
"""The agent counts as watching while some check result is at most this old."""
SILENT_METRICS = 2
"""Snapshots in a row whose read of the agent's ``/metrics`` failed while supervisord says it
runs, after which the agent counts as not watching (hung: SIGSTOP): found in two refreshes, not
after :data:`FRESH_RESULTS_S` of false calm. One failed read is not enough (a busy moment). A
blocked event loop does not silence /metrics (served by its own thread): that is found by the
age of the loop's own beat (:data:`LOOP_STALE_S`, :data:`LOOP_HUNG_S`)."""
LOOP_STALE_S = 3.0
"""The agent's event loop sets ``botwarden_agent_loop_alive_timestamp_seconds`` every second; a
read that finds it older than this finds the loop not running (its /metrics is served by its own
thread and answers while the loop is blocked: a sync call in a coroutine, a deadlock)."""
LOOP_HUNG_S = 5.0
"""A loop found not running on :data:`SILENT_METRICS` reads in a row, and for at least this long,
counts as blocked: the agent is not watching (UNPROTECTED). One stale read is DEGRADED."""
EXCHANGE_EVERY_S = 30.0
"""The account is read from the exchange at most this often (rate-limit weight ~24 per read)."""
SPARK_POINTS = 60
SPARK_WINDOW = timedelta(hours=6)
RECENT_INCIDENTS = timedelta(days=2)


@dataclass(frozen=True)
class CheckRow:
    key: str
    play: str
    check: str
    host: str
    state: str
    soft: str | None
    since: datetime | None
    last_value: str | None
    last_error: str | None
    incident_id: int | None
    values: tuple[tuple[datetime, float, str], ...]
    warning: float | None
    critical: float | None


@dataclass(frozen=True)
class AgentHealth:
    process: str
    metrics_ok: bool
    lateness_p50_ms: float | None = None
    lateness_p99_ms: float | None = None
    lateness_max_bucket_ms: float | None = None
    lateness_samples: int = 0
    rss_mb: float | None = None
    checks_in_flight: int | None = None
    last_result_at: datetime | None = None
    outbox: Mapping[str, int] = field(default_factory=dict)
    outbox_failures: tuple[Any, ...] = ()
    last_start: Any = None
    last_reload: Any = None
    config_rejected: Any = None
    metrics_missed: bool = False
    """The agent runs (for supervisord) and its ``/metrics`` did not answer the last read."""
    loop_alive_ts: float | None = None
    """Unix time the agent's event loop last ran, as its /metrics last said (None: not exported)."""
    loop_age_s: float | None = None
    """How long the agent's event loop had not run at this read (None: unknown: no answer, or an
    agent that does not export it)."""
    metrics_at: datetime | None = None
    """Set while ``metrics_ok`` is false and some earlier read answered: when the figures from
    ``/metrics`` shown were read."""


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    verdict: Verdict
    programs: Mapping[str, str]
    bot_health: Mapping[str, Any] | None
    bot_error: str | None
    exchange_ok: bool
    exchange_detail: str
    agent: AgentHealth
    store_error: str | None
    open_incidents: tuple[Any, ...]
    recent_incidents: tuple[Any, ...]
    checks: tuple[CheckRow, ...]
    silences: tuple[Any, ...]
    account: trading.Account | None
    """The account as last read from the exchange: now, or, when ``account_now`` is false, the
    last read that answered (None when none ever did). Unknown is never shown as "none"."""
    account_at: datetime | None
    """When ``account`` was read from the exchange (at most every ``EXCHANGE_EVERY_S``): the
    positions and stops the verdict judges are as of then, not as of ``at``."""
    day: trading.Day | None
    trades: tuple[Any, ...]
    fills: tuple[Any, ...]
    trading_error: str | None
    account_now: bool = True
    """The last read of the account answered: ``account`` is current (to within the cache)."""
    trading_at: datetime | None = None
    """Set while the bot's database cannot be read (``trading_error``): when the day, trades and
    fills shown were read."""
    exchange_at: datetime | None = None
    """When the exchange was last asked (``exchange_ok`` is its answer then, not now: the account
    is read at most every ``EXCHANGE_EVERY_S``)."""
    store_at: datetime | None = None
    """Set while ``store_error`` says the store cannot be read now and an earlier read worked:
    when the store facts shown (checks, incidents, silences, outbox) were read."""

    def version_key(self) -> tuple[Any, ...]:
        """What changes when something worth re-rendering changed (the time alone does not)."""
        return (self.verdict, tuple(sorted(self.programs.items())), self.open_incidents, self.recent_incidents[:20],
                tuple((c.key, c.state, c.soft, c.since, c.last_value, c.incident_id) for c in self.checks),
                self.silences, self.account, self.day, self.trades[-5:], self.fills[:5], self.agent,
                self.bot_health and {k: v for k, v in self.bot_health.items()
                                     if k not in ("loop_age_s", "uptime_s", "market_data_age_s")},
                self.exchange_ok, self.store_error, self.account_now, self.account_at, self.store_at)


async def _alone(source: str, reading: Any, failed: Any) -> Any:
    """``await reading``; any exception becomes ``failed(description)`` (logged with its trace)."""
    try:
        return await reading
    except Exception as exc:  # one source's failure is a fact for the page, not the page's end
        log.warning("reading %s failed", source, exc_info=True)
        return failed(f"{type(exc).__name__}: {str(exc)[:160]}")


class Gatherer:
    """Reads the sources for one :class:`Snapshot`; keeps connections between reads."""

    def __init__(self, config: Any, store_url: str, *, account_address: str | None) -> None:
        self.config = config
        self.settings = config.settings
        self.store_url = store_url
        self.account_address = account_address
        self._store: ReadOnlyStore | None = None
        self._account_cache: tuple[float, trading.Account | None, str, datetime] | None = None
        self._prev_buckets: dict[float, float] | None = None
        self._silent_metrics = 0  # snapshots in a row without an answer from the running agent
        self._stale_loop = 0  # snapshots in a row whose answer said the agent's loop had not run
        # The last reads that answered, with their time: a source that stops answering is shown
        # as it was last seen, said as such, never as empty (no orders, no incidents: all well).
        self._known_account: tuple[trading.Account, datetime] | None = None
        self._known_store: tuple[dict[str, Any], datetime] | None = None
        self._known_metrics: tuple[dict[str, Any], datetime] | None = None
        self._known_bot_db: tuple[dict[str, Any], datetime] | None = None

    def use_config(self, config: Any) -> None:
        """Read with ``config`` from now on (the page loaded the files again)."""
        self.config = config
        self.settings = config.settings

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def store(self) -> ReadOnlyStore:
        """The agent's store, opened anew when its file was deleted or replaced since it was opened
        (:meth:`~agent.store.read_only.ReadOnlyStore.replaced`): an open connection would keep
        reading the old file, whose incidents nothing resolves any more, as if current. A file
        that is gone raises :class:`~agent.store.read_only.StoreMissingError` (the page says so)."""
        if self._store is not None and self._store.replaced():
            log.warning("the agent's store %s was deleted or replaced since it was opened: opening it anew",
                        self.store_url)
            self.close()
        if self._store is None:
            self._store = ReadOnlyStore(self.store_url)
        return self._store

    async def snapshot(self, http: aiohttp.ClientSession) -> Snapshot:
        now = datetime.now(UTC)
        # Each source fails on its own: whatever one raises (an answer of a shape never seen, a
        # bug) becomes that source's error, shown as unknown with its last known values; it never
        # fails the snapshot (which froze every open page and made new loads 500).
        programs_t = _alone("supervisord", self._programs(), lambda e: {})
        health_t = _alone("the bot's /health", self._bot_health(http), lambda e: (None, f"/health: {e}"))
        metrics_t = _alone("the agent's /metrics", self._agent_metrics(http), lambda e: None)
        account_t = _alone("the account", self._account(http),
                           lambda e: (None, False, f"reading the account failed: {e}", datetime.now(UTC)))
        store_t = _alone("the agent's store", asyncio.to_thread(self._store_reads, now), lambda e: {"error": e})
        day_t = _alone("the bot's database", asyncio.to_thread(self._bot_db_reads, now),
                       lambda e: {"error": e, "halts": (f"halt file: not read ({e}): counted as a halt",)})
        programs, (health, bot_error), metrics, (account, exchange_ok, exchange_detail, account_at), store, bot_db = \
            await asyncio.gather(programs_t, health_t, metrics_t, account_t, store_t, day_t)
        exchange_at = account_at  # when the exchange was last asked (answer or not), cached up to EXCHANGE_EVERY_S
        account_now = account is not None
        if account is not None:
            self._known_account = (account, account_at)
        elif self._known_account is not None:
            account, account_at = self._known_account
        store_error = store.get("error")
        store_at: datetime | None = None
        if store_error is None:
            self._known_store = (store, now)
        elif self._known_store is not None:
            store, store_at = {**self._known_store[0], "error": store_error}, self._known_store[1]
        metrics_at: datetime | None = None
        shown_metrics: dict[str, Any] = metrics or {}
        if metrics is not None:
            self._known_metrics = (metrics, now)
        elif self._known_metrics is not None:
            shown_metrics, metrics_at = self._known_metrics
        if "error" not in bot_db:
            self._known_bot_db = (bot_db, now)
        elif self._known_bot_db is not None:
            bot_db = {**self._known_bot_db[0], "error": bot_db["error"], "halts": bot_db["halts"],
                      "read_at": self._known_bot_db[1]}
        checks: tuple[CheckRow, ...] = store.get("checks", ())
        last_result = max((c.values[-1][0] for c in checks if c.values), default=None)
        state_times = [s for s in store.get("observed", ()) if s is not None]
        last_result = max([*state_times, *([last_result] if last_result else [])], default=None)
        process = programs.get(self.settings.agent.program, "UNKNOWN")
        agent_running = process == "RUNNING"
        silent = bool(self.settings.agent.metrics_port) and agent_running and metrics is None
        beat = metrics.get("loop_alive_ts") if metrics is not None else None
        loop_age = max(0.0, now.timestamp() - beat) if beat is not None else None
        loop_stale = agent_running and loop_age is not None and loop_age > LOOP_STALE_S
        self._stale_loop = self._stale_loop + 1 if loop_stale else 0
        agent = AgentHealth(
            process=process, metrics_ok=metrics is not None, metrics_missed=silent,
            **shown_metrics, loop_age_s=loop_age, metrics_at=metrics_at, last_result_at=last_result, outbox=store.get("outbox", {}),
            outbox_failures=store.get("failures", ()), last_start=store.get("events", {}).get("start"),
            last_reload=store.get("events", {}).get("reload"), config_rejected=store.get("config_rejected"),
        )
        open_incidents = tuple(store.get("open", ()))
        self._silent_metrics = self._silent_metrics + 1 if silent else 0
        verdict = decide(Facts(
            agent_running=agent_running,
            agent_fresh=last_result is not None and (now - last_result).total_seconds() <= FRESH_RESULTS_S,
            agent_answers=self._silent_metrics < SILENT_METRICS,
            store_readable=store_error is None,
            bot_running=programs.get(self.settings.bot.program) == "RUNNING",
            bot_status=health.get("status") if health else None,
            halted_reason=health.get("halted_reason") if health else None,
            exchange_ok=exchange_ok,
            open_incidents=len(open_incidents),
            positions_without_stop=account.positions_without_stop() if account else (),
            exposure_orders=account.orders_adding_exposure() if account else (),
            account_now=account_now,
            account_seen_at=account_at.strftime("%H:%M:%S UTC") if account is not None else None,
            agent_missed_last_read=silent,
            agent_loop_stale_s=loop_age if loop_stale else None,
            agent_loop_blocked=(self._stale_loop >= SILENT_METRICS and loop_age is not None
                                and loop_age >= LOOP_HUNG_S),
            programs_known=bool(programs),
            halts=bot_db.get("halts", ()),
        ))
        return Snapshot(
            at=now, verdict=verdict, programs=programs, bot_health=health, bot_error=bot_error,
            exchange_ok=exchange_ok, exchange_detail=exchange_detail, agent=agent, store_error=store_error,
            open_incidents=open_incidents, recent_incidents=tuple(store.get("recent", ())), checks=checks,
            silences=tuple(store.get("silences", ())), account=account,
            account_at=account_at if account is not None else None, day=bot_db.get("day"),
            trades=tuple(bot_db.get("trades", ())), fills=tuple(bot_db.get("fills", ())),
            trading_error=bot_db.get("error"), account_now=account_now, store_at=store_at,
            trading_at=bot_db.get("read_at"), exchange_at=exchange_at,
        )

    # -- sources -----------------------------------------------------------------------------

    async def _programs(self) -> dict[str, str]:
        from agent.modules.checks._supervisor_rpc import call

        url = f"unix://{self.settings.path(self.settings.supervisor.socket)}"
        try:
            infos = await call(url, "getAllProcessInfo", timeout=2.0)
        except Exception as exc:  # noqa: BLE001 - supervisord down is a fact for the page
            log.debug("supervisord not reachable: %s", exc)
            return {}
        return {str(i["name"]): str(i["statename"]) for i in infos}

    async def _bot_health(self, http: aiohttp.ClientSession) -> tuple[dict[str, Any] | None, str | None]:
        try:
            async with http.get(self.settings.bot.health_url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                return dict(await r.json(content_type=None)), None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return None, f"/health: {type(exc).__name__}: {exc}"[:200]

    async def _agent_metrics(self, http: aiohttp.ClientSession) -> dict[str, Any] | None:
        port = self.settings.agent.metrics_port
        if not port:
            return None
        try:
            async with http.get(f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=2)) as r:
                if r.status != 200:
                    raise ValueError(f"HTTP {r.status}")
                text = await r.text()
            parsed, self._prev_buckets = trading.parse_agent_metrics(text, self._prev_buckets)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:  # not the agent's metrics: no answer
            log.debug("agent metrics: %s", exc)
            return None
        return parsed

    async def _account(self, http: aiohttp.ClientSession
                       ) -> tuple[trading.Account | None, bool, str, datetime]:
        now = time.monotonic()
        if self._account_cache is not None and now - self._account_cache[0] < EXCHANGE_EVERY_S:
            _, account, detail, read_at = self._account_cache
            return account, account is not None or detail == "", detail, read_at
        read_at = datetime.now(UTC)
        account, detail = await trading.read_account(http, self.settings.exchange_url, self.account_address)
        self._account_cache = (now, account, detail, read_at)
        return account, account is not None, detail, read_at

    def forget_account(self) -> None:
        """Read the account again at the next snapshot (an operator action just changed it)."""
        self._account_cache = None

    def _store_reads(self, now: datetime) -> dict[str, Any]:
        try:
            st = self.store()
            states = st.load_check_states()
            series = st.recent_results_per_check(since=now - SPARK_WINDOW, per_check=SPARK_POINTS)
            out: dict[str, Any] = {
                "open": st.open_incidents(),
                "recent": st.find_incidents(since=now - RECENT_INCIDENTS, limit=50),
                "silences": st.silences(),
                "outbox": st.notification_counts(),
                "failures": st.recent_notifications(statuses=("failed", "dead"), limit=10),
                "events": st.last_events(("start", "reload", "stop")),
                "observed": [s.last_observed_at for s in states.values()],
            }
            rejected = st.recent_notifications(title_prefix="[CONFIG]", limit=1)
            out["config_rejected"] = rejected[0] if rejected else None
        except Exception as exc:  # noqa: BLE001 - an unreadable store is shown, never raised into the page
            self.close()
            return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}
        out["checks"] = tuple(self._check_rows(states, series))
        return out

    def _check_rows(self, states: Mapping[str, Any], series: Mapping[str, list[Any]]) -> list[CheckRow]:
        rows = []
        for bc in sorted(self.config.bound_checks, key=lambda b: b.key):
            rec = states.get(bc.key)
            values = tuple((r.observed_at, v, r.state.name) for r in series.get(bc.key, ())
                           if (v := trading.as_float(r.value)) is not None)
            rows.append(CheckRow(
                key=bc.key, play=bc.play.name, check=bc.check.name, host=bc.host.name,
                state=rec.hard_state.name if rec else "PENDING",
                soft=rec.soft_state.name if rec and rec.soft_state != rec.hard_state else None,
                since=rec.since if rec else None, last_value=rec.last_value if rec else None,
                last_error=rec.last_error if rec else None, incident_id=rec.incident_id if rec else None,
                values=values, warning=self._bound(bc, bc.check.warning),
                critical=self._bound(bc, bc.check.critical),
            ))
        return rows

    def _bound(self, bc: Any, text: str | None) -> float | None:
        if not text:
            return None
        from agent.playbook.thresholds import Threshold

        try:
            return trading.as_float(Threshold.parse(text).bound(bc.vars, self.config.templating))
        except Exception:  # noqa: BLE001 - a bound that needs the facts is simply not drawn
            return None

    def _bot_db_reads(self, now: datetime) -> dict[str, Any]:
        """The bot's day from its database, and ``halts``: the halts in force in its halt file,
        read directly, so a halt shows while the bot is dead or restarting."""
        path = self.settings.path(self.settings.bot.db)
        try:
            out = trading.read_bot_db(path, now, self.settings.bot.risk.daily_loss_limit_pct)
        except Exception as exc:  # noqa: BLE001 - shown on the trading page
            out = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        halts = HaltFile(self.settings.path(self.settings.bot.halt_file)).active(utc_day(now))
        out["halts"] = tuple(h.describe() for h in halts)
        return out

