"""Scenarios 1, 2 and 5: crash -> alert / running again, hang -> alert, notification latency.

Systems, each with the real bot and paper exchange on private ports and the same bot settings
(loop every 0.5 s, so heartbeats come every ~0.5 s; supervisord ``startsecs=2`` as shipped):

* ``botwarden``: supervisord (bot ``autorestart=false``: the agent restarts it), the agent with
  a bench playbook (supervisor check every 2 s, heartbeat deadline 2 s, restart remediation),
  ``agent events-listener``; alerts to a json:// receiver through apprise;
* ``supervisord+superlance``: bot ``autorestart=true``, crashmail (crash alert) and httpok
  (hang: checks /health on TICK_5, 1 s timeout, restarts and mails), mail "sent" by a
  program that POSTs to the same kind of receiver;
* ``monit``: Monit 5 (Debian package), ``set daemon 1``, HTTP test with a 1 s timeout that
  restarts, start timeout 5 s (also Monit's grace before port tests after a start), the bot
  started by a daemonising start program that reaps it; alerts by Monit's own SMTP client to a
  loopback SMTP server, attributed by subject ("Does not exist" for a crash, "Connection failed"
  for a hang; recoveries and restarts never count).

Observers never talk to supervisord (any XML-RPC request would wake its loop and flatter it):
"running again" is a new bot process in the process table, "healthy" is /health answering 200,
"healthy and reconciled" is /health saying ``status: healthy`` (connected, reconciled with the
exchange, market data fresh) from whichever process serves it: the bot's warm spare stands in
within milliseconds (``role: interim``), the supervised bot relieves it once it has started. A
repetition ends when the supervised bot is the active one again (``role: active``, its pid).

``python -m benchmarks.detection [system ...]`` runs these alone (``BENCH_REPS``, default 5;
``BENCH_WARM_SPARE=0`` measures the cold start every crash would cost without the spare).
"""
from __future__ import annotations

import functools
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

import psutil
import yaml

from benchmarks._common import BIN, REPO, Series, free_port, log, rss_mb, short_tmp, wait_for
from benchmarks._receivers import TimedJsonReceiver, TimedSmtp, become_subreaper, own

PEERS = REPO / "benchmarks" / "peers"
HEARTBEAT_DEADLINE_S = 2.0


def _settings(d: Path) -> dict[str, Any]:
    return {
        "var_dir": str(d / "var"),
        "supervisor": {"socket": str(d / "s.sock"), "config": str(d / "supervisord.conf"), "logdir": str(d / "var")},
        "exchange": {"port": free_port(), "state": str(d / "var" / "exchange.db")},
        "bot": {"port": free_port(), "loop_seconds": 0.5, "db": str(d / "var" / "bot.db"),
                "heartbeat_file": str(d / "var" / "bot.heartbeat"), "lock_file": str(d / "var" / "bot.lock"),
                # BENCH_WARM_SPARE=0: every crash is a cold start (a fresh interpreter), for comparison
                "warm_spare": os.environ.get("BENCH_WARM_SPARE", "1") != "0"},
        "agent": {"db": str(d / "var" / "agent.db"), "metrics_port": free_port(),
                  "events_socket": str(d / "ev.sock")},
    }


