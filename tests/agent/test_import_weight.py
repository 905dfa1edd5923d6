"""The resident agent stays light: building its objects must not import heavy libraries.

``agent run`` builds the registry at start-up, which imports every shipped module. Libraries
that cost tens of MB of RSS (pandas/numpy for reports, the Hyperliquid SDK with eth_account,
apprise and its plugins, cryptography for the tls check) are imported inside the functions
that use them; this test fails when a module imports one of them at module level again.
httpx is not used by the agent at all: aiohttp is its one HTTP client (httpx costs ~4 MB and,
with click installed, imports its own command-line tool and pygments).
Each probe runs in a fresh interpreter so that other tests' imports do not mask a regression.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.stack import free_port, repository_world

HEAVY = ("pandas", "numpy", "hyperliquid", "eth_account", "apprise", "cryptography", "httpx")


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


def test_the_http_transport_imports_no_check_module() -> None:
    """agent.http serves the heartbeat, the bot action and the report as well as the checks:
    importing it must not run the checks package (which imports every check module)."""
    probe = "import json, sys\nimport agent.http\nprint(json.dumps([m for m in sys.modules if m.startswith('agent.')]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == ["agent.http"], f"importing agent.http imported {loaded}"


def test_the_command_line_imports_rich_only_when_it_prints() -> None:
    """``agent run`` is the command line's resident process and prints nothing once it is up:
    rich (about 2 MB of its idle RSS) is imported by the first print, not with the commands."""
    probe = ("import json, sys\nfrom agent.cli.main import app\nbefore = 'rich' in sys.modules\n"
             "from agent.cli.common import err_console, new_table\nerr_console.print('x')\n"
             "print(json.dumps([before, 'rich' in sys.modules, type(new_table('a')).__name__]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, True, "Table"]


def test_a_function_that_uses_pandas_still_imports_it() -> None:
    """The probe can fail: calling a report helper does load pandas (the lazy import works)."""
    loaded = _loaded_after("from agent.reports.trading import as_utc\nfrom datetime import datetime\n"
                           "as_utc(datetime(2026, 1, 1))")
    assert "pandas" in loaded


RESIDENT_OBJECTS = """
import asyncio, json, sys
from pathlib import Path
from agent.engine.config_source import ConfigSource
import agent.engine.heartbeat  # what the heartbeat loop imports when ``agent run`` starts it
from agent.notify import Notifications, Outbox
from agent.store import Store

world = Path(sys.argv[1])
result = ConfigSource(world / "inventory.yaml", [world / "playbooks"]).load()
assert not result.diagnostics, [str(d) for d in result.diagnostics]
store = Store(f"sqlite:///{world / 'agent.db'}")
store.migrate(in_child_process=True)  # as Agent.start does
notifications = Notifications.from_config(result.config, store)
outbox = Outbox(store, notifications.targets)
# One delivery to the inbox target (json://, nobody listening): builds its apprise object.
delivered = asyncio.run(outbox.delivery.deliver("inbox", title="t", body="b", severity="critical"))
print(json.dumps({"delivered": delivered.ok, "error": delivered.error,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in
                                   ("alembic", "hyperliquid", "eth_account", "pandas", "numpy", "cryptography",
                                    "httpx")),
                  "apprise_plugins": sorted(m for m in sys.modules if m.startswith("apprise.plugins."))}))
"""


def test_the_resident_agents_objects_import_no_heavy_library(tmp_path: Path) -> None:
    """The repository's inventory and every shipped playbook loaded, the store migrated (a new
    database), the outbox built and one message attempted: what ``agent run`` holds before any
    exchange check runs. Only the json:// plugin of apprise may be loaded."""
    repository_world(tmp_path, {
        "var_dir": str(tmp_path / "var"), "supervisor": {"socket": str(tmp_path / "none.sock")},
        "inbox": {"port": free_port()},  # nobody listens: the delivery fails, after building the target
    })
    out = subprocess.run([sys.executable, "-c", RESIDENT_OBJECTS, str(tmp_path)], capture_output=True, text=True,
                         timeout=120, check=True, cwd=tmp_path)
    seen = json.loads(out.stdout.strip().splitlines()[-1])

    assert seen["delivered"] is False and "apprise rejects" not in (seen["error"] or ""), seen["error"]
    assert seen["loaded"] == [], f"the resident agent's objects imported {seen['loaded']}"
    assert seen["apprise_plugins"] == ["apprise.plugins.base", "apprise.plugins.custom_json"]


def test_agent_run_limits_glibcs_malloc_arenas_unless_the_environment_chose() -> None:
    """Two arenas instead of glibc's 8 per core: about 2 MB less idle RSS (docs/performance.md)."""
    probe = ("import json, os\nfrom agent.cli.run_cmd import limit_malloc_arenas\n"
             "print(json.dumps(limit_malloc_arenas()))")
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True,
                         env=env)
    assert json.loads(out.stdout) is True
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True,
                         env={**env, "MALLOC_ARENA_MAX": "4"})
    assert json.loads(out.stdout) is False


