"""Stack settings: the one place ports, URLs, paths and program names are written.

The bot, the paper exchange, the supervisord template and the agent's inventory all read
these (the inventory exposes them to playbooks as ``bot.*``, ``exchange.*``,
``supervisor.*``). Defaults are embedded so ``make run`` works with no file at all; an
optional YAML file overrides any of them: the one ``inventory.yaml`` names (``settings:``,
relative to the inventory), else the one ``$BOTWARDEN_SETTINGS`` names. No file is read
because of its name alone: a ``settings.yaml`` the inventory does not name is not read
(``agent validate`` warns about one beside the inventory). ``agent stack up`` passes the file to
the programs it supervises (``bot run --settings PATH``). A file that is named but missing or
unreadable is an error (:func:`load_settings`), never a silent fall-back to the defaults.
Secrets never live here: they are read from the environment variables named below.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

# A well-known development key (Hardhat account #0). It only ever signs for the local paper
# exchange; testnet and mainnet keys come from the environment.
PAPER_DEV_PRIVATE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

Network = Literal["paper", "testnet", "mainnet"]
IP_WEIGHT_PER_MINUTE = 1200  # Hyperliquid's REST budget per IP (its rate-limit docs)
USER_ROLE_WEIGHT = 60  # what one userRole read weighs against it
WS_STALE_MAX_S = 60.0  # bot.ws_stale_s at most (the rule ws-stale-within-a-minute)
WS_STALE_MIN_S = 2.0  # and at least (ws-stale-above-the-feeds-pace)
Signer = Literal["bot", "agent"]
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def loopback_host(host: str) -> str:
    """A bind address on this machine only (``127.0.0.1``, any ``127.x``, ``::1``, ``localhost``):
    nothing the stack serves (the bot's control API, the exchange's admin API, the inbox, the web
    page) leaves this machine; there is no setting that opens it. Reach the web page from
    elsewhere through a TLS reverse proxy on this machine (README, "Behind TLS")."""
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"{host!r} is not a loopback address: everything binds 127.0.0.1 (or ::1) so that "
                         "nothing leaves this machine; put a reverse proxy in front of the web page instead")
    return host


LoopbackHost = Annotated[str, AfterValidator(loopback_host)]
"""A bind address, loopback only (see :func:`loopback_host`)."""
Port = Annotated[int, Field(ge=0, le=65535)]
"""A TCP port (0: any free port, which only a test that reads the bound port back can use)."""



_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def _env_name(value: str) -> str:
    """The name of an environment variable, as shells and supervisord write them: ``BOTWARDEN_BOT_TOKEN``.
    A trailing space, an empty name, a lower-case or look-alike letter (a Cyrillic O) names a
    variable nobody sets: the secret would silently be missing (issue 15, F10)."""
    if _ENV_NAME.fullmatch(value):
        return value
    if not value.strip():
        raise ValueError("an empty name: give the name of the environment variable (e.g. BOTWARDEN_BOT_TOKEN)")
    # the value itself is never echoed: a secret pasted where its variable's name belongs
    at, odd = next(((i, c) for i, c in enumerate(value)
                    if not (c.isascii() and (c.isupper() or c.isdigit() or c == "_"))), (0, ""))
    what = (f"a space at character {at + 1}" if odd.isspace() else
            f"the character {odd!r} (U+{ord(odd):04X}) at character {at + 1}" if odd else "a leading digit")
    raise ValueError(f"not an environment variable name: it has {what}; write capital letters A-Z, digits and "
                     "_ only (e.g. BOTWARDEN_BOT_TOKEN)")


EnvName = Annotated[str, AfterValidator(_env_name)]
"""A setting that names an environment variable (``*_env``)."""

class _Model(BaseModel):
    # strict: a port written "8081" or a flag written "yes" is refused, not converted
    model_config = ConfigDict(extra="forbid", strict=True)


class SupervisorSettings(_Model):
    socket: str = Field("var/supervisor.sock", description="unix socket of supervisord (mode 0700)")
    config: str = Field("var/supervisord.conf", description="rendered supervisord configuration")
    logdir: str = Field("var/log", description="where supervisord and programs log")


class ExchangeSettings(_Model):
    program: str = Field("exchange", description="supervisord program name of the paper exchange")
    host: LoopbackHost = Field("127.0.0.1", description="bind address (loopback only)")
    port: Port = Field(3001, description="HTTP port")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="seed of the simulated market")
    state: str = Field("var/exchange.db", description="SQLite file of accounts, orders, fills")
    admin_token_env: EnvName = Field(
        "BOTWARDEN_EXCHANGE_ADMIN_TOKEN", description="env var holding the fault-injection token"
    )
    coins: list[str] = Field(default_factory=lambda: ["BTC", "ETH", "SOL"], description="perp markets")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _each_once(coins: list[str]) -> list[str]:
    """Rule coins-each-once (said at ``coins:``): no coin written twice (in any case: ``BTC`` and
    ``btc``). The bot trades such a coin once (the second entry finds the first's order), the
    rule stop-outs-within-daily-limit counted it twice, and the second was likely meant as
    another market (``[BTC, ETH, BTC]`` for SOL), which then is not traded."""
    seen: dict[str, str] = {}
    twice: list[str] = []
    for coin in coins:
        folded = coin.strip().casefold()
        if folded in seen and seen[folded] not in twice:
            twice.append(seen[folded])
        seen.setdefault(folded, coin)
    if twice:
        raise ValueError(f"rule coins-each-once: coins lists {', '.join(twice)} more than once: it is traded "
                         "once, counted twice by the daily loss rule, and a market meant in its place is not "
                         "traded; list each coin once")
    return coins


def _broken_rules(rules: list[tuple[str, bool, str]]) -> None:
    """Raise one ``ValueError`` naming every broken rule: ``(name, holds, what to change)``.

    Step two of validation (after the field types): cross-field business rules, each with a
    name an operator can search for and a message that says what to change.
    """
    broken = [f"rule {name}: {message}" for name, holds, message in rules if not holds]
    if broken:
        raise ValueError("; ".join(broken))


class RiskSettings(_Model):
    max_position_pct: float = Field(
        8.0, gt=0, le=5000, description="max position notional, % of equity (below the 10 % warning of trading-risk)"
    )
    max_leverage: float = Field(3.0, gt=0, le=50, description="max leverage (Hyperliquid allows at most 50x)")
    daily_loss_limit_pct: float = Field(5.0, gt=0, le=100, description="daily loss (% of start equity) that halts entries")
    stop_loss_pct: float = Field(2.0, gt=0, le=100, description="stop-loss distance from entry, %")

    @model_validator(mode="after")
    def _risk_rules(self) -> RiskSettings:
        """Named rules of one risk block (see ``BotSettings._bot_rules`` for those across coins); each
        limit being above 0 is its field's range."""
        _broken_rules([
            ("daily-loss-limit-below-100",
             self.daily_loss_limit_pct < 100,
             f"daily_loss_limit_pct {self.daily_loss_limit_pct:g} would never halt before the account is gone: "
             "set it below 100 (the seeds use 5)"),
            ("stop-loss-below-100",
             self.stop_loss_pct < 100,
             f"stop_loss_pct {self.stop_loss_pct:g} puts a long's stop at or below price 0: set it below 100 "
             "(the seeds use 1 to 2)"),
            ("position-within-leverage",
             self.max_position_pct <= self.max_leverage * 100,
             f"max_position_pct {self.max_position_pct:g} % of equity needs leverage "
             f"{self.max_position_pct / 100:g}x, above max_leverage {self.max_leverage:g}: lower "
             f"max_position_pct to at most {self.max_leverage * 100:g} or raise max_leverage"),
        ])
        return self


class StrategySettings(_Model):
    """MACD on closed candles. The defaults are deliberately fast (1m candles, 3/8/3) so the
    bot trades on the paper market within a minute of starting; tune them for real money."""

    name: str = Field("macd", description="strategy name; part of every client order id")
    fast: int = Field(3, ge=1, le=1000, description="fast EMA period (candles)")
    slow: int = Field(8, ge=2, le=1000, description="slow EMA period (candles)")
    signal: int = Field(3, ge=1, le=1000, description="signal-line EMA period (candles)")
    entry: Literal["trend", "cross"] = Field(
        "trend",
        description="trend: enter the current MACD regime once (also right after start-up); "
        "cross: enter only on the candle where MACD crosses its signal line",
    )
    lookback_candles: int = Field(200, ge=20, le=5000, description="closed candles fetched per iteration")

    @model_validator(mode="after")
    def _macd_rules(self) -> StrategySettings:
        _broken_rules([
            ("macd-fast-below-slow",
             self.fast < self.slow,
             f"strategy.fast ({self.fast}) must be below strategy.slow ({self.slow}): swap them or lower fast"),
            ("lookback-covers-macd",
             self.lookback_candles >= self.slow + self.signal,
             f"lookback_candles {self.lookback_candles} is too short for MACD {self.fast}/{self.slow}/{self.signal}: "
             f"raise it to at least slow + signal = {self.slow + self.signal}"),
        ])
        return self


class BotSettings(_Model):
    program: str = Field("bot", description="supervisord program name of the bot")
    host: LoopbackHost = Field("127.0.0.1", description="bind address of /health, /metrics, /control (loopback only)")
    port: Port = Field(8081, description="HTTP port")
    network: Network = Field("paper", description="paper (default), testnet or mainnet")
    db: str = Field("var/bot.db", description="SQLite file of orders, fills, trades, positions")
    coins: Annotated[list[str], AfterValidator(_each_once)] = Field(default_factory=lambda: ["BTC", "ETH"],
                                                                     description="coins traded")
    candle_interval: str = Field("1m", description="candle interval the strategy reads")
    loop_seconds: float = Field(5.0, gt=0, le=3600, description="seconds between strategy iterations")
    signer_check_s: float = Field(
        30.0, ge=1, le=3600,
        description="how often the bot asks the exchange (userRole) whether its API wallet is still approved: a "
                    "revoked or expired wallet otherwise shows only at the next signed request; off paper at least "
                    "12 (userRole weighs 60 of Hyperliquid's 1200 per minute per IP: a quarter at most)")
    control_token_env: EnvName = Field("BOTWARDEN_BOT_TOKEN", description="env var of the control bearer token")
    control_socket: str = Field(
        "var/bot-control.sock",
        description="unix socket (mode 0600) serving /control, which TCP then refuses; empty: /control over TCP")
    private_key_env: EnvName = Field("BOTWARDEN_PRIVATE_KEY",
                                 description="env var of the account's own key (the API wallets' master)")
    api_wallet_key_env: EnvName = Field(
        "BOTWARDEN_BOT_API_WALLET_KEY",
        description="env var of the bot's API (agent) wallet key; when set, the bot signs with it for "
                    "account_address instead of with the account's own key (make run generates one on paper)",
    )
    api_wallet_name: str = Field("botwarden-bot", description="name the bot's API wallet is approved under")
    account_address: str | None = Field(
        None, description="the account traded, master of the API wallets; default: the address of the key in "
                          "private_key_env (on paper: the development key)",
    )
    lock_file: str = Field("var/bot.lock", description="flock held by the active bot (its pid inside)")
    warm_spare: bool = Field(
        True, description="keep a forked, already-imported spare that takes over within milliseconds when "
                          "the bot dies (crash, SIGKILL); the next supervised bot relieves it",
    )
    spare_tenure_s: float = Field(30.0, gt=0, le=3600, description="an interim spare nobody relieves stops after this")
    ws_stale_s: float = Field(
        10.0, gt=0, le=3600, description="websocket silent this long (no message at all, or pongs but no data) counts "
                                "as down: the bot reconnects and reads REST meanwhile; "
                                "from 2 (the feed pushes about once a second) to 60 (older market data is not traded on)",
    )
    ws_outage_file: str = Field(
        "var/bot.ws-outage.json",
        description="when the websocket's current outage began (no data since), kept while it lasts so a "
                    "restarted bot goes on counting `down_for_s` from there; removed once data arrives",
    )
    reconcile_policy: Literal["adopt", "cancel", "halt"] = Field(
        "adopt", description="what to do with exchange state unknown to the database at start-up"
    )
    risk: RiskSettings = Field(default_factory=RiskSettings)
    strategy: StrategySettings = Field(default_factory=StrategySettings)
    heartbeat_file: str = Field(
        "var/bot.heartbeat", description="touched with a timestamp after every loop iteration (watchdog)"
    )
    halt_file: str = Field(
        "var/bot.halt.json",
        description="the halts in force (outside the database: they hold while the bot is dead and across a "
                    "restore); the bot reads it before every entry, the agent writes it directly",
    )
    api_timeout_s: float = Field(5.0, gt=0, le=300, description="timeout of each exchange API call, seconds")
    slippage_pct: float = Field(1.0, ge=0, lt=50, description="limit distance of market (IOC) orders from mid, %")
    min_order_usd: float = Field(10.0, ge=0, le=1_000_000, description="smallest order notional the exchange accepts")

    @model_validator(mode="after")
    def _bot_rules(self) -> BotSettings:
        """Rules across the risk block and the coins traded.

        The signing key of testnet/mainnet is not a settings rule: it lives in the environment
        (``private_key_env``), which the agent reading these settings does not have; the bot
        refuses to start without it (``StackSettings.private_key``, exit code CONFIG).
        """
        risk = self.risk
        if self.account_address is not None and not _ADDRESS.match(self.account_address):
            raise ValueError(f"rule account-address: {self.account_address!r} is not 0x followed by 40 hex "
                             "digits")
        worst_stop_out = len(self.coins) * risk.max_position_pct * risk.stop_loss_pct / 100
        # the signer check asks userRole, which weighs 60 of Hyperliquid's 1200 per minute per IP
        # (its rate-limit docs; the paper exchange enforces no budget unless a drill sets one)
        signer_weight = USER_ROLE_WEIGHT * 60 / self.signer_check_s
        _broken_rules([
            ("signer-check-within-weight-budget",
             self.network == "paper" or signer_weight <= IP_WEIGHT_PER_MINUTE / 4,
             f"signer_check_s {self.signer_check_s:g} asks userRole (weight {USER_ROLE_WEIGHT}) "
             f"{60 / self.signer_check_s:g} times a minute: {signer_weight:g} of Hyperliquid's "
             f"{IP_WEIGHT_PER_MINUTE} per minute per IP, which the bot's reads and the agent's checks share "
             "(past it every request, stop-losses included, is answered 429); keep it to a quarter: raise it "
             f"to at least {USER_ROLE_WEIGHT * 60 * 4 / IP_WEIGHT_PER_MINUTE:g}"),
            # the socket's staleness bounds four things: market data lagging less than it is still
            # traded on; a socket answering pings with no data counts as up that long (bot-health's
            # critical is the seed's 2 minutes); pings go out every third of it (Hyperliquid's idle
            # timeout is 60 s); the outage record is rewritten as often (a restarted bot inherits a
            # record of the last minute only, ws_client.INHERIT_S)
            ("ws-stale-within-a-minute",
             self.ws_stale_s <= WS_STALE_MAX_S,
             f"ws_stale_s {self.ws_stale_s:g}: market data lagging that long would still be traded on, a socket "
             "that answers pings but delivers no data would count as up that long (bot-health's critical is "
             f"2 minutes), its pings would go out every {self.ws_stale_s / 3:g} s (Hyperliquid's idle timeout is "
             "60 s) and its outage record be rewritten as rarely (a restarted bot inherits one of the last "
             f"minute only); set it to at most {WS_STALE_MAX_S:g}"),
            # data comes at the feed's pace (the paper exchange pushes once a 1-s tick; bbo only on a
            # change): staleness below two of its ticks drops every connection before its first push
            ("ws-stale-above-the-feeds-pace",
             self.ws_stale_s >= WS_STALE_MIN_S,
             f"ws_stale_s {self.ws_stale_s:g}: the feed pushes market data about once a second (the paper "
             "exchange once a 1-s tick), so a connection would count as silent between two pushes: dropped "
             "before its first, reopened and dropped again, the socket down for good and the bot on REST; "
             f"set it to at least {WS_STALE_MIN_S:g}"),
            ("coins-not-empty",
             bool(self.coins),
             "coins is empty: the bot would trade nothing; list at least one market, e.g. [BTC]"),
            ("stop-outs-within-daily-limit",
             worst_stop_out < risk.daily_loss_limit_pct,
             f"every coin ({len(self.coins)}) stopped out at once at full size loses {worst_stop_out:g} % of "
             f"equity (coins x max_position_pct x stop_loss_pct / 100), not below daily_loss_limit_pct "
             f"{risk.daily_loss_limit_pct:g}: the limit could never act before it is blown; lower "
             "stop_loss_pct or max_position_pct, trade fewer coins, or raise daily_loss_limit_pct"),
        ])
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def health_url(self) -> str:
        return f"{self.url}/health"

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/metrics"


class AgentSettings(_Model):
    program: str = Field("agent", description="supervisord program name of the agent")
    db: str = Field("var/agent.db", description="SQLite file of results, incidents, outbox, audit")
    metrics_port: int = Field(
        9464, ge=0, le=65535,
        description="port of the agent's Prometheus /metrics endpoint on 127.0.0.1 (lateness, results, RSS); 0 = off",
    )
    events_socket: str = Field(
        "var/agent-events.sock",
        description="unix datagram socket where `agent events-listener` forwards supervisord PROCESS_STATE events",
    )
    api_wallet_key_env: EnvName = Field(
        "BOTWARDEN_AGENT_API_WALLET_KEY",
        description="env var of the agent's own API wallet key (its exchange actions: emergency, "
                    "cancel-all, close-all); when set it signs with it, so the guard acts even if the bot's "
                    "key is revoked",
    )
    api_wallet_name: str = Field("botwarden-agent",
                                 description="name the agent's API wallet is approved under")
    store_grace: float = Field(
        10.0, ge=0, le=3600,
        description="seconds a decision waits for a store that cannot be written (locked, full) before the agent "
        "acts on it anyway and sends its alert straight through apprise, saying why",
    )


class InboxSettings(_Model):
    program: str = Field("inbox", description="local alert receiver program (json:// target)")
    host: LoopbackHost = Field("127.0.0.1", description="bind address (loopback only)")
    port: Port = Field(8025, description="HTTP port of the json:// receiver")
    file: str = Field("var/inbox.jsonl", description="where received alerts are appended")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class WebSettings(_Model):
    """The operator's web page (``agent web``, supervisord program ``web``)."""

    program: str = Field("web", description="supervisord program name of the web page")
    host: LoopbackHost = Field("127.0.0.1", description="bind address (loopback only; put a TLS reverse proxy in front)")
    port: int = Field(8090, ge=0, le=65535, description="HTTP port of the web page")
    operator_password_env: EnvName = Field(
        "BOTWARDEN_WEB_OPERATOR_PASSWORD",
        description="env var of the password of user `operator` (may act); `<this>_<NAME>` adds operator <name>",
    )
    viewer_password_env: EnvName = Field(
        "BOTWARDEN_WEB_VIEWER_PASSWORD",
        description="env var of the password of user `viewer` (read-only); `<this>_<NAME>` adds viewer <name>",
    )
    session_hours: float = Field(12.0, gt=0, le=720, description="a session ends this long after sign-in")
    secure_cookie: bool = Field(
        False, description="mark the session cookie Secure (set it when a TLS reverse proxy serves the page)"
    )
    refresh_seconds: float = Field(2.0, ge=0.1, le=60, description="how often the live pages re-read the store")
    heartbeat_seconds: float = Field(
        15.0, ge=0.5, le=60,
        description="a live page's stream sends an event at least this often; a page that hears nothing for "
                    "2.5 heartbeats says its view is old (live updates STOPPED) and reconnects",
    )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class StackSettings(_Model):
    root: str = Field(".", description="directory that relative paths are resolved against")
    var_dir: str = Field("var", description="runtime state: sockets, logs, SQLite files, backups")
    supervisor: SupervisorSettings = Field(default_factory=SupervisorSettings)
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    bot: BotSettings = Field(default_factory=BotSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    inbox: InboxSettings = Field(default_factory=InboxSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @model_validator(mode="after")
    def _one_program_per_port_and_name(self) -> StackSettings:
        """Two programs on one port (the bot's checks then read the inbox's answers as the bot's
        /health and ran the emergency) or under one supervisord name (the exchange never started
        while its process check watched the bot) are refused."""
        ports = {"exchange.port": self.exchange.port, "bot.port": self.bot.port, "inbox.port": self.inbox.port,
                 "web.port": self.web.port, "agent.metrics_port": self.agent.metrics_port}
        names = {"exchange.program": self.exchange.program, "bot.program": self.bot.program,
                 "inbox.program": self.inbox.program, "agent.program": self.agent.program,
                 "web.program": self.web.program}
        for what, values in (("port", ports), ("program name", names)):
            seen: dict[object, str] = {}
            for key, value in values.items():
                if value in seen:
                    raise ValueError(f"{seen[value]} and {key} are both {value!r}: each program needs a "
                                     f"{what} of its own")
                seen[value] = key
        return self

    @model_validator(mode="after")
    def _paper_markets(self) -> StackSettings:
        """On paper, every coin the bot trades is a market of the paper exchange: one it does not
        list (a typo, ``btc`` for ``BTC``) failed at every iteration of the bot, accepted by
        ``agent validate``. Testnet and mainnet list their own markets (not known here)."""
        if self.bot.network != "paper":
            return self
        markets = {c.casefold(): c for c in self.exchange.coins}
        missing = [c for c in self.bot.coins if c not in self.exchange.coins]
        if missing:
            nearest = [f"{c!r} (did you mean {markets[c.casefold()]!r}?)" if c.casefold() in markets else repr(c)
                       for c in missing]
            _broken_rules([("paper-exchange-lists-the-coins", False,
                            f"bot.coins {', '.join(nearest)}: not a market of the paper exchange (exchange.coins: "
                            f"{', '.join(self.exchange.coins) or 'none'}); the bot would fail on it at every "
                            "iteration; correct it or add it to exchange.coins")])
        return self

    def digest(self, reads: Collection[str] | None = None) -> str:
        """The SHA-256 of these settings as read (every value, paths resolved as loaded): the same
        for a file that differs only in comments, whitespace or the order of its keys. ``agent stack
        up`` gives it to every program (``BOTWARDEN_SETTINGS_DIGEST``): the settings they run.

        ``reads``: only the settings a program reads, as sections or dotted names (``"bot"``,
        ``"agent.api_wallet_key_env"``), with ``root`` and ``var_dir`` always (every path hangs from
        them); None: every setting."""
        if reads is None:
            return hashlib.sha256(self.model_dump_json().encode("utf-8")).hexdigest()
        data = self.model_dump(mode="json")
        picked: dict[str, Any] = {k: v for k, v in data.items() if not isinstance(v, dict)}
        for name in sorted(set(reads)):
            value: Any = data
            for part in name.split("."):
                if not isinstance(value, dict) or part not in value:
                    raise KeyError(f"{name!r} is no setting")
                value = value[part]
            picked[name] = value
        return hashlib.sha256(json.dumps(picked, sort_keys=True).encode("utf-8")).hexdigest()

    def path(self, relative: str) -> Path:
        """Resolve a settings path against ``root`` (absolute paths pass through)."""
        p = Path(relative)
        return p if p.is_absolute() else (Path(self.root) / p).resolve()

    @property
    def secrets_path(self) -> Path:
        """``var/secrets.env``: the tokens ``agent stack up`` generated for this machine's stack."""
        return self.path(self.var_dir) / "secrets.env"

    @property
    def exchange_url(self) -> str:
        """Base URL the bot and the agent's exchange modules use for ``network``."""
        if self.bot.network == "paper":
            return self.exchange.url
        from hyperliquid.utils import constants

        return str(constants.TESTNET_API_URL if self.bot.network == "testnet" else constants.MAINNET_API_URL)

    def private_key(self, environ: Mapping[str, str] | None = None) -> str:
        """The account's own key: ``$private_key_env``; on paper the fixed development key when unset."""
        key = (os.environ if environ is None else environ).get(self.bot.private_key_env)
        if key:
            return key
        if self.bot.network == "paper":
            return PAPER_DEV_PRIVATE_KEY
        raise RuntimeError(
            f"network is {self.bot.network} but ${self.bot.private_key_env} is not set; "
            "export the key in the environment (never in a file under git)"
        )

    def account_address(self, environ: Mapping[str, str] | None = None, *,
                        derive: Callable[[str], str] | None = None) -> str:
        """The account traded: ``bot.account_address``, else the address of the account's own key
        (raises RuntimeError naming the setting when neither is available)."""
        if self.bot.account_address:
            return self.bot.account_address.lower()
        try:
            key = self.private_key(environ)
        except RuntimeError:
            raise RuntimeError(
                f"network is {self.bot.network}: set bot.account_address (the account the API wallets "
                f"trade for) or ${self.bot.private_key_env}") from None
        if derive is not None:
            return derive(key)
        from botwarden.keys import address_of

        return address_of(key)

    def shared_key_problem(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Why the guard would sign with a key that is not its own, or None. The agent's API wallet
        (``$<agent.api_wallet_key_env>``, when set) must be neither the bot's API wallet (when this
        environment holds it) nor the account's own key (what the bot signs with when it has no API
        wallet): the guard's wallet is what still cancels and flattens when the bot's key is revoked
        or its nonces are in a bad state. The message names the settings, never the key."""
        env = os.environ if environ is None else environ
        agent_key = env.get(self.agent.api_wallet_key_env)
        if not agent_key:
            return None
        bot_key = env.get(self.bot.api_wallet_key_env)
        try:
            account_key: str | None = self.private_key(env)
        except RuntimeError:
            account_key = None
        same_as = None
        if bot_key and _same_key(agent_key, bot_key):
            same_as = f"the bot's API wallet, bot.api_wallet_key_env (${self.bot.api_wallet_key_env})"
        elif account_key and _same_key(agent_key, account_key):
            same_as = (f"the account's own key, bot.private_key_env (${self.bot.private_key_env}"
                       f"{'; on paper, the development key' if not env.get(self.bot.private_key_env) else ''}), "
                       f"which the bot signs with when it has no API wallet of its own")
        if same_as is None:
            return None
        return (f"agent.api_wallet_key_env (${self.agent.api_wallet_key_env}) holds the same key as {same_as}: "
                f"the guard must sign with an API wallet of its own, so that it can still cancel and flatten "
                f"when the bot's key is revoked or its nonces are in a bad state; approve a second API wallet "
                f"for the account (as {self.agent.api_wallet_name!r}) and set its key in "
                f"${self.agent.api_wallet_key_env}")

    def signing_key(self, who: Signer, environ: Mapping[str, str] | None = None, *,
                    derive: Callable[[str], str] | None = None) -> SigningKey:
        """The key ``who`` signs with: its API wallet when ``<who>.api_wallet_key_env`` is set (for
        :meth:`account_address`), else the account's own key (:meth:`private_key`). ``derive``
        turns a key into its address (default :func:`botwarden.keys.address_of`, in process).
        Raises ValueError (:meth:`shared_key_problem`) when the guard's key is the bot's."""
        env = os.environ if environ is None else environ
        problem = self.shared_key_problem(env)
        if problem is not None:
            raise ValueError(problem)
        section = self.bot if who == "bot" else self.agent
        api_key = env.get(section.api_wallet_key_env)
        if api_key:
            return SigningKey(key=api_key, account=self.account_address(env, derive=derive), api_wallet=True,
                              name=section.api_wallet_name, env=section.api_wallet_key_env)
        return SigningKey(key=self.private_key(env), account=None, api_wallet=False, name="",
                          env=self.bot.private_key_env)

    def template_vars(self) -> dict[str, Any]:
        """The view playbooks get: ``bot.health_url``, ``exchange.url``, ``supervisor.url``..."""
        sock = self.path(self.supervisor.socket)
        return {
            "bot": {**self.bot.model_dump(), "url": self.bot.url, "health_url": self.bot.health_url,
                    "metrics_url": self.bot.metrics_url, "db_path": str(self.path(self.bot.db)),
                    "control_socket_path": str(self.path(self.bot.control_socket)) if self.bot.control_socket else "",
                    "heartbeat_path": str(self.path(self.bot.heartbeat_file)),
                    "halt_path": str(self.path(self.bot.halt_file))},
            "exchange": {**self.exchange.model_dump(), "url": self.exchange_url,
                         "state_path": str(self.path(self.exchange.state))},
            "supervisor": {**self.supervisor.model_dump(), "url": f"unix://{sock}",
                           "socket_path": str(sock)},
            "agent": {**self.agent.model_dump(), "db_path": str(self.path(self.agent.db)),
                      "events_socket_path": str(self.path(self.agent.events_socket))},
            "inbox": {**self.inbox.model_dump(), "url": self.inbox.url},
            "var_dir": str(self.path(self.var_dir)),
        }


def _same_key(a: str, b: str) -> bool:
    """Two spellings of one private key (with or without 0x, any case, surrounding blanks)."""
    def norm(k: str) -> str:
        k = k.strip().lower()
        return k[2:] if k.startswith("0x") else k
    return norm(a) == norm(b)


@dataclass(frozen=True)
class SigningKey:
    """Who signs: ``key`` (never in a repr), for ``account`` when it is an API wallet (None: the
    key is the account's own), approved under ``name``, read from ``$env``."""

    key: str = field(repr=False)
    account: str | None
    api_wallet: bool
    name: str
    env: str


def read_secrets_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``NAME=value`` lines of a secrets file (``var/secrets.env``, written by ``agent stack
    up``); blank lines and ``#`` comments are skipped, a missing file is empty. Raises
    :class:`OSError` when the file exists but cannot be read."""
    out: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            out[name.strip()] = value.strip()
    return out


def settings_named_by_inventory(root: str | os.PathLike[str]) -> str | None:
    """The settings file ``root``'s ``inventory.yaml`` names (its ``settings:`` key, relative to
    it), as the agent reads it (``agent.stack``); None when there is none or it cannot be read
    (the agent's own commands say why). Raises :class:`botwarden.errors.ConfigError` when
    ``settings:`` names no file (``''``, a number, a list), as ``agent stack`` does: not the
    built-in settings, whose exchange may be another stack's."""
    from botwarden import safe_yaml
    from botwarden.errors import ConfigError
    from botwarden.safe_files import FileProblem, read_file

    inventory = Path(root) / "inventory.yaml"
    try:  # never blocks on a FIFO or a device
        data = safe_yaml.load(read_file(inventory).decode("utf-8"))
    except (FileProblem, UnicodeDecodeError, yaml.YAMLError):
        return None
    named = data.get("settings") if isinstance(data, dict) else None
    if named is None:
        return None
    if not isinstance(named, str) or not named.strip():
        raise ConfigError(f"{inventory}: settings: {named!r} names no settings file",
                          hint="write the path of the stack settings file (settings: settings.yaml), or "
                               "settings: null for the built-in settings; `agent validate` shows the line")
    return str(inventory.resolve().parent / named)


EMPTY_SETTINGS = "the settings file is empty: every program would run on the built-in settings (their ports, " \
    "which may be another stack's)"
EMPTY_SETTINGS_HINT = "write {} in it for the built-in settings on purpose, or settings: null in the inventory (or " \
    "the settings you meant)"


def has_no_content(text: str) -> bool:
    """``text`` holds nothing YAML reads: blank lines and comments only (an emptied file)."""
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.removeprefix("\ufeff").splitlines())


def settings_problems(error: ValidationError) -> str:
    """``bot.port: Input should be a valid integer; ...`` for every error of a settings file (what
    pydantic printed, with a URL per line and the values, is not for an operator)."""
    said = []
    for err in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        said.append(f"{where}: {msg}" if where else msg)
    return "; ".join(said[:8]) + (f"; and {len(said) - 8} more" if len(said) > 8 else "")


def load_settings(path: str | os.PathLike[str] | None = None, *, root: str | None = None,
                  named_by: str | None = None, empty_ok: bool = True) -> StackSettings:
    """Load settings from ``path`` (or the file ``$BOTWARDEN_SETTINGS`` names); the embedded
    defaults when neither names a file.

    A file that is named but cannot be used (missing, not a file, unreadable, not YAML, not a
    mapping) raises :class:`botwarden.errors.ConfigError` naming it: a typo in the path must not
    start the bot on the defaults. A file breaking a rule raises pydantic's ``ValidationError``
    (a ``ValueError``) naming the rule. ``root`` defaults to the settings file's directory, else
    ``$BOTWARDEN_ROOT``, else the current directory. ``named_by`` says in a message where the
    path came from (default ``--settings``, or ``$BOTWARDEN_SETTINGS``). ``empty_ok=False``: a file
    with nothing in it (:func:`has_no_content`) is a ``ConfigError`` (``agent stack up``); the
    programs it starts take it as the built-in settings, as they ran.
    """
    from botwarden import safe_yaml
    from botwarden.errors import ConfigError
    from botwarden.safe_files import FileProblem, read_file

    named_by = (named_by or "--settings") if path else "$BOTWARDEN_SETTINGS"
    path = path or os.environ.get("BOTWARDEN_SETTINGS") or None
    data: dict[str, Any] = {}
    if path:
        hint = ("set $BOTWARDEN_SETTINGS to the stack settings file, or unset it for the built-in defaults"
                if named_by == "$BOTWARDEN_SETTINGS" else
                "name the stack settings file by its path (relative to the inventory in its `settings:`), "
                "or name none for the built-in defaults")
        try:  # never blocks: a FIFO or a device (/dev/zero: read for ever, the memory with it) is refused
            text = read_file(Path(path)).decode("utf-8")
        except FileProblem as exc:
            if exc.message == "no such file or directory":
                raise ConfigError(f"settings file {str(path)!r} (named by {named_by}) not found", hint=hint) from None
            raise ConfigError(f"settings file {str(path)!r} (named by {named_by}): {exc.message}",
                              hint=exc.hint or hint) from None
        except UnicodeDecodeError:
            raise ConfigError(f"settings file {str(path)!r} (named by {named_by}) cannot be read: not UTF-8 text",
                              hint="`agent validate` shows the line") from None
        if not empty_ok and has_no_content(text):
            raise ConfigError(f"{path}: {EMPTY_SETTINGS}", hint=EMPTY_SETTINGS_HINT)
        try:
            loaded = safe_yaml.load(text)  # a YAML bomb or a deep nesting: refused, never walked
        except safe_yaml.TooLargeError as exc:
            raise ConfigError(f"{path}: {exc}", hint="`agent validate` shows the line") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{where}: not valid YAML", hint="`agent validate` shows the line") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the settings file must be a mapping (key: value)")
        data = loaded or {}
        data.setdefault("root", str(Path(path).resolve().parent))
    if root is not None:
        data["root"] = root
    data.setdefault("root", os.environ.get("BOTWARDEN_ROOT", os.getcwd()))
    return StackSettings.model_validate(data)
