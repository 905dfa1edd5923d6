"""The supervisord XML-RPC client bounds every call in time: a supervisord that accepts the
connection and never answers (wedged) costs the call's timeout, not a worker thread forever."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.modules.checks._supervisor_rpc import _request, process_info
from botwarden.errors import ModuleError


@pytest.fixture
def wedged(short_tmp: Path) -> Iterator[str]:
    path = short_tmp / "wedged.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(conn)  # read nothing, answer nothing

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"unix://{path}"
    stop.set()
    t.join(2)
    for c in accepted:
        c.close()
    server.close()


@pytest.fixture
def short_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="rpc", dir="/tmp"))


def test_the_blocking_call_itself_ends_at_its_timeout(wedged: str) -> None:
    started = time.monotonic()
    with pytest.raises(OSError):  # socket.timeout is an OSError (TimeoutError)
        _request(wedged, 0.3, "supervisor.getProcessInfo", ("bot",))
    assert time.monotonic() - started < 5  # not forever (the thread is given back)


async def test_process_info_on_a_wedged_supervisord_is_a_module_error(wedged: str) -> None:
    with pytest.raises(ModuleError, match=r"did not answer|cannot reach"):
        await process_info(wedged, "bot", timeout=0.3)
