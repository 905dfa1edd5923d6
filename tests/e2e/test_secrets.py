"""Issue 14 item 1, end to end: secrets never reach the store, the console, the logs or an alert.

The real ``agent run`` (a subprocess) and the real ``agent run-playbook`` (its console) work on
a configuration where secrets enter every way they can: a literal in ``command.env``, a literal
bearer token in an ``http`` header, an ``SMTP_PASS`` read by the target URL and by task
templates, and a variable whose *name* looks harmless (``RELAY_SETTING``) read by a check's
argv. Each secret is then echoed back by what the agent runs (the child's stdout and stderr,
the server's body, a task's message), so it reaches the check values, the alert bodies, the
task messages and the audited parameters. Afterwards, no byte of ``var/`` (the store and its
WAL), the agent's log, the run-playbook console or the json:// receiver holds any of them, and
``***`` shows where they were (so the test cannot pass because nothing flowed).
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.harness import BIN, AgentWorld, wait_until
from tests.support.receivers import JsonReceiver

pytestmark = pytest.mark.slow

TOKEN = os.urandom(4).hex()
CMD_ENV_SECRET = f"cmdenv-{TOKEN}-literal"
HEADER_SECRET = f"hdrtok-{TOKEN}-bearer"
SMTP_SECRET = f"smtppass-{TOKEN}-value"
NEUTRAL_SECRET = f"relay-{TOKEN}-setting"
SECRETS = (CMD_ENV_SECRET, HEADER_SECRET, SMTP_SECRET, NEUTRAL_SECRET)


class _EchoServer:
    """Answers 503 with the request's Authorization header in the body (a leaky endpoint)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization", "")
                server.seen.append(auth)
                body = f"denied for {auth}".encode()
                self.send_response(503)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def echo() -> Iterator[_EchoServer]:
    server = _EchoServer()
    try:
        yield server
    finally:
        server.close()


LEAKY = """
version: 1
name: leaky
hosts: local
schedule: {{every: 1s}}
checks:
  - name: command env
    command:
      argv: [sh, -c, 'echo "got $API_CRED"; exit 2']
      env: {{API_CRED: "{cmd_env}"}}
    value: stdout
    expect: "rc == 0"
    severity: critical
    remediate: [leak]
  - name: header echo
    http:
      url: "{echo_url}"
      headers: {{Authorization: "Bearer {{{{ env.ECHO_TOKEN }}}}"}}
    value: text
    expect: "status_code == 200"
    severity: critical
  - name: neutral name
    command:
      argv: [sh, -c, "echo {{{{ env.RELAY_SETTING }}}} >&2; exit 4"]
    value: stderr
    expect: "rc == 0"
    severity: critical
remediations:
  leak:
    steps:
      - command:
          argv: [sh, -c, 'echo "$API_CRED $SMTPX"; exit 1']
          env: {{API_CRED: "{cmd_env}", SMTPX: "{{{{ env.SMTP_PASS }}}}"}}
    budget: {{max: 1, within: 1h}}
"""

OPERATOR_PLAY = """
version: 1
name: operator-leak
hosts: local
tasks:
  - name: print secrets
    command:
      argv: [sh, -c, 'echo "$API_CRED {{{{ env.SMTP_PASS }}}}"']
      env: {{API_CRED: "{cmd_env}"}}
    register: out
  - name: tell everyone
    notify: {{title: "leak check {{{{ out.stdout }}}}", body: "pass={{{{ env.SMTP_PASS }}}} out={{{{ out.stdout }}}}"}}
  - name: fail quoting a secret
    command:
      argv: [/bin/true]
      cwd: "/nonexistent/{{{{ env.SMTP_PASS }}}}"
"""


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_no_secret_reaches_store_logs_console_or_alerts(tmp_path, supervisor, echo, monkeypatch) -> None:
    with JsonReceiver() as receiver:
        target = receiver.url.replace("json://", "json://alerts:{{ env.SMTP_PASS }}@")
        world = AgentWorld(tmp_path / "world", supervisor.url, receiver.url, extra_inventory={
            "notify": {"targets": {"hook": {"url": target}}, "routes": [{"name": "default", "targets": ["hook"]}],
                       "group_wait": "1s"}})
        world.write_playbook("leaky", LEAKY.format(cmd_env=CMD_ENV_SECRET, echo_url=echo.url))
        world.write_playbook("operator", OPERATOR_PLAY.format(cmd_env=CMD_ENV_SECRET))
        monkeypatch.setenv("SMTP_PASS", SMTP_SECRET)
        monkeypatch.setenv("ECHO_TOKEN", HEADER_SECRET)  # a bearer token written literally is refused at load
        monkeypatch.setenv("RELAY_SETTING", NEUTRAL_SECRET)
        world.start()
        try:
            wait_until(lambda: any("command env" in m.get("title", "") for m in receiver.messages)
                       and any(r.module == "command" for r in world.action_runs()), 60,
                       what="the alert of 'command env' and its remediation")
            wait_until(lambda: len({k for k, s in world.states().items() if s.hard_state.name == "CRITICAL"}) == 3,
                       30, what="three checks CRITICAL")

            console = subprocess.run(
                [str(BIN / "agent"), "run-playbook", "operator-leak", "--yes", "--inventory", str(world.inventory),
                 "--playbooks", str(world.playbooks), "--store", world.store_url],
                cwd=world.root, capture_output=True, text=True, timeout=120, env={**os.environ})
            wait_until(lambda: any("leak check" in m.get("title", "") for m in receiver.messages), 30,
                       what="the operator play's notification")
        finally:
            world.stop()

        # The secrets did flow: the endpoint got the header, the agent saw the echoes.
        assert any(HEADER_SECRET in seen for seen in echo.seen)
        values = {k.split("/")[-1]: s.last_value for k, s in world.states().items()}
        assert values["command env"] == "got ***\n", values
        assert "***" in values["header echo"] and "***" in values["neutral name"], values

        # The store (and its WAL) as bytes: what a backup would copy.
        for path in sorted(world.var.rglob("*")):
            if path.is_file():
                data = path.read_bytes().decode("utf-8", "replace")
                assert not _leaks(data), f"{path} holds {_leaks(data)}"
        runs = [r for r in world.action_runs() if r.module == "command"]
        assert any("API_CRED" in r.params["env"] for r in runs), runs
        assert all(v == "***" for r in runs for v in r.params["env"].values()), runs

        out = console.stdout + console.stderr
        assert console.returncode == 1, out  # the last task fails, quoting a secret
        assert not _leaks(out), out
        assert "/nonexistent/***" in out, out

        log = world.log()
        assert not _leaks(log), [line for line in log.splitlines() if _leaks(line)]

        messages = json.dumps(receiver.messages)
        assert not _leaks(messages), messages
        assert "pass=*** out=*** ***" in messages, messages
