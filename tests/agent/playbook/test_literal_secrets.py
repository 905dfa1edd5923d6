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
