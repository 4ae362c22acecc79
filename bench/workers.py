"""Long-running ``hushpost worker`` processes for ``make bench``, and what PostgreSQL sees them do.

(f) and (g) run the worker as it is deployed: ``hushpost worker`` (the loop
that polls, not ``--batch``), one or two processes at once.  :class:`Workers`
starts them on an empty queue and counts them ready once each has written its
first heartbeat (``server.WorkerProcess``), so that the queued e-mails find
every worker already polling; :class:`QueueWatch` tells when the queue is
empty, after which they are stopped with SIGTERM, as an operator would.

:class:`LockWaits` samples ``pg_stat_activity`` every 25 ms on a connection of
its own while they run: for each of the bench database's sessions, whether it
is running a statement (and what it waits for: a lock, a WAL flush, nothing),
idle inside a transaction (the worker's Python between two statements) or
idle; for a session waiting for a lock, which statement waits and what the
session holding the lock (of ``pg_blocking_pids``, the one not waiting itself)
is doing at that moment.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from bench.common import REPO

BIN = Path(sys.executable).parent
PENDING = "SELECT count(*) FROM notifications_notification WHERE status = 'pending'"


def schedstat(pid: int) -> tuple[float, float]:
    """Seconds a process's threads have spent running, and runnable but waiting for a CPU.

    From the kernel's scheduler statistics (``/proc/<pid>/task/*/schedstat``); threads
    that have ended are not counted, and a process that has ended counts (0, 0).
    """
    running = waiting = 0.0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0, 0.0
    for task in tasks:
        try:
            run_ns, wait_ns, _ = (task / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue
        running += int(run_ns) / 1e9
        waiting += int(wait_ns) / 1e9
    return running, waiting


class Workers:
    """``count`` × ``hushpost worker`` started together, each ready once it has beaten once.

    ``{i}`` in ``argv`` becomes each process's number (its own output files).
    """

    def __init__(self, env: dict, count: int, logfile: Path, *, interval: float | None = None,
                 argv: list[str] | None = None):
        self.env, self.count, self.logfile = dict(env, PGAPPNAME=WORKER_APP), count, logfile
        self.argv = argv or [str(BIN / "hushpost"), "worker"]
        if interval is not None:
            self.argv += ["--interval", f"{interval:g}"]
        self.procs: list[subprocess.Popen] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def start(self, timeout: float = 90.0) -> Workers:
        from django.db import connections

        from hushpost.server.models import WorkerProcess

        with open(self.logfile, "ab") as out:
            self.procs = [subprocess.Popen([a.replace("{i}", str(i)) for a in self.argv],
                                           env=self.env, cwd=REPO, stdout=out,
                                           stderr=subprocess.STDOUT) for i in range(self.count)]
        deadline = time.monotonic() + timeout
        try:
            while WorkerProcess.objects.filter(pid__in=self.pids).count() < self.count:
                if any(p.poll() is not None for p in self.procs) or time.monotonic() > deadline:
                    raise RuntimeError(f"hushpost worker did not start: {self.log_tail()}")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        finally:
            connections.close_all()
        return self

    def signal(self, signum: int) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signum)

    def stop(self) -> list[int | None]:
        """SIGTERM (finish the e-mail in hand, then exit), as an operator stops it."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = []
        for p in self.procs:
            try:
                codes.append(p.wait(30))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait(5))
        return codes

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class QueueWatch:
    """How many notifications are still pending, on a connection of its own."""

    def __init__(self, conninfo: str):
        import psycopg

        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]

    def pending(self) -> int:
        return self.conn.execute(PENDING).fetchone()[0]

    def wait_empty(self, sink, expected: int, timeout: float, poll: float = 0.05) -> float:
        """Until nothing is pending and the sink holds ``expected`` e-mails; returns that moment."""
        deadline = time.monotonic() + timeout
        while True:
            pending = self.pending()
            got = sink.snapshot()[0]
            if pending == 0 and got >= expected:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pending} notifications still pending and the sink got "
                                   f"{got} of {expected} e-mails after {timeout:.0f} s")
            time.sleep(poll)

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------- lock waits

# The workers' sessions are told apart by their application_name, which libpq takes
# from PGAPPNAME in the environment the bench starts them with.
WORKER_APP = "hushpost worker"

SAMPLE = """
SELECT a.pid, a.application_name, a.state, coalesce(a.wait_event_type, ''),
       coalesce(a.wait_event, ''), a.query,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.backend_type = 'client backend'
  AND a.pid <> ALL(%s)
"""

_TABLE = re.compile(r'\b(?:FROM|UPDATE|INTO)\s+"?(\w+)"?', re.IGNORECASE)


