"""(b) of ``make bench``: notifications delivered per second by ``hushpost worker`` vs plain smtplib.

Each round queues ``notify_count`` Secure Messaging Notifications through the
real ``send_message``; ``hushpost worker --batch`` (the worker's loop, exiting
once the queue is empty) delivers them into the counting SMTP sink, and the
baseline, ``bench/smtp_baseline.py``, sends as many equivalent e-mails (one
rendered by Hushpost) into the same sink with plain smtplib.  Each round also
times two workers at once and, as an experiment, one worker whose PostgreSQL
session has ``synchronous_commit=off``.
"""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

from bench import loadgen, report
from bench.common import BIN, REPO, CpuSampler, log
from bench.environment import Config, Results, clear_queue
from bench.profiling import Breakdown, timed_then_profiled
from bench.sink import Sink

TARGET = report.Target(">=", 0.50)  # the worker's e-mails per second / smtplib's


def seed_notifications(author, pool: list, count: int) -> float:
    """``count`` pending 'Secure Messaging Notification's, queued by the real send_message."""
    from hushpost.messaging.actions import Addressees, SendOptions, send_message

    started = time.monotonic()
    for i in range(count):
        send_message(
            author=author, addressees=Addressees(to=[pool[i % len(pool)].email]),
            subject=f"Results {i}", body_html=loadgen.BODY_HTML, options=SendOptions(),
            send_token=secrets.token_urlsafe(24),
        )
    return time.monotonic() - started


def write_sample(email, pool: list, path: Path) -> dict:
    """An e-mail as the worker writes it, for the smtplib baseline to send again."""
    sample = {
        "subject": email.subject,
        "from": email.from_email,
        "text": email.body,
        "html": email.alternatives[0][0],
        "recipients": [u.email for u in pool],
        "bytes": len(email.message().as_bytes()),
    }
    path.write_text(json.dumps(sample))
    return sample


def notification_sample(path: Path, pool: list) -> dict:
    """A real 'Secure Messaging Notification' as the worker would write it."""
    from hushpost.notifications.emails import build_email
    from hushpost.notifications.models import Notification

    note = Notification.objects.select_related(
        "org", "user", "delivery__message__author", "delivery__recipient"
    ).filter(kind=Notification.Kind.MESSAGE, status=Notification.Status.PENDING).first()
    return write_sample(build_email(note), pool, path)


# ------------------------------------------------------------------- trials


