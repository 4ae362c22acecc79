"""What every part of ``make bench`` shares: logging, ports, percentiles, /proc CPU, servers."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the virtualenv's scripts: hushpost, gunicorn
TICK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def merge_clients(outs: list[dict], mode: str, failures: str, duration: float) -> dict:
    """Add up the load clients' counts over a measured window of ``duration`` seconds.

    A trial with a dead client or over 1% failures is void.
    """
    fatal = [o["error_sample"] for o in outs if o.get("fatal")]
    if fatal:
        raise RuntimeError(f"{mode} load client failed: {fatal[0]}")
    done = sum(o["done"] for o in outs)
    errors = sum(o["errors"] for o in outs)
    if errors > 0.01 * max(done, 1):
        sample = next(o["error_sample"] for o in outs if o["error_sample"])
        raise RuntimeError(f"{mode}: {errors} {failures}, e.g. {sample}")
    latencies = [x for o in outs for x in o["latencies"]]
    return {"rate": done / duration, "done": done, "errors": errors,
            "lat_p50_ms": percentile(latencies, 50) * 1000,
            "lat_p95_ms": percentile(latencies, 95) * 1000}


def proc_cpu(pid: int) -> float:
    """utime + stime of one process, in seconds (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts) - idle) / TICK, sum(parts) / TICK


def all_procs() -> list[tuple[int, int, str]]:
    """(pid, ppid, comm) of every process."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.append((int(entry), ppid, comm))
    return out


def children(root: int, procs: list[tuple[int, int, str]] | None = None) -> list[int]:
    """The processes ``root`` started (gunicorn's workers, smtpd's readers)."""
    return [pid for pid, ppid, _ in (all_procs() if procs is None else procs) if ppid == root]


PG_BACKEND = re.compile(r"^postgres: (\S+) (\S+) (\S+\(\d+\)|\[local\])")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace").strip()
    except OSError:
        return ""


def ours_postgres(procs: list[tuple[int, int, str]], database: str) -> list[int]:
    """PostgreSQL's processes, less the backends serving other databases (other tenants)."""
    pids = []
    for pid, _, comm in procs:
        if not comm.startswith("postgres"):
            continue
        match = PG_BACKEND.match(_cmdline(pid))
        if match is None or match.group(2) == database:
            pids.append(pid)
    return pids


class CpuSampler:
    """CPU seconds used by groups of processes over a window, sampled from /proc.

    Processes are looked up again at every sample (every 0.1 s), so PostgreSQL
    backends that start and end inside the window (a worker's connection) count.
    PostgreSQL's backends count when they serve the database the bench runs on
    (``HUSHPOST_DATABASE_URL`` of its environment).
    """

    def __init__(self, gunicorn_master: int | None = None, fixed: dict | None = None,
                 trees: dict[str, int] | None = None):
        # A tree is a process with its children: gunicorn's master and workers, smtpd and its readers.
        self.trees = {**(trees or {}), **({"gunicorn": gunicorn_master} if gunicorn_master else {})}
        self.fixed = fixed or {}
        self.database = urlparse(os.environ["HUSHPOST_DATABASE_URL"]).path.lstrip("/")
        self.base: dict[int, float] = {}
        self.last: dict[str, dict[int, float]] = defaultdict(dict)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def groups(self) -> dict[str, list[int]]:
        procs = all_procs()
        groups = {"postgres": ours_postgres(procs, self.database), **self.fixed}
        for name, root in self.trees.items():
            groups[name] = [root, *children(root, procs)]
        return groups

    def sample(self) -> None:
        for name, pids in self.groups().items():
            for pid in pids:
                cpu = proc_cpu(pid)
                if cpu:
                    self.last[name][pid] = cpu

    def start(self) -> CpuSampler:
        for pids in self.groups().values():
            for pid in pids:
                self.base[pid] = proc_cpu(pid)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.sample()
        names = set(self.fixed) | {"postgres"} | set(self.trees)
        return {name: sum(max(0.0, cpu - self.base.get(pid, 0.0))
                          for pid, cpu in self.last[name].items()) for name in names}


class Server:
    def __init__(self, name: str, argv: list[str], env: dict, port: int, ready_path: str,
                 logdir: Path):
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.ready_path = ready_path
        self.logfile = logdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=REPO, stdout=out,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} server did not answer in 60 s:\n{self.log_tail()}")

    def ready(self) -> bool:
        """Whether the server answers ``ready_path`` with 200."""
        from bench import loadgen

        try:
            status, _, _ = loadgen.Browser(self.port, timeout=2).request("GET", self.ready_path)
        except OSError:
            return False
        return status == 200

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_lines()[-n:])

    def log_lines(self, needle: str = "") -> list[str]:
        try:
            return [line for line in self.logfile.read_text(errors="replace").splitlines() if needle in line]
        except OSError:
            return []
