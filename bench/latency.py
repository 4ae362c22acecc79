"""(g) of ``make bench``: how long a recipient waits for the e-mail while people keep sending.

Called by ``bench/run.py`` after (c), while ``hushpost serve`` still runs.  For
one, then two ``hushpost worker`` processes (the deployed loop with its default
polling interval, started on an empty queue):

* the send load of (a) (the same load clients, signed-in senders POSTing
  ``/app/compose`` to the pool of existing recipients) runs for
  ``latency_seconds`` against ``hushpost serve`` while the workers deliver into
  the counting sink, which logs each e-mail's arrival (wall clock) and
  Message-ID;
* every 0.5 s the number of pending notifications is sampled, and after the
  load the workers go on until none is pending;
* each notification queued during the load is matched by its Message-ID
  (``smtp_message_id``) with its arrival at the sink: send-to-delivery time =
  arrival - the notification's ``created_at`` (written in the send's
  transaction, by the same machine's clock).  ``sent_at - created_at`` (what
  the worker recorded) is kept as a cross-check.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.common import log, percentile
from bench.environment import clear_queue, sender_accounts
from bench.sending import http_trial
from bench.workers import LockWaits, QueueWatch, Workers, schedstat

DELAY = report.Target()  # send to delivery under load: reported, no target


class DepthSampler:
    """Every ``interval`` seconds: (wall time, pending notifications, {group: (seconds running,
    seconds runnable but waiting for a CPU)}) of groups of processes."""

    def __init__(self, conninfo: str, groups: dict[str, list[int]], interval: float = 0.5):
        self.watch = QueueWatch(conninfo)
        self.groups, self.interval = groups, interval
        self.samples: list[tuple[float, int, dict[str, tuple[float, float]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            cpu = {name: tuple(map(sum, zip(*(schedstat(pid) for pid in pids), strict=True)))
                   for name, pids in self.groups.items()}
            self.samples.append((time.time(), self.watch.pending(), cpu))
            if self._stop.wait(self.interval):
                return

    def start(self) -> DepthSampler:
        self._thread.start()
        return self

    def stop(self) -> list[tuple[float, int, dict[str, tuple[float, float]]]]:
        self._stop.set()
        self._thread.join(10)
        self.watch.close()
        return self.samples


def window_stats(samples: list[tuple[float, int, dict[str, tuple[float, float]]]], start: float,
                 end: float) -> dict:
    """Between ``start`` and ``end`` (wall clock): the most and the last pending count, and for
    each group the cores it kept busy and the cores' worth of time it spent waiting for one."""
    inside = [s for s in samples if start <= s[0] <= end]
    if len(inside) < 2:
        return {"depth_max": 0, "depth_end": 0, "cores": {}, "queued": {}}
    (t0, _, c0), (t1, n1, c1) = inside[0], inside[-1]
    span = max(t1 - t0, 1e-9)
    return {"depth_max": max(n for _, n, _ in inside), "depth_end": n1,
            "cores": {name: (c1[name][0] - c0[name][0]) / span for name in c0},
            "queued": {name: (c1[name][1] - c0[name][1]) / span for name in c0}}


def delays(rows: list[tuple[datetime, datetime | None, str]],
           arrivals: dict[str, float]) -> dict:
    """Send-to-arrival and send-to-``sent_at`` times (s) of notifications matched by Message-ID."""
    to_arrival, to_sent, unmatched = [], [], 0
    for created_at, sent_at, message_id in rows:
        arrived = arrivals.get(message_id)
        if arrived is None:
            unmatched += 1
            continue
        to_arrival.append(arrived - created_at.timestamp())
        if sent_at is not None:
            to_sent.append((sent_at - created_at).total_seconds())

    def spread(values: list[float]) -> dict:
        if not values:
            return {"p50": float("nan"), "p95": float("nan"), "max": float("nan")}
        return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values)}

    return {"matched": len(to_arrival), "unmatched": unmatched,
            "arrival": spread(to_arrival), "sent_at": spread(to_sent)}


