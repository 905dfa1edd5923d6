"""Which target URLs hold a secret written literally (an error at load), and which do not."""
from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.modules.registry import Registry
from agent.playbook import load_config
from agent.playbook.inventory_loading import literal_secrets
from agent.playbook.literal_secrets import SECRET_HINT, find_secret

from .conftest import GOOD


@pytest.mark.parametrize(("url", "secret"), [
    ("mailtos://user:pw@smtp.example.com?to=ops@example.com", True),
    ("json://127.0.0.1:8025/?token=abc", True),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", True),
    ("mailtos://{{ env.SMTP_USER }}:{{ env.SMTP_PASS }}@smtp.example.com", False),
    # An address in the query has an '@' and ':' may follow the host: no password there.
    ("mailto://127.0.0.1:47189?mode=insecure&from=botwarden@example.com&to=ops@example.com", False),
    ("json://{{ inbox.host }}:{{ inbox.port }}/", False),
])
def test_a_literal_secret_is_found_and_an_address_in_the_query_is_not_one(url: str, secret: bool) -> None:
    assert bool(literal_secrets(url)) is secret, literal_secrets(url)


@pytest.mark.parametrize(("text", "key", "found"), [
    ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "x", "a Slack token"),
    ("https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/aBcDeFgHiJkLmNoPqRsTuVwX", None, "a Slack webhook URL"),
    ("slack://T1A2B3C4D/B5E6F7G8H/abcdefghijklmnopqrstuvwx", None, "a Slack webhook token"),
    ("https://discord.com/api/webhooks/123456/abcdefghijklmnopqrstuvwxyz012345", None, "a Discord webhook URL"),
    ("0x" + "ab" * 32, "anything", "a private key"),
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE", None, "a private key"),
    ("Bearer abcdefghijklmnop1234", "Authorization", "a bearer token"),
    ("hunter2hunter2", "smtp_password", "'smtp_password' holds"),
    ("s3cr3t-t0ken", "api_key", "'api_key' holds"),
    ("mailtos://me:pw@smtp.example.com", None, "password written literally"),
    # not secrets
    ("{{ env.SLACK_WEBHOOK_URL }}", "slack_hook", None),
    ("Bearer {{ env.API_TOKEN }}", "Authorization", None),
    ("BOTWARDEN_BOT_TOKEN", "token_env", None),
    ("-----BEGIN [A-Z ]*PRIVATE KEY-----", "private_key", None),  # a log check's pattern that finds keys
    ("(?i)\\bbearer\\s+[A-Za-z0-9._~+/=-]{8,}", "bearer_token", None),
    ("", "password", None),
    ("json://127.0.0.1:8025/", None, None),
    ("the bot restarted after a token refresh", "message", None),
])
def test_a_secret_written_anywhere_is_found_by_its_shape_or_its_name(text: str, key: str | None,
                                                                      found: str | None) -> None:
    from agent.playbook.literal_secrets import secret_in_text

    problem = secret_in_text(text, key)
    assert (problem is None) == (found is None), problem
    if found is not None:
        assert problem is not None and found in problem


# Issue 15, second round: what a breaker found slipping through, and the false positive.
HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
       ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")


@pytest.mark.parametrize(("text", "key", "found"), [
    # apprise URLs carry their tokens in the path: apprise's own declarations say which part
    ("slack://T000/B000/XXXX", "url", "Slack secret"),
    ("slack://T000/B000/XXXX/#alerts", None, "Slack secret"),
    ("discord://1234/abcdef", "url", "Discord secret"),
    ("tgram://123456789:ABCDEF/12345", "url", "Telegram secret"),
    # a query after a template, and credential parameter names beyond 'token'
    ("{{ bot.health_url }}?token=" + HEX[:32], "url", "in its query"),
    ("http://127.0.0.1:8081/health?access_token=abc123", "url", "in its query"),
    ("http://127.0.0.1:8081/health?apiKey=abc123", "url", "in its query"),
    ("http://127.0.0.1:8081/health?t=" + HEX[:32], "url", "in its query"),  # random-looking, whatever its name
    # 64 hex digits standing alone, or named like a key: a private key
    (HEX, "vault", "a private key (64 hex digits)"),
    (HEX, "key", "a private key"),
    ("0x" + HEX, "wallet", "a private key (0x and 64 hex digits)"),
    ("the signer's private key is 0x" + HEX, "description", "a private key"),
    (JWT, "headers", "a JSON Web Token"),
    ("Bearer " + JWT, "Authorization", "a JSON Web Token"),
    # camelCase secret names, and a weak name ('key') with a random-looking value
    ("hunter2hunter2", "smtpPassword", "'smtpPassword' holds"),
    ("aZ3kQ9vB2mX7pL4wR8tY", "key", "'key' holds"),
    ("aZ3kQ9vB2mX7pL4wR8tYc5nH1jD6fG0s", "extra", "looks like a token"),
])
def test_what_slipped_through_is_found(text: str, key: str | None, found: str) -> None:
    from agent.playbook.literal_secrets import secret_in_text

    problem = secret_in_text(text, key)
    assert problem is not None and found in problem, problem


