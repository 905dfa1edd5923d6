"""Which target URLs hold a secret written literally (an error at load), and which do not."""
from __future__ import annotations

import pytest

from agent.playbook.inventory_loading import literal_secrets


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