def statement_label(sql: str) -> str:
    """A statement as its verb and first table: ``SELECT audit_audithead FOR UPDATE``."""
    text = " ".join(sql.split())
    if not text:
        return "(none)"
    verb = text.split(" ", 1)[0].upper()
    match = _TABLE.search(text)
    label = f"{verb} {match.group(1)}" if match and verb != "COMMIT" else verb
    upper = text.upper()
    if "FOR UPDATE" in upper:
        label += " FOR UPDATE" + (" SKIP LOCKED" if "SKIP LOCKED" in upper else "")
    return label


def session_label(state: str, wait_type: str, wait_event: str) -> str | None:
    """What one session is doing in one sample; None when idle between transactions."""
    if state == "active":
        if wait_type == "Lock":
            return f"waiting for a lock ({wait_event})"
        if wait_type in ("", "CPU"):
            return "running a statement (on CPU)"
        return f"running a statement, waiting on {wait_type}:{wait_event}"
    if state and state.startswith("idle in transaction"):
        return "idle in transaction (its process runs Python between statements, or waits for a CPU)"
    return None


def _holders(blockers: list[int], by_pid: dict[int, tuple]) -> list[int]:
    """The sessions at the head of the queue: ``pg_blocking_pids`` names the sessions a
    waiter waits for, which may be waiting too (queued ahead for the same row); those
    are followed to the sessions that hold the lock and are not waiting themselves."""
    found: list[int] = []
    seen: set[int] = set()
    todo = list(blockers)
    while todo:
        pid = todo.pop(0)
        if pid in seen:
            continue
        seen.add(pid)
        row = by_pid.get(pid)
        if row is not None and row[3] == "Lock" and row[6]:
            todo.extend(row[6])
        else:
            found.append(pid)
    return found


def whose(application_name: str) -> str:
    return "worker" if application_name == WORKER_APP else "web server"


class LockWaits:
    """Samples of what the bench database's sessions do (see the module docstring)."""

    def __init__(self, conninfo: str, ignore: tuple[int, ...] = (), interval: float = 0.025):
        self.conninfo, self.interval, self.ignore = conninfo, interval, list(ignore)
        self.samples = 0
        self.doing: Counter = Counter()  # (whose, what) -> session-samples
        self.waits: Counter = Counter()  # (whose, statement, holder's, holder doing) -> samples
        self.statements: dict[str, str] = {}  # label -> one full statement, for the report
        self.pid = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            self.pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            ignore = [*self.ignore, self.pid]
            self._ready.set()
            while not self._stop.wait(self.interval):
                self.add(conn.execute(SAMPLE, (ignore,)).fetchall())

    def _statement(self, query: str | None) -> str:
        label = statement_label(query or "")
        self.statements.setdefault(label, " ".join((query or "").split())[:400])
        return label

    def add(self, rows: list[tuple]) -> None:
        """One sample: rows of (pid, application name, state, wait type, wait event, query,
        blocking pids)."""
        self.samples += 1
        by_pid = {row[0]: row for row in rows}
        for _pid, app, state, wait_type, wait_event, query, blockers in rows:
            label = session_label(state or "", wait_type, wait_event)
            if label is None:
                continue
            self.doing[(whose(app), label)] += 1
            if wait_type != "Lock":
                continue
            waiting = self._statement(query)
            for blocker in _holders(blockers or [], by_pid):
                holder = by_pid.get(blocker)
                if holder is None:
                    self.waits[(whose(app), waiting, "?", "a session outside the sample")] += 1
                    continue
                _, h_app, h_state, h_type, h_event, h_query, _ = holder
                verb = "last ran" if (h_state or "").startswith("idle") else "running"
                doing = session_label(h_state or "", h_type, h_event) or "idle"
                self.waits[(whose(app), waiting, whose(h_app),
                            f"{doing}; {verb} `{self._statement(h_query)}`")] += 1

    def start(self) -> LockWaits:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(10)
        return self.summary()

    def summary(self) -> dict:
        n = max(self.samples, 1)

        def doing(who: str) -> dict[str, float]:
            return {label: c / n for (w, label), c in self.doing.most_common() if w == who}

        return {
            "samples": self.samples,
            # Sessions in each state, on average over the samples.
            "doing": doing("worker"),
            "others_doing": doing("web server"),
            "lock_waiting": sum(c for (w, label), c in self.doing.items()
                                if w == "worker" and label.startswith("waiting for a lock")) / n,
            "waits": [(*key, c / n) for key, c in self.waits.most_common(8)],
            "statements": self.statements,
        }
