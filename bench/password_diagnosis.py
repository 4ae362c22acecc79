"""Why (f) scales as it does: one and two workers under stopwatches, cProfile and the scheduler.

After the measurements (unless ``--no-profile``), :func:`diagnose` runs (f)'s
worker trial three more times with ``bench/worker_probe.py`` in place of
``hushpost worker``: one and two workers under stopwatches, then two under
cProfile.  :func:`describe` puts together, for the report, what each worker's
time per e-mail is made of with one and with two workers (the kernel's
scheduler statistics of the measured trials: running, waiting for a CPU,
blocked), what their database sessions waited for (``pg_stat_activity``), which
step of ``notifications.delivery`` grew (the stopwatches), what recording and
chaining the audit trail cost per e-mail (``audit.actions.record``'s INSERT, the
worker's ``audit.linker``), and where the CPU goes.
"""

from __future__ import annotations

import json
import os
import pstats
import secrets
import sys
from pathlib import Path

from bench import report
from bench.common import log
from bench.password_mail import ONE_X_SMTPLIB, POLL, TWO_X_ONE, worker_trial


def probe_argv(workdir: Path, label: str, cprofile: bool) -> list[str]:
    """The instrumented worker's command line; ``{i}`` names each process's files."""
    out = workdir / f"probe-{label}-{{i}}.json"
    argv = [sys.executable, "-m", "bench.worker_probe", "--out", str(out)]
    if cprofile:
        argv += ["--cprofile", str(workdir / f"probe-{label}-{{i}}.prof")]
    return [*argv, "--", "--interval", f"{POLL:g}"]


def diagnose(cfg, env: dict, sink, seeds: dict, workdir: Path) -> dict:
    """One and two workers under stopwatches, then two under cProfile."""
    author = seeds["senders"][0]
    run = secrets.token_hex(3)
    out: dict = {}
    for label, processes, cprofile in (("one", 1, False), ("two", 2, False),
                                       ("two-cprofile", 2, True)):
        argv = probe_argv(workdir, label, cprofile)
        trial = worker_trial(env, sink, author, cfg, processes, f"{run}-probe-{label}", workdir,
                             argv=argv)
        files = [Path(str(workdir / f"probe-{label}-{i}.json")) for i in range(processes)]
        found = [json.loads(f.read_text()) for f in files]
        out[label] = {"trial": trial, "processes": found}
        if cprofile:
            stats = pstats.Stats(str(workdir / f"probe-{label}-0.prof"))
            for i in range(1, processes):
                stats.add(str(workdir / f"probe-{label}-{i}.prof"))
            merged = workdir / f"probe-{label}.prof"
            stats.dump_stats(str(merged))
            out[label].update(prof=str(merged), emails=trial["count"],
                              own_table=report.profile_table(str(merged), 16, "own"))
        log(f"(f) probe {label}: {trial['rate']:.1f} e-mails/s")
    return out


def per_email(processes: list[dict]) -> dict:
    """Stopwatch totals of the probe's processes, per e-mail sent (ms), and per process."""
    emails = sum(p["calls"].get("send one", 0) for p in processes) or 1
    labels = {k for p in processes for k in (*p["secs"], *p["calls"])}
    ms = {k: 1000 * sum(p["secs"].get(k, 0.0) for p in processes) / emails for k in labels}
    calls = {k: sum(p["calls"].get(k, 0) for p in processes) / emails for k in labels}
    return {
        "emails": emails,
        "ms": ms, "calls": calls,
        # Wall time of each process from its first claim to its last e-mail, per e-mail it sent.
        "busy_ms": [1000 * p["busy_s"] / max(p["calls"].get("send one", 0), 1) for p in processes],
        "sent_each": [p["calls"].get("send one", 0) for p in processes],
    }



# ------------------------------------------------------------- diagnosis text