@pytest.mark.parametrize(("text", "key"), [
    # a transaction hash is 0x and 64 hex digits too: its context says hash
    ("filled in tx 0x" + HEX, "description"),
    ("see transaction hash 0x" + HEX + " for the fill", "comment"),
    ("0x" + HEX, "tx_hash"),
    ("0x" + HEX, "description"),
    (HEX, "sha256"),
    ("the close landed as 0x" + HEX, "message"),
    # an address (0x and 40 hex digits) is public
    ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "wallet"),
    # templates, names of variables, ordinary words
    ("slack://{{ env.SLACK_A }}/{{ env.SLACK_B }}/{{ env.SLACK_C }}/#alerts", "url"),
    ("{{ bot.health_url }}?token={{ env.HEALTH_TOKEN }}", "url"),
    ("http://127.0.0.1:8081/health?verbose=1&format=json", "url"),
    ("open_positions", "key"),
    ("BOTWARDEN_PRIVATE_KEY", "private_key_env"),
    ("bot-health/bot process is alive", "depends_on"),
])
def test_what_is_not_a_secret_is_not_refused(text: str, key: str) -> None:
    from agent.playbook.literal_secrets import secret_in_text

    assert secret_in_text(text, key) is None


_ALNUM = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=40)
_HEXES = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(a=_ALNUM, b=_ALNUM, c=_ALNUM)
def test_any_literal_slack_token_is_found_and_never_shown(tmp_path_factory: pytest.TempPathFactory, a: str, b: str,
                                                          c: str) -> None:
    from agent.playbook.literal_secrets import find_secret, mask_line

    url = f"slack://{a}/{b}/{c}/#alerts"
    finding = find_secret(url, "url")
    assert finding is not None
    line = mask_line(f'    slack: {{url: "{url}"}}', finding.parts)
    assert line is not None and f"/{c}/" not in line and f"//{a}/" not in line


@settings(max_examples=60, derandomize=True, deadline=None)
@given(key=_HEXES, with_0x=st.booleans(), name=st.sampled_from(["private_key", "key", "vault", "signer", "x"]))
def test_a_bare_key_is_found_under_any_name_and_a_hash_in_prose_is_not(key: str, with_0x: bool, name: str) -> None:
    from agent.playbook.literal_secrets import secret_in_text

    value = ("0x" if with_0x else "") + key
    assert secret_in_text(value, name) is not None
    for prose in (f"order filled, tx {value}", f"transaction hash {value} confirmed", f"digest {value}"):
        assert secret_in_text(prose, "description") is None, prose


@settings(max_examples=40, derandomize=True, deadline=None)
@given(name=st.sampled_from(["token", "access_token", "apikey", "api_key", "auth", "sig", "password"]),
       value=_ALNUM, template=st.booleans())
def test_a_credential_query_is_found_unless_it_is_a_template(name: str, value: str, template: bool) -> None:
    from agent.playbook.literal_secrets import secret_in_text

    url = "{{ bot.health_url }}?" + name + "=" + ("{{ env.T }}" if template else value)
    assert (secret_in_text(url, "url") is None) is template


def test_the_secret_is_masked_in_every_diagnostic_shown_at_its_line(tmp_path: Path, registry: Registry) -> None:
    """The source line a diagnostic shows is the raw YAML: a secret on it is hidden, also in a
    diagnostic about something else on that line (here apprise refusing the URL)."""
    inventory = tmp_path / "inventory.yaml"
    token = "Xq7Rk2Lm9Pz4Wn8Vb3"
    inventory.write_text(
        "version: 1\nhosts:\n  local: {}\nnotify:\n  targets:\n"
        f'    t: {{url: "slack://T000/B000/{token}/#alerts?nosuchoption=1"}}\n'
        f'    u: {{url: "json://127.0.0.1:8025/?token={token}"}}\n'
        "  routes:\n    - name: default\n      targets: [t, u]\n"
        f"vars:\n  signer: {HEX}\n  note: \"fill tx 0x{HEX}\"\n", encoding="utf-8")
    result = load_config(inventory, [GOOD / "playbooks"], registry, env={})
    shown = "\n".join(map(str, result.diagnostics))
    assert [d.line for d in result.diagnostics if d.hint == SECRET_HINT] == [6, 7, 12], shown
    assert token not in shown and HEX not in shown.replace(f"0x{HEX}", ""), shown
    assert "T000" not in shown and "B000" not in shown
    # only the secret is hidden, the rest of the line stays readable (also when masked twice)
    [query] = [d for d in result.diagnostics if d.line == 7]
    assert query.source_line == '    u: {url: "json://127.0.0.1:8025/?token=' + "*" * len(token) + '"}', query