def _children_cpu() -> float:
    """CPU seconds of every child process waited for so far."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def worker_argv() -> list[str]:
    return [str(BIN / "hushpost"), "worker", "--batch"]


def worker_startup(env: dict, workdir: Path) -> dict:
    """Wall and CPU time of `hushpost worker --batch` on an empty queue (start-up cost)."""
    ru0, started = _children_cpu(), time.monotonic()
    with open(workdir / "worker.log", "ab") as out:
        subprocess.run(worker_argv(), env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                       timeout=120, check=True)
    return {"wall_s": time.monotonic() - started, "cpu_s": _children_cpu() - ru0}


def _delivered(sink: Sink, wall: float, ru0: float, cpu: dict[str, float]) -> dict:
    """What the sink received in a trial and the CPU it cost, per e-mail."""
    received = sink.received()
    return {
        **received, "wall_s": wall, "rate_incl_startup": received["count"] / wall,
        "client_cpu_s": _children_cpu() - ru0,
        "cpu_ms_per_msg": report.ms_per_op(cpu, received["count"]),
    }


def run_worker_trial(env: dict, sink: Sink, count: int, workdir: Path,
                     processes: int = 1) -> dict:
    """``processes`` × `hushpost worker --batch` deliver the ``count`` queued notifications."""
    sink.reset()
    sampler = CpuSampler(fixed={"sink": [sink._proc.pid]}).start()
    ru0 = _children_cpu()
    started = time.monotonic()
    with open(workdir / "worker.log", "ab") as out:
        procs = [subprocess.Popen(worker_argv(), env=env, cwd=REPO, stdout=out,
                                  stderr=subprocess.STDOUT) for _ in range(processes)]
        codes = [p.wait(300) for p in procs]
    wall = time.monotonic() - started
    got = sink.wait_for(count, 10)
    cpu = sampler.stop()
    if any(codes) or sink.snapshot()[0] != count:
        errors = [line for line in (workdir / "worker.log").read_text(errors="replace")
                  .splitlines() if "Error" in line or "Exception" in line]
        raise RuntimeError(f"(b) worker exit codes {codes}, sink got {got} of {count}; "
                           f"last error: {errors[-1] if errors else '-'}; "
                           f"see {workdir / 'worker.log'}")
    return _delivered(sink, wall, ru0, cpu)


def smtp_baseline_argv(port: int, count: int, samples: list[Path]) -> list[str]:
    """``bench/smtp_baseline.py`` sending ``count`` e-mails, the samples in turn."""
    return [sys.executable, "-m", "bench.smtp_baseline", "--port", str(port), "--count",
            str(count), *[a for p in samples for a in ("--sample", str(p))]]


def run_smtplib_trial(sink: Sink, count: int, sample_path: Path) -> dict:
    sink.reset()
    sampler = CpuSampler(fixed={"sink": [sink._proc.pid]}).start()
    ru0 = _children_cpu()
    started = time.monotonic()
    proc = subprocess.run(smtp_baseline_argv(sink.port, count, [sample_path]), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    wall = time.monotonic() - started
    got = sink.wait_for(count, 10)
    cpu = sampler.stop()
    if proc.returncode != 0 or sink.snapshot()[0] != count:
        raise RuntimeError(f"(b) smtplib baseline exit {proc.returncode}, sink got {got}: "
                           f"{proc.stderr[-800:]}")
    return _delivered(sink, wall, ru0, cpu)


def commit_probe(conninfo: str, rounds: int = 300) -> dict:
    """Latency of a one-row UPDATE in autocommit, durable vs synchronous_commit=off."""
    import psycopg

    out: dict[str, list[float]] = {"on": [], "off": [], "select": []}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_commit_probe (id int PRIMARY KEY, v int)")
        conn.execute("INSERT INTO bench_commit_probe VALUES (1, 0)")
        for mode in ("on", "off", "on", "off"):
            conn.execute(f"SET synchronous_commit = {mode}")
            t0 = time.perf_counter()
            for _ in range(rounds):
                conn.execute("UPDATE bench_commit_probe SET v = v + 1 WHERE id = 1")
            out[mode].append(1000 * (time.perf_counter() - t0) / rounds)
            t0 = time.perf_counter()
            for _ in range(rounds):
                conn.execute("SELECT v FROM bench_commit_probe WHERE id = 1").fetchone()
            out["select"].append(1000 * (time.perf_counter() - t0) / rounds)
        conn.execute("DROP TABLE bench_commit_probe")
    return {k: report.med(v) for k, v in out.items()}


def bench_notify(cfg: Config, res: Results, env: dict, sink: Sink, seeds: dict,
                 workdir: Path) -> None:
    from django.db import connections

    from hushpost.notifications.models import Notification

    clear_queue()
    author = seeds["senders"][0]
    sample_path = workdir / "notification-sample.json"
    connections.close_all()
    startup = worker_startup(env, workdir)
    res.summary["worker_startup"] = startup
    probe = commit_probe(env["HUSHPOST_DATABASE_URL"])
    res.summary["commit_probe"] = probe
    log(f"(b) one-row UPDATE in autocommit: {probe['on']:.3f} ms durable, {probe['off']:.3f} ms "
        f"with synchronous_commit=off; one-row SELECT {probe['select']:.3f} ms")
    # Experiment, not the product's configuration: the same worker with PostgreSQL's
    # synchronous_commit off for its session (libpq reads PGOPTIONS), to show what the
    # WAL flushes of its commits cost.
    async_env = dict(env, PGOPTIONS="-c synchronous_commit=off")
    log(f"(b) worker start-up on an empty queue: {startup['wall_s']:.2f} s wall, "
        f"{startup['cpu_s']:.2f} s CPU")
    for r in range(cfg.notify_rounds):
        row: dict = {"round": r + 1}
        row["seed_s"] = seed_notifications(author, seeds["pool"], cfg.notify_count)
        if r == 0:
            sample = notification_sample(sample_path, seeds["pool"])
            res.machine["notification_bytes"] = sample["bytes"]
        connections.close_all()
        order = ("worker", "smtplib") if r % 2 == 0 else ("smtplib", "worker")
        for which in order:
            if which == "worker":
                row[which] = run_worker_trial(env, sink, cfg.notify_count, workdir)
                # Its own CPU, less the start-up measured on an empty queue.
                row[which]["worker_cpu_ms_per_msg"] = 1000 * max(
                    0.0, row[which]["client_cpu_s"] - startup["cpu_s"]) / cfg.notify_count
            else:
                row[which] = run_smtplib_trial(sink, cfg.notify_count, sample_path)
            log(f"(b) round {r + 1} {which:7s}: {row[which]['rate']:8.1f} msg/s "
                f"({row[which]['count']} e-mails, {row[which]['bytes_per_msg']:.0f} B each)")
        row["ratio"] = row["worker"]["rate"] / row["smtplib"]["rate"]
        # For scale: two worker processes at once (not part of the target's ratio).
        seed_notifications(author, seeds["pool"], cfg.notify_count)
        connections.close_all()
        row["worker2"] = run_worker_trial(env, sink, cfg.notify_count, workdir, processes=2)
        log(f"(b) round {r + 1} 2 workers: {row['worker2']['rate']:8.1f} msg/s")
        seed_notifications(author, seeds["pool"], cfg.notify_count)
        connections.close_all()
        row["worker_async"] = run_worker_trial(async_env, sink, cfg.notify_count, workdir)
        log(f"(b) round {r + 1} worker, synchronous_commit=off: "
            f"{row['worker_async']['rate']:8.1f} msg/s")
        res.notify_rounds.append(row)
    unsent = Notification.objects.exclude(status=Notification.Status.SENT).count()
    if unsent:
        raise RuntimeError(f"(b) {unsent} notifications were not marked sent")
    rounds = res.notify_rounds
    res.summary["notify"] = {
        "measured": report.med(r["worker"]["rate"] for r in rounds),
        "baseline": report.med(r["smtplib"]["rate"] for r in rounds),
        "ratio": report.med(r["ratio"] for r in rounds),
        "ratios": [r["ratio"] for r in rounds],
        "two_workers": report.med(r["worker2"]["rate"] for r in rounds),
        "async_commit": report.med(r["worker_async"]["rate"] for r in rounds),
        "async_ratio": report.med(r["worker_async"]["rate"] / r["smtplib"]["rate"]
                                  for r in rounds),
        "worker_cpu_ms": report.med(r["worker"]["worker_cpu_ms_per_msg"] for r in rounds),
    }


# ------------------------------------------------------------------ profile


def profile_notify(seeds: dict, n: int = 300) -> dict:
    """The worker loop in-process (``hushpost worker``'s BackgroundWorker, batch mode):
    breakdown + cProfile."""
    import logging

    from hushpost.audit import linker
    from hushpost.notifications import delivery
    from hushpost.notifications import tasks as notification_tasks
    from hushpost.server.background import BackgroundWorker

    def worker() -> BackgroundWorker:
        loop = BackgroundWorker(interval=0, batch=True, heartbeat=False)
        # The loop, not the start-up (measured on its own in (b)): no migration check.
        loop.wait_until_ready = lambda: True
        return loop

    clear_queue()
    tasks_logger = logging.getLogger("django.tasks")
    saved = tasks_logger.level
    tasks_logger.setLevel(logging.INFO)  # as `hushpost worker` (verbosity 1) does
    handler = logging.StreamHandler(io.StringIO())
    tasks_logger.addHandler(handler)
    try:
        bd = Breakdown()
        bd.timed(notification_tasks, "deliver", "deliver", scope=True)
        bd.timed(delivery, "build_email", "build_email")
        bd.timed(delivery.relay, "send", "SMTP send")
        bd.timed(delivery, "_load", "load")
        bd.timed(linker, "link", "audit linker", scope=True)
        wall, cpu, prof = timed_then_profiled(
            bd, lambda: worker().run(),
            before=lambda: seed_notifications(seeds["senders"][0], seeds["pool"], n))
    finally:
        tasks_logger.removeHandler(handler)
        tasks_logger.setLevel(saved)
        delivery.relay.close()
    return {"n": n, "ms": 1000 * wall / n, "cpu_ms": 1000 * cpu / n, "bd": bd,
            "table": report.profile_table(prof, 24),
            "own_table": report.profile_table(prof, 14, "own")}


def describe_notify(p: dict, res: Results) -> str:
    s = res.summary["notify"]
    probe = res.summary["commit_probe"]
    bd, n = p["bd"], p["n"]
    ok = TARGET.met(s["ratio"])
    per_msg, base_msg = 1000 / s["measured"], 1000 / s["baseline"]
    own = s["worker_cpu_ms"]
    head = (f"### (b) Delivering: target {'met' if ok else 'missed'}: {s['ratio']:.3f} vs {TARGET}"
            + ("" if ok else f" ({s['ratio'] / TARGET.value:.0%} of the target)"))
    deliver_ms, link_ms = bd.ms("deliver", n), bd.ms("audit linker", n)
    queue_ms = p["ms"] - deliver_ms - link_ms
    d_sql = bd.ms("SQL statement @ deliver", n)
    d_other = (deliver_ms - d_sql - bd.ms("build_email @ deliver", n)
               - bd.ms("SMTP send @ deliver", n))
    commits, d_commits = bd.commits(n), bd.commits(n, "deliver")
    rows = [
        ("Whole worker loop per e-mail, in-process", f"{p['ms']:.2f}", f"{bd.trips(n):.1f}",
         f"{commits:.1f}"),
        ("- of which CPU time of the Python process", f"{p['cpu_ms']:.2f}", "", ""),
        ("Task queue (django-tasks-db): `SELECT 1` health check, BEGIN, `SELECT ... FOR UPDATE "
         "SKIP LOCKED`, claim UPDATE, COMMIT, result UPDATE; signals, logging",
         f"{queue_ms:.2f}",
         f"{bd.trips(n) - bd.trips(n, 'deliver') - bd.trips(n, 'audit linker'):.1f}",
         f"{commits - d_commits - bd.commits(n, 'audit linker'):.1f}"),
        ("Audit linker (`audit.linker.link`, between tasks: chains the events the sends and "
         "the deliveries recorded, a batch per chain under its head's lock)", f"{link_ms:.2f}",
         f"{bd.trips(n, 'audit linker'):.1f}", f"{bd.commits(n, 'audit linker'):.1f}"),
        ("`deliver()` (Hushpost)", f"{deliver_ms:.2f}", f"{bd.trips(n, 'deliver'):.1f}",
         f"{d_commits:.1f}"),
        ("- its SQL statements", f"{d_sql:.2f}",
         f"{bd.n('SQL statement @ deliver', n):.1f}", ""),
        ("- loading the batch's notifications with their `select_related` relations "
         "(SQL compilation, query, model instances)",
         f"{bd.ms('load @ deliver', n):.2f}", f"{bd.n('load @ deliver', n):.2f}", ""),
        ("- `build_email` (2 templates, MIME)", f"{bd.ms('build_email @ deliver', n):.2f}", "",
         ""),
        ("- SMTP send (MAIL, RCPT, DATA, end of data)", f"{bd.ms('SMTP send @ deliver', n):.2f}",
         "", ""),
        ("- other Python", f"{d_other:.2f}", "", ""),
        ("All SQL, COMMITs and health checks (waiting on PostgreSQL)",
         f"{bd.ms('SQL statement', n) + bd.ms('COMMIT', n) + bd.ms('health check', n):.2f}", "",
         ""),
    ]
    table = report.table(["Part of one delivery", "ms", "PostgreSQL round trips",
                          "durable commits"], "lrrr", rows)
    flushes = commits * probe["on"]
    speedup = s["async_commit"] / s["measured"]
    if speedup >= 1.2:
        commit_text = (f"They matter: the same worker with `synchronous_commit=off` for its "
                       f"session (an experiment through `PGOPTIONS`, not a setting of the "
                       f"product) delivered {s['async_commit']:.1f}/s (x{speedup:.2f}, ratio "
                       f"{s['async_ratio']:.3f}).")
    else:
        commit_text = (f"They are not what bounds it in this run: the same worker with "
                       f"`synchronous_commit=off` for its session (an experiment through "
                       f"`PGOPTIONS`) delivered {s['async_commit']:.1f}/s (x{speedup:.2f}, "
                       f"ratio {s['async_ratio']:.3f}).")
    scale = s["two_workers"] / s["measured"]
    scale_text = (f"Two worker processes together delivered {s['two_workers']:.1f}/s "
                  f"(x{scale:.2f})" + (", as a loop bound by waiting rather than by CPU does."
                                       if scale >= 1.5 else
                                       ": little gain, the machine's two cores being busy."))
    return f"""{head}

**What bounds it: the SMTP round trips and the worker's own CPU per e-mail.**  Served, one worker
process took **{per_msg:.2f} ms per e-mail** against {base_msg:.2f} ms for plain smtplib, and used
{own:.2f} ms of its own CPU per e-mail (start-up excluded): it was busy {own / per_msg:.0%} of
the time and waiting the rest.  One task claims up to 50 due notifications at once (one
`SELECT ... FOR UPDATE SKIP LOCKED`, one lease `UPDATE`, and a `DELETE` of their own queued
tasks), then sends them over one SMTP connection, recording each as it is accepted: per e-mail
that is **{bd.trips(n):.1f} PostgreSQL round trips, {commits:.1f} of them durable commits** (a
COMMIT, or an UPDATE in autocommit mode), the task queue's own bookkeeping and the audit
linker's batches shared out.
On this machine a durable commit costs {probe['on']:.3f} ms (a one-row UPDATE in autocommit;
{probe['off']:.3f} ms with `synchronous_commit=off`; a one-row SELECT {probe['select']:.3f} ms,
measured once in this run, and disk flushes on this shared machine vary a lot), about
{flushes:.1f} ms per e-mail.
{commit_text}  {scale_text}

So an e-mail costs the worker its own CPU (Django ORM for {bd.n('SQL statement', n):.1f} statements, its
share of the task queue's bookkeeping and of the audit linker's, two template renders, MIME
building, logging) plus {bd.trips(n):.1f} PostgreSQL and 4 SMTP round trips in sequence; plain
smtplib pays only the 4 SMTP round trips and the MIME building.  Recording each e-mail as sent in its own commit is deliberate:
a worker killed mid-batch re-sends nothing already accepted.

In-process, {n} e-mails timed (parts nest, so they do not add up):

{table}

SQL statements per e-mail, slowest first:

{report.statement_table(bd.statements, n, {'': 'task queue', 'deliver': 'deliver'})}

cProfile (CPU time), {n} e-mails, by cumulative time:

{p['table']}

By own time:

{p['own_table']}"""


# ------------------------------------------------------------------- report


def results_rows(res: Results) -> list[tuple[str, ...]]:
    s = res.summary["notify"]
    return [("(b) Notifications delivered per second by `hushpost worker` (1 process) vs plain "
             "smtplib (1 process) into the same SMTP sink", f"{s['measured']:.1f}/s",
             f"{s['baseline']:.1f}/s", f"{s['ratio']:.3f}", *TARGET.cells(s["ratio"]))]


def cross_check_text(res: Results) -> str:
    s = res.summary["notify"]
    return (f"For scale in (b): two `hushpost worker` processes together delivered "
            f"{s['two_workers']:.1f}/s (x{s['two_workers'] / s['measured']:.2f} one worker).  "
            f"Experiment: one worker whose PostgreSQL session has `synchronous_commit=off` "
            f"delivered {s['async_commit']:.1f}/s (ratio {s['async_ratio']:.3f}); see the "
            "profile of (b).")


def method_text(res: Results) -> str:
    cfg, m = res.config, res.machine
    return (
        f"* **(b) Delivering.** Each round, {cfg.notify_count} 'Secure Messaging "
        "Notification's are queued by the real `send_message` (through the ORM, untimed); then "
        "`hushpost worker --batch` runs as its own process (the `db_worker` loop `hushpost "
        "worker` runs, exiting once the queue is empty) and delivers them over its SMTP "
        "connection into an aiosmtpd sink on loopback, in its own process, that only counts.  "
        "The baseline is a separate process using plain `smtplib` that builds and sends as "
        "many equivalent e-mails (same subject, sender, headers, text and HTML parts, taken "
        f"from a notification rendered by Hushpost, {m.get('notification_bytes', '?')} bytes) "
        "over one connection to the same sink.  Rate = (e-mails - 1) / (last arrival - first "
        "arrival at the sink), so process start-up is excluded for both (the worker's start-up "
        "is measured separately on an empty queue).  Every notification is checked to be "
        f"marked sent.  {cfg.notify_rounds} rounds, order alternating; each round also times "
        "two worker processes at once, for scale only.")


def rounds_text(res: Results) -> str:
    st = res.summary.get("worker_startup", {})
    rows = []
    for r in res.notify_rounds:
        w, b = r["worker"], r["smtplib"]
        rows.append((r["round"], f"{w['rate']:.1f}", f"{b['rate']:.1f}", f"{r['ratio']:.3f}",
                     f"{w['rate_incl_startup']:.1f}/s ({w['wall_s']:.1f} s)",
                     f"{w['worker_cpu_ms_per_msg']:.2f} / {w['cpu_ms_per_msg']['postgres']:.2f} "
                     f"/ {w['cpu_ms_per_msg']['sink']:.2f}", f"{b['cpu_ms_per_msg']['sink']:.2f}",
                     f"{r['worker2']['rate']:.1f}", f"{r['worker_async']['rate']:.1f}"))
    return "\n".join([
        "### (b) Worker vs plain smtplib", "",
        report.table(["Round", "Worker e-mails/s", "smtplib e-mails/s", "Ratio",
                      "Worker incl. start-up", "CPU ms per e-mail, worker: own / PostgreSQL / sink",
                      "CPU ms per e-mail, smtplib: sink", "2 workers e-mails/s",
                      "1 worker, `synchronous_commit=off` (experiment)"], "rrrrrllrr", rows),
        "",
        f"`hushpost worker --batch` on an empty queue (start-up and exit) took "
        f"{st.get('wall_s', 0):.2f} s wall and {st.get('cpu_s', 0):.2f} s CPU; the worker's "
        "own CPU per e-mail above excludes it.", ""])


PART = report.Part("notify", results=results_rows, method=method_text, rounds=rounds_text,
                   cross_check=cross_check_text, target=TARGET)
