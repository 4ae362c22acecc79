"""One Hushpost deployment under test: a database on the private server, a relay, workers.

Everything runs as real processes with the settings production needs:
``hushpost worker`` from the console script, the relay from
:mod:`tests.faults.relay`, seeding and inspection from
:mod:`tests.faults.dbscript`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.faults.relay import Relay
from tests.settings import _free_port

ROOT = Path(__file__).resolve().parent.parent.parent
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
SKEWED_CLOCK = Path(__file__).resolve().parent / "skewed_clock"
# HUSHPOST_NOTIFY_LEASE_SECONDS for every worker here: how long an e-mail a
# worker claimed stays reserved to it once it stops answering. Short, so a
# killed worker's e-mails are due again in seconds rather than a minute.
LEASE_SECONDS = 8


def hushpost_command() -> str:
    beside = Path(sys.executable).parent / "hushpost"
    found = str(beside) if beside.exists() else shutil.which("hushpost")
    if not found:
        raise RuntimeError("the hushpost console script is not installed (pip install -e .)")
    return found


class Worker:
    """One ``hushpost worker`` process, its output in a log file."""

    def __init__(self, env: dict, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen([hushpost_command(), "worker"], env=env, cwd=ROOT,
                                            stdout=out, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        self.killed = False  # by the test, as a crash or the OOM killer would

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.killed = True
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Deployment:
    def __init__(self, database_url: str, workdir: Path, secrets: dict) -> None:
        self.workdir = workdir
        self.relay = Relay(workdir, _free_port())
        self.workers: list[Worker] = []
        base = {k: v for k, v in os.environ.items() if not k.startswith(("HUSHPOST_", "DJANGO_"))}
        self.env = base | secrets | {
            "HUSHPOST_MODE": "production",
            "HUSHPOST_DATABASE_URL": database_url,
            "HUSHPOST_DATA_DIR": str(workdir / "data"),
            "HUSHPOST_BASE_URL": "http://127.0.0.1:8000",
            # A relay that hangs is waited for longer than a worker's lease on an e-mail lasts.
            "HUSHPOST_EMAIL_URL": f"smtp://127.0.0.1:{self.relay.port}?timeout=30",
            "HUSHPOST_NOTIFY_LEASE_SECONDS": str(LEASE_SECONDS),
            "PYTHONUNBUFFERED": "1",
        }

    def run(self, argv: list[str], stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=env or self.env, cwd=ROOT, input=stdin, capture_output=True, text=True,
                              timeout=180)

    def hushpost(self, *args: str) -> subprocess.CompletedProcess:
        return self.run([hushpost_command(), *args])

    def script(self, *args: str, stdin: str = "") -> dict:
        done = self.run([sys.executable, "-m", "tests.faults.dbscript", *args], stdin=stdin)
        if done.returncode != 0:
            raise RuntimeError(f"dbscript {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout)

    def seed(self, *, recipients: int, messages: int) -> int:
        """Send the messages; returns how many notifications they queued."""
        self.script("seed", "--recipients", str(recipients), "--messages", str(messages))
        return recipients * (messages + 1)

    def start_worker(self, *, sender: str = "", clock_ahead_minutes: int = 0) -> Worker:
        """A worker; ``sender`` sets its From address, so the relay can tell workers apart."""
        env = dict(self.env)
        if sender:
            env["HUSHPOST_FROM_EMAIL"] = sender
        if clock_ahead_minutes:
            env |= skewed_clock(clock_ahead_minutes)
            ahead = float(self.run([sys.executable, "-c", "import time; print(time.time())"], env=env).stdout)
            assert abs(ahead - time.time() - 60 * clock_ahead_minutes) < 30, "libfaketime did not move the clock"
        worker = Worker(env, self.workdir / f"worker-{len(self.workers) + 1}.log")
        self.workers.append(worker)
        return worker

    def wait_for_emails(self, count: int, timeout: float) -> bool:
        """Whether the relay has accepted ``count`` e-mails within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.relay.accepted()) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def wait_until_delivered(self, expected: int, deadline: float) -> float | None:
        """When (relay time) the last of ``expected`` different e-mails arrived, or None by ``deadline``
        (a time.time()); each notification is one e-mail, whoever sent it how often."""
        while True:
            seen: set = set()
            for email in self.relay.accepted():
                seen.add(identity(email))
                if len(seen) >= expected:
                    return email["t"]
            if time.time() > deadline:
                return None
            time.sleep(0.1)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.relay.release()
        self.relay.stop()


def wait_for(condition, timeout: float) -> bool:
    """Whether ``condition()`` came true within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def identity(email: dict) -> tuple:
    """What makes an e-mail the one for a given notification: to whom, which kind, about what.

    A message's notification links to that message; the password e-mail links to the sign-in page.
    """
    return (tuple(email["rcpt"]), email["subject"], email["links"][0] if email["links"] else "")


def skewed_clock(minutes: int) -> dict:
    """Environment that runs a process with its wall clock ``minutes`` ahead, through libfaketime.

    libfaketime 0.9.10 cannot fake the monotonic clock without hanging Python's
    timed waits (Event.wait, Lock.acquire with a timeout), so the monotonic clock
    stays real; sitecustomize.py beside this module then keeps time.sleep
    working (see there). Only the wall clock, which is what leases were judged
    by, is ahead.
    """
    if not LIBFAKETIME.exists():
        raise RuntimeError(f"{LIBFAKETIME} is missing: `make faults` installs Debian's faketime")
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": f"+{minutes}m",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SKEWED_CLOCK), os.environ.get("PYTHONPATH", "")])),
    }
