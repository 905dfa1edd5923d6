"""Monit start program: daemonise ``argv[3:]``, write its pid to argv[1], log to argv[2], reap it.

Monit needs a start program that returns at once and a pidfile. The launcher forks a detached
keeper (setsid) and exits; the keeper points stdin at /dev/null and stdout/stderr at the log (so
neither it nor the command holds the pipes Monit gave the start program), starts the command,
writes the pidfile, then waits for the command so its exit is reaped (a zombie would look alive
to a pidfile check), and exits too. Run with ``python -I -S``:
stdlib only, the launcher returns in ~15 ms.
"""
import os
import sys

pidfile, logfile, argv = sys.argv[1], sys.argv[2], sys.argv[4:]  # argv[3] == "--"
if os.fork() > 0:
    os._exit(0)
os.setsid()
null = os.open(os.devnull, os.O_RDONLY)
out = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
os.dup2(null, 0)
os.dup2(out, 1)
os.dup2(out, 2)
os.close(null)
os.close(out)
pid = os.fork()
if pid == 0:
    os.execv(argv[0], argv)
tmp = pidfile + ".tmp"
with open(tmp, "w") as fh:
    fh.write(f"{pid}\n")
os.replace(tmp, pidfile)
os.waitpid(pid, 0)
os._exit(0)