WORKER_AREAS = (
    ("Django ORM and database driver (building and compiling queries, psycopg, model "
     "instances, transactions)", ("django/db/", "psycopg/", "django/dispatch/")),
    ("Templates (each e-mail's text and HTML parts)", ("django/template/", "django/templatetags/",
                                                       "django/utils/html", "/templates/")),
    ("MIME building (Python's `email` package, `django.core.mail`)", ("email/",
                                                                       "django/core/mail/")),
    ("SMTP client and socket", ("smtplib", "socket", "ssl.py", "selectors")),
    ("Keyed hashes (audit chain links and head seals, temporary password)",
     ("hmac", "hashlib", "audit/chain", "accounts/passwords", "hushpost/crypto/macs", "hushpost/crypto/master",
      "django/utils/crypto")),
    ("Task queue (django-tasks, django-tasks-db)", ("django_tasks",)),
    ("Logging", ("logging/",)),
    ("Hushpost's own code (delivery, audit, accounts)", ("hushpost/",)),
)

def _step_rows(one: dict, two: dict) -> list[tuple[str, float, float]]:
    """(step, ms per e-mail with one worker, with two) from the stopwatches."""

    def ms(p: dict, label: str) -> float:
        return p["ms"].get(label, 0.0)

    def rows(p: dict) -> list[float]:
        lease = ms(p, "autocommit write @ send one")
        chains = ms(p, "audit chain transaction")
        chains_sql = ms(p, "SQL statement @ audit chain transaction")
        chains_commit = ms(p, "COMMIT @ audit chain transaction")
        return [
            sum(p["busy_ms"]) / len(p["busy_ms"]),
            ms(p, "send one"),
            lease,
            ms(p, "password still wanted") - ms(p, "temporary password"),
            ms(p, "temporary password"),
            ms(p, "build_email"),
            ms(p, "SQL statement @ send one") - lease,
            ms(p, "SMTP"),
            ms(p, "record sent"),
            ms(p, "SQL statement @ record sent"),
            ms(p, "activate password"),
            ms(p, "audit record"),
            ms(p, "SQL statement @ audit record"),
            ms(p, "audit record") - ms(p, "SQL statement @ audit record"),
            ms(p, "COMMIT @ record sent"),
            ms(p, "audit linker"),
            ms(p, "SQL statement @ audit linker"),
            chains,
            chains_sql,
            chains_commit,
            chains - chains_sql - chains_commit,
            ms(p, "claim"),
        ]

    labels = [
        "Wall time per e-mail in each worker (first to last e-mail)",
        "`delivery.send` (one e-mail, start to end)",
        "- lease renewal, after a pause only: `UPDATE notifications_notification SET "
        "lease_until = ...` (autocommit, so a durable commit of its own)",
        "- still wanted? (the Password Notification's `prepare`, `accounts/emails.py`): "
        "one written `SELECT` of the account with the newer-password `NOT EXISTS`",
        "- `temporary_password` (HMAC-SHA256 derivation + keyed hash)",
        "- `build_email` (2 templates, MIME)",
        "- its other SQL: the check that its claim still has time on the lease (`SELECT ... "
        "LIMIT 1`), and any the e-mail's templates run",
        "- SMTP (MAIL, RCPT, DATA into the sink)",
        "- `_sent` (its transaction, COMMIT included)",
        "- - `UPDATE notifications_notification SET status = 'sent' ...`",
        "- - the password set (the Password Notification's `accepted`: one conditional "
        "`UPDATE accounts_user`; Password Notifications only)",
        "- - `audit.actions.record` (the e-mail's audit event, written unchained: no lock, "
        "no hash)",
        "- - - its one statement, `INSERT INTO audit_auditevent ... RETURNING id`",
        "- - - its Python (the event's fields)",
        "- - COMMIT (WAL flush)",
        "`audit.linker.link`, between e-mails (`BackgroundWorker.step`: every 0.5 s while "
        "the worker is busy, and on each idle round): its share per e-mail",
        "- finding the chains with events to chain (`SELECT DISTINCT org_id FROM "
        "audit_auditevent WHERE hash IS NULL`, once per call)",
        "- each chain's transaction (`_link_chain`), in which the head row stays locked from "
        "its `FOR UPDATE SKIP LOCKED` to the COMMIT",
        "- - its SQL: the head's `SELECT ... FOR UPDATE SKIP LOCKED`, the events waiting, one "
        "`UPDATE audit_auditevent ... FROM (VALUES ...)` for all of them, the head's `UPDATE`",
        "- - its COMMIT (WAL flush)",
        "- - its Python (keyed links, head seal, the events as model instances)",
        "`_claim` (per e-mail; 50 per batch)",
    ]
    return [(label, a, b) for label, a, b in zip(labels, rows(one), rows(two), strict=True)]


