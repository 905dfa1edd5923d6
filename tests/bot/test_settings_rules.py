"""The named cross-field rules of the bot's settings (step two of validation, after the types).

Each broken rule is refused with its name and a message that says what to change; the
defaults and the seeds' values pass; several broken rules are reported together; a bad
settings file keeps the bot from starting and shows up in ``agent validate``."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from botwarden.settings import BotSettings, RiskSettings, StackSettings, StrategySettings, load_settings

BIN = Path(sys.executable).parent


def test_defaults_and_the_seeds_values_pass() -> None:
    StackSettings()
    BotSettings(network="mainnet", signer_check_s=12)  # a quarter of the weight budget: allowed
    BotSettings(network="paper", signer_check_s=1)  # the paper exchange enforces no weight budget
    BotSettings(ws_stale_s=60)
    BotSettings(ws_stale_s=2)
    RiskSettings(max_position_pct=10, max_leverage=3, daily_loss_limit_pct=5, stop_loss_pct=2)
    BotSettings(coins=["BTC", "ETH", "SOL"], risk={"max_position_pct": 10, "stop_loss_pct": 2})


@pytest.mark.parametrize(("model", "data", "rule", "advice"), [
    (RiskSettings, {"daily_loss_limit_pct": 100}, "daily-loss-limit-below-100", "set it below 100"),
    (RiskSettings, {"stop_loss_pct": 100, "daily_loss_limit_pct": 99}, "stop-loss-below-100", "set it below 100"),
    (RiskSettings, {"max_position_pct": 400}, "position-within-leverage",
     "needs leverage 4x, above max_leverage 3: lower max_position_pct to at most 300 or raise max_leverage"),
    (StrategySettings, {"fast": 8, "slow": 8}, "macd-fast-below-slow", "must be below strategy.slow (8)"),
    (StrategySettings, {"slow": 30, "signal": 9, "lookback_candles": 30}, "lookback-covers-macd",
     "raise it to at least slow + signal = 39"),
    (BotSettings, {"coins": []}, "coins-not-empty", "list at least one market"),
    # traded twice from one reading of the account: the same market entered twice (r15b)
    (BotSettings, {"coins": ["BTC", "ETH", "BTC"]}, "coins-each-once", "coins lists BTC more than once"),
    (BotSettings, {"coins": ["BTC", "btc"]}, "coins-each-once", "coins lists BTC more than once"),
    # on paper a coin the exchange does not list failed at every iteration (r15b)
    (StackSettings, {"bot": {"coins": ["BTC", "DOGE"]}}, "paper-exchange-lists-the-coins",
     "bot.coins 'DOGE': not a market of the paper exchange (exchange.coins: BTC, ETH, SOL)"),
    (StackSettings, {"bot": {"coins": ["eth"]}}, "paper-exchange-lists-the-coins", "'eth' (did you mean 'ETH'?)"),
    (StackSettings, {"exchange": {"coins": []}}, "paper-exchange-lists-the-coins", "exchange.coins: none"),
    # 3 coins x 20 % x 10 % = 6 % of equity if every stop fires at once, above the 5 % limit
    (BotSettings, {"coins": ["BTC", "ETH", "SOL"], "risk": {"max_position_pct": 20, "stop_loss_pct": 10}},
     "stop-outs-within-daily-limit", "loses 6 % of equity"),
    # userRole weighs 60: asked every second it is 3600 a minute, three times Hyperliquid's whole
    # budget of 1200 per IP, so the bot's own reads and stops would meet 429s (br16)
    (BotSettings, {"network": "mainnet", "signer_check_s": 1}, "signer-check-within-weight-budget",
     "3600 of Hyperliquid's 1200 per minute per IP"),
    (BotSettings, {"network": "testnet", "signer_check_s": 6}, "signer-check-within-weight-budget",
     "raise it to at least 12"),
    # ws_stale_s 3600 was accepted: market data an hour old still traded on, a socket answering
    # pings with no data counted as up for an hour (bot-health's critical is 2 minutes), pings and
    # the outage record's rewrite every 20 minutes (a restarted bot inherits a record of the last
    # minute only) (r16c)
    (BotSettings, {"ws_stale_s": 3600}, "ws-stale-within-a-minute", "set it to at most 60"),
    (BotSettings, {"ws_stale_s": 61}, "ws-stale-within-a-minute", "set it to at most 60"),
    # ws_stale_s 0.3 was accepted: the paper exchange pushes once a 1-s tick, so every connection
    # was dropped before its first push (pongs only), reopened and dropped again: the socket
    # flapped and stayed down, the bot on REST for good (r16c)
    (BotSettings, {"ws_stale_s": 0.3}, "ws-stale-above-the-feeds-pace", "set it to at least 2"),
])
def test_each_rule_names_itself_and_says_what_to_change(model: Any, data: dict[str, Any], rule: str,
                                                        advice: str) -> None:
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    text = str(err.value)
    assert f"rule {rule}:" in text and advice in text, text


@pytest.mark.parametrize(("model", "data", "field"), [
    (RiskSettings, {"max_leverage": 0}, "max_leverage"),
    (RiskSettings, {"stop_loss_pct": -1}, "stop_loss_pct"),
    (RiskSettings, {"max_position_pct": 0}, "max_position_pct"),
    (BotSettings, {"loop_seconds": 0}, "loop_seconds"),
])
def test_a_limit_at_or_below_zero_is_refused_by_its_fields_range(model: Any, data: dict[str, Any],
                                                                   field: str) -> None:
    """Once the named rule positive-limits (loop-seconds-positive): every number's range is
    declared on its field (tests/agent/playbook/test_scalar_fields.py), so these are too."""
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    [error] = err.value.errors()
    assert error["loc"] == (field,) and error["type"] == "greater_than", err.value


def test_every_broken_rule_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as err:
        StrategySettings.model_validate({"fast": 9, "slow": 8, "signal": 20, "lookback_candles": 20})
    text = str(err.value)
    assert "rule macd-fast-below-slow" in text and "rule lookback-covers-macd" in text


def test_a_stop_out_at_the_edge_of_the_limit_is_refused() -> None:
    # 1 coin x 50 % x 10 % = exactly the 5 % limit: the limit would only act once blown
    with pytest.raises(ValidationError, match="stop-outs-within-daily-limit"):
        BotSettings(coins=["BTC"], risk={"max_position_pct": 50, "stop_loss_pct": 10})
    BotSettings(coins=["BTC"], risk={"max_position_pct": 49, "stop_loss_pct": 10})


def test_a_settings_file_breaking_a_rule_does_not_load(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"bot": {"risk": {"max_position_pct": 500}}}))
    with pytest.raises(ValidationError, match="position-within-leverage"):
        load_settings(path)


def test_agent_validate_names_the_broken_rule(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump({"bot": {"strategy": {"fast": 12, "slow": 8}}}))
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}}}))
    (tmp_path / "playbooks").mkdir()
    res = subprocess.run([str(BIN / "agent"), "validate", "--inventory", "inventory.yaml", "playbooks"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                                                        "COLUMNS": "300"})
    out = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0, out
    assert "rule macd-fast-below-slow" in out and "swap them or lower fast" in out, out


@pytest.mark.parametrize(("data", "said"), [
    ({"bot": {"port": 19711}, "inbox": {"port": 19711}}, "bot.port and inbox.port are both 19711"),
    ({"web": {"port": 19713}, "agent": {"metrics_port": 19713}}, "web.port and agent.metrics_port are both 19713"),
    ({"exchange": {"program": "bot"}}, "exchange.program and bot.program are both 'bot'"),
])
def test_two_programs_on_one_port_or_name_are_refused(data: dict[str, Any], said: str) -> None:
    """Two programs on one port validated and then ran the emergency (the agent read the inbox's
    answers as the bot's /health); two under one name left the exchange never started."""
    with pytest.raises(ValidationError, match=said):
        StackSettings.model_validate(data)


def test_a_named_settings_file_that_is_missing_is_an_error_not_the_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in the path must not start the bot on the built-in defaults (another network,
    other ports): the file named by --settings or $BOTWARDEN_SETTINGS must exist."""
    from botwarden.errors import ConfigError

    missing = tmp_path / "setings.yaml"
    with pytest.raises(ConfigError, match=r"setings\.yaml.*\(named by --settings\) not found"):
        load_settings(missing)
    monkeypatch.setenv("BOTWARDEN_SETTINGS", str(missing))
    with pytest.raises(ConfigError, match=r"named by \$BOTWARDEN_SETTINGS\) not found") as err:
        load_settings()
    assert "unset it" in str(err.value)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_settings(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("bot: {port: [\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+:\d+: not valid YAML"):
        load_settings(tmp_path / "bad.yaml")


def test_bot_commands_refuse_a_missing_settings_file_with_exit_3(tmp_path: Path) -> None:
    res = subprocess.run([str(BIN / "bot"), "paper-exchange", "--settings", str(tmp_path / "nope.yaml")],
                         capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 3, res.stdout + res.stderr
    assert "nope.yaml" in res.stderr and "not found" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("command", ["paper-exchange", "run"])
def test_bot_commands_say_each_wrong_value_as_agent_stack_does(tmp_path: Path, command: str) -> None:
    """``bot paper-exchange --settings`` with ``exchange: {seed: -1}`` printed pydantic's text (a URL
    per line, 'input_value=-1, input_type=int'); it says the field and what it needs (brk15)."""
    settings = tmp_path / "settings.yaml"
    settings.write_text("exchange: {seed: -1}\nbot: {port: '8081'}\n")
    res = subprocess.run([str(BIN / "bot"), command, "--settings", str(settings)],
                         capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "COLUMNS": "300"})
    assert res.returncode == 3, res.stdout + res.stderr
    err = " ".join(res.stderr.split())
    assert "exchange.seed: Input should be greater than or equal to 0" in err, err
    assert "bot.port: Input should be a valid integer" in err, err
    assert "errors.pydantic.dev" not in err and "input_type" not in err, err


def test_a_settings_yaml_nothing_names_is_not_read_and_validate_says_so(tmp_path: Path) -> None:
    """What the settings module documents: only the file the inventory (or $BOTWARDEN_SETTINGS)
    names is read; a settings.yaml beside an inventory naming none draws a warning."""
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump({"bot": {"port": 19999}}))
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": None, "hosts": {"local": {"vars": {}}}}))
    (tmp_path / "playbooks").mkdir()
    res = subprocess.run([str(BIN / "agent"), "validate", "--inventory", "inventory.yaml", "playbooks"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                                                        "COLUMNS": "300"})
    out = " ".join((res.stdout + res.stderr).split())
    assert "warning: settings.yaml is not read" in out and "settings: settings.yaml" in out, out


@pytest.mark.parametrize("lookalike,named", [("settings.yml", None), ("var/settings.yaml", None),
                                              ("var/settings.yml", "settings.yaml"), ("settings.yml", "settings.yaml")])
def test_a_file_that_looks_like_the_settings_but_is_not_the_one_read_draws_a_warning(
        tmp_path: Path, lookalike: str, named: str | None) -> None:
    """Breaker x4: `settings.yml` or `var/settings.yaml` beside the inventory were silently not
    read. Each file where an operator may leave the settings, other than the one read, is named."""
    (tmp_path / "var").mkdir()
    (tmp_path / lookalike).write_text(yaml.safe_dump({"bot": {"port": 19999}}))
    if named:
        (tmp_path / named).write_text(yaml.safe_dump({"bot": {"port": 19998}}))
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": named, "hosts": {"local": {"vars": {}}}}))
    (tmp_path / "playbooks").mkdir()
    res = subprocess.run([str(BIN / "agent"), "validate", "--inventory", "inventory.yaml", "playbooks"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                                                        "COLUMNS": "300"})
    out = " ".join((res.stdout + res.stderr).split())
    assert f"warning: {lookalike} is not read" in out and f"error: {lookalike}" not in out, out
    if named:
        assert f"the stack settings come from {named} only" in out and f"warning: {named} is not read" not in out, out
    else:
        assert f"settings: {lookalike}" in out, out


def test_bot_drill_typed_below_the_stack_reads_its_settings_and_says_when_it_falls_back(tmp_path: Path) -> None:
    """Breaker x4 F5: typed in playbooks/ (no inventory.yaml there), `bot drill` used the built-in
    settings, i.e. another stack's exchange on a machine with several; `revoke` signs with the
    paper dev key and needs no token. It now reads the nearest inventory above, and says so when
    nothing names settings."""
    import os

    from tests.support.stack import free_port

    port = free_port()
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump({"exchange": {"port": port}}))
    (tmp_path / "inventory.yaml").write_text("version: 1\nsettings: settings.yaml\nhosts: {local: {}}\n")
    below = tmp_path / "playbooks"
    below.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "BOTWARDEN_SETTINGS"}
    run = subprocess.run([str(BIN / "bot"), "drill", "state"], cwd=below, capture_output=True, text=True,
                         timeout=60, env=env)
    # no stack runs: it stops at the admin token it looks for in that stack's var/, not the defaults'
    assert run.returncode != 0 and f"{tmp_path / 'var' / 'secrets.env'}" in run.stderr, run.stderr
    assert "note: no settings named here" not in run.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "inventory.yaml").write_text("version: 1\nhosts: {local: {}}\n")  # names no settings
    fallback = subprocess.run([str(BIN / "bot"), "drill", "state"], cwd=elsewhere, capture_output=True, text=True,
                              timeout=60, env=env)
    assert "note: no settings named here" in fallback.stderr and "the built-in settings, exchange http://" \
        in fallback.stderr, fallback.stderr


def test_the_paper_markets_rule_is_only_for_paper() -> None:
    """Testnet and mainnet list their own markets: a coin of theirs is not judged against the paper
    exchange's (r15b)."""
    StackSettings.model_validate({"bot": {"network": "testnet", "coins": ["DOGE"]}})
    StackSettings.model_validate({"exchange": {"coins": ["BTC", "kPEPE"]}, "bot": {"coins": ["kPEPE"]}})


@pytest.mark.parametrize("named", ["''", "5", "[a, b]"])
def test_bot_drill_beside_an_inventory_naming_no_settings_file_exits_3(tmp_path: Path, named: str) -> None:
    """settings: '' (the path deleted, not the key) in the inventory: `bot drill` and `bot api-wallet`
    typed beside it went to the built-in settings' exchange (another stack's, on a machine with
    several), saying that nothing named settings; agent stack exits 3 on it (r15b)."""
    import os

    (tmp_path / "inventory.yaml").write_text(f"version: 1\nsettings: {named}\nhosts: {{local: {{}}}}\n")
    env = {k: v for k, v in os.environ.items() if k != "BOTWARDEN_SETTINGS"}
    run = subprocess.run([str(BIN / "bot"), "drill", "state"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, env=env)
    assert run.returncode == 3, run.stderr
    assert "names no settings file" in run.stderr and "note: no settings named here" not in run.stderr, run.stderr
