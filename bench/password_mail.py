"""(f) of ``make bench``: Password Notifications delivered by one and by two workers.

Called by ``bench/run.py`` after (b).  Each worker trial:

* starts ``hushpost worker`` (the polling loop, not ``--batch``; one or two
  processes) on an empty queue and waits until each has beaten once;
* sends ``password_count`` messages through the real ``send_message``, each to an
  address the organisation has never seen, in one transaction: each creates a
  recipient account and queues its Password Notification and then its Secure
  Messaging Notification, and all of them become visible to the workers at the
  COMMIT, as a burst;
* measures from that COMMIT until no notification is pending: the rate is
  (e-mails - 1) / (last arrival - first arrival) at the counting sink, as in
  (b); CPU per e-mail by process from ``/proc``; the machine's CPU use; and what
  the workers' database sessions wait for (``bench.workers.LockWaits``);
* stops the workers with SIGTERM and checks that every notification was sent.

The baseline is plain smtplib sending as many equivalent e-mails into the same
sink over one connection, a Password Notification (with a temporary password)
and a Secure Messaging Notification in turn, both rendered by Hushpost.  Rounds
of (smtplib, one worker, two workers), the order reversed every other round.

``bench/password_diagnosis.py`` then shows, in the profiles, what a second
worker's time goes to.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

from bench import loadgen, report
from bench.common import REPO, CpuSampler, log, machine_cpu
from bench.delivery import smtp_baseline_argv, write_sample
from bench.environment import clear_queue
from bench.workers import LockWaits, QueueWatch, Workers, schedstat

# The workers poll this often while idle (`hushpost worker --interval`): the second
# starts on the burst at most this long after the first.
POLL = 0.1
ONE_X_SMTPLIB = report.Target(">=", 0.50)  # one worker's rate / smtplib's
TWO_X_ONE = report.Target(">=", 1.60)  # two workers' rate / one worker's
NEW_DOMAIN = "first-contact.example"


# ------------------------------------------------------------------ seeding


def send_to_new_recipients(author, count: int, tag: str) -> None:
    """``count`` messages through the real send_message, each to a new address."""
    from hushpost.messaging.actions import Addressees, SendOptions, send_message

    for i in range(count):
        send_message(
            author=author, addressees=Addressees(to=[f"new-{tag}-{i}@{NEW_DOMAIN}"]),
            subject=f"Your results ({i})", body_html=loadgen.BODY_HTML, options=SendOptions(),
            send_token=secrets.token_urlsafe(24),
        )


def write_samples(author, pool: list, workdir: Path) -> list[Path]:
    """A Password Notification and a Secure Messaging Notification as the worker writes
    them (for the smtplib baseline), from one send that is then rolled back."""
    from django.db import transaction

    from hushpost.notifications import kinds
    from hushpost.notifications.emails import build_email
    from hushpost.notifications.models import Notification

    paths = []
    tag = f"sample-{secrets.token_hex(3)}"
    with transaction.atomic():
        send_to_new_recipients(author, 1, tag)
        for kind in (Notification.Kind.PASSWORD, Notification.Kind.MESSAGE):
            note = Notification.objects.select_related(
                "org", "user", "delivery__message__author", "delivery__recipient"
            ).get(kind=kind, user__email__startswith=f"new-{tag}-")
            # As the worker writes it: a Password Notification with its temporary password.
            email = build_email(note, kinds.of(note).prepare(note))
            path = workdir / f"{kind}-sample.json"
            write_sample(email, pool, path)
            paths.append(path)
        transaction.set_rollback(True)
    return paths


# ------------------------------------------------------------------- trials


def _measured(sink, cpu: dict[str, float], window: float, mach0: tuple[float, float],
              mach1: tuple[float, float]) -> dict:
    """What the sink received in a trial and the CPU it cost, by process and for the machine."""
    received = sink.received()
    use = report.cpu_use(cpu, received["count"], window, mach0, mach1)
    return {
        **received, "wall_s": window,
        "cpu_ms_per_msg": use.ms_per_op,
        "cpu_cores": use.cores,
        "machine": {"busy": use.busy, "cores_busy": use.cores_busy,
                    "other_cores": use.other_cores},
    }


def worker_trial(env: dict, sink, author, cfg, processes: int, tag: str, workdir: Path, *,
                 argv: list[str] | None = None) -> dict:
    """``processes`` workers deliver the burst of 2 x ``password_count`` notifications."""
    from django.db import connection, connections, transaction
    from django.db.models import Count

    from hushpost.notifications.models import Notification

    expected = 2 * cfg.password_count
    conninfo = env["HUSHPOST_DATABASE_URL"]
    workers = Workers(env, processes, workdir / "workers.log",
                      interval=None if argv else POLL, argv=argv).start()
    watch = QueueWatch(conninfo)
    try:
        with transaction.atomic():
            send_to_new_recipients(author, cfg.password_count, tag)
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                own = cur.fetchone()[0]
            sink.reset()
            locks = LockWaits(conninfo, ignore=(own, watch.pid)).start()
            sampler = CpuSampler(fixed={"worker": workers.pids, "sink": [sink._proc.pid],
                                        "bench": [os.getpid()],
                                        "probes": [watch.pid, locks.pid]}).start()
            mach0, started = machine_cpu(), time.monotonic()
            sched0 = {pid: schedstat(pid) for pid in [*workers.pids, sink._proc.pid]}
        connections.close_all()  # the COMMIT above released the burst
        if argv:
            workers.signal(signal.SIGUSR1)  # the probes count from here
        ended = watch.wait_empty(sink, expected, timeout=600)
        sched1 = {pid: schedstat(pid) for pid in sched0}
        cpu, mach1 = sampler.stop(), machine_cpu()
        db = locks.stop()
    finally:
        watch.close()
        codes = workers.stop()
    n = sink.snapshot()[0]
    statuses = dict(Notification.objects.filter(user__email__startswith=f"new-{tag}-")
                    .values("status").annotate(n=Count("id")).values_list("status", "n"))
    if any(codes) or n != expected or statuses != {"sent": expected}:
        raise RuntimeError(f"(f) {processes} worker(s): exit codes {codes}, sink got {n} of "
                           f"{expected}, notifications {statuses}: {workers.log_tail()}")
    window = ended - started
    cpu["postgres"] = max(0.0, cpu["postgres"] - cpu.pop("probes"))

    def spent(pids: list[int], i: int) -> float:
        return sum(sched1[p][i] - sched0[p][i] for p in pids)

    # Each worker's time per e-mail it sent: running, waiting for a CPU, or blocked
    # (on its sockets: PostgreSQL's answers, row locks, WAL flushes, the sink).
    each = 1000 * processes * window / n
    running, queued = 1000 * spent(workers.pids, 0) / n, 1000 * spent(workers.pids, 1) / n
    sink_pid = [sink._proc.pid]
    return {
        **_measured(sink, cpu, window, mach0, mach1),
        "db": db,
        "sched_ms_per_msg": {"each": each, "running": running, "queued": queued,
                             "blocked": max(0.0, each - running - queued),
                             "sink_running": 1000 * spent(sink_pid, 0) / n,
                             "sink_queued": 1000 * spent(sink_pid, 1) / n},
    }


def smtplib_trial(sink, count: int, samples: list[Path]) -> dict:
    sink.reset()
    started, mach0 = time.monotonic(), machine_cpu()
    proc = subprocess.Popen(smtp_baseline_argv(sink.port, count, samples), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = CpuSampler(fixed={"client": [proc.pid], "sink": [sink._proc.pid],
                                "bench": [os.getpid()]}).start()
    _, err = proc.communicate(timeout=300)
    sink.wait_for(count, 10)
    cpu, mach1 = sampler.stop(), machine_cpu()
    window = time.monotonic() - started
    n = sink.snapshot()[0]
    if proc.returncode != 0 or n != count:
        raise RuntimeError(f"(f) smtplib baseline exit {proc.returncode}, sink got {n} of "
                           f"{count}: {err[-800:]}")
    cpu.pop("postgres", None)
    return _measured(sink, cpu, window, mach0, mach1)


def bench_password_mail(cfg, res, env: dict, sink, seeds: dict, workdir: Path) -> None:
    from django.db import connections

    clear_queue()
    author = seeds["senders"][0]
    samples = write_samples(author, seeds["pool"], workdir)
    res.summary["password_meta"] = {
        "bytes": [json.loads(p.read_text())["bytes"] for p in samples]}
    connections.close_all()
    run = secrets.token_hex(3)
    for r in range(cfg.password_rounds):
        row: dict = {"round": r + 1}
        order = ("smtplib", "one", "two") if r % 2 == 0 else ("two", "one", "smtplib")
        for which in order:
            if which == "smtplib":
                row[which] = smtplib_trial(sink, 2 * cfg.password_count, samples)
            else:
                processes = 1 if which == "one" else 2
                row[which] = worker_trial(env, sink, author, cfg, processes,
                                          f"{run}-{r}-{which}", workdir)
            t = row[which]
            log(f"(f) round {r + 1} {which:7s}: {t['rate']:8.1f} e-mails/s ({t['count']} "
                f"e-mails, machine {t['machine']['cores_busy']:.2f} cores busy, "
                f"{t['machine']['other_cores']:.2f} of them others')")
        row["ratio"] = row["one"]["rate"] / row["smtplib"]["rate"]
        row["scale"] = row["two"]["rate"] / row["one"]["rate"]
        res.password_rounds.append(row)
    summarise(res)


def summarise(res) -> None:
    rounds = res.password_rounds

    def med(fn) -> float:
        return report.med(fn(r) for r in rounds)

    def cpu(which: str) -> dict:
        keys = rounds[0][which]["cpu_ms_per_msg"]
        return {k: med(lambda r, k=k: r[which]["cpu_ms_per_msg"].get(k, 0.0)) for k in keys}

    def cores(which: str) -> dict:
        keys = rounds[0][which]["cpu_cores"]
        return {k: med(lambda r, k=k: r[which]["cpu_cores"].get(k, 0.0)) for k in keys}

    res.summary["password"] = {
        "measured": med(lambda r: r["one"]["rate"]),
        "baseline": med(lambda r: r["smtplib"]["rate"]),
        "ratio": med(lambda r: r["ratio"]), "ratios": [r["ratio"] for r in rounds],
        "two": med(lambda r: r["two"]["rate"]),
        "scale": med(lambda r: r["scale"]), "scales": [r["scale"] for r in rounds],
        "cpu": {w: cpu(w) for w in ("one", "two", "smtplib")},
        "cores": {w: cores(w) for w in ("one", "two", "smtplib")},
        "machine": {w: {k: med(lambda r, w=w, k=k: r[w]["machine"][k])
                        for k in ("busy", "cores_busy", "other_cores")}
                    for w in ("one", "two", "smtplib")},
        "lock_waiting": {w: med(lambda r, w=w: r[w]["db"]["lock_waiting"]) for w in ("one", "two")},
        "sched": {w: {k: med(lambda r, w=w, k=k: r[w]["sched_ms_per_msg"][k])
                      for k in rounds[0][w]["sched_ms_per_msg"]} for w in ("one", "two")},
    }


# ------------------------------------------------------------------- report


def results_rows(res) -> list[tuple[str, ...]]:
    s = res.summary["password"]
    return [
        ("(f) Password Notifications: e-mails delivered per second by one `hushpost worker` "
         "(not `--batch`) when every recipient is new (each message: a Password Notification, "
         f"then its Secure Messaging Notification; {s['measured'] / 2:.1f} Password "
         "Notifications/s) vs plain smtplib sending the same mix into the same sink",
         f"{s['measured']:.1f}/s", f"{s['baseline']:.1f}/s", f"{s['ratio']:.3f}",
         *ONE_X_SMTPLIB.cells(s["ratio"])),
        ("(f) The same with two `hushpost worker` processes at once vs one",
         f"{s['two']:.1f}/s", f"{s['measured']:.1f}/s", f"{s['scale']:.3f}",
         *TWO_X_ONE.cells(s["scale"])),
    ]


def cross_check_text(res) -> str:
    s = res.summary["password"]
    m, c = s["machine"], s["cpu"]
    own1 = c["one"]["worker"] + c["one"]["postgres"] + c["one"]["sink"]
    own2 = c["two"]["worker"] + c["two"]["postgres"] + c["two"]["sink"]
    return (f"CPU in (f), per e-mail: one worker {c['one']['worker']:.2f} ms + PostgreSQL "
            f"{c['one']['postgres']:.2f} ms + sink {c['one']['sink']:.2f} ms = {own1:.2f} ms; two "
            f"workers {c['two']['worker']:.2f} + {c['two']['postgres']:.2f} + "
            f"{c['two']['sink']:.2f} = {own2:.2f} ms; smtplib {c['smtplib']['client']:.2f} ms + "
            f"sink {c['smtplib']['sink']:.2f} ms.  Machine ({os.cpu_count()} cores) during the "
            f"trials: {m['one']['cores_busy']:.2f} cores busy with one worker "
            f"({m['one']['other_cores']:.2f} of them other tenants'), "
            f"{m['two']['cores_busy']:.2f} with two ({m['two']['other_cores']:.2f} others'), "
            f"{m['smtplib']['cores_busy']:.2f} with smtplib ({m['smtplib']['other_cores']:.2f} "
            f"others').{quiet_text(res)}")


QUIET = 0.5  # cores of other tenants' work, at most, in both worker trials of a round


def quiet_text(res) -> str:
    """Two workers vs one in the rounds other tenants left the machine to the bench, and in
    the others: what the machine's other load does to the ratio."""
    split: dict[bool, list[float]] = {True: [], False: []}
    for r in res.password_rounds:
        quiet = max(r["one"]["machine"]["other_cores"], r["two"]["machine"]["other_cores"]) < QUIET
        split[quiet].append(r["scale"])
    if not split[True] or not split[False]:
        return ""
    return (f"  Two workers / one in the {len(split[True])} round(s) where other tenants used "
            f"less than {QUIET:g} core during both worker trials: "
            f"{', '.join(f'x{x:.2f}' for x in split[True])}; in the other "
            f"{len(split[False])}: {', '.join(f'x{x:.2f}' for x in split[False])}.")


