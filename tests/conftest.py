"""Suite-wide fixtures."""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _cli_redaction_ends_with_its_test() -> Iterator[None]:
    """A command (``agent.cli.common.load_chosen``, also run by the web app when it reads the files
    again) installs its configuration's redaction filter on the root logger and on the root
    logger's handlers, for the rest of the process: right for a command, which is one process. In
    a test process those handlers include pytest's session-wide ones, which see every later
    test's records first: a web test left a filter that knew ``json://127.0.0.1:9/``, and
    tests/agent/notify/test_notify_notifications.py's redaction test, run after it on the same
    worker, read ``cannot reach ***services/***/***/***`` instead of ``cannot reach ***``."""
    yield
    common = sys.modules.get("agent.cli.common")
    if common is None or common.Redaction.installed is None:
        return
    from agent.core.redaction import uninstall

    uninstall(logging.getLogger(), common.Redaction.installed)
    common.Redaction.installed = None
    common.Redaction.redact = staticmethod(lambda text: text)