def merge_db(trials: list[dict]) -> dict:
    """LockWaits summaries of several trials, averaged."""
    n = max(len(trials), 1)
    doing: dict[str, float] = {}
    waits: dict[tuple, float] = {}
    statements: dict[str, str] = {}
    for db in trials:
        for label, v in db["doing"].items():
            doing[label] = doing.get(label, 0.0) + v / n
        for *key, v in db["waits"]:
            waits[tuple(key)] = waits.get(tuple(key), 0.0) + v / n
        statements.update(db["statements"])
    return {"doing": sorted(doing.items(), key=lambda kv: -kv[1]),
            "waits": sorted(waits.items(), key=lambda kv: -kv[1]),
            "lock_waiting": sum(db["lock_waiting"] for db in trials) / n,
            "statements": statements}


def _waiting_ms(db: dict, processes: int, each: float) -> dict[str, float]:
    """Of each worker's time per e-mail (``each`` ms), how much its database session spent
    waiting for a row lock and for WAL flushes, from the pg_stat_activity samples."""

    def share(prefixes: tuple[str, ...]) -> float:
        return sum(v for label, v in db["doing"] if label.startswith(prefixes)) / processes

    return {"lock": share(("waiting for a lock",)) * each,
            "wal": share(("running a statement, waiting on IO:WAL",
                          "running a statement, waiting on LWLock:WAL")) * each}