def method_text(res) -> str:
    cfg = res.config
    sizes = res.summary.get("password_meta", {}).get("bytes", ["?", "?"])
    return (
        f"* **(f) Password Notifications.** Each worker trial starts `hushpost worker "
        f"--interval {POLL:g}` (the polling loop as deployed, not `--batch`; one process, or "
        "two at once) on an empty queue and waits until each has written its first heartbeat.  "
        f"Then {cfg.password_count} messages are sent by the real `send_message` (ORM, in the "
        f"bench process), each to an address new to the organisation (`@{NEW_DOMAIN}`), all in "
        "one transaction: each creates the recipient's account and queues its Password "
        "Notification and then its Secure Messaging Notification, so "
        f"{2 * cfg.password_count} e-mails become due at that COMMIT, at once.  From the "
        "COMMIT until no notification is pending (polled every 50 ms on a connection of its "
        "own), the bench samples CPU by process and the machine's CPU from `/proc`, and "
        "`pg_stat_activity` every 25 ms (`bench/workers.py`, `LockWaits`): what each of the "
        "workers' database sessions is doing, and for a session waiting on a lock the "
        "statement waiting and what the session holding the lock (`pg_blocking_pids`) is "
        "doing.  The workers are then stopped with SIGTERM; every notification must be "
        "`sent` (a Password Notification that was not wanted would be `cancelled`).  "
        "Rate = (e-mails - 1) / (last - first arrival at the sink), as in (b).  The baseline "
        "is `bench/smtp_baseline.py` sending as many e-mails over one connection into the "
        "same sink, a Password Notification and a Secure Messaging Notification in turn, "
        f"both rendered by Hushpost ({sizes[0]} and {sizes[1]} bytes; the password e-mail "
        f"with a real temporary password).  {cfg.password_rounds} rounds of (smtplib, one "
        "worker, two workers), the order reversed every other round; the ratios are medians "
        "of the per-round ratios.  Then, for the diagnosis in the profiles, the same trial "
        "runs once with one and once with two workers under stopwatches "
        "(`bench/worker_probe.py`: the `hushpost worker` command in a process that also times "
        "the steps of `notifications.delivery`, the audit linker it runs between e-mails "
        "(`audit.linker.link`: its calls, the events it chains, its chain transactions), and "
        "each SQL statement and COMMIT of the worker's connection), "
        "and once with two under cProfile.")


