"""(e) of ``make bench``: messages accepted per second by the SMTP gateway.

Called by ``bench/run.py`` after (d):

* ``hushpost smtpd --bind 127.0.0.1:<port>`` runs as its own process with the
  production environment of the web server (same database, keys, settings),
  after the bench organisation is told to accept relays from 127.0.0.1/32;
* the baseline is the bench's counting aiosmtpd sink (``bench/sink.py``), a
  second instance on its own port: also one process serving SMTP with aiosmtpd
  on an asyncio loop, so the comparison is one SMTP server process against
  another, differing only in what is done with each message;
* one load process runs ``gateway_clients`` threads, each keeping one smtplib
  connection and relaying small e-mails (``[secure]`` subject, ~1 KB text body,
  a distinct Message-ID, one To recipient from the seeded pool of recipients)
  as the organisation's mail server would; a message counts when DATA is
  answered 250 (and not "already received") inside the measured window.

A second ``hushpost smtpd``, with ``HUSHPOST_SMTPD_SPOOL=true`` (its cap on
e-mails waiting lifted: no worker drains it during a trial) and otherwise the
same environment, takes the same load: it answers DATA once the e-mail is
sealed and committed in one INSERT, and the worker stores it later.  That
deferred work is counted, not left out: after each spool trial a process of
its own (``bench/spool_drain.py``) runs the worker's ``spool.store_due`` until
nothing is due, its CPU (with its reader process) and PostgreSQL's sampled, and
every e-mail the spool accepted must then be stored exactly once.

Rounds rotate sink, gateway and spool; medians are reported.  The stored
messages queue notifications, which are cleared after each trial (the spool's
stored rows too) so that nothing later measures against a longer queue.  All
traffic is on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import email.policy
import json
import multiprocessing as mp
import os
import secrets
import smtplib
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from bench import report
from bench.common import (
    BIN,
    REPO,
    CpuSampler,
    Server,
    free_port,
    log,
    machine_cpu,
    merge_clients,
)
from bench.environment import clear_queue
from bench.loadgen import HOST
from bench.profiling import Breakdown, timed_then_profiled
from bench.sink import Sink

TARGET = report.Target(">=", 0.30)  # messages accepted per second / the sink's
# The spool's: messages accepted per second (250 once committed) / the sink's, one process each.
SPOOL_TARGET = report.Target(">=", 0.10)
MODES = ("sink", "gateway", "spool")
ID_MARK = b"BENCHMSGIDMARK"
EHLO_NAME = "relay.bench-health.example"
LETTER = (
    "Dear {name},\n\n"
    "Your test results from the appointment on 3 March are now available.  All values are "
    "within the normal range and there is nothing you need to do for now.\n\n"
    "  Full blood count ....... normal\n"
    "  Thyroid function ....... normal\n"
    "  Liver function ......... normal\n"
    "  Vitamin D .............. slightly low (see the leaflet we gave you)\n\n"
    "We suggest a vitamin D supplement over the winter months, as discussed.  We will "
    "check the level again at your next routine visit in about six months; there is no "
    "need to book a separate appointment for it.  Your repeat prescription has been renewed "
    "for another three months and can be collected from the pharmacy from Thursday.\n\n"
    "If you have any questions about these results, reply to this message or call the "
    "practice on weekdays between 8am and 6pm.  Please do not reply to the notification "
    "e-mail itself.\n\n"
    "Kind regards,\n"
    "{sender}\n"
    "Bench Health, Practice Team\n"
)


# ------------------------------------------------------------------ e-mails


def template(sender: str, sender_name: str, to: str) -> bytes:
    """One relayed e-mail as a mail client writes it; ID_MARK stands for its Message-ID."""
    msg = EmailMessage()
    msg["From"] = f"{sender_name} <{sender}>"
    msg["To"] = to
    msg["Subject"] = "[secure] Your test results from 3 March"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<{ID_MARK.decode()}@bench-health.example>"
    msg.set_content(LETTER.format(name=to.split("@", 1)[0].capitalize(), sender=sender_name))
    return msg.as_bytes(policy=email.policy.SMTP)


def with_id(raw: bytes, unique: str) -> bytes:
    return raw.replace(ID_MARK, unique.encode(), 1)


# ------------------------------------------------------------- load client


def load_client(port: int, threads: int, senders: list[tuple[str, str]], recipients: list[str],
                warmup: float, duration: float, tag: str, results) -> None:
    """One load process (spawned): ``threads`` relays, one SMTP connection each.

    Puts ("start", t0) once every connection is open and greeted, then
    ("done", [per-thread results]).
    """
    barrier = threading.Barrier(threads + 1)
    start = [0.0]
    outs: list[dict] = [{} for _ in range(threads)]

    def relay(i: int) -> None:
        out = outs[i]
        out.update(done=0, accepted=0, errors=0, error_sample="", latencies=[], fatal=False)
        sender, name = senders[i % len(senders)]
        raws = {to: template(sender, name, to) for to in recipients}
        smtp = None
        try:
            smtp = smtplib.SMTP(HOST, port, timeout=60)
            smtp.ehlo(EHLO_NAME)
        except (OSError, smtplib.SMTPException) as exc:
            out.update(fatal=True, error_sample=f"connect: {exc!r}")
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(120)
        if smtp is None or out["fatal"]:
            return
        begin = start[0] + warmup
        end = begin + duration
        k = 0
        try:
            while time.monotonic() < end:
                to = recipients[(i * 7 + k) % len(recipients)]
                raw = with_id(raws[to], f"{tag}.{i}.{k}")
                k += 1
                t0 = time.monotonic()
                code, text = smtp.mail(sender)
                if code == 250:
                    code, text = smtp.rcpt(to)
                if code == 250:
                    try:
                        code, text = smtp.data(raw)
                    except smtplib.SMTPDataError as exc:
                        code, text = exc.smtp_code, exc.smtp_error
                t1 = time.monotonic()
                if code == 250 and b"already" not in text:
                    out["accepted"] += 1
                    if begin <= t1 <= end:
                        out["done"] += 1
                        out["latencies"].append(t1 - t0)
                else:
                    out["errors"] += 1
                    out["error_sample"] = out["error_sample"] or f"{code} {text[:300]!r}"
                    smtp.rset()
            smtp.quit()
        except (OSError, smtplib.SMTPException) as exc:
            out.update(fatal=True, error_sample=f"after {k} messages: {exc!r}")

    workers = [threading.Thread(target=relay, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    start[0] = time.monotonic() + 0.05
    try:
        barrier.wait(120)
    except threading.BrokenBarrierError:
        results.put(("fatal", "the load threads did not get ready"))
        return
    results.put(("start", start[0]))
    for w in workers:
        w.join(duration + warmup + 120)
    results.put(("done", outs))


def trial(mode: str, port: int, server_pid: int, cfg, senders: list[tuple[str, str]],
          recipients: list[str], tag: str, conninfo: str | None = None) -> dict:
    """One measured window of the load against one SMTP server."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=load_client, args=(
        port, cfg.gateway_clients, senders, recipients, cfg.warmup, cfg.duration, tag, results))
    proc.start()
    try:
        kind, t0 = results.get(timeout=180)
        if kind != "start":
            raise RuntimeError(f"(e) {mode} load client: {t0}")
        time.sleep(max(0.0, t0 + cfg.warmup - time.monotonic()))
        # The server with its children: the gateway's reader processes parse every message.
        sampler = CpuSampler(fixed={"clients": [proc.pid]}, trees={mode: server_pid}).start()
        activity = PgActivity(conninfo).start() if conninfo else None
        mach0 = machine_cpu()
        time.sleep(max(0.0, t0 + cfg.warmup + cfg.duration - 0.05 - time.monotonic()))
        cpu, mach1 = sampler.stop(), machine_cpu()
        db = activity.stop() if activity else None
        kind, outs = results.get(timeout=180)
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
    load = merge_clients(outs, f"(e) {mode}", "messages not accepted", cfg.duration)
    use = report.cpu_use(cpu, load["done"], cfg.duration - 0.05, mach0, mach1)
    return {
        "mode": mode,
        **load,
        "accepted": sum(o["accepted"] for o in outs),
        "error_sample": next((o["error_sample"] for o in outs if o["error_sample"]), ""),
        "cpu_ms_per_msg": use.ms_per_op,
        "cpu_cores_used": use.cores,
        "machine_busy": use.busy,
        "other_cores": use.other_cores,
        "db": db,
    }