def load_run(cfg, env: dict, sink, product, accounts: list[dict], processes: int,
             workdir: Path) -> dict:
    from django.db import connections

    from hushpost.notifications.models import Notification

    conninfo = env["HUSHPOST_DATABASE_URL"]
    load_cfg = dataclasses.replace(cfg, warmup=1.0, duration=cfg.latency_seconds)
    workers = Workers(env, processes, workdir / "workers.log").start()
    try:
        sink.reset()
        sink.record(True)
        since = datetime.now(UTC)
        depth = DepthSampler(conninfo, {"workers": workers.pids, "sink": [sink._proc.pid]}).start()
        locks = LockWaits(conninfo, ignore=(depth.watch.pid,), interval=0.05).start()
        load = http_trial("send", product.port, load_cfg, accounts, product.proc.pid)
        db = locks.stop()
        # The load clients stop at the end of their measured window and are then joined.
        load_end = time.time()
        load_start = load_end - cfg.latency_seconds
        queued = Notification.objects.filter(created_at__gte=since).count()
        connections.close_all()
        watch = QueueWatch(conninfo)
        try:
            emptied = watch.wait_empty(sink, queued, timeout=max(300.0, 5 * cfg.latency_seconds),
                                       poll=0.1)
            emptied_wall = time.time() - (time.monotonic() - emptied)
        finally:
            watch.close()
        samples = depth.stop()
    finally:
        sink.record(False)
        codes = workers.stop()
    if any(codes):
        raise RuntimeError(f"(g) worker exit codes {codes}: {workers.log_tail()}")
    rows = list(Notification.objects.filter(created_at__gte=since)
                .values_list("created_at", "sent_at", "smtp_message_id"))
    statuses = set(Notification.objects.filter(created_at__gte=since)
                   .values_list("status", flat=True))
    if statuses != {"sent"}:
        raise RuntimeError(f"(g) notifications queued during the load ended {statuses}")
    arrivals = sink.arrivals_by_id()
    found = delays(rows, arrivals)
    if found["unmatched"]:
        raise RuntimeError(f"(g) {found['unmatched']} of {len(rows)} sent notifications never "
                           "reached the sink")
    in_load = sum(1 for t in arrivals.values() if load_start <= t <= load_end)
    during = window_stats(samples, load_start, load_end)
    workers_cores = during["cores"].get("workers", 0.0)
    sink_cores = during["cores"].get("sink", 0.0)
    delivered = max(in_load, 1)
    return {
        "processes": processes,
        "sends": load["done"], "send_rate": load["rate"], "notifications": len(rows),
        "delivery_rate_in_load": in_load / cfg.latency_seconds,
        "load_s": cfg.latency_seconds,
        "depth_max": during["depth_max"], "depth_end": during["depth_end"],
        "drain_s": max(0.0, emptied_wall - load_end),
        "delays": found,
        "machine_busy": load["machine_busy"],
        # http_trial counts gunicorn, PostgreSQL and the clients as the bench's own.
        "other_cores": max(0.0, load["other_cores"] - workers_cores - sink_cores),
        "cores": {**load["cpu_cores_used"], "workers": workers_cores, "sink": sink_cores},
        # Of each e-mail delivered during the load, per worker: running, waiting for a CPU.
        "worker_ms": {"running": 1000 * workers_cores * cfg.latency_seconds / delivered,
                      "queued": 1000 * during["queued"].get("workers", 0.0)
                      * cfg.latency_seconds / delivered,
                      "each": 1000 * processes * cfg.latency_seconds / delivered},
        "db": db,
    }


def bench_latency(cfg, res, env: dict, sink, product, seeds: dict, workdir: Path) -> None:
    from django.db import connections

    accounts = sender_accounts(seeds)
    for processes in cfg.latency_workers:
        clear_queue()
        connections.close_all()
        run = load_run(cfg, env, sink, product, accounts, processes, workdir)
        res.latency_runs.append(run)
        d = run["delays"]["arrival"]
        log(f"(g) {processes} worker(s): {run['send_rate']:.1f} sends/s for "
            f"{run['load_s']:.0f} s, delivered {run['delivery_rate_in_load']:.1f}/s meanwhile; "
            f"send to delivery p50 {d['p50']:.2f} s, p95 {d['p95']:.2f} s, max {d['max']:.2f} s; "
            f"backlog at the end {run['depth_end']} (max {run['depth_max']}), empty "
            f"{run['drain_s']:.1f} s after the load")
    res.summary["latency"] = {run["processes"]: run["delays"]["arrival"]
                              for run in res.latency_runs}
    clear_queue()


# ------------------------------------------------------------------- report


def _drained(run: dict) -> str:
    if run["depth_end"] <= 50 and run["drain_s"] < 2.0:
        return (f"kept up: at most {run['depth_max']} pending during the load, empty "
                f"{run['drain_s']:.1f} s after it")
    return (f"did not keep up: {run['depth_end']} pending when the load ended (at most "
            f"{run['depth_max']}), empty {run['drain_s']:.1f} s after it")


def results_rows(res) -> list[tuple[str, ...]]:
    rows = []
    for run in res.latency_runs:
        d = run["delays"]["arrival"]
        rows.append(
            (f"(g) Send to delivery (SMTP arrival at the sink - notification created) for "
             f"messages sent through `POST /app/compose` during {run['load_s']:.0f} s of the (a) "
             f"load ({run['send_rate']:.1f} sends/s), {run['processes']} `hushpost worker` "
             f"process{'es' if run['processes'] > 1 else ''} delivering; {_drained(run)}",
             f"p50 {d['p50']:.2f} s, p95 {d['p95']:.2f} s, max {d['max']:.2f} s", "—", "—",
             *DELAY.cells(d["p95"])))
    return rows


