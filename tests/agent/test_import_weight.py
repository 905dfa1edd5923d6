"""The resident agent stays light: building the module registry must not import heavy libraries.

``agent run`` builds the registry at start-up, which imports every shipped module. Libraries
that cost tens of MB of RSS (pandas/numpy for reports, the Hyperliquid SDK with eth_account,
apprise and its plugins, cryptography for the tls check) are imported inside the functions
that use them; this test fails when a module imports one of them at module level again.
Each probe runs in a fresh interpreter so that other tests' imports do not mask a regression.
"""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "numpy", "hyperliquid", "eth_account", "apprise", "cryptography")


def _loaded_after(code: str) -> list[str]:
    probe = code + f"\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_registry_imports_no_heavy_library() -> None:
    loaded = _loaded_after("import agent.modules.registry as r\nr.default_registry()")
    assert loaded == [], f"building the registry imported {loaded}; import them where they are used"


def test_notifications_and_reports_packages_import_no_heavy_library() -> None:
    loaded = _loaded_after("import agent.notify, agent.notify.delivery, agent.reports, agent.modules._hyperliquid")
    assert loaded == [], f"importing the packages imported {loaded}"


def test_a_function_that_uses_pandas_still_imports_it() -> None:
    """The probe can fail: calling a report helper does load pandas (the lazy import works)."""
    loaded = _loaded_after("from agent.reports.trading import as_utc\nfrom datetime import datetime\n"
                           "as_utc(datetime(2026, 1, 1))")
    assert "pandas" in loaded