def _verdict(s: dict, db1: dict, db2: dict, ncpu: int) -> str:
    """What serialises two workers: the scheduler's statistics and pg_stat_activity of the
    measured trials (alternated with one worker, so under the same outside load)."""
    one, two = s["sched"]["one"], s["sched"]["two"]
    c2, m2 = s["cpu"]["two"], s["machine"]["two"]
    grew = {k: two[k] - one[k] for k in ("each", "running", "queued", "blocked")}
    w1, w2 = _waiting_ms(db1, 1, one["each"]), _waiting_ms(db2, 2, two["each"])
    lock, wal = w2["lock"] - w1["lock"], w2["wal"] - w1["wal"]
    total_cpu = c2["worker"] + c2["postgres"] + c2["sink"]
    free = max(ncpu - m2["other_cores"], 0.05)
    split = (f"With a second worker each worker's e-mail took {one['each']:.2f} -> "
             f"{two['each']:.2f} ms ({grew['each']:+.2f} ms; kernel scheduler statistics of the "
             f"worker processes): waiting for a CPU while runnable {grew['queued']:+.2f} ms, "
             f"running {grew['running']:+.2f} ms, blocked on its sockets (PostgreSQL's answers, "
             f"row locks, WAL flushes, the sink) {grew['blocked']:+.2f} ms.  "
             f"Its database session spent {w1['lock']:.2f} -> {w2['lock']:.2f} ms per e-mail "
             f"waiting for a row lock and {w1['wal']:.2f} -> {w2['wal']:.2f} ms waiting for WAL "
             "flushes (pg_stat_activity).")
    largest = max(("queued", "running", "blocked"), key=lambda k: grew[k])
    if TWO_X_ONE.met(s["scale"]):
        return (f"**Two workers scale: x{s['scale']:.2f}.**  {split}  While the two ran, the "
                f"machine's {ncpu} cores were {m2['busy']:.0%} busy ({m2['other_cores']:.2f} "
                f"cores of it other tenants' work).  What would serialise more workers is "
                f"below: the CPU first (an e-mail costs {total_cpu:.2f} ms of CPU in all, so "
                f"{ncpu} cores carry about {1000 * ncpu / total_cpu:.0f} e-mails/s).")
    if largest in ("queued", "running"):
        return (f"**What serialises two workers: the CPU.**  {split}  While the two ran, the "
                f"machine's {ncpu} cores were {m2['busy']:.0%} busy, {m2['other_cores']:.2f} "
                f"cores of it other tenants' work; an e-mail costs {total_cpu:.2f} ms of CPU in "
                f"all ({c2['worker']:.2f} ms in the worker, {c2['postgres']:.2f} ms in "
                f"PostgreSQL, {c2['sink']:.2f} ms in the sink), so the {free:.2f} cores left "
                f"carry about {1000 * free / total_cpu:.0f} e-mails/s, and two workers "
                f"delivered {s['two']:.0f}/s.  A second worker only adds a runnable process "
                "competing for the same cores; waiting for row locks (below) costs it "
                f"{w2['lock']:.2f} ms per e-mail.")
    if lock >= max(wal, 0.5 * grew["blocked"]):
        where = ""
        if db2["waits"]:
            (_, statement, holder, doing), _ = db2["waits"][0]
            where = (f"  Most often the waiting statement was `{statement}`, behind a {holder} "
                     f"session that was {doing} (below).")
        return f"**What serialises two workers: row locks.**  {split}{where}"
    if wal >= 0.5 * grew["blocked"]:
        return ("**What serialises two workers: WAL flushes** (each e-mail's `_sent` COMMIT, "
                "the lease renewal after a pause, and the linker's COMMIT once per batch).  "
                f"{split}")
    return f"**What grows most with a second worker: time blocked on its sockets.**  {split}"


def _audit_text(one: dict, two: dict, rate2: float) -> str:
    """What the audit trail costs the workers: the event's INSERT in each e-mail's
    transaction, and the linker's batches, the only place the chain's head is locked."""

    def per_call(p: dict, label: str, calls: str) -> float:
        return p["calls"].get(label, 0.0) / (p["calls"].get(calls, 0.0) or 1.0)

    c1, c2 = one["calls"].get("audit linker", 0.0), two["calls"].get("audit linker", 0.0)
    useful1 = per_call(one, "audit linker calls that linked", "audit linker")
    useful2 = per_call(two, "audit linker calls that linked", "audit linker")
    batch1 = per_call(one, "audit events linked", "audit linker calls that linked")
    batch2 = per_call(two, "audit events linked", "audit linker calls that linked")
    sql = per_call(two, "SQL statement @ audit chain transaction", "audit chain transaction")
    held1 = one["ms"].get("audit chain transaction", 0.0)
    held2 = two["ms"].get("audit chain transaction", 0.0)
    return f"""**The audit trail.**  Each e-mail's `_sent` transaction writes its audit event with one
`INSERT` ({one['ms'].get('audit record', 0.0):.2f} ms per e-mail with one worker,
{two['ms'].get('audit record', 0.0):.2f} ms with two) and takes no lock for it, so no worker waits
for another's COMMIT to record an e-mail.  The workers chain the committed events between
e-mails: `linker.link` ran {c1:.2f} times per e-mail with one worker and {c2:.2f} with two (both
workers' calls together), and {useful1:.0%} and {useful2:.0%} of those calls found events to
chain; a call that chained any chained {batch1:.1f} events on average with one worker and
{batch2:.1f} with two, {one['calls'].get('audit events linked', 0.0):.2f} and
{two['calls'].get('audit events linked', 0.0):.2f} events per e-mail delivered (each e-mail's own
event and those the burst's sends recorded).  The chain's head row is locked by the linker alone,
once per batch, in its chain transactions ({sql:.1f} SQL statements on average and a COMMIT
each, with two workers), which took {held1:.2f} ms per e-mail with one worker and {held2:.2f} ms
with two: at the two workers' {rate2:.0f}/s the row was locked at most
{rate2 * held2 / 1000:.0%} of the time.  A
worker whose linker finds the head locked by the other's skips that chain (`FOR UPDATE SKIP
LOCKED`) instead of waiting; its next round chains what is left."""


