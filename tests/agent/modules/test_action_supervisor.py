"""The supervisor action against a real supervisord."""
from __future__ import annotations

import pytest

from agent.modules.actions.supervisor import SupervisorAction


def params(**kw):
    return SupervisorAction.Params.model_validate(kw)


async def run(stack, make_ctx, check_mode=False, **kw):
    return await SupervisorAction().run(params(**kw), make_ctx(stack.url, check_mode=check_mode))


@pytest.mark.parametrize(
    ("action", "program", "changed", "state_after"),
    [
        ("start", "bot", False, "RUNNING"),
        ("start", "idle", True, "RUNNING"),
        ("start", "crash", True, "EXITED"),  # startsecs=0: RUNNING at once, then it exits again
        ("stop", "bot", True, "STOPPED"),
        ("stop", "idle", False, "STOPPED"),
        ("stop", "crash", False, "EXITED"),
        ("restart", "bot", True, "RUNNING"),
        ("restart", "idle", True, "RUNNING"),
    ],
)
async def test_changed_and_states(stack, make_ctx, action, program, changed, state_after) -> None:
    before = stack.info(program)
    result = await run(stack, make_ctx, action=action, program=program)
    assert result.failed is False, result.msg
    assert result.changed is changed
    assert result.data["program"] == program
    assert result.data["state_before"] == before["statename"]
    if state_after == "EXITED":
        stack.wait_for_state(program, "EXITED")
    else:
        assert result.data["state_after"] == state_after == stack.info(program)["statename"]


async def test_restart_gives_a_new_pid(stack, make_ctx) -> None:
    old = stack.info("bot")["pid"]
    result = await run(stack, make_ctx, action="restart", program="bot")
    assert result.data["pid"] == stack.info("bot")["pid"] != old
    assert result.msg == f"restarted bot (RUNNING, pid {result.data['pid']})"


@pytest.mark.parametrize(
    ("action", "program", "msg_start"),
    [
        ("restart", "bot", "would restart bot (RUNNING, pid "),
        ("stop", "bot", "would stop bot (RUNNING, pid "),
        ("start", "idle", "would start idle (STOPPED)"),
        ("signal", "bot", "would signal HUP to bot (RUNNING, pid "),
    ],
)
async def test_check_mode_changes_nothing(stack, make_ctx, action, program, msg_start) -> None:
    before = stack.info(program)
    extra = {"signal": "HUP"} if action == "signal" else {}
    result = await run(stack, make_ctx, check_mode=True, action=action, program=program, **extra)
    assert result.changed is True and result.failed is False
    assert result.msg.startswith(msg_start)
    after = stack.info(program)
    assert (after["statename"], after["pid"], after["start"]) == (before["statename"], before["pid"], before["start"])


async def test_signal(stack, make_ctx) -> None:
    # SIGTERM to the sleeper makes it exit: proof the signal was delivered.
    result = await run(stack, make_ctx, action="signal", program="bot", signal="TERM")
    assert result.changed is True and result.failed is False
    stack.wait_for_state("bot", "EXITED")


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"action": "restart", "program": "nope"}, "no such program 'nope'"),
        ({"action": "start", "program": "broken"}, "broken's command was not found"),
        ({"action": "start", "program": "slowstart"}, "slowstart could not be spawned: Exited too quickly"),
        ({"action": "signal", "program": "idle", "signal": "HUP"}, "cannot signal idle (STOPPED): not running"),
        ({"action": "signal", "program": "bot", "signal": "NOPE"}, "bad signal 'NOPE'"),
    ],
)
async def test_failures(stack, make_ctx, kw, msg) -> None:
    result = await run(stack, make_ctx, **kw)
    assert result.failed is True
    assert result.msg.startswith(msg), result.msg


async def test_unreachable_supervisord(make_ctx) -> None:
    result = await SupervisorAction().run(
        params(action="restart", program="bot"), make_ctx("unix:///tmp/bw-no-such-dir/s.sock")
    )
    assert result.failed is True and result.msg.startswith("cannot reach supervisord")


@pytest.mark.parametrize(
    "kw", [{"action": "signal", "program": "bot"}, {"action": "stop", "program": "bot", "signal": "HUP"},
           {"action": "reload", "program": "bot"}]
)
def test_bad_params(kw) -> None:
    with pytest.raises(ValueError):
        params(**kw)


class CountingRelay:
    """A unix socket in front of supervisord's that counts the connections made to it (the
    action's transport opens one per request)."""

    def __init__(self, target: str, path: str) -> None:
        import socket
        import threading

        self.target, self.path, self.connections = target, path, 0
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
            b.shutdown(1)
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()


@pytest.mark.parametrize(("action", "program"), [("start", "idle"), ("stop", "bot"), ("restart", "bot"),
                                                 ("restart", "idle"), ("start", "bot")])
async def test_a_start_stop_or_restart_is_one_request_to_supervisord(stack, make_ctx, tmp_path, action,
                                                                      program) -> None:
    """The state before, the act and the state after in one request (one turn of supervisord's
    loop): nothing comes between the read and the act, and a restart on the crash -> alert path
    does not wait for three round trips."""
    relay = CountingRelay(stack.url.removeprefix("unix://"), str(tmp_path / "relay.sock"))
    try:
        before = stack.info(program)
        result = await SupervisorAction().run(params(action=action, program=program),
                                              make_ctx(f"unix://{relay.path}"))
        assert result.failed is False, result.msg
        assert result.data["state_before"] == before["statename"]
        assert relay.connections == 1
    finally:
        relay.close()