def test_a_secret_in_a_comment_is_found_and_masked_and_a_hash_there_is_not(tmp_path: Path, registry: Registry) -> None:
    """A comment is under git like a value. What PyYAML's scanner does not read is a comment: a
    '#' inside a quoted string or a block scalar is content (checked as a value)."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "version: 1   # the format\n"
        f"hosts:  # the fill was tx 0x{HEX}\n"
        "  local: {}\n"
        f"# signer key 0x{HEX}\n"
        'vars:\n  page: "http://127.0.0.1/#top"   # old: slack://T000/B000/XXXX\n'
        "  text: |\n    # a heading, not a comment\n", encoding="utf-8")
    result = load_config(inventory, [GOOD / "playbooks"], registry, env={})
    found = [(d.line, d.column, d.message) for d in result.diagnostics if d.message.startswith("in a comment")]
    assert found == [(4, 1, "in a comment: a private key (0x and 64 hex digits) is written literally"),
                     (6, 35, "in a comment: the URL holds a Slack secret (token_a) written literally")], found
    shown = "\n".join(map(str, result.diagnostics))
    assert f"signer key 0x{HEX}" not in shown and "T000" not in shown, shown


def test_a_secret_is_never_quoted_by_a_message_and_an_unquoted_hex_key_is_one(tmp_path: Path,
                                                                               registry: Registry) -> None:
    """breakerV3: a diagnostic about something else quoted the secret in its message ("'https://
    hooks.slack.com/...' is not a duration", sent to every route as the reload's [CONFIG] page);
    an unquoted 0x key is an integer to YAML and passed (then stored in the last good snapshot),
    and a hint printed it as that integer."""
    hook = "https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFG/abcdefghijklmnopqrstuvwx"
    key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "version: 1\nhosts:\n  local: {}\nnotify:\n  targets:\n    t: {url: \"json://127.0.0.1:8025/\"}\n"
        f"  routes:\n    - name: default\n      targets: [t]\n      repeat: \"{hook}\"\n"
        f"vars:\n  signer: 0x{key}\n  account: {{address: 0x{key}}}\n", encoding="utf-8")
    result = load_config(inventory, [GOOD / "playbooks"], registry, env={})
    shown = "\n".join(map(str, result.diagnostics))
    assert [d.line for d in result.diagnostics if d.hint == SECRET_HINT] == [10, 12, 13], shown
    assert any(d.line == 10 for d in result.diagnostics), shown  # the duration error is still there
    for secret in ("abcdefghijklmnopqrstuvwx", "T0ABCDEFG", key, str(int(key, 16))[:20]):
        assert secret not in shown, (secret, shown)


# Issue 15, third round (F3, F5): a secret as a template's default or string, a passphrase with
# spaces, a seed phrase. Each is found whatever it is written in and never shown.
SHAPED = ["xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "sk-" + "Ab3" * 8, "0x" + HEX,
          "ghp_" + "a1B2" * 9, "Xq7Rk2Lm9Pz4Wn8Vb3Tt6Yh1Uu0Ii5Oo"]
IN_TEMPLATE = ["{{{{ env.{name} | default('{secret}') }}}}", '{{{{ env["{name}"] | d("{secret}") }}}}',
               "{{{{ env.get('{name}', '{secret}') }}}}", "https://{{{{ env.{name} | default('{secret}') }}}}@x/",
               "env.{name} | default('{secret}') != ''", "{{{{ '{secret}' }}}}", "{{{{ x ~ '{secret}' }}}}"]


@settings(max_examples=60, derandomize=True, deadline=None, database=None)
@given(form=st.sampled_from(IN_TEMPLATE), secret=st.sampled_from(SHAPED),
       name=st.sampled_from(["SLACK_TOKEN", "BOT_URL", "X"]), key=st.sampled_from(["url", "when", "message", "x"]))
def test_a_secret_inside_a_template_or_as_a_default_is_found(form: str, secret: str, name: str, key: str) -> None:
    from agent.playbook.literal_secrets import find_secret

    text = form.format(name=name, secret=secret)
    found = find_secret(text, key)
    assert found is not None and secret in found.parts, (text, found)


@settings(max_examples=40, derandomize=True, deadline=None, database=None)
@given(words=st.lists(st.text(string.ascii_letters + string.digits + "!@%", min_size=2, max_size=9),
                      min_size=2, max_size=6).filter(lambda w: len("".join(w)) >= 6),
       key=st.sampled_from(["password", "smtp_password", "passphrase", "api_key", "webPassword", "DB_PASSWORD"]),
       form=st.sampled_from(["{secret}", "{{{{ env.{key} | default('{secret}') }}}}"]))
def test_a_password_with_spaces_under_a_secret_name_is_found(words: list[str], key: str, form: str) -> None:
    from agent.playbook.literal_secrets import find_secret

    secret = " ".join(words)
    found = find_secret(form.format(secret=secret, key=key), key)
    assert found is not None and secret in found.parts, (secret, found)


def _bip39() -> list[str]:
    from eth_account.hdaccount.mnemonic import get_wordlist

    return get_wordlist("english")


@settings(max_examples=40, derandomize=True, deadline=None, database=None)
@given(data=st.data(), count=st.sampled_from([12, 15, 18, 21, 24]),
       form=st.sampled_from(["{phrase}", "restore wallet: {phrase}", "{phrase}\n", "  {phrase}  ",
                             "{{{{ env.SEED | default('{phrase}') }}}}"]),
       key=st.sampled_from(["description", "mnemonic", "x", "note", None]))
def test_a_seed_phrase_is_found_under_any_key_and_in_prose(data: st.DataObject, count: int, form: str,
                                                            key: str | None) -> None:
    from agent.playbook.literal_secrets import find_secret

    words = data.draw(st.lists(st.sampled_from(_bip39()), min_size=count, max_size=count))
    phrase = " ".join(words)
    found = find_secret(form.format(phrase=phrase), key)
    assert found is not None and phrase in " ".join(found.parts), (phrase, found)


LANGUAGES = ["english", "spanish", "french", "italian", "czech", "japanese", "korean", "chinese_simplified",
             "chinese_traditional"]


@settings(max_examples=45, derandomize=True, deadline=None, database=None)
@given(data=st.data(), language=st.sampled_from(LANGUAGES), count=st.sampled_from([12, 24]),
       form=st.sampled_from(["{phrase}", "restore wallet: {phrase}", "{{{{ env.SEED | default('{phrase}') }}}}"]),
       nfd=st.booleans())
def test_a_seed_phrase_of_any_bip39_language_is_found(data: st.DataObject, language: str, count: int, form: str,
                                                      nfd: bool) -> None:
    """Wallets offer phrases in every BIP-39 language; accents may be written composed or not."""
    import unicodedata

    from eth_account.hdaccount.mnemonic import get_wordlist

    from agent.playbook.literal_secrets import find_secret

    words = data.draw(st.lists(st.sampled_from(get_wordlist(language)), min_size=count, max_size=count))
    phrase = ("\u3000" if language == "japanese" else " ").join(words)
    phrase = unicodedata.normalize("NFD" if nfd else "NFC", phrase)
    found = find_secret(form.format(phrase=phrase), "note")
    assert found is not None and "seed phrase" in found.kind, (language, phrase, found)
    shown = unicodedata.normalize("NFC", " ".join(found.parts))
    assert all(unicodedata.normalize("NFC", w) in shown for w in words), (phrase, found)


@pytest.mark.parametrize(("text", "key"), [
    ("{{ env.SLACK_WEBHOOK_URL | default('') }}", "url"),
    ("{{ env.INBOX_URL | default('json://127.0.0.1:8025/') }}", "url"),  # a URL default: judged by its parts
    ("{{ env.BOT_PROGRAM | default('bot') }}", "program"),
    ("{{ host }} is {{ 'down' }} since {{ check.since | default('a while') }}", "message"),
    ("restart the bot when the loop is stale for more than two minutes and then page the operator", "description"),
    ("check that the account has enough margin and that every open order has a stop", "description"),
    ("Authentication failed for .*", "password"),  # a log pattern that finds failures
])
def test_what_is_not_a_secret_in_a_template_or_prose_is_not_refused(text: str, key: str) -> None:
    from agent.playbook.literal_secrets import find_secret

    assert find_secret(text, key) is None


def test_secrets_in_defaults_passphrases_and_seed_phrases_are_refused_and_never_shown(
        tmp_path: Path, registry: Registry) -> None:
    phrase = " ".join(_bip39()[100:112])
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "version: 1\nhosts:\n  local: {}\nnotify:\n  targets:\n"
        "    t: {url: \"{{ env.HOOK | default('slack://T1A2B3C4D/B5E6F7G8H/abcdefghijklmnopqrstuvwx') }}\"}\n"
        "  routes:\n    - name: default\n      targets: [t]\n"
        "vars:\n  smtp_password: \"correct horse battery staple\"\n"
        "  api: \"{{ env.API_TOKEN | default('hunter22hunter') }}\"\n"
        f"  note: \"wallet {phrase}\"\n"
        f"# {phrase}\n", encoding="utf-8")
    result = load_config(inventory, [GOOD / "playbooks"], registry, env={})
    shown = "\n".join(map(str, result.diagnostics))
    assert sorted(d.line for d in result.diagnostics if d.hint == SECRET_HINT or "in a comment" in d.message) \
        == [6, 11, 12, 13, 14], shown
    for secret in ("abcdefghijklmnopqrstuvwx", "T1A2B3C4D", "correct horse", "hunter22hunter", phrase):
        assert secret not in shown, (secret, shown)


SETTINGS_SECRETS = [
    ("bot:\n  private_key: {secret}\n", 2),  # an unknown key as well: its message must not quote it
    ("bot:\n  private_key_env: \"{secret}\"\n", 2),  # the key where its variable's name belongs
    ("web:\n  operator_password_env: \"correct horse battery\"\n", 2),
    ("exchange: {{host: 127.0.0.1}}  # token {secret}\n", 1),
    ("bot: {{program: \"{{{{ env.X | default('{secret}') }}}}\"}}\n", 1),
]


@pytest.mark.parametrize("secret", SHAPED)
@pytest.mark.parametrize(("written", "line"), SETTINGS_SECRETS)
def test_the_settings_file_is_scanned_for_secrets_like_the_inventory(tmp_path: Path, registry: Registry, written: str,
                                                                     line: int, secret: str) -> None:
    """The stack settings file is operator input under git too (issue 15, F4): a secret written
    in it is refused at its line, the configuration does not load, and it is never shown."""
    settings = tmp_path / "stack.yaml"
    settings.write_text(written.format(secret=secret), encoding="utf-8")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text((GOOD / "inventory.yaml").read_text(encoding="utf-8")
                         .replace("settings: null", "settings: stack.yaml"), encoding="utf-8")
    result = load_config(inventory, [GOOD / "playbooks"], registry, env={})
    shown = "\n".join(map(str, result.diagnostics))
    assert result.config is None
    assert [(Path(d.file).name, d.line) for d in result.diagnostics
            if d.hint == SECRET_HINT or "in a comment" in d.message] == [("stack.yaml", line)], shown
    for part in (secret, secret.removeprefix("0x"), "correct horse"):
        assert part not in shown, shown


REPOSITORY = Path(__file__).resolve().parents[3]
_FENCE = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)


def _blocks(language: str) -> list[tuple[str, str]]:
    return [(f"{md.name} block {i}", match[2])
            for md in [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]
            for i, match in enumerate(_FENCE.finditer(md.read_text(encoding="utf-8"))) if match[1] == language]


def test_the_documentation_and_the_secret_check_agree() -> None:
    """What the README and docs show in YAML passes the literal-secret check, and what they tell
    to export (placeholders such as slack://TokenA/TokenB/TokenC included) is refused when written
    into YAML instead: the check cannot tell a placeholder from a token, so the docs show the
    environment way (issue 15, F6)."""
    from agent.playbook.literal_secrets import comment_secret_problems, literal_secret_problems
    from agent.playbook.yaml_source import SourceDocument, load_yaml_text

    yaml_blocks = _blocks("yaml")
    assert yaml_blocks
    for where, text in yaml_blocks:
        doc = load_yaml_text(text, SourceDocument(where))
        found = [*literal_secret_problems(doc), *comment_secret_problems(doc)] if doc.data is not None else []
        assert not found, (where, [str(d) for d in found])
    exported = [value for _, text in _blocks("sh")
                for value in re.findall(r"^export \w+='([^']*://[^']*)'", text, re.MULTILINE)]
    assert exported
    for value in exported:
        assert find_secret(value, "url") is not None, value