class PgActivity:
    """What the gateway's database sessions are doing, sampled from pg_stat_activity.

    Every 50 ms on a connection of its own: how many of the bench database's
    other sessions are running a statement, how many of those wait for a lock
    (a row lock another transaction holds), and how many are idle inside a
    transaction (their thread is running Python between two statements).
    """

    QUERY = ("SELECT count(*) FILTER (WHERE state = 'active'), "
             "count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock'), "
             "count(*) FILTER (WHERE state LIKE 'idle in transaction%'), count(*), "
             "array_agg(left(regexp_replace(query, '\\s+', ' ', 'g'), 70)) "
             "FILTER (WHERE state = 'active' AND wait_event_type = 'Lock') "
             "FROM pg_stat_activity WHERE datname = current_database() "
             "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")

    def __init__(self, conninfo: str, interval: float = 0.05):
        self.conninfo, self.interval = conninfo, interval
        self.samples: list[tuple] = []
        self.waiting: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                row = conn.execute(self.QUERY).fetchone()
                self.samples.append(row[:4])
                self.waiting.update(row[4] or [])

    def start(self) -> PgActivity:
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(10)
        n = max(len(self.samples), 1)
        return {
            "samples": len(self.samples),
            "active": sum(x[0] for x in self.samples) / n,
            "lock_wait": sum(x[1] for x in self.samples) / n,
            "lock_wait_share": sum(1 for x in self.samples if x[1]) / n,
            "idle_in_tx": sum(x[2] for x in self.samples) / n,
            "sessions": sum(x[3] for x in self.samples) / n,
            "waiting_for": self.waiting.most_common(2),
            "waiting_total": sum(self.waiting.values()),
        }


# ----------------------------------------------------------------- servers


class Smtpd(Server):
    """``hushpost smtpd`` as a subprocess, with the production environment; ready when it answers NOOP."""

    def __init__(self, env: dict, port: int, logdir: Path, name: str = "smtpd"):
        argv = [str(BIN / "hushpost"), "smtpd", "--bind", f"{HOST}:{port}"]
        super().__init__(name, argv, env, port, "", logdir)

    def ready(self) -> bool:
        try:
            with smtplib.SMTP(HOST, self.port, timeout=5) as smtp:
                return smtp.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False


# ------------------------------------------------------------------ (e) run


def allow_loopback(org_pk: int):
    from hushpost.gateway.config import configure
    from hushpost.orgs.models import Organization

    return configure(Organization.objects.get(pk=org_pk), networks="127.0.0.1/32")


