"""(a) of ``make bench``: messages sent per second through the web send path vs a trivial view.

``clients`` load processes (``bench/loadgen.py``) each sign in as a sender of
their own and POST ``/app/compose`` with ``confirm=1`` to ``hushpost serve``;
the baseline is the same load GETting a trivial Django view served by the same
gunicorn command line.  Rounds alternate the two; the CPU of gunicorn,
PostgreSQL and the load clients is sampled over each window.  (g) reuses the
same send load while workers deliver.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from urllib.parse import urlencode

from bench import loadgen, report
from bench.common import CpuSampler, Server, log, machine_cpu, merge_clients
from bench.environment import Config, Results, sender_accounts
from bench.profiling import Breakdown, timed_then_profiled

TARGET = report.Target(">=", 0.30)  # sends per second / trivial requests per second
GROUPS = ("gunicorn", "postgres", "clients")


def http_trial(mode: str, port: int, cfg: Config, accounts: list[dict],
               gunicorn_pid: int, client=loadgen.client, extra: tuple = ()) -> dict:
    """One measured window of ``cfg.clients`` load processes (``send`` or ``trivial``).

    ``client`` is the load process's function, called with the mode, the port, its
    account, ``extra``, then the barrier, the warm-up, the duration and the result queue.
    """
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(cfg.clients + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=client, args=(mode, port, accounts[i], *extra, barrier, cfg.warmup,
                                         cfg.duration, results))
        for i in range(cfg.clients)
    ]
    for p in procs:
        p.start()
    try:
        barrier.wait(180)
    except Exception:  # noqa: S110 - a client failed; its result says why
        pass
    t0 = time.monotonic()
    time.sleep(max(0.0, t0 + cfg.warmup - time.monotonic()))
    sampler = CpuSampler(gunicorn_pid, {"clients": [p.pid for p in procs]}).start()
    mach0 = machine_cpu()
    time.sleep(max(0.0, t0 + cfg.warmup + cfg.duration - 0.05 - time.monotonic()))
    cpu, mach1 = sampler.stop(), machine_cpu()
    collected = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    load = merge_clients(collected, mode, "failed requests", cfg.duration)
    use = report.cpu_use(cpu, load["done"], cfg.duration - 0.05, mach0, mach1)
    return {
        "mode": mode,
        **load,
        "cpu_ms_per_req": use.ms_per_op,
        "machine_busy": use.busy,
        "cpu_cores_used": use.cores,
        # Cores busy with anything but the servers, PostgreSQL and the load: other tenants.
        "other_cores": use.other_cores,
    }


def bench_send(cfg: Config, res: Results, product: Server, trivial: Server, seeds: dict) -> None:
    from hushpost.messaging.models import Message

    accounts = sender_accounts(seeds)
    before = Message.objects.count()
    total_sent = 0
    for r in range(cfg.rounds_http):
        order = ("trivial", "send") if r % 2 == 0 else ("send", "trivial")
        row = {"round": r + 1}
        for mode in order:
            server = trivial if mode == "trivial" else product
            trial = http_trial(mode, server.port, cfg, accounts, server.proc.pid)
            row[mode] = trial
            if mode == "send":
                total_sent += trial["done"]
            log(f"(a) round {r + 1} {mode:7s}: {trial['rate']:8.1f} req/s "
                f"(p50 {trial['lat_p50_ms']:.1f} ms, machine busy {trial['machine_busy']:.0%})")
        row["ratio"] = row["send"]["rate"] / row["trivial"]["rate"]
        res.send_rounds.append(row)
    stored = Message.objects.count() - before
    if stored < total_sent:
        raise RuntimeError(f"(a) counted {total_sent} sends but only {stored} messages were stored")

    def cpu(mode: str) -> dict[str, float]:
        return {g: report.med(r[mode]["cpu_ms_per_req"][g] for r in res.send_rounds)
                for g in GROUPS}

    send_cpu, trivial_cpu = cpu("send"), cpu("trivial")
    res.summary["send"] = {
        "measured": report.med(r["send"]["rate"] for r in res.send_rounds),
        "baseline": report.med(r["trivial"]["rate"] for r in res.send_rounds),
        "ratio": report.med(r["ratio"] for r in res.send_rounds),
        "ratios": [r["ratio"] for r in res.send_rounds],
        "cpu": send_cpu, "trivial_cpu": trivial_cpu,
        # CPU cost per trivial request / per send: what the rate ratio tends to when the
        # machine is saturated by the bench alone, unaffected by other tenants' load.
        "cpu_ratio": sum(trivial_cpu.values()) / sum(send_cpu.values()),
    }


# ------------------------------------------------------------------ profile


def profile_send(seeds: dict, n: int = 150) -> dict:
    """The compose POST in-process (Django test client, no gunicorn): breakdown + cProfile."""
    from django.test import Client

    from hushpost.messaging import actions as messaging_actions
    from hushpost.messaging.forms import ComposeForm
    from hushpost.senders import views as sender_views

    sender = seeds["senders"][-1]
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(sender)
    pool = [u.email for u in seeds["pool"]]

    def post(i: int) -> None:
        # Like the load clients, do not send back the flash-message cookie (a browser
        # would have it consumed by the page the redirect leads to).
        client.cookies.pop("messages", None)
        # Form-encoded, as a browser (and the load clients) send it.
        data = urlencode(loadgen.compose_form("", pool[i % len(pool)], i))
        r = client.post("/app/compose", data, content_type="application/x-www-form-urlencoded")
        if r.status_code != 302:
            raise RuntimeError(f"profile send: {r.status_code}")

    for i in range(10):  # warm-up
        post(i)
    bd = Breakdown()
    bd.timed(sender_views, "send_message", "send_message", scope=True)
    bd.timed(ComposeForm, "full_clean", "form validation")
    bd.timed(messaging_actions, "seal_content", "seal_content")
    bd.timed(messaging_actions, "queue_notification", "queue_notification")
    def sends() -> None:
        for i in range(n):
            post(i)

    wall, cpu, prof = timed_then_profiled(bd, sends)
    return {"n": n, "ms": 1000 * wall / n, "cpu_ms": 1000 * cpu / n, "bd": bd,
            "table": report.profile_table(prof, 24),
            "own_table": report.profile_table(prof, 14, "own")}


def describe_send(p: dict, res: Results) -> str:
    s = res.summary["send"]
    bd, n = p["bd"], p["n"]
    c, t = s["cpu"], s["trivial_cpu"]
    send_total, trivial_total = sum(c.values()), sum(t.values())
    allowed = trivial_total / TARGET.value
    busy = report.med(r["send"]["machine_busy"] for r in res.send_rounds)
    ok = TARGET.met(s["ratio"])
    head = (f"### (a) Sending: target {'met' if ok else 'missed'}: {s['ratio']:.3f} vs {TARGET}"
            + ("" if ok else f" (sending would have to be {TARGET.value / s['ratio']:.1f}x faster "
                             "relative to the trivial view)"))
    if c["postgres"] >= allowed:
        bound = (f"less than PostgreSQL alone spends per send ({c['postgres']:.2f} ms), so no "
                 "change to the Python side can reach the target on this machine")
    else:
        bound = (f"which would leave the gunicorn process about "
                 f"{max(0.0, allowed - c['postgres'] - c['clients']):.2f} ms instead of "
                 f"{c['gunicorn']:.2f} ms")
    in_send = bd.calls["SQL statement @ send_message"]
    sql_total = bd.ms("SQL statement", n) + bd.ms("COMMIT", n)
    rows = [
        ("Whole request, in-process (test client; no HTTP, no gunicorn)", f"{p['ms']:.2f}", ""),
        ("- of which CPU time of the Python process", f"{p['cpu_ms']:.2f}", ""),
        ("Form validation (`ComposeForm.full_clean`, incl. HTML sanitising)",
         f"{bd.ms('form validation', n):.2f}", f"{bd.n('form validation', n):.0f}"),
        ("`send_message`", f"{bd.ms('send_message', n):.2f}", ""),
        ("- its SQL statements", f"{bd.ms('SQL statement @ send_message', n):.2f}",
         f"{in_send / n:.1f}"),
        ("- its COMMIT", f"{bd.ms('COMMIT @ send_message', n):.2f}",
         f"{bd.n('COMMIT @ send_message', n):.1f}"),
        ("- `seal_content` (org key query + 3 x AES-GCM)",
         f"{bd.ms('seal_content @ send_message', n):.2f}", ""),
        ("- `queue_notification` (notification + task rows)",
         f"{bd.ms('queue_notification @ send_message', n):.2f}", ""),
        ("SQL outside `send_message` (session and user lookups, the view's own queries)",
         f"{bd.ms('SQL statement', n) - bd.ms('SQL statement @ send_message', n):.2f}",
         f"{(bd.calls['SQL statement'] - in_send) / n:.1f}"),
        ("All SQL + COMMIT (wall time waiting on PostgreSQL)", f"{sql_total:.2f}", ""),
        ("Everything else: Python (middleware, forms, ORM, crypto, response) and waiting "
         "for a CPU",
         f"{p['ms'] - sql_total:.2f}", ""),
    ]
    table = report.table(["Part of one send", "ms", "calls / statements"], "lrr", rows)
    return f"""{head}