def method_text(res) -> str:
    cfg = res.config
    return (
        f"* **(g) Delivery under load.** With `hushpost serve` as in (a), for "
        f"{' and '.join(str(n) for n in cfg.latency_workers)} `hushpost worker` process(es) "
        "(the deployed loop, default polling interval 0.5 s, started on an empty queue and "
        f"ready before the load): the (a) send load ({cfg.clients} clients, recipients from "
        f"the pool of {cfg.recipients_pool}) runs for 1 s + {cfg.latency_seconds:g} s while "
        "the workers deliver into the counting sink, which logs each arrival (wall clock) with "
        "its Message-ID.  The pending notifications are counted every 0.5 s; after the load "
        "the workers go on until none is pending, then are stopped with SIGTERM.  Every "
        "notification queued during the load must be `sent` and its `smtp_message_id` found "
        "at the sink; its send-to-delivery time is the arrival time minus its `created_at` "
        "(set in the send's transaction; same machine, same clock).  `sent_at - created_at` "
        "is shown as a cross-check.  CPU: the load's (a)-style accounting, plus the workers' "
        "and the sink's from `/proc`.")


def rounds_text(res) -> str:
    rows = []
    for run in res.latency_runs:
        a, s, c = run["delays"]["arrival"], run["delays"]["sent_at"], run["cores"]
        rows.append((run["processes"], f"{run['send_rate']:.1f} ({run['notifications']})",
                     f"{run['delivery_rate_in_load']:.1f}",
                     f"{a['p50']:.2f} / {a['p95']:.2f} / {a['max']:.2f} s",
                     f"{s['p50']:.2f} / {s['p95']:.2f} / {s['max']:.2f} s",
                     f"{run['depth_max']} / {run['depth_end']}", f"{run['drain_s']:.1f} s",
                     f"{run['machine_busy']:.0%} ({run['other_cores']:.2f})",
                     f"{c.get('gunicorn', 0):.2f} / {c.get('postgres', 0):.2f} / "
                     f"{c['workers']:.2f} / {c['sink']:.2f} / {c.get('clients', 0):.2f}"))
    return "\n".join([
        "### (g) Delivery while people send", "",
        report.table(["Workers", "Sends/s (all e-mails queued)", "Delivered/s during the load",
                      "Send to arrival p50 / p95 / max", "Send to `sent_at` p50 / p95 / max",
                      "Pending: max / at the end of the load", "Empty after the load",
                      "Machine busy (others' cores)",
                      "Cores: gunicorn / PostgreSQL / workers / sink / load clients"],
                     "rrrlllrll", rows),
        "",
        "What held delivery back during the load, from the workers' scheduler statistics "
        "(`/proc/<pid>/task/*/schedstat`, sampled every 0.5 s) and `pg_stat_activity` "
        "every 50 ms:", "",
        *(f"* {why_slow(run)}" for run in res.latency_runs), ""])


def why_slow(run: dict) -> str:
    w, db, c = run["worker_ms"], run["db"], run["cores"]
    blocked = max(0.0, w["each"] - w["running"] - w["queued"])
    n = run["processes"]
    text = (f"{n} worker{'s' if n > 1 else ''}: each e-mail delivered during the load took "
            f"{w['each']:.1f} ms of a worker's time: {w['running']:.1f} ms running, "
            f"{w['queued']:.1f} ms runnable but waiting for a CPU, {blocked:.1f} ms blocked "
            f"(PostgreSQL, locks, the sink, or idle between polls).  The worker process"
            f"{'es' if n > 1 else ''} kept {c['workers']:.2f} cores busy, against gunicorn's "
            f"{c.get('gunicorn', 0):.2f}, PostgreSQL's {c.get('postgres', 0):.2f} and other "
            f"tenants' {run['other_cores']:.2f}, the machine {run['machine_busy']:.0%} busy.  "
            f"Worker sessions waiting for a lock: {db['lock_waiting']:.3f} on average")
    mine = [(stmt, holder, doing, v) for who, stmt, holder, doing, v in db["waits"]
            if who == "worker"]
    if mine:
        stmt, holder, doing, v = mine[0]
        text += (f", most often (on average {v:.3f} sessions) in `{stmt}` behind a {holder} "
                 f"session that was {doing}")
    theirs = [(stmt, v) for who, stmt, holder, _, v in db["waits"]
              if who == "web server" and holder == "worker"]
    if theirs:
        text += (f"; web server sessions waited behind a worker in `{theirs[0][0]}` "
                 f"({theirs[0][1]:.3f} on average)")
    return text + "."


PART = report.Part("latency", results=results_rows, method=method_text, rounds=rounds_text)