class World:
    """One system under test, started in a short /tmp directory."""

    name = ""
    ALERTS: ClassVar[dict[str, str]] = {}
    """Per failure kind ("crash", "hang"): text that only the alert reporting it contains."""
    hang_note = ""

    def __init__(self) -> None:
        self.dir = short_tmp()
        (self.dir / "var").mkdir()
        self.settings = _settings(self.dir)
        self.settings_path = self.dir / "settings.yaml"
        self.settings_path.write_text(yaml.safe_dump(self.settings))
        self.json = TimedJsonReceiver()
        self.sup: Any = None
        self._child_kinds: dict[int, str] = {}  # supervisord's children seen: 'bot' or 'other'
        self.bot_cmd = f"{BIN}/bot run --settings {self.settings_path}"
        self.exchange_cmd = f"{BIN}/bot paper-exchange --settings {self.settings_path}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.settings['bot']['port']}/health"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=0.2) as r:
                return r.status == 200
        except Exception:  # noqa: BLE001 - not up (yet)
            return False

    def health(self) -> dict[str, Any]:
        """/health's document, {} while nothing answers."""
        try:
            with urllib.request.urlopen(self.health_url, timeout=0.2) as r:
                return dict(json.loads(r.read()))
        except Exception:  # noqa: BLE001 - not up (yet)
            return {}

    def reconciled(self) -> bool:
        return self.health().get("status") == "healthy"

    def supervised_active(self) -> bool:
        """The supervised bot (not a stand-in) serves /health, healthy."""
        h, pid = self.health(), self.bot_pid()
        return (h.get("status") == "healthy" and h.get("role") == "active" and pid is not None
                and h.get("pid") == pid)

    def kill_stand_ins(self) -> None:
        """Whatever still holds the bot's lock (an interim the stop left behind) is killed."""
        lock = Path(self.settings["bot"]["lock_file"])
        try:
            pid = int(lock.read_text().strip())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def alert_after(self, t0: float, kind: str) -> float | None:
        return self.json.after(t0, self.ALERTS[kind])

    def settle(self, t0: float, kind: str) -> None:
        """Wait until the system is back to normal before the next repetition."""
        wait_for(self.supervised_active, 60, 0.05)
        time.sleep(2.5)  # past startsecs: supervisord calls it RUNNING again

    def stop(self) -> None:
        if self.sup is not None:
            self.sup.stop()
        self.kill_stand_ins()
        self.json.close()

    def _supervisord(self, programs: dict[str, dict[str, Any]]) -> None:
        from tests.support.supervisord import start_supervisord

        self.sup = start_supervisord(self.dir / "sup", programs)
        own(self.sup.pid)

    def bot_pid(self) -> int | None:
        """The bot among supervisord's children (Monit's world reads its pidfile instead).

        The observer polls this every millisecond while it waits for the respawn, on the same
        two cores as the system under test: it reads the kernel's children list and looks at
        the command line of a pid only once (walking every child's command line through psutil
        cost ~1.4 ms of CPU per poll, about half a core taken from the system measured). A child
        still between fork and exec (supervisord's own command line, or none in the middle of
        exec) is looked at again on the next poll."""
        try:
            with open(f"/proc/{self.sup.pid}/task/{self.sup.pid}/children") as f:
                pids = [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            return None
        for pid in pids:
            kind = self._child_kinds.get(pid)
            if kind is None:
                try:
                    cmd = psutil.Process(pid).cmdline()
                except psutil.Error:
                    continue
                if not cmd or any("supervisord" in c for c in cmd):
                    continue  # not exec'd yet (or in the middle of it)
                kind = "bot" if "run" in cmd and any(c.endswith("/bot") for c in cmd) else "other"
                self._child_kinds[pid] = kind
            if kind == "bot":
                return pid
        return None


def botwarden_files(d: Path, json_url: str) -> None:
    """The inventory and the playbook of the botwarden world in ``d`` (its settings.yaml is written
    at start). Held to ``agent validate`` by tests/test_benchmark_configs.py: refused, the agent
    ran with no check, and the crash rounds saw no alert and no restart."""
    inv = {"version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}},
           "groups": {"bots": {"hosts": ["local"]}},
           "notify": {"targets": {"hook": {"url": json_url}}, "routes": [{"name": "default", "targets": ["hook"]}],
                      # Send each alert at once: the shipped grouping default (group_wait 5 s) would
                      # add 5 s to every first alert. group_interval (the least allowed, 1 s) paces
                      # updates only while the host has an announced, unresolved incident: each
                      # round waits for the resolve before the next crash.
                      "group_wait": 0, "group_interval": 1}}
    (d / "inventory.yaml").write_text(yaml.safe_dump(inv))
    (d / "templates").symlink_to(REPO / "templates")
    (d / "playbooks").mkdir()
    (d / "playbooks" / "bench.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        name: bench
        hosts: bots
        schedule: {{every: 10s}}
        checks:
          - name: bot process
            supervisor: {{program: bot}}
            expect: "running"
            severity: critical
            every: 2s
            remediate: [restart-bot]
          - name: bot heartbeat
            heartbeat: {{file: "{{{{ bot.heartbeat_path }}}}", deadline: {HEARTBEAT_DEADLINE_S}s}}
            expect: "alive"
            severity: critical
            every: 30s
        remediations:
          restart-bot:
            steps:
              - supervisor: {{action: start, program: bot, wait: false}}
                when: "check.facts.state is defined and check.facts.state != 'STOPPED'"
            budget: {{max: 100, within: 1h}}
            cooldown: 100ms
        """))


class Botwarden(World):
    name = "botwarden"
    ALERTS: ClassVar[dict[str, str]] = {"crash": "[CRITICAL] bot process on", "hang": "[CRITICAL] bot heartbeat on"}
    # A problem the agent fixed before its alert went out is told once, as the alert and its
    # resolve in one message (agent/notify/lifecycle/remediation_notes.py).
    FIXED: ClassVar[dict[str, str]] = {"crash": "[CRITICAL, now OK] bot process on",
                                       "hang": "[CRITICAL, now OK] bot heartbeat on"}

    def alert_after(self, t0: float, kind: str) -> float | None:
        seen = [at for at in (self.json.after(t0, self.ALERTS[kind]), self.json.after(t0, self.FIXED[kind]))
                if at is not None]
        return min(seen, default=None)

    def start(self) -> None:
        d = self.dir
        botwarden_files(d, self.json.url)
        sock = self.dir / "ev.sock"
        self._supervisord({
            "exchange": {"command": self.exchange_cmd, "priority": 10},
            "bot": {"command": self.bot_cmd, "startsecs": 2, "priority": 20, "stopwaitsecs": 10},
            "agent": {"command": f"{BIN}/agent run --inventory {d / 'inventory.yaml'} {d / 'playbooks'}",
                      "priority": 30, "directory": str(d)},
            "eventlistener:agent-events": {"command": f"{BIN}/agent events-listener --socket {sock}",
                                           "events": "PROCESS_STATE", "buffer_size": 100,
                                           "stderr_logfile": str(d / "events.log")},
        })
        # The supervisord socket the agent uses is the fixture's; point the settings at it.
        self.settings["supervisor"]["socket"] = str(self.sup.socket_path)
        self.settings_path.write_text(yaml.safe_dump(self.settings))
        with self.sup.proxy() as p:
            p.supervisor.stopProcess("agent")
            p.supervisor.startProcess("agent")
        wait_for(self.healthy, 90, 0.1)
        time.sleep(4)

    def settle(self, t0: float, kind: str) -> None:
        wait_for(lambda: self.json.after(t0, "[RESOLVED]") or self.json.after(t0, ", now OK]") or None, 30, 0.05)
        wait_for(self.supervised_active, 60, 0.05)
        time.sleep(0.5)

    def agent_pid(self) -> int | None:
        return self.sup.info("agent").get("pid") or None  # after the timed rounds: XML-RPC is fine


class SupervisordSuperlance(World):
    name = "supervisord+superlance"
    # crashmail's subject is " bot crashed at ...", httpok's "httpok: ..." (the mail post_alert.py posts).
    ALERTS: ClassVar[dict[str, str]] = {"crash": "crashed at", "hang": "Subject: httpok"}

    def start(self) -> None:
        post = f"{sys.executable} -I -S {PEERS / 'post_alert.py'} {self.json.http_url}"
        self._supervisord({
            "exchange": {"command": self.exchange_cmd, "priority": 10},
            "bot": {"command": self.bot_cmd, "startsecs": 2, "autorestart": True, "startretries": 100,
                    "priority": 20, "stopwaitsecs": 2},
            "eventlistener:crashmail": {
                "command": f"{BIN}/crashmail -p bot -m ops@example.com -s {shlex.quote(post)}",
                "events": "PROCESS_STATE", "stderr_logfile": str(self.dir / "crashmail.log")},
            "eventlistener:httpok": {
                "command": f"{BIN}/httpok -p bot -t 1 -m ops@example.com -s {shlex.quote(post)} {self.health_url}",
                "events": "TICK_5", "stderr_logfile": str(self.dir / "httpok.log")},
        })
        wait_for(self.healthy, 90, 0.1)
        time.sleep(3)


class Monit(World):
    """Monit 5 as an operator would set it up for this bot.

    ``set daemon 1``; the HTTP test has a 1 s timeout and restarts; every event is mailed
    (``set alert``) by Monit's own SMTP client. Monit does not run a port test while the process
    is younger than its start timeout (``-v`` logs "connection test paused for N s while the
    process is starting"), so the start timeout is also a grace after each (re)start: 5 s covers
    the bot's start to /health 200 (~1 s here) with margin; the 30 s default would leave every
    hang within 30 s of a restart unseen. Monit mails an event only when its state changes
    ("Connection failed" once, then "Connection succeeded" on recovery), so a repetition is over
    when the recovery mail of its event has arrived and the new process is past the grace: the
    next repetition then starts from the same steady state as the first (as for the other systems).
    """

    name = "monit"
    START_TIMEOUT_S = 5
    # Monit's event names (its manual's event table); the default subject is "monit alert --  $EVENT $SERVICE".
    EVENTS: ClassVar[dict[str, tuple[str, str]]] = {
        "crash": ("Does not exist", "Exists"), "hang": ("Connection failed", "Connection succeeded")}
    hang_note = "steady state: the previous restart's start grace (5 s) over"

    def start(self) -> None:
        d = self.dir
        self.smtp = TimedSmtp()
        self.exchange = subprocess.Popen(shlex.split(self.exchange_cmd), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        own(self.exchange.pid)
        self.pidfile = d / "bot.pid"
        start = f"{sys.executable} -I -S {PEERS / 'daemonize.py'} {self.pidfile} {d / 'bot.log'} -- {self.bot_cmd}"
        conf = textwrap.dedent(f"""\
            set daemon 1
            set logfile {d}/monit.log
            set pidfile {d}/monit.pid
            set idfile {d}/monit.id
            set statefile {d}/monit.state
            set mailserver 127.0.0.1 port {self.smtp.port}
            set alert ops@example.com not on {{ instance }}
            set httpd port {free_port()} and use address 127.0.0.1 allow 127.0.0.1
            check process bot with pidfile {self.pidfile}
              start program = "{start}" with timeout {self.START_TIMEOUT_S} seconds
              stop program = "/bin/sh -c 'kill -KILL `cat {self.pidfile}`'"
              if failed host 127.0.0.1 port {self.settings['bot']['port']} protocol http
                 request "/health" with timeout 1 seconds then restart
            """)
        self.conf = d / "monitrc"
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # monit refuses others
        with os.fdopen(fd, "w") as fh:
            fh.write(conf)
        self.monit = subprocess.Popen(["monit", "-I", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        own(self.monit.pid)
        self._wait_steady()

    def bot_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            return pid if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE else None
        except (OSError, ValueError, psutil.Error):
            return None

    def _event(self, t0: float, event: str) -> float | None:
        return self.smtp.subject_after(t0, f"monit alert -- {event} bot")

    def alert_after(self, t0: float, kind: str) -> float | None:
        """The mail that reports this failure: "Does not exist" (crash), "Connection failed" (hang)."""
        return self._event(t0, self.EVENTS[kind][0])

    def _past_grace(self) -> bool:
        pid = self.bot_pid()
        try:
            return bool(pid) and time.time() - psutil.Process(pid).create_time() > self.START_TIMEOUT_S + 1.5
        except psutil.Error:
            return False

    def _wait_steady(self) -> None:
        wait_for(self._past_grace, 90, 0.05)
        wait_for(self.supervised_active, 60, 0.05)

    def settle(self, t0: float, kind: str) -> None:
        if not wait_for(lambda: self._event(t0, self.EVENTS[kind][1]), 60, 0.05):
            log(f"  monit: no '{self.EVENTS[kind][1]}' mail within 60 s")
        self._wait_steady()
        # Waiting on Monit's own mails and on the restart time locks the next kill to the phase of
        # Monit's 1 s poll cycle (every sample at the same point of it); a random part of a cycle
        # spreads the kills over the cycle as a real failure would be.
        time.sleep(random.uniform(0, 1.0))

    def stop(self) -> None:
        self.monit.terminate()
        self.monit.wait(10)
        pid = self.bot_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
        self.kill_stand_ins()
        self.exchange.terminate()
        self.exchange.wait(10)
        self.smtp.close()
        self.json.close()


def crash_rounds(world: World, reps: int) -> dict[str, Series]:
    alert = Series("crash -> alert delivered")
    spawned = Series("crash -> bot process running again")
    healthy = Series("crash -> bot /health 200 again")
    reconciled = Series("crash -> bot healthy and reconciled", note="/health status healthy, any process")
    for i in range(reps):
        pid = wait_for(world.bot_pid, 30)
        t0 = time.time()
        os.kill(pid, signal.SIGKILL)
        got_alert = got_spawn = got_health = got_reconciled = None
        deadline = time.monotonic() + 30
        last_health_poll = 0.0
        while time.monotonic() < deadline and not (got_alert and got_spawn and got_health and got_reconciled):
            now = time.time()
            if got_alert is None:
                got_alert = world.alert_after(t0, "crash")
            if got_spawn is None:
                new = world.bot_pid()
                if new and new != pid:
                    got_spawn = now
            if now - last_health_poll > 0.01 and not (got_health and got_reconciled):
                last_health_poll = now
                status = world.health().get("status")
                if status is not None and got_health is None:
                    got_health = time.time()
                if status == "healthy" and got_reconciled is None:
                    got_reconciled = time.time()
            time.sleep(0.001)
        alert.add((got_alert - t0) * 1000 if got_alert else None)
        spawned.add((got_spawn - t0) * 1000 if got_spawn else None)
        healthy.add((got_health - t0) * 1000 if got_health else None)
        reconciled.add((got_reconciled - t0) * 1000 if got_reconciled else None)
        log(f"  {world.name} crash {i + 1}/{reps}: alert {_ms(got_alert, t0)}, running {_ms(got_spawn, t0)}, "
            f"healthy {_ms(got_health, t0)}, healthy and reconciled {_ms(got_reconciled, t0)}")
        world.settle(t0, "crash")
    return {"alert": alert, "spawned": spawned, "healthy": healthy, "reconciled": reconciled}


def hang_rounds(world: World, reps: int) -> Series:
    alert = Series("hang (SIGSTOP) -> alert delivered", note=world.hang_note)
    for i in range(reps):
        pid = wait_for(world.bot_pid, 30)  # start() and the last settle() waited for /health
        t0 = time.time()
        os.kill(pid, signal.SIGSTOP)
        got = wait_for(functools.partial(world.alert_after, t0, "hang"), 30, 0.001)
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        alert.add((got - t0) * 1000 if got else None)
        log(f"  {world.name} hang {i + 1}/{reps}: alert {_ms(got, t0)}")
        world.settle(t0, "hang")
    return alert


def _ms(at: float | None, t0: float) -> str:
    return f"{(at - t0) * 1000:.0f} ms" if at else "never"


def run(reps: int, systems: list[str] | None = None) -> dict[str, Any]:
    """Every system (or those named) through crash and hang; series per system plus notification latency."""
    out: dict[str, Any] = {}
    become_subreaper({os.getpid()})
    for cls in (Botwarden, SupervisordSuperlance, Monit):
        if systems and cls.name not in systems:
            continue
        if cls is Monit and not _which("monit"):
            log("monit not installed: skipped")
            continue
        world = cls()
        log(f"starting {world.name} in {world.dir}")
        try:
            world.start()
            res: dict[str, Any] = dict(crash_rounds(world, reps))
            res["hang"] = hang_rounds(world, reps)
            if isinstance(world, Botwarden):
                res["notify"] = notification_latency(world)
                apid = world.agent_pid()
                res["agent_rss_mb"] = rss_mb(apid) if apid else None
            out[world.name] = res
        finally:
            world.stop()
    return out


def notification_latency(world: Botwarden) -> Series:
    """Outbox -> receiver: the store's notification created_at (the transition) to arrival."""
    from agent.store import Store

    series = Series("transition committed -> alert received (apprise json://)")
    st = Store(f"sqlite:///{world.settings['agent']['db']}")
    try:
        rows = st.list_notifications(limit=100000)
    finally:
        st.close()
    arrivals = sorted(at for at, _ in world.json.arrivals)
    for row in rows:
        created = row.created_at.timestamp()
        later = [a for a in arrivals if a >= created]
        if later and row.status == "sent":
            series.add((later[0] - created) * 1000)
    return series


def _which(name: str) -> bool:
    import shutil

    return shutil.which(name) is not None


def main() -> None:
    """``python -m benchmarks.detection [system ...]``: scenarios 1 and 2 only, for the systems named
    (botwarden, supervisord+superlance, monit; default all), ``BENCH_REPS`` repetitions (default 5)."""
    from benchmarks._common import SERIES_HEADER, table

    reps = int(os.environ.get("BENCH_REPS", "5"))
    res = run(reps, sys.argv[1:] or None)
    for name, r in res.items():
        rows = [r[k].row() for k in ("alert", "spawned", "healthy", "reconciled", "hang")]
        log(f"\n### {name}\n\n" + table(SERIES_HEADER, rows))


if __name__ == "__main__":
    main()