**What bounds it: CPU.**  In the sending trials the machine was {busy:.0%} busy.  One send cost
{c['gunicorn']:.2f} ms of gunicorn CPU + {c['postgres']:.2f} ms of PostgreSQL CPU +
{c['clients']:.2f} ms of load-client CPU = **{send_total:.2f} ms**; one trivial request cost
{trivial_total:.3f} ms.  The CPU-cost ratio {trivial_total:.3f} / {send_total:.2f} =
{s['cpu_ratio']:.3f} agrees with the measured throughput ratio {s['ratio']:.3f}.  At {TARGET.value:.2f} x the
trivial rate a send could cost at most {trivial_total:.3f} / {TARGET.value:.2f} = **{allowed:.2f} ms of CPU
in all**, {bound}.

One send in-process, {n} sends timed (parts nest, so they do not add up).  PostgreSQL round
trips per send: **{bd.trips(n):.1f}** (statements + BEGIN/COMMIT; under gunicorn one more, the
`SELECT 1` connection health check at the start of each request, which the test client skips),
{bd.commits(n):.1f} durable commit(s).  The served gunicorn CPU per send ({c['gunicorn']:.2f} ms)
is higher than the in-process CPU ({p['cpu_ms']:.2f} ms, one thread on a less busy machine); this
bench does not break that difference down (HTTP and WSGI handling cost a trivial request only
{t['gunicorn']:.2f} ms; the CSRF check and the health check are small; {res.config.workers}
processes x 4 threads sharing 2 saturated cores inflate CPU time through scheduling and cache
misses).