def rounds_text(res) -> str:
    def m(x: dict) -> str:
        return f"{x['machine']['cores_busy']:.2f} ({x['machine']['other_cores']:.2f})"

    def cpu(x: dict) -> str:
        c = x["cpu_ms_per_msg"]
        return f"{c['worker']:.2f} / {c['postgres']:.2f} / {c['sink']:.2f}"

    rows = [(r["round"], f"{r['smtplib']['rate']:.1f}", f"{r['one']['rate']:.1f}",
             f"{r['ratio']:.3f}", f"{r['two']['rate']:.1f}", f"{r['scale']:.3f}", cpu(r["one"]),
             cpu(r["two"]), f"{m(r['smtplib'])} / {m(r['one'])} / {m(r['two'])}",
             f"{r['one']['db']['lock_waiting']:.2f} / {r['two']['db']['lock_waiting']:.2f}")
            for r in res.password_rounds]
    return "\n".join([
        "### (f) Password Notifications: one and two workers vs plain smtplib", "",
        report.table(["Round", "smtplib e-mails/s", "1 worker e-mails/s", "Ratio",
                      "2 workers e-mails/s", "2 / 1",
                      "CPU ms per e-mail, 1 worker: worker / PostgreSQL / sink",
                      "CPU ms per e-mail, 2 workers: workers / PostgreSQL / sink",
                      "Machine cores busy (others'), smtplib / 1 / 2 workers",
                      "Sessions waiting on a lock, 1 / 2 workers"], "rrrrrrllll", rows), ""])


