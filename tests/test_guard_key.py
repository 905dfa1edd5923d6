"""The guard signs with a wallet of its own: an agent API wallet key that is the bot's API wallet
key, or the account's own key, is refused where it is loaded (the bot's start, the agent's
configuration, `agent stack up`, the agent's exchange modules), naming the two settings and never
the key. Breaker x4: the same key for both was accepted, so revoking the bot's wallet took the
guard's too."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from botwarden.settings import PAPER_DEV_PRIVATE_KEY, StackSettings

BIN = Path(sys.executable).parent
BOT_KEY = "0x" + "1b" * 32
AGENT_KEY = "0x" + "2c" * 32


@pytest.mark.parametrize("env,same_as", [
    ({"BOTWARDEN_BOT_API_WALLET_KEY": BOT_KEY, "BOTWARDEN_AGENT_API_WALLET_KEY": BOT_KEY}, "bot.api_wallet_key_env"),
    # another spelling of the same key
    ({"BOTWARDEN_BOT_API_WALLET_KEY": BOT_KEY, "BOTWARDEN_AGENT_API_WALLET_KEY": " " + BOT_KEY[2:].upper()},
     "bot.api_wallet_key_env"),
    ({"BOTWARDEN_PRIVATE_KEY": BOT_KEY, "BOTWARDEN_AGENT_API_WALLET_KEY": BOT_KEY}, "bot.private_key_env"),
    ({"BOTWARDEN_AGENT_API_WALLET_KEY": PAPER_DEV_PRIVATE_KEY}, "on paper, the development key"),
])
def test_the_guard_may_not_sign_with_the_bots_key(env: dict[str, str], same_as: str) -> None:
    settings = StackSettings()
    for who in ("bot", "agent"):
        with pytest.raises(ValueError) as refused:
            settings.signing_key(who, env)  # type: ignore[arg-type]
        said = str(refused.value)
        assert "agent.api_wallet_key_env ($BOTWARDEN_AGENT_API_WALLET_KEY) holds the same key as" in said
        assert same_as in said and "an API wallet of its own" in said
        assert all(k.strip().lower().removeprefix("0x") not in said.lower() for k in env.values())


@pytest.mark.parametrize("env", [
    {"BOTWARDEN_BOT_API_WALLET_KEY": BOT_KEY, "BOTWARDEN_AGENT_API_WALLET_KEY": AGENT_KEY},
    {"BOTWARDEN_AGENT_API_WALLET_KEY": AGENT_KEY},
    {"BOTWARDEN_BOT_API_WALLET_KEY": BOT_KEY},  # the agent signs with the account's key: the fallback
    {},
])
def test_keys_of_their_own_are_accepted(env: dict[str, str]) -> None:
    settings = StackSettings()
    assert settings.shared_key_problem(env) is None
    assert settings.signing_key("agent", env).key == env.get("BOTWARDEN_AGENT_API_WALLET_KEY", PAPER_DEV_PRIVATE_KEY)


def _world(tmp_path: Path) -> None:
    # nothing listens on this port (this helper's range): a bot that started anyway would find no exchange
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump({"bot": {"port": 0}, "exchange": {"port": 21703}}))
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}}}))
    (tmp_path / "playbooks").mkdir()


def test_agent_validate_refuses_a_shared_key_without_printing_it(tmp_path: Path) -> None:
    _world(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "300", "BOTWARDEN_BOT_API_WALLET_KEY": BOT_KEY,
           "BOTWARDEN_AGENT_API_WALLET_KEY": BOT_KEY}
    res = subprocess.run([str(BIN / "agent"), "validate", "--inventory", "inventory.yaml", "playbooks"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    out = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0 and "error: agent.api_wallet_key_env ($BOTWARDEN_AGENT_API_WALLET_KEY) holds the " \
        "same key as the bot's API wallet, bot.api_wallet_key_env ($BOTWARDEN_BOT_API_WALLET_KEY)" in out, out
    assert BOT_KEY[2:] not in out


def test_agent_validate_reads_var_secrets_env_for_the_shared_key_rule_as_stack_up_does(tmp_path: Path) -> None:
    """`agent stack up` refuses an agent wallet equal to the bot's when the key is in var/secrets.env;
    `agent validate` must see the same (the environment, then var/secrets.env for what it lacks)."""
    _world(tmp_path)
    (tmp_path / "var").mkdir(mode=0o700)
    secrets = tmp_path / "var" / "secrets.env"
    secrets.write_text(f"BOTWARDEN_AGENT_API_WALLET_KEY={BOT_KEY}\n")
    secrets.chmod(0o600)
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "300", "BOTWARDEN_BOT_API_WALLET_KEY": BOT_KEY}
    res = subprocess.run([str(BIN / "agent"), "validate", "--inventory", "inventory.yaml", "playbooks"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    out = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0 and "holds the same key as the bot's API wallet" in out, out
    assert BOT_KEY[2:] not in out
    other = {**env, "BOTWARDEN_AGENT_API_WALLET_KEY": "0x" + "ab" * 32}  # the environment wins over the file
    res = subprocess.run([str(BIN / "agent"), "validate", "--inventory", "inventory.yaml", "playbooks"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, env=other)
    assert "holds the same key" not in res.stdout + res.stderr


def test_bot_run_refuses_a_shared_key_without_printing_it(tmp_path: Path) -> None:
    _world(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "BOTWARDEN_BOT_API_WALLET_KEY": BOT_KEY, "BOTWARDEN_AGENT_API_WALLET_KEY": BOT_KEY}
    res = subprocess.run([str(BIN / "bot"), "run", "--settings", str(tmp_path / "settings.yaml")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    out = res.stdout + res.stderr
    assert res.returncode == 3 and "holds the same key as the bot's API wallet" in out, out
    assert BOT_KEY[2:] not in out and "Traceback" not in out