{table}

SQL statements per send, slowest first:

{report.statement_table(bd.statements, n, {'': 'request', 'send_message': 'send_message'})}

cProfile (CPU time), {n} sends, by cumulative time:

{p['table']}

By own time:

{p['own_table']}"""


# ------------------------------------------------------------------- report


def results_rows(res: Results) -> list[tuple[str, ...]]:
    s, cfg = res.summary["send"], res.config
    return [(f"(a) Messages sent per second through `POST /app/compose` vs a trivial Django "
             f"view; same gunicorn ({cfg.workers} workers x 4 threads), {cfg.clients} concurrent "
             "clients", f"{s['measured']:.1f}/s", f"{s['baseline']:.1f}/s", f"{s['ratio']:.3f}",
             *TARGET.cells(s["ratio"]))]


def cross_check_text(res: Results) -> str:
    s = res.summary["send"]
    return (f"Cross-check for (a), less sensitive to other tenants' load: CPU cost of a trivial "
            f"request / CPU cost of a send (all processes: gunicorn, PostgreSQL, load clients) = "
            f"**{s['cpu_ratio']:.3f}**.")


def method_text(res: Results) -> str:
    cfg = res.config
    return (
        f"* **(a) Sending.** Hushpost runs under `hushpost serve --workers {cfg.workers}` "
        "(gunicorn, gthread, 4 threads per worker, access log on, as in production; "
        f"{cfg.workers} = `hushpost serve`'s default of 2 x cores + 1).  The baseline is "
        "`bench/trivial.py`, a Django view returning `ok` with its own minimal settings (no "
        "middleware, no database), served by gunicorn with the command line `hushpost serve` "
        "itself builds (captured from it), only the WSGI app swapped.  "
        f"{cfg.clients} load processes (stdlib `http.client`, one keep-alive connection and "
        "cookie jar each) run at once.  For sending, each signs in as its own sender (untimed), "
        "takes the CSRF token from the Compose page, then repeatedly POSTs `/app/compose` "
        "form-encoded with `confirm=1`, a fresh `send_token`, one recipient from a pool of "
        f"{cfg.recipients_pool} existing recipient accounts, a subject and a ~600-byte HTML "
        "body, and counts a send when it gets the `302` to the new message.  Like "
        "`tests/helpers.send` it does not follow the redirect (and so does not send back the "
        "flash-message cookie).  For the baseline each process GETs `/`.  A trial is "
        f"{cfg.warmup:g} s of warm-up then {cfg.duration:g} s measured; {cfg.rounds_http} rounds "
        "of (trivial, send), the order alternating.  The worker does not run during (a); each "
        "send still stores and queues its notification (message, delivery, notification and "
        "task rows in one transaction), and the number of stored messages is checked against "
        "the count.")


def rounds_text(res: Results) -> str:
    rows = []
    for r in res.send_rounds:
        sc, tc = r["send"]["cpu_ms_per_req"], r["trivial"]["cpu_ms_per_req"]
        rows.append((r["round"], f"{r['trivial']['rate']:.1f}", f"{r['send']['rate']:.1f}",
                     f"{r['ratio']:.3f}",
                     f"{r['send']['lat_p50_ms']:.0f} / {r['send']['lat_p95_ms']:.0f} ms",
                     f"{sc['gunicorn']:.2f} / {sc['postgres']:.2f} / {sc['clients']:.2f}",
                     f"{tc['gunicorn']:.3f} / {tc['clients']:.3f}",
                     f"{r['trivial']['other_cores']:.2f} / {r['send']['other_cores']:.2f}"))
    return "\n".join([
        "### (a) Sending vs trivial view", "",
        report.table(["Round", "Trivial req/s", "Send req/s", "Ratio", "Send latency p50 / p95",
                      "CPU ms per send: gunicorn / PostgreSQL / clients",
                      "CPU ms per trivial request: gunicorn / clients",
                      "Unattributed CPU (cores), trivial / send"], "rrrrrlll", rows), ""])


PART = report.Part("send", results=results_rows, method=method_text, rounds=rounds_text,
                   cross_check=cross_check_text, target=TARGET)
