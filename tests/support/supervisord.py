"""A real supervisord for tests: config written to a directory, started, always torn down.

Use it from any suite by re-exporting the fixture in that suite's ``conftest.py``::

    from tests.support.supervisord import supervisord_factory  # noqa: F401  (pytest fixture)

and then in a test::

    from tests.support.supervisord import python_command

    def test_restart(supervisord_factory):
        sup = supervisord_factory({"bot": {"command": python_command("import time\\nwhile True: time.sleep(1)")}})
        sup.wait_for_state("bot", "RUNNING")
        with sup.proxy() as proxy:
            proxy.supervisor.stopProcess("bot")
        ...

Outside pytest, :func:`start_supervisord` returns the same :class:`Supervisord` object; it is
a context manager, and ``stop()`` is idempotent.

Contract:

* The config lives in the given directory (``supervisord.conf``, ``supervisord.log``,
  ``supervisord.pid``, child logs). The unix socket lives in a short ``/tmp/bw*`` directory
  because socket paths are limited to ~107 bytes; it is created with ``chmod=0700``.
* Programs are ``{name: {option: value}}``; options are written as supervisord options
  (booleans as ``true``/``false``). The helper adds test-friendly defaults the caller can
  override: ``autostart=true``, ``autorestart=false``, ``startsecs=0``, ``startretries=0``,
  ``stopwaitsecs=5``, ``stopasgroup=true``, ``killasgroup=true``. Supervisord expands
  ``%(...)s`` in options, so a literal ``%`` must be written ``%%`` (``python_command`` does it).
* ``start_supervisord`` returns once the XML-RPC socket answers and supervisord reports
  RUNNING; if supervisord dies first, it raises ``RuntimeError`` with the tail of its log.
* ``stop()`` asks supervisord to shut down (which stops its programs), waits, kills it if it
  does not exit, then kills any program process that survived, and removes the socket dir.
  The fixture calls it even when the test fails; an ``atexit`` hook covers interrupted runs.
"""
from __future__ import annotations

import atexit
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest
from supervisor.xmlrpc import SupervisorTransport

PROGRAM_DEFAULTS: dict[str, Any] = {
    "autostart": True,
    "autorestart": False,
    "startsecs": 0,
    "startretries": 0,
    "stopwaitsecs": 5,
    "stopasgroup": True,
    "killasgroup": True,
}
"""Defaults added to every program unless the caller sets the option."""

SLEEPER = "import time\nwhile True: time.sleep(0.2)"
"""Python source of a program that runs until it is stopped."""

# Instances not yet stopped, so an interrupted run still tears them down at exit.
_running: set[Supervisord] = set()


def python_command(code: str = SLEEPER, *args: str) -> str:
    """A supervisord ``command=`` that runs ``code`` with this interpreter.

    The code is wrapped in ``exec(repr)`` so it stays on one config line, and ``%`` is escaped
    for supervisord's expansion.
    """
    return shlex.join([sys.executable, "-u", "-c", f"exec({code!r})", *args]).replace("%", "%%")


def _option(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):  # environment=KEY="v",OTHER="w"
        return ",".join(f'{k}="{v}"' for k, v in value.items())
    return str(value)


def render_config(
    directory: Path, socket_path: Path, programs: Mapping[str, Mapping[str, Any]]
) -> str:
    """The text of a minimal supervisord.conf for ``programs`` (see the module contract)."""
    lines = [
        "[unix_http_server]",
        f"file={socket_path}",
        "chmod=0700",
        "",
        "[supervisord]",
        "nodaemon=true",
        "silent=true",
        f"logfile={directory / 'supervisord.log'}",
        f"pidfile={directory / 'supervisord.pid'}",
        f"childlogdir={directory}",
        "loglevel=info",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{socket_path}",
    ]
    for name, options in programs.items():
        merged = {**PROGRAM_DEFAULTS, **options}
        if "command" not in merged:
            raise ValueError(f"program {name!r} needs a command")
        # "eventlistener:name" (or any "kind:name") is written as that section, e.g. a listener.
        lines += ["", f"[{name}]" if ":" in name else f"[program:{name}]"]
        lines += [f"{key}={_option(value)}" for key, value in merged.items()]
    return "\n".join(lines) + "\n"