def drain_spool(env: dict, workdir: Path, processes: int = 1) -> dict:
    """The worker's share: what the spool holds, stored by ``spool.store_due`` in ``processes``
    processes of their own at once (as that many ``hushpost worker`` processes would), their CPU
    (each with its reader) and PostgreSQL's sampled meanwhile."""
    procs: list[subprocess.Popen] = []
    with open(workdir / "spool-drain.log", "ab") as errors:
        for _ in range(processes):
            procs.append(subprocess.Popen([sys.executable, "-m", "bench.spool_drain"], env=env,
                                          cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=errors, text=True))
    names = ["worker" if i == 0 else f"worker{i + 1}" for i in range(processes)]
    try:
        for proc in procs:
            _said(proc, "READY")
        sampler = CpuSampler(trees=dict(zip(names, (proc.pid for proc in procs), strict=True))).start()
        mach0 = machine_cpu()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        each = [json.loads(_said(proc, "DRAINED")) for proc in procs]
        cpu, mach1 = sampler.stop(), machine_cpu()
        for proc in procs:
            proc.stdin.close()
        for proc in procs:
            proc.wait(60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    # The workers' CPU together, as one group.
    cpu = {"worker": sum(cpu.pop(name, 0.0) for name in names), **cpu}
    tried, seconds = sum(d["tried"] for d in each), max(d["seconds"] for d in each)
    use = report.cpu_use(cpu, tried, seconds, mach0, mach1)
    return {"tried": tried, "seconds": seconds, "rounds": sum(d["rounds"] for d in each),
            "processes": processes, "each": [d["tried"] for d in each],
            "rate": tried / max(seconds, 1e-9),
            "cpu_ms_per_msg": use.ms_per_op, "cpu_cores_used": use.cores,
            "machine_busy": use.busy, "other_cores": use.other_cores}


def _said(proc: subprocess.Popen, word: str) -> str:
    """The rest of the drain process's line that starts with ``word``."""
    for line in proc.stdout:
        if line.startswith(word):
            return line[len(word):].strip()
    raise RuntimeError(f"(e) the spool drain exited (status {proc.wait(10)}) before {word}")


def bench_gateway(cfg, res, env: dict, seeds: dict, workdir: Path) -> None:
    from django.db import connections

    from hushpost.gateway.models import SpooledMail
    from hushpost.messaging.models import Message
    from hushpost.notifications.models import Notification

    org = allow_loopback(seeds["org"].pk)
    senders = [(s.email, s.name or s.email) for s in seeds["senders"]]
    recipients = [u.email for u in seeds["pool"]]
    clear_queue()
    connections.close_all()
    smtpd = Smtpd(env, free_port(), workdir)
    # No worker runs during a trial, so the spool only fills: its cap per organisation, which
    # would store the rest while the client waits, is lifted for the measurement.
    spooler = Smtpd({**env, "HUSHPOST_SMTPD_SPOOL": "true", "HUSHPOST_SMTPD_SPOOL_MAX_PENDING": "100000000"},
                    free_port(), workdir, "smtpd-spool")
    sink = Sink(free_port())
    started = time.monotonic()
    try:
        smtpd.start()
        spooler.start()
        sink.start()
    except BaseException:
        smtpd.stop()
        spooler.stop()
        with contextlib.suppress(Exception):
            sink.stop()
        raise
    sample = with_id(template(*senders[0], recipients[0]), f"bench-{secrets.token_hex(4)}.0.0")
    res.summary["gateway_meta"] = {"startup_s": time.monotonic() - started,
                                   "bytes": len(sample),
                                   "body_bytes": len(sample.split(b"\r\n\r\n", 1)[1]),
                                   "networks": org.gateway_networks,
                                   "keyword": org.gateway_keyword}
    run_tag = secrets.token_hex(4)

    def stored_messages() -> int:
        return Message.objects.filter(send_token__startswith="gw-").count()

    try:
        log(f"(e) hushpost smtpd :{smtpd.port} (pid {smtpd.proc.pid}), with the spool "
            f":{spooler.port} (pid {spooler.proc.pid}), sink :{sink.port}")
        for r in range(cfg.gateway_rounds):
            order = MODES[r % 3:] + MODES[:r % 3]
            row: dict = {"round": r + 1}
            for mode in order:
                tag = f"bench-{run_tag}-{mode}-{r}"
                if mode == "gateway":
                    before = stored_messages()
                    queued = Notification.objects.count()
                    connections.close_all()
                    t = trial(mode, smtpd.port, smtpd.proc.pid, cfg, senders, recipients, tag,
                              env["HUSHPOST_DATABASE_URL"])
                    stored = stored_messages() - before
                    notes = Notification.objects.count() - queued
                    if stored != t["accepted"]:
                        raise RuntimeError(f"(e) the gateway answered 250 to {t['accepted']} "
                                           f"messages but {stored} were stored")
                    t["stored"], t["notifications"] = stored, notes
                    # The queued notifications (one per message) would lengthen the queue
                    # every later measurement and profile reads: gone before the next trial.
                    clear_queue()
                    connections.close_all()
                elif mode == "spool":
                    before = stored_messages()
                    queued = Notification.objects.count()
                    connections.close_all()
                    t = trial(mode, spooler.port, spooler.proc.pid, cfg, senders, recipients,
                              tag, env["HUSHPOST_DATABASE_URL"])
                    spooled = SpooledMail.objects.filter(state=SpooledMail.State.PENDING).count()
                    if spooled != t["accepted"]:
                        raise RuntimeError(f"(e) the spool answered 250 to {t['accepted']} "
                                           f"e-mails but holds {spooled}")
                    connections.close_all()
                    # Every other round two workers drain it at once: does storing scale?
                    t["drain"] = drain = drain_spool(env, workdir, processes=1 + r % 2)
                    stored = stored_messages() - before
                    states = Counter(SpooledMail.objects.values_list("state", flat=True))
                    if (stored != t["accepted"] or drain["tried"] != t["accepted"]
                            or states != Counter({SpooledMail.State.STORED: t["accepted"]})):
                        raise RuntimeError(
                            f"(e) the spool answered 250 to {t['accepted']} e-mails; the worker "
                            f"tried {drain['tried']}, {stored} messages were stored, the spool's "
                            f"rows are {dict(states)}")
                    t["stored"] = stored
                    t["notifications"] = Notification.objects.count() - queued
                    log(f"(e) round {r + 1} worker : {drain['rate']:8.1f} e-mails/s stored from "
                        f"the spool by {drain['processes']} worker(s) ({drain['tried']} in "
                        f"{drain['seconds']:.1f} s, "
                        f"{drain['rounds']} batches; CPU ms per e-mail: worker "
                        f"{drain['cpu_ms_per_msg']['worker']:.2f}, PostgreSQL "
                        f"{drain['cpu_ms_per_msg']['postgres']:.2f})")
                    # Stored rows keep no content and the worker purges them a week later; gone
                    # now, with the notifications, so that no later trial inserts into a longer table.
                    SpooledMail.objects.all().delete()
                    clear_queue()
                    connections.close_all()
                else:
                    sink.reset()
                    t = trial(mode, sink.port, sink._proc.pid, cfg, senders, recipients, tag)
                    got = sink.wait_for(t["accepted"], 10)
                    if got < t["accepted"]:
                        raise RuntimeError(f"(e) the sink counted {got} of {t['accepted']}")
                row[mode] = t
                log(f"(e) round {r + 1} {mode:7s}: {t['rate']:8.1f} msg/s (p50 "
                    f"{t['lat_p50_ms']:.1f} ms, p95 {t['lat_p95_ms']:.1f} ms, machine busy "
                    f"{t['machine_busy']:.0%}, server {t['cpu_cores_used'][mode]:.2f} cores)")
            row["ratio"] = row["gateway"]["rate"] / row["sink"]["rate"]
            row["spool_ratio"] = row["spool"]["rate"] / row["sink"]["rate"]
            res.gateway_rounds.append(row)
    finally:
        code = smtpd.stop()
        spool_code = spooler.stop()
        with contextlib.suppress(Exception):
            sink.stop()
    meta = res.summary["gateway_meta"]
    meta["exit_code"], meta["spool_exit_code"] = code, spool_code
    for key, server in (("log_errors", smtpd), ("spool_log_errors", spooler)):
        meta[key] = server.log_lines("Traceback")[:3] + server.log_lines("reply=451")[:3]
        if meta[key]:
            res.notes.append(f"(e) `{server.name}` logged errors during the trials, e.g. "
                             f"{meta[key][0]!r}.")
    drain_errors = [line for line in (workdir / "spool-drain.log").read_text(
        errors="replace").splitlines() if "Traceback" in line or "WARNING" in line
        or "ERROR" in line]
    if drain_errors:
        res.notes.append(f"(e) the spool's worker logged {len(drain_errors)} warnings or errors, "
                         f"e.g. {drain_errors[0]!r}.")
    for name, status in (("hushpost smtpd", code), ("hushpost smtpd (spool)", spool_code)):
        if status not in (0, None):
            res.notes.append(f"(e) `{name}` exited with status {status} on SIGTERM.")
    summarise(res)


def summarise(res) -> None:
    rounds = res.gateway_rounds

    def cpu(mode: str, group: str) -> float:
        return statistics.median(r[mode]["cpu_ms_per_msg"].get(group, 0.0) for r in rounds)

    def cores(mode: str, group: str) -> float:
        return statistics.median(r[mode]["cpu_cores_used"].get(group, 0.0) for r in rounds)

    def drained(key: str, group: str | None = None, processes: int = 1) -> float | None:
        found = [r["spool"]["drain"][key][group] if group else r["spool"]["drain"][key]
                 for r in rounds if r["spool"]["drain"].get("processes", 1) == processes]
        return statistics.median(found) if found else None

    gw = {g: cpu("gateway", g) for g in ("gateway", "postgres", "clients")}
    sk = {g: cpu("sink", g) for g in ("sink", "postgres", "clients")}
    sp = {g: cpu("spool", g) for g in ("spool", "postgres", "clients")}
    worker = {g: drained("cpu_ms_per_msg", g) for g in ("worker", "postgres")}
    res.summary["gateway"] = {
        "measured": statistics.median(r["gateway"]["rate"] for r in rounds),
        "baseline": statistics.median(r["sink"]["rate"] for r in rounds),
        "ratio": statistics.median(r["ratio"] for r in rounds),
        "ratios": [r["ratio"] for r in rounds],
        "cpu": gw,
        "sink_cpu": sk,
        # CPU per sink message / CPU per gateway message (server + PostgreSQL + client):
        # what the rate ratio tends to when the bench alone saturates the machine.
        "cpu_ratio": sum(sk.values()) / max(sum(gw.values()), 1e-9),
        "cores": {"gateway": cores("gateway", "gateway"), "postgres": cores("gateway", "postgres"),
                  "clients": cores("gateway", "clients"), "sink": cores("sink", "sink"),
                  "sink_clients": cores("sink", "clients")},
        "busy": {"gateway": statistics.median(r["gateway"]["machine_busy"] for r in rounds),
                 "sink": statistics.median(r["sink"]["machine_busy"] for r in rounds)},
        "latency": {m: {q: statistics.median(r[m][f"lat_{q}_ms"] for r in rounds)
                        for q in ("p50", "p95")} for m in MODES},
        "db": {k: statistics.median(r["gateway"]["db"][k] for r in rounds)
               for k in ("active", "lock_wait", "lock_wait_share", "idle_in_tx", "sessions")},
        "waiting_for": sum((Counter(dict(r["gateway"]["db"]["waiting_for"])) for r in rounds),
                           Counter()).most_common(1),
        "waiting_total": sum(r["gateway"]["db"]["waiting_total"] for r in rounds),
        "notifications_per_msg": sum(r["gateway"]["notifications"] for r in rounds)
        / max(sum(r["gateway"]["stored"] for r in rounds), 1),
        "spool": {
            "measured": statistics.median(r["spool"]["rate"] for r in rounds),
            "ratio": statistics.median(r["spool_ratio"] for r in rounds),
            "ratios": [r["spool_ratio"] for r in rounds],
            "cpu": sp,
            # As for the gateway: the sink's CPU per message over the spool's at DATA ...
            "cpu_ratio": sum(sk.values()) / max(sum(sp.values()), 1e-9),
            # ... and over the spool's and the worker's together: each e-mail's whole cost.
            "cpu_ratio_stored": sum(sk.values()) / max(sum(sp.values()) + sum(worker.values()),
                                                       1e-9),
            "cores": {"spool": cores("spool", "spool"), "postgres": cores("spool", "postgres")},
            "busy": statistics.median(r["spool"]["machine_busy"] for r in rounds),
            "worker_cpu": worker,
            "worker_rate": drained("rate"),
            # The rounds drained by two workers at once (none when (e) ran one round).
            "two_workers_rate": drained("rate", processes=2),
            "two_workers_cpu": ({g: drained("cpu_ms_per_msg", g, processes=2) for g in ("worker", "postgres")}
                                if drained("rate", processes=2) is not None else None),
            "worker_cores": {g: drained("cpu_cores_used", g) for g in ("worker", "postgres")},
            "stored": sum(r["spool"]["stored"] for r in rounds),
            "notifications_per_msg": sum(r["spool"]["notifications"] for r in rounds)
            / max(sum(r["spool"]["stored"] for r in rounds), 1),
        },
    }


# ------------------------------------------------------------------ profile


def profile_gateway(seeds: dict, n: int = 200) -> dict:
    """The gateway's per-message work in-process, as its worker threads run it.

    For each e-mail: the MAIL FROM check (``check_envelope_sender``) and the
    DATA handler's ``receive_mail``, each through the server's own
    ``_in_worker`` (a connection that served a step a moment ago is used
    without a health check), as the executor calls them; DATA is given the
    sender MAIL FROM found, as the server's handler gives it.  Once timed (unprofiled) with every SQL statement counted,
    once under cProfile.
    """
    import io
    import logging

    from django.contrib.auth.hashers import Argon2PasswordHasher

    from hushpost.gateway import actions as gw_actions
    from hushpost.gateway import options as gw_options
    from hushpost.gateway import server as gw_server
    from hushpost.gateway.access import Client
    from hushpost.messaging import actions as messaging_actions

    allow_loopback(seeds["org"].pk)
    sender = seeds["senders"][0]
    recipients = [u.email for u in seeds["pool"]]
    raws = {to: template(sender.email, sender.name or sender.email, to) for to in recipients}
    client = Client.of((HOST, 40000))
    tag = f"bench-profile-{secrets.token_hex(4)}"
    counter = [0]

    def one() -> None:
        k = counter[0]
        counter[0] += 1
        to = recipients[k % len(recipients)]
        reply, found = gw_server._in_worker(gw_actions.check_envelope_sender, sender.email, client)
        if reply.code != 250:
            raise RuntimeError(f"profile gateway MAIL FROM: {reply}")
        reply = gw_server._in_worker(gw_actions.receive_mail, with_id(raws[to], f"{tag}.{k}"),
                                     mail_from=sender.email, rcpt_tos=[to], client=client,
                                     sender=found)
        if reply.code != 250 or "already" in reply.text:
            raise RuntimeError(f"profile gateway DATA: {reply}")

    # The per-message log line is written as in production, into a buffer rather than the
    # bench's terminal.
    logger = gw_actions.log
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    saved = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    for _ in range(10):  # warm-up
        one()
    bd = Breakdown()
    bd.timed(gw_actions, "check_envelope_sender", "MAIL FROM check", scope=True)
    bd.timed(gw_actions, "receive_mail", "receive_mail", scope=True)
    bd.timed(gw_actions, "send_message", "send_message", scope=True)
    bd.timed(gw_actions, "read_mail", "read_mail")
    bd.timed(gw_actions, "sender_of", "sender_of")
    bd.timed(gw_options, "secure_subject", "keyword check")
    bd.timed(gw_options, "read_options", "read_options")
    bd.timed(gw_actions, "_body", "body cleaning")
    bd.timed(messaging_actions, "seal_content", "seal_content")
    bd.timed(messaging_actions, "_recipient_account", "recipient account")
    bd.timed(messaging_actions, "queue_notification", "queue_notification")
    bd.timed(messaging_actions, "record", "audit record")
    bd.timed(Argon2PasswordHasher, "encode", "Argon2 hash")
    bd.timed(Argon2PasswordHasher, "verify", "Argon2 verify")
    def messages() -> None:
        for _ in range(n):
            one()

    wall, cpu, prof = timed_then_profiled(bd, messages)
    logger.removeHandler(handler)
    logger.propagate = saved
    own = report.own_by_area(prof, AREAS)
    clear_queue()
    return {"n": n, "ms": 1000 * wall / n, "cpu_ms": 1000 * cpu / n, "bd": bd, "own": own,
            "table": report.profile_table(prof, 24),
            "own_table": report.profile_table(prof, 16, "own")}


# The scopes of the profile's stopwatches, as its table of SQL statements names them.
STEPS = {"": "step", "MAIL FROM check": "MAIL FROM", "receive_mail": "DATA",
         "send_message": "send_message"}
AREAS = (
    ("Django ORM and database driver (building and compiling queries, psycopg, model "
     "instances, signals)", ("django/db/", "psycopg/", "psycopg_pool/", "django/dispatch/")),
    ("E-mail reading (handing it to a reader process and back: `hushpost.gateway.reader`; "
     "the parsing is the reader's CPU)", ("email/", "gateway/parse", "gateway/reader", "multiprocessing/")),
    ("Cryptography (AES-GCM, key handling)", ("cryptography/", "tink/", "hushpost/crypto/aead",
                                               "hushpost/crypto/envelope", "messaging/content")),
    ("HTML cleaning of the body", ("nh3", "bleach", "html5lib", "lib/sanitize", "/html/")),
    ("Django forms", ("django/forms/",)),
    ("Logging", ("logging/",)),
    ("Hushpost's own code (gateway checks, send_message, audit, notifications)", ("hushpost/",)),
)

# ------------------------------------------------------------------- report


def results_rows(res) -> list[tuple[str, ...]]:
    s = res.summary["gateway"]
    p = s["spool"]
    return [("(e) Messages accepted per second by the SMTP gateway (`hushpost smtpd`, 250 to "
             "DATA, stored as secure messages) vs a plain aiosmtpd sink (one process each); "
             f"{res.config.gateway_clients} concurrent SMTP connections",
             f"{s['measured']:.1f}/s", f"{s['baseline']:.1f}/s", f"{s['ratio']:.3f}",
             *TARGET.cells(s["ratio"])),
            ("(e) The same with the spool (`HUSHPOST_SMTPD_SPOOL=true`): 250 to DATA once the "
             "e-mail is sealed and committed in one INSERT, stored as a secure message by the "
             "worker after (its CPU per e-mail is reported beside, not in this rate)",
             f"{p['measured']:.1f}/s", f"{s['baseline']:.1f}/s", f"{p['ratio']:.3f}",
             *SPOOL_TARGET.cells(p["ratio"]))]


def cross_check_text(res) -> str:
    s = res.summary["gateway"]
    c, k = s["cpu"], s["sink_cpu"]
    return (f"CPU per accepted message in (e): `hushpost smtpd` {c['gateway']:.2f} ms + "
            f"PostgreSQL {c['postgres']:.2f} ms + load client {c['clients']:.2f} ms = "
            f"{sum(c.values()):.2f} ms, against the sink's {k['sink']:.2f} ms + load client "
            f"{k['clients']:.2f} ms = {sum(k.values()):.2f} ms per message; the CPU-cost ratio "
            f"is **{s['cpu_ratio']:.3f}**.  {spool_text(res)}")


def spool_text(res) -> str:
    """The spool's figures: what DATA costs once it answers after one INSERT, and the worker's
    share, which the e-mail costs later and is reported beside it."""
    p, k = res.summary["gateway"]["spool"], res.summary["gateway"]["sink_cpu"]
    c, w = p["cpu"], p["worker_cpu"]
    return (f"With the spool the gateway answers DATA after one INSERT (the e-mail sealed and "
            f"committed), and the worker stores it as a message after: at DATA "
            f"`hushpost smtpd` {c['spool']:.2f} ms + PostgreSQL {c['postgres']:.2f} ms + load "
            f"client {c['clients']:.2f} ms = {sum(c.values()):.2f} ms per accepted e-mail, a "
            f"CPU-cost ratio to the sink of **{p['cpu_ratio']:.3f}**; the worker's share, "
            f"draining the spool afterwards (`spool.store_due`, one process with its reader), "
            f"{w['worker']:.2f} ms of worker + {w['postgres']:.2f} ms of PostgreSQL = "
            f"{sum(w.values()):.2f} ms per stored e-mail ({p['worker_rate']:.0f} e-mails stored "
            f"per second by one worker).  Both together cost {sum(c.values()) + sum(w.values()):.2f} "
            f"ms per e-mail, a CPU-cost ratio of {p['cpu_ratio_stored']:.3f} to the sink's "
            f"{sum(k.values()):.2f} ms." + _two_workers_text(p))


def _two_workers_text(p: dict) -> str:
    two, cpu = p.get("two_workers_rate"), p.get("two_workers_cpu")
    if two is None or cpu is None:
        return ""
    return (f"  Two workers draining the spool at once (every other round) stored {two:.0f} e-mails "
            f"a second (x{two / max(p['worker_rate'], 1e-9):.2f} one worker; each e-mail stored "
            f"once), at {cpu['worker']:.2f} ms of worker + {cpu['postgres']:.2f} ms of PostgreSQL "
            f"per e-mail.")


def method_text(res) -> str:
    cfg, meta = res.config, res.summary.get("gateway_meta", {})
    return (
        "* **(e) SMTP gateway.** The bench organisation is configured with "
        "`hushpost.gateway.config.configure(org, networks=\"127.0.0.1/32\")` (keyword "
        f"`{meta.get('keyword', '[secure]')}`, the default; no SMTP AUTH, so no password is "
        "ever hashed).  `hushpost smtpd --bind 127.0.0.1:<port>` runs as its own process with "
        "the web server's production environment (plain text is allowed on loopback only; "
        "8 worker threads, the default `HUSHPOST_SMTPD_THREADS`).  The baseline is a second "
        "instance of the bench's counting sink (`bench/sink.py`): aiosmtpd's `Controller` in a "
        "process of its own that accepts every command and counts each message.  That process "
        "is chosen over an in-process sink so that the comparison is one SMTP server process "
        "against another (same library, same asyncio loop on a thread, same one-process limit "
        "of the GIL), the load and the bench itself in other processes for both.  The load is "
        f"one process with {cfg.gateway_clients} threads, each holding one `smtplib` connection "
        "(EHLO once) and relaying as an organisation's mail server would: MAIL FROM the "
        "thread's sender (one of the seeded active senders), RCPT TO one recipient drawn in "
        f"turn from the {cfg.recipients_pool} seeded recipient accounts of the organisation (so "
        "recipient accounts are looked up and reused, never created), DATA a plain-text e-mail "
        f"of {meta.get('bytes', '?')} bytes (headers From, To, Subject `[secure] ...`, Date, a "
        f"distinct Message-ID per message; a {meta.get('body_bytes', '?')}-byte body).  Both "
        "servers get the very same e-mails.  A "
        "message counts when DATA is answered `250` (not `already received`) inside the "
        f"measured window: {cfg.warmup:g} s warm-up, then {cfg.duration:g} s; rounds of "
        f"(sink, gateway, spool), the order rotating, {cfg.gateway_rounds} each.  Every gateway "
        "trial checks that each 250 it counted (warm-up included) left one stored message; "
        "the notifications those messages queued ("
        f"{res.summary['gateway'].get('notifications_per_msg', 0):.2f} per message) are deleted "
        "after each trial, so no later trial or profile reads a longer queue.  During gateway "
        "trials a thread samples `pg_stat_activity` every 50 ms (sessions running a statement, "
        "waiting on a lock, idle in a transaction).  CPU is sampled from `/proc` "
        "as for (a): the server process, PostgreSQL's processes for the bench database, and "
        "the load process.  The gateway stopped on SIGTERM with exit status "
        f"{meta.get('exit_code', '?')}.  "
        "**The spool.**  A second `hushpost smtpd`, started with the same environment plus "
        "`HUSHPOST_SMTPD_SPOOL=true` (and `HUSHPOST_SMTPD_SPOOL_MAX_PENDING` lifted, since no worker "
        "drains the spool during a trial), takes the very same load in each round, its CPU sampled "
        "the same way: it answers DATA `250 2.0.0 queued "
        "to be stored as a secure message` once the e-mail is sealed and committed in one "
        "INSERT, and parses nothing.  The worker's share is measured, not left out: after each "
        "spool trial, once the trial has checked that the spool holds one pending row per 250, "
        "a process of its own (`bench/spool_drain.py`: Django set up and its reader process "
        "started before the count begins) calls the worker's `hushpost.gateway.spool.store_due` "
        "until nothing is due, its CPU with its reader's and PostgreSQL's sampled meanwhile, "
        "and the CPU is divided by the e-mails it stored; every other round two such processes "
        "drain it at once, as two `hushpost worker` processes would (their rounds are reported "
        "apart, and the per-e-mail figures above are the one-worker rounds').  (`hushpost worker --batch` is not "
        "used: it would also deliver the notifications, which (e) does not count for the "
        "synchronous gateway either; nor does either mode count the audit linker.)  The trial "
        "then checks that every e-mail the spool accepted was stored exactly once (messages "
        "with a gateway send token grew by as many, every spooled row is `stored`), and the "
        "spool's rows and the notifications are deleted before the next trial.  The spooling "
        f"gateway stopped on SIGTERM with exit status {meta.get('spool_exit_code', '?')}.")


def rounds_text(res) -> str:
    rows = []
    for r in res.gateway_rounds:
        g, k = r["gateway"], r["sink"]
        gc, kc = g["cpu_ms_per_msg"], k["cpu_ms_per_msg"]
        rows.append((r["round"], f"{k['rate']:.1f}", f"{g['rate']:.1f}", f"{r['ratio']:.3f}",
                     f"{g['lat_p50_ms']:.1f} / {g['lat_p95_ms']:.1f} ms",
                     f"{gc['gateway']:.2f} / {gc['postgres']:.2f} / {gc['clients']:.2f}",
                     f"{kc['sink']:.3f} / {kc['clients']:.3f}",
                     f"{g['cpu_cores_used']['gateway']:.2f} / "
                     f"{g['cpu_cores_used']['postgres']:.2f}",
                     f"{k['other_cores']:.2f} / {g['other_cores']:.2f}"))
    return "\n".join([
        "### (e) SMTP gateway vs plain aiosmtpd sink", "",
        report.table(["Round", "Sink msg/s", "Gateway msg/s", "Ratio",
                      "Gateway latency p50 / p95",
                      "CPU ms per message, gateway: smtpd / PostgreSQL / client",
                      "CPU ms per message, sink: sink / client",
                      "Cores used, gateway: smtpd / PostgreSQL",
                      "Unattributed CPU (cores), sink / gateway"], "rrrrrllll", rows), "",
        *spool_rounds_text(res)])


def spool_rounds_text(res) -> list[str]:
    rows = []
    for r in res.gateway_rounds:
        p, k, d = r["spool"], r["sink"], r["spool"]["drain"]
        pc, dc = p["cpu_ms_per_msg"], d["cpu_ms_per_msg"]
        rows.append((r["round"], f"{k['rate']:.1f}", f"{p['rate']:.1f}", f"{r['spool_ratio']:.3f}",
                     f"{p['lat_p50_ms']:.1f} / {p['lat_p95_ms']:.1f} ms",
                     f"{pc['spool']:.2f} / {pc['postgres']:.2f} / {pc['clients']:.2f}",
                     f"{d['tried']} in {d['seconds']:.1f} s ({d['rate']:.0f}/s)"
                     + (f" by {d['processes']} workers" if d.get("processes", 1) > 1 else ""),
                     f"{dc['worker']:.2f} / {dc['postgres']:.2f}",
                     f"{p['other_cores']:.2f} / {d['other_cores']:.2f}"))
    return [
        "### (e) SMTP gateway with the spool vs plain aiosmtpd sink, and the worker's share", "",
        report.table(["Round", "Sink msg/s", "Spool msg/s", "Ratio",
                      "Spool latency p50 / p95",
                      "CPU ms per message at DATA: smtpd / PostgreSQL / client",
                      "Stored by the worker after",
                      "CPU ms per stored e-mail, worker: worker / PostgreSQL",
                      "Unattributed CPU (cores), spool / worker"], "rrrrrllll", rows), ""]


def _bound_text(res) -> str:
    """What bounds the gateway's rate, from the CPU accounting of the trials."""
    s = res.summary["gateway"]
    c, k, cores, db = s["cpu"], s["sink_cpu"], s["cores"], s["db"]
    ncpu = os.cpu_count() or 1
    allowed = sum(k.values()) / TARGET.value
    parts = [f"per accepted message the gateway cost {c['gateway']:.2f} ms of `hushpost smtpd` "
             f"CPU + {c['postgres']:.2f} ms of PostgreSQL + {c['clients']:.2f} ms of load client "
             f"= {sum(c.values()):.2f} ms, the sink {sum(k.values()):.2f} ms in all; at "
             f"{TARGET.value:.2f} x the sink's rate a message could cost at most {allowed:.2f} ms of CPU"]
    if c["postgres"] >= allowed:
        parts.append(f"less than PostgreSQL alone spends per gateway message, and "
                     f"`hushpost smtpd`'s own CPU is {c['gateway'] / allowed:.1f}x that budget")
    elif c["gateway"] >= allowed:
        parts.append(f"`hushpost smtpd`'s own CPU alone is {c['gateway'] / allowed:.1f}x that "
                     "budget")
    parts.append(f"the smtpd process kept {cores['gateway']:.2f} cores and PostgreSQL "
                 f"{cores['postgres']:.2f} busy, of {ncpu}, with the machine "
                 f"{s['busy']['gateway']:.0%} busy (other tenants' work included); smtpd is one "
                 "Python process whose 8 worker threads and SMTP loop share one interpreter lock, "
                 "so it can never use more than about one core"
                 + (f"; the machine had {1 - s['busy']['gateway']:.0%} of its CPU idle meanwhile, "
                    "which one smtpd process cannot use" if cores["gateway"] >= 0.85
                    and s["busy"]["gateway"] < 0.9 else ""))
    parts.append(f"its {db['sessions']:.1f} database sessions were running a statement "
                 f"{db['active']:.2f} at a time on average and idle inside a transaction "
                 f"{db['idle_in_tx']:.2f}, and a session waited on a lock in "
                 f"{db['lock_wait_share']:.0%} of the 50 ms samples (pg_stat_activity)"
                 + (f", {s['waiting_for'][0][1] / max(s['waiting_total'], 1):.0%} of those "
                    f"waits at `{s['waiting_for'][0][0]}...`" if s["waiting_for"] else ""))
    return "; ".join(parts)


def note(res) -> str | None:
    """The Notes lines for missed targets: by how much, and what bounds it."""
    lines = [text for text in (_sync_note(res), _spool_note(res)) if text]
    return "\n* ".join(lines) or None


def _spool_note(res) -> str | None:
    p = res.summary["gateway"]["spool"]
    if SPOOL_TARGET.met(p["ratio"]):
        return None
    c = p["cpu"]
    return (f"(e) SMTP gateway with the spool: target missed, ratio {p['ratio']:.3f} vs "
            f"{SPOOL_TARGET} ({p['ratio'] / SPOOL_TARGET.value:.0%} of the target); per accepted "
            f"e-mail `hushpost smtpd` {c['spool']:.2f} ms + PostgreSQL {c['postgres']:.2f} ms of "
            f"CPU, the smtpd process keeping {p['cores']['spool']:.2f} cores busy with the "
            f"machine {p['busy']:.0%} busy.")


def _sync_note(res) -> str | None:
    s = res.summary["gateway"]
    if TARGET.met(s["ratio"]):
        return None
    text = (f"(e) SMTP gateway: target missed, ratio {s['ratio']:.3f} vs {TARGET} "
            f"({s['ratio'] / TARGET.value:.0%} of the target; the gateway would have to accept "
            f"{TARGET.value / s['ratio']:.1f}x as many messages per second, "
            f"{TARGET.value * s['baseline']:.0f}/s instead of {s['measured']:.0f}/s).  What bounds "
            f"it: CPU; {_bound_text(res)}.")
    prof = s.get("profile")
    if prof:
        text += (f"  From the in-process profile: per message {prof['cpu_ms']:.2f} ms of Python "
                 f"CPU, {prof['trips']:.1f} PostgreSQL round trips ({prof['commits']:.1f} durable "
                 f"commit), {prof['argon2']:.0f} Argon2 calls; {prof['areas']}.  "
                 "See the profile of (e).")
    elif not res.profiles:
        text += "  (In-process profiles skipped in this run: --no-profile.)"
    return text


def describe_gateway(p: dict, res) -> str:
    s = res.summary["gateway"]
    bd, n = p["bd"], p["n"]
    ok = TARGET.met(s["ratio"])
    head = (f"### (e) SMTP gateway: target {'met' if ok else 'missed'}: {s['ratio']:.3f} vs "
            f"{TARGET}" + ("" if ok else f" ({s['ratio'] / TARGET.value:.0%} of the target; "
                                         f"{TARGET.value / s['ratio']:.1f}x short)"))
    argon2 = bd.calls["Argon2 hash"] + bd.calls["Argon2 verify"]
    sql_all = bd.ms("SQL statement", n) + bd.ms("COMMIT", n) + bd.ms("health check", n)
    parts = [
        ("MAIL FROM step: `check_envelope_sender` (the sender account through its domain, one "
         "query)", "MAIL FROM check", "MAIL FROM check"),
        ("DATA step: `receive_mail`, all of it (round trips and commits: those outside "
         "`send_message`)", "receive_mail", "receive_mail"),
        ("- reading the e-mail (`read_mail`: a reader process parses it, this process waits)",
         "read_mail @ receive_mail", None),
        ("- `sender_of` again (only for a From address that is not the envelope sender)",
         "sender_of @ receive_mail", None),
        ("- the subject keyword (`secure_subject`)", "keyword check @ receive_mail", None),
        ("- options (`read_options`: the organisation's preselected options, then the "
         "subject's tags)", "read_options @ receive_mail", None),
        ("- body cleaning (as Compose cleans a body)", "body cleaning @ receive_mail", None),
        ("- `send_message` (one transaction)", "send_message", "send_message"),
        ("  - `seal_content` (organisation key + AES-GCM)", "seal_content @ send_message", None),
        ("  - recipient account look-up", "recipient account @ send_message", None),
        ("  - `queue_notification` (task row + notification row)",
         "queue_notification @ send_message", None),
        ("  - `audit.record` (the message's audit event: one `INSERT audit_auditevent`, no "
         "lock; the worker's linker chains it after the COMMIT)", "audit record @ send_message",
         None),
        ("Connection health checks (`SELECT 1`, before a step on a connection idle for a second "
         "or more, or used before a step failed on the database)", "health check", None),
        ("Argon2 (password hashing or checking)", "Argon2 hash", None),
    ]
    rows = [("One message, in-process (MAIL FROM + DATA steps)", f"{p['ms']:.2f}",
             f"{bd.trips(n):.1f}", f"{bd.commits(n):.1f}"),
            ("- of which CPU time of the Python process", f"{p['cpu_ms']:.2f}", "", "")]
    for label, key, scope in parts:
        trips = f"{bd.trips(n, scope):.1f}" if scope else ""
        commits = f"{bd.commits(n, scope):.1f}" if scope else ""
        calls, ms = bd.calls[key] / n, bd.ms(key, n)
        if key == "Argon2 hash":
            calls, ms = argon2 / n, bd.ms("Argon2 hash", n) + bd.ms("Argon2 verify", n)
        rows.append((label, f"{ms:.2f} ({calls:g} per message)", trips, commits))
    rows.append(("All SQL, COMMITs and health checks (waiting on PostgreSQL)", f"{sql_all:.2f}",
                 "", ""))
    rows.append(("Everything else: Python outside SQL (and waiting for a CPU)",
                 f"{p['ms'] - sql_all:.2f}", "", ""))
    table = report.table(["Part of one relayed message", "wall ms", "PostgreSQL round trips",
                          "durable commits"], "lrrr", rows)
    own = dict(p["own"])
    total = own.pop("Total", 0.0) or 1e-9
    shares = [(label, secs / total) for label, secs in p["own"] if label != "Total"]
    areas = report.table(["Where the Python CPU goes (cProfile own time, grouped by file)",
                          "share", f"ms of the {p['cpu_ms']:.2f} ms unprofiled"], "lrr",
                         [(label, f"{share:.0%}", f"{share * p['cpu_ms']:.2f}")
                          for label, share in shares])
    top = [f"{label.split(' (')[0]} {share:.0%}" for label, share in shares
           if share >= 0.05 and label != report.OTHER][:4]
    s["profile"] = {"ms": p["ms"], "cpu_ms": p["cpu_ms"], "trips": bd.trips(n),
                    "commits": bd.commits(n), "argon2": argon2,
                    "areas": "of its CPU (cProfile): " + ", ".join(top)}
    served = 1000 / s["measured"] if s["measured"] else float("nan")
    c = s["cpu"]
    audit = (f"**The audit trail.**  Each message's audit event is written by `audit.record` near "
             f"the end of `send_message`, in the message's own transaction, as one `INSERT` "
             f"(in-process {bd.ms('audit record @ send_message', n):.2f} ms per message) that "
             "takes no lock: messages of one organisation (the gateway's and Compose's alike) "
             "do not wait for each other's COMMIT to be recorded.  The event is chained later, "
             "outside the message's transaction, by `hushpost worker`'s linker "
             "(`hushpost/audit/linker.py`, a batch per round under the chain's head lock), "
             "which no trial or profile of (e) runs.")
    sender_trips = (bd.calls["sender_of @ MAIL FROM check"] + bd.calls["sender_of @ receive_mail"])
    bound = _bound_text(res)
    return f"""{head}

**What bounds it: CPU, first of all the smtpd process's own Python.**  {bound[0].upper()}{bound[1:]}.
Served, the gateway accepted one message every {served:.2f} ms (all
{res.config.gateway_clients} connections together); the median message took
{s['latency']['gateway']['p50']:.1f} ms from MAIL FROM to the 250 (p95
{s['latency']['gateway']['p95']:.1f} ms), against {s['latency']['sink']['p50']:.2f} ms at the
sink.

In-process ({n} messages through the functions the smtpd worker threads run, each step inside
the server's own `_in_worker`; one thread, no SMTP, no executor), one message took
**{p['ms']:.2f} ms** of wall time and **{p['cpu_ms']:.2f} ms of Python CPU**, with
**{bd.trips(n):.1f} PostgreSQL round trips**, {bd.commits(n):.1f} durable commit(s), and
**{argon2:.0f} Argon2 calls** (no AUTH: no password is hashed or checked).  The sender is
looked up {sender_trips / n:.0f} time(s) per message (`sender_of` at MAIL FROM, one query; DATA
stores the message as the account MAIL FROM found).  The served smtpd CPU per
message ({c['gateway']:.2f} ms) also covers aiosmtpd's protocol handling, the hand-offs to the
executor and the log line, on a machine whose other tenants left it little idle; in-process
wall times include waiting for a CPU.  Parts nest, so they do not add up:

{table}

{audit}

{areas}

SQL statements per message, slowest first (savepoint names folded together):

{report.statement_table(bd.statements, n, STEPS, "message")}

cProfile (CPU time), {n} messages, by cumulative time:

{p['table']}

By own time:

{p['own_table']}"""


def verdicts(res) -> list[str]:
    p = res.summary["gateway"]["spool"]
    return [SPOOL_TARGET.log_line("gateway spool", p["ratio"], p["ratios"]) + (
        f"; CPU-cost ratio {p['cpu_ratio']:.3f} at DATA, {p['cpu_ratio_stored']:.3f} with the "
        f"worker's {sum(p['worker_cpu'].values()):.2f} ms per stored e-mail")]


PART = report.Part("gateway", results=results_rows, method=method_text, rounds=rounds_text,
                   cross_check=cross_check_text, note=note, target=TARGET, verdicts=verdicts)