def _command_modules_after(command: str) -> list[str]:
    """The CLI's command modules loaded by ``agent COMMAND --help`` in a fresh interpreter."""
    probe = ("import contextlib, io, json, sys\nfrom agent.cli.main import main\n"
             f"with contextlib.redirect_stdout(io.StringIO()):\n    main([{command!r}, '--help'])\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('agent.cli.') and m.endswith('_cmd'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_agent_run_holds_only_its_own_command() -> None:
    """The resident agent lives for weeks: the other commands' modules would stay in its memory."""
    loaded = _command_modules_after("run")
    assert loaded == ["agent.cli.events_cmd", "agent.cli.inbox_cmd", "agent.cli.modules_cmd", "agent.cli.run_cmd",
                      "agent.cli.stack_cmd"], loaded


def test_each_engine_command_holds_only_its_own_module() -> None:
    """``agent web`` starts with every stack: registering every other command imported the CLI's
    engine modules (status, run-playbook, the alert lifecycle, halt) at about 0.3 s of CPU."""
    loaded = _command_modules_after("web")
    assert loaded == ["agent.cli.events_cmd", "agent.cli.inbox_cmd", "agent.cli.modules_cmd", "agent.cli.stack_cmd",
                      "agent.cli.web_cmd"], loaded


def test_an_unknown_command_still_lists_every_command() -> None:
    """No command (the help) or a typo: every command is registered, so the help lists them all and
    a typo gets click's "No such command" (exit 2), not a list with the engine's commands missing."""
    out = subprocess.run([sys.executable, "-m", "agent.cli.main", "--help"], capture_output=True, text=True,
                         timeout=60, check=True)
    for command in ("run", "run-playbook", "status", "ack", "silence", "history", "explain", "web", "halt", "resume"):
        assert command in out.stdout, command
    typo = subprocess.run([sys.executable, "-m", "agent.cli.main", "statsu"], capture_output=True, text=True,
                          timeout=60)
    assert typo.returncode == 2 and "No such command" in typo.stdout + typo.stderr, typo


STACK_PROCESS_IMPORTS = ("sqlalchemy", "pydantic", "jinja2", "agent.playbook.loader", "agent.playbook.binding",
                         "agent.modules.base", "agent.engine.watchers.detection")


def test_the_light_commands_import_no_playbook_model_nor_the_store() -> None:
    """``agent events-listener`` and ``agent inbox`` start with every stack (and every ``agent``
    command imports the command line): importing ``agent.playbook.files`` for ``real_path`` ran the
    package's ``__init__`` (every model, the check registry, Jinja), and the events listener's
    encoder came with ``agent.engine.watchers``' ``Detection`` (every check module, SQLAlchemy):
    ~0.3 s of CPU each at every start. The package names stay importable, on first use."""
    probe = ("import json, sys\nimport agent.cli.main, agent.engine.watchers.supervisor_events\n"
             f"print(json.dumps([m for m in {STACK_PROCESS_IMPORTS!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    probe = ("import json\nimport agent.playbook, agent.engine.watchers\n"
             "from agent.playbook import Diagnostic, load_config, templating\n"
             "print(json.dumps([agent.playbook.Playbook.__name__, agent.engine.watchers.Detection.__name__,"
             " load_config.__name__, templating.__name__, Diagnostic.__name__]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        "Playbook", "Detection", "load_config", "agent.playbook.templating", "Diagnostic"]


IDLE_IMPORTS = """
import json, sys
from pathlib import Path
import agent.cli.main, agent.cli.run_cmd, agent.engine.agent  # what ``agent run`` imports to start
from agent.engine.config_source import ConfigSource
from agent.modules import _sqlite_backup as bk

world = Path(sys.argv[1])
result = ConfigSource(world / "inventory.yaml", [world / "playbooks"]).load()
assert not result.diagnostics, [str(d) for d in result.diagnostics]
bk.sha256_file(world / "inventory.yaml")  # what the drift check runs of the backup helpers
print(json.dumps(sorted(m for m in sys.argv[2:] if m in sys.modules)))
"""

NOT_AT_IDLE = ("tarfile",)
"""Imported by the functions that use them, never while the agent only watches: tarfile reads and
writes backup archives (a backup, verify or restore; about 0.3 MB of the idle agent's RSS)."""


def test_agent_run_imports_what_only_a_play_uses_when_the_play_runs(tmp_path: Path) -> None:
    """``agent run``'s imports and the load of every shipped playbook (the backup and restore
    actions validated, the drift check's helpers used) leave out what only a play uses."""
    repository_world(tmp_path, {"var_dir": str(tmp_path / "var"), "supervisor": {"socket": str(tmp_path / "none.sock")}})
    out = subprocess.run([sys.executable, "-c", IDLE_IMPORTS, str(tmp_path), *NOT_AT_IDLE], capture_output=True,
                         text=True, timeout=120, check=True, cwd=tmp_path)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"the idle agent imported {loaded}; import them in the functions that use them"


def test_the_idle_probe_sees_a_module_a_backup_imports(tmp_path: Path) -> None:
    """The probe can fail: writing an archive imports tarfile (the lazy import works)."""
    probe = ("import json, sys\nfrom datetime import UTC, datetime\nfrom pathlib import Path\n"
             "from agent.modules import _sqlite_backup as bk\nd = Path(sys.argv[1])\n"
             "bk.create_archive(d / 'b', 'x', {}, [], now=datetime.now(UTC), timeout=5)\n"
             "print(json.dumps('tarfile' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=60,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) is True