class Supervisord:
    """A running supervisord started by :func:`start_supervisord`."""

    def __init__(
        self, directory: Path, conf_path: Path, socket_dir: Path, process: subprocess.Popen[bytes]
    ) -> None:
        self.directory = directory
        self.conf_path = conf_path
        self.socket_dir = socket_dir
        self.socket_path = socket_dir / "s.sock"
        self.url = f"unix://{self.socket_path}"
        self.process = process
        self._stopped = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def proxy(self) -> xmlrpc.client.ServerProxy:
        """An XML-RPC proxy (``proxy.supervisor.getProcessInfo('bot')``) over the socket.

        Use it as a context manager (``with sup.proxy() as p:``) so its socket is closed.
        """
        transport = SupervisorTransport(None, None, self.url)
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def info(self, program: str) -> dict[str, Any]:
        """``supervisor.getProcessInfo(program)``."""
        with self.proxy() as proxy:
            return proxy.supervisor.getProcessInfo(program)  # type: ignore[no-any-return]

    def wait_for_state(self, program: str, *states: str, timeout: float = 10.0) -> dict[str, Any]:
        """Poll until ``program`` is in one of ``states`` (e.g. ``"RUNNING"``); return its info.

        Raises ``TimeoutError`` naming the last state seen.
        """
        deadline = time.monotonic() + timeout
        while True:
            info = self.info(program)
            if info["statename"] in states:
                return info
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{program} is {info['statename']} ({info['spawnerr'] or 'no spawn error'}), "
                    f"expected one of {states}"
                )
            time.sleep(0.02)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of supervisord's own log (for failure messages)."""
        path = self.directory / "supervisord.log"
        if not path.exists():
            return "(no supervisord.log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Shut supervisord and its programs down; kill whatever is left. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        _running.discard(self)
        children = self._program_processes()
        if self.process.poll() is None:
            try:
                self._request_shutdown()
                self._wait_exit(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        # Programs run in their own process groups, so a killed supervisord can orphan them.
        children += [p for p in self._program_processes() if p not in children]
        for child in children:
            try:
                child.kill()
            except psutil.Error:
                pass
        _wait_dead(children, timeout)
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _request_shutdown(self) -> None:
        # The XML-RPC shutdown wakes supervisord's select loop at once; SIGTERM is only seen
        # on its next 1 s tick, which would make every test teardown a second slower.
        try:
            with self.proxy() as proxy:
                proxy.supervisor.shutdown()
        except (OSError, xmlrpc.client.Error):
            self.process.send_signal(signal.SIGTERM)

    def _wait_exit(self, timeout: float) -> None:
        # supervisord reaps its stopping children only when its select loop wakes, which a
        # SIGCHLD does not do; each XML-RPC request does, so knock until it has exited.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.process.wait(timeout=0.05)
                return
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise
            try:
                with self.proxy() as proxy:
                    proxy.supervisor.getState()
            except (OSError, xmlrpc.client.Error):
                pass  # SHUTDOWN_STATE fault, or the socket is already gone

    def _program_processes(self) -> list[psutil.Process]:
        """Processes started by this supervisord, even if it died and they were re-parented.

        supervisord puts ``SUPERVISOR_SERVER_URL`` (our unique socket) in every program's
        environment, and programs' own children inherit it.
        """
        found: list[psutil.Process] = []
        try:
            found = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            pass
        for proc in psutil.process_iter():
            if proc in found or proc.pid == os.getpid():
                continue
            try:
                if proc.environ().get("SUPERVISOR_SERVER_URL") == self.url:
                    found.append(proc)
            except psutil.Error:
                continue  # gone, or not ours to read
        return found

    def __enter__(self) -> Supervisord:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_supervisord(
    directory: str | os.PathLike[str],
    programs: Mapping[str, Mapping[str, Any]],
    *,
    timeout: float = 15.0,
) -> Supervisord:
    """Write ``directory/supervisord.conf`` for ``programs``, start supervisord, wait for it."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    socket_dir = Path(tempfile.mkdtemp(prefix="bw"))
    conf_path = directory / "supervisord.conf"
    conf_path.write_text(render_config(directory, socket_dir / "s.sock", programs))
    with open(directory / "supervisord.out", "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the test terminal must not hit it directly
        )
    sup = Supervisord(directory, conf_path, socket_dir, process)
    _running.add(sup)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            sup.stop()
            out_text = (directory / "supervisord.out").read_text(errors="replace")
            raise RuntimeError(f"supervisord exited with {process.returncode}:\n{out_text}\n{sup.log_tail()}")
        try:
            with sup.proxy() as proxy:
                if proxy.supervisor.getState()["statename"] == "RUNNING":
                    return sup
        except (OSError, xmlrpc.client.Error):
            pass  # socket not there yet, or supervisord still starting
        if time.monotonic() > deadline:
            sup.stop()
            raise RuntimeError(f"supervisord did not answer within {timeout}s:\n{sup.log_tail()}")
        time.sleep(0.02)


def _wait_dead(processes: list[psutil.Process], timeout: float) -> None:
    """Wait until each process is gone or a zombie (an orphan's reaper may be slow)."""
    deadline = time.monotonic() + timeout
    for proc in processes:
        while time.monotonic() < deadline:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.01)


@atexit.register
def _stop_leftovers() -> None:
    for sup in list(_running):
        sup.stop()


@pytest.fixture
def supervisord_factory(tmp_path: Path) -> Iterator[Callable[..., Supervisord]]:
    """Start supervisord instances: ``supervisord_factory(programs, directory=None)``.

    Each call gets its own directory under ``tmp_path`` unless one is given. Every instance
    is stopped at teardown, whatever the test outcome.
    """
    started: list[Supervisord] = []

    def factory(
        programs: Mapping[str, Mapping[str, Any]], directory: str | os.PathLike[str] | None = None
    ) -> Supervisord:
        sup = start_supervisord(directory or tmp_path / f"supervisord{len(started)}", programs)
        started.append(sup)
        return sup

    try:
        yield factory
    finally:
        for sup in started:
            sup.stop()