def note(res) -> str | None:
    """The Notes line for (f)'s missed targets: by how much; the profile says why."""
    s = res.summary["password"]
    missed = []
    if not ONE_X_SMTPLIB.met(s["ratio"]):
        missed.append(f"one worker delivered {s['ratio']:.3f} x smtplib's rate vs "
                      f"{ONE_X_SMTPLIB} ({s['ratio'] / ONE_X_SMTPLIB.value:.0%} of the target)")
    if not TWO_X_ONE.met(s["scale"]):
        missed.append(f"two workers delivered x{s['scale']:.2f} one worker's rate vs "
                      f"{TWO_X_ONE} (rounds: {', '.join(f'{x:.2f}' for x in s['scales'])})")
    if not missed:
        return None
    return ("(f) Password Notifications: target missed: " + "; ".join(missed)
            + ".  See the profile of (f) for where the time goes and what the workers wait for.")


def scale_verdict(res) -> list[str]:
    s = res.summary["password"]
    return [TWO_X_ONE.log_line("password_scale", s["scale"], s["scales"], "two workers / one")]


PART = report.Part("password", results=results_rows, method=method_text, rounds=rounds_text,
                   cross_check=cross_check_text, note=note, target=ONE_X_SMTPLIB,
                   verdicts=scale_verdict)