def describe(d: dict, res) -> str:
    s = res.summary["password"]
    ncpu = os.cpu_count() or 1
    one, two = per_email(d["one"]["processes"]), per_email(d["two"]["processes"])
    steps = _step_rows(one, two)
    db1 = merge_db([r["one"]["db"] for r in res.password_rounds])
    db2 = merge_db([r["two"]["db"] for r in res.password_rounds])
    c1, c2, m = s["cpu"]["one"], s["cpu"]["two"], s["machine"]
    sc1, sc2 = s["sched"]["one"], s["sched"]["two"]
    ok = TWO_X_ONE.met(s["scale"])
    head = (f"### (f) Password Notifications: two workers x{s['scale']:.2f} one "
            f"({'met' if ok else 'missed'}: {TWO_X_ONE}); one worker "
            f"{s['ratio']:.3f} x smtplib ({'met' if ONE_X_SMTPLIB.met(s['ratio']) else 'missed'}: "
            f"{ONE_X_SMTPLIB})")
    sched_rows = [
        ("Wall time (trial length x workers / e-mails)", "each"),
        ("- running on a CPU", "running"),
        ("- runnable, waiting for a CPU", "queued"),
        ("- blocked on its sockets: PostgreSQL (statements, row locks, WAL flushes), the sink",
         "blocked"),
        ("The sink process: running", "sink_running"),
        ("The sink process: runnable, waiting for a CPU", "sink_queued"),
    ]
    sched = report.table(["Per e-mail, each worker process (`/proc/<pid>/schedstat`), ms",
                          "1 worker", "2 workers", "Change"], "lrrr",
                         [(label, f"{sc1[k]:.2f}", f"{sc2[k]:.2f}", f"{sc2[k] - sc1[k]:+.2f}")
                          for label, k in sched_rows])
    table = report.table(["Step (stopwatches in the worker process)", "1 worker, ms per e-mail",
                          "2 workers, ms per e-mail (each)", "Change"], "lrrr",
                         [(label, f"{a:.2f}", f"{b:.2f}", f"{b - a:+.2f}")
                          for label, a, b in steps])
    d1, d2 = dict(db1["doing"]), dict(db2["doing"])
    labels = sorted(set(d1) | set(d2), key=lambda k: -d2.get(k, 0.0))
    doing = report.table(["The workers' database sessions (average number in each state, over "
                          "the 25 ms samples)", "1 worker", "2 workers"], "lrr",
                         [(k, f"{d1.get(k, 0.0):.3f}", f"{d2.get(k, 0.0):.3f}") for k in labels])
    waits = report.table(["Waiting statement", "The session holding the lock is ...",
                          "Sessions waiting (average)"], "llr",
                         [(f"`{w}`", h, f"{v:.3f}") for (_, w, _, h), v in db2["waits"][:6]]) \
        if db2["waits"] else "No session of the two workers was seen waiting for a lock."
    waiting_sql = db2["statements"].get(db2["waits"][0][0][1], "") if db2["waits"] else ""
    areas = report.own_by_area(d["two-cprofile"]["prof"], WORKER_AREAS)
    total = areas[-1][1] or 1.0
    area_rows = report.table(["Where the workers' CPU goes (cProfile, own time, both processes)",
                              "share"], "lr",
                             [(label, f"{v / total:.0%}") for label, v in areas[:-1]])
    probe1, probe2 = d["one"]["trial"], d["two"]["trial"]
    sql1 = one["ms"].get("SQL statement", 0.0) + one["ms"].get("COMMIT", 0.0)
    base_ms = 1000 / s["baseline"]
    smtplib_cpu = s["cpu"]["smtplib"]["client"] + s["cpu"]["smtplib"]["sink"]
    return f"""{head}

{_verdict(s, db1, db2, ncpu)}

Measured (rounds above, medians): one worker {s['measured']:.1f} e-mails/s, two workers
{s['two']:.1f}/s, smtplib {s['baseline']:.1f}/s.  CPU per e-mail: one worker {c1['worker']:.2f} ms
+ PostgreSQL {c1['postgres']:.2f} ms + sink {c1['sink']:.2f} ms; two workers {c2['worker']:.2f} +
{c2['postgres']:.2f} + {c2['sink']:.2f} ms.  Machine: {m['one']['cores_busy']:.2f} of {ncpu} cores
busy with one worker, {m['two']['cores_busy']:.2f} with two ({m['one']['other_cores']:.2f} and
{m['two']['other_cores']:.2f} cores of it other tenants' work); the worker processes used
{s['cores']['one']['worker']:.2f} and {s['cores']['two']['worker']:.2f} cores, PostgreSQL
{s['cores']['one']['postgres']:.2f} and {s['cores']['two']['postgres']:.2f}, the sink
{s['cores']['one']['sink']:.2f} and {s['cores']['two']['sink']:.2f}.

{sched}

**Lock waits** (`pg_stat_activity` every 25 ms during the measured trials; for a waiting session,
`pg_blocking_pids` and what that session was doing): on average {db2['lock_waiting']:.3f} of the
two workers' sessions were waiting for a lock ({db1['lock_waiting']:.3f} with one worker), so each
worker spent about {db2['lock_waiting'] / 2:.1%} of its time blocked on a lock.

{doing}

{waits}

{f"The statement that waited most, in full: `{waiting_sql}`." if waiting_sql else ""}

**Stopwatches** (`bench/worker_probe.py`; the same trial again, once with one worker:
{probe1['rate']:.1f} e-mails/s, {probe1['machine']['other_cores']:.2f} cores busy with other
tenants' work; then with two: {probe2['rate']:.1f}/s, {probe2['machine']['other_cores']:.2f} cores
of others'; e-mails per worker {two['sent_each']}).  These two trials follow each other rather
than alternate, so on a shared machine their difference also carries the change in others' load:
read the columns for where an e-mail's time goes, and the measured trials above for the change.

{table}

{_audit_text(one, two, probe2['rate'])}

**One worker vs smtplib.**  smtplib took {base_ms:.2f} ms per e-mail and {smtplib_cpu:.2f} ms of
CPU (client and sink).  One worker took {sc1['each']:.2f} ms per e-mail: {sc1['running']:.2f} ms
running, {sc1['queued']:.2f} ms waiting for a CPU, {sc1['blocked']:.2f} ms blocked; its own CPU
alone is {sc1['running'] / base_ms:.1f} x smtplib's whole e-mail, where the target allows
{1 / ONE_X_SMTPLIB.value:.0f} x.  Per e-mail (stopwatches) it runs
{one['calls'].get('SQL statement', 0):.1f} SQL statements, {one['calls'].get('COMMIT', 0):.1f}
COMMITs and {one['calls'].get('autocommit write', 0):.1f} write in autocommit (the lease renewal,
a WAL flush of its own): {sql1:.2f} ms waiting on PostgreSQL, against
{one['ms'].get('SMTP', 0):.2f} ms for the SMTP conversation.

{area_rows}

cProfile of the two workers (CPU time, both processes; {d['two-cprofile']['emails']} e-mails),
by own time:

{d['two-cprofile']['own_table']}"""
