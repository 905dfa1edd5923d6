"""``agent inbox --show`` on a damaged ``var/inbox.jsonl`` (r15c): a line that is JSON but no alert
(a list, a number, text), nested past what JSON reads, bytes that are not UTF-8 (a torn write, a
disk that filled, a hand edit) each ended in exit 250 "internal error (a bug)"; an alert title
with rich markup in it ([/] or [red]) did too, or lost its text. Each damaged line is left out,
and said; every alert around it is shown as written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent import stack
from agent.cli.main import main
from agent.stack import inbox as inbox_mod
from botwarden.errors import ExitCode
from tests.e2e.harness import AgentWorld

HELLO = """\
version: 1
name: hello
hosts: local
tasks:
  - name: say hello
    command: {argv: ["echo", "hello"]}
"""


def _alert(title: str) -> bytes:
    return (json.dumps({"received_at": "then", "type": "warning", "title": title, "message": "m"}) + "\n").encode()


def test_inbox_show_leaves_out_damaged_lines_and_shows_every_alert_as_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = AgentWorld(tmp_path / "world", "unix:///nonexistent.sock", "json://{{ inbox.host }}:9/")
    world.write_playbook("hello", HELLO)
    settings = stack.locate(inventory=world.inventory).settings
    received = settings.path(settings.inbox.file)
    received.parent.mkdir(parents=True, exist_ok=True)
    received.write_bytes(_alert("first one") + b"[1, 2]\n" + b'"text"\n' + b"5\n" + b"[" * 100_000 + b"\n"
                         + b"\xff\xfe torn\n" + _alert("[/] closed [red]as written") + b'{"title": "cut')

    code = main(["inbox", "--show", "--inventory", str(world.inventory)])
    out = capsys.readouterr()
    assert code == ExitCode.OK, out.out + out.err
    assert "first one" in out.out
    assert "[/] closed [red]as written" in out.out
    assert "not an alert" in out.err, out.err


def test_the_receiver_keeps_a_body_that_is_no_json_object_as_raw(tmp_path: Path) -> None:
    """A POST of [1, 2] or of JSON nested past what it reads raised in the handler (TypeError,
    RecursionError): nothing was kept and the sender got no answer it could read."""
    import threading
    import urllib.request

    path = tmp_path / "inbox.jsonl"
    server = inbox_mod.make_server("127.0.0.1", 0, path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        for body in (b"[1, 2]", b"[" * 100_000, b'"text"'):
            with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=10) as rsp:
                assert rsp.status == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    records = inbox_mod.read(path)
    assert len(records) == 3 and all(isinstance(r, dict) and "raw" in r for r in records), records
