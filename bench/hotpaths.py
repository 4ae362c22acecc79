"""(h) of ``make bench``: Hushpost's hot paths on one core, by CPU time per request.

Every server runs pinned to one core (``taskset``) as one gunicorn worker: the
product (``hushpost serve --workers 1``), the trivial Django view of (a) and a
PrivateBin-like paste server (``bench/pastebin.py``), both under the command
line ``hushpost serve`` builds.  The load processes run pinned to the other
cores.  Each path is measured against baselines measured in the same run,
rounds alternating the order:

* ``hello``: GET / of the trivial view (the baseline of ``send`` and ``open``);
* ``send``: POST /app/compose to one recipient, as the load of (a);
* ``open``: a recipient opens a message addressed to them;
* ``browser send``: the Compose page, the POST, and the message page the
  redirect names (with the flash cookie sent back, as a browser does);
* ``cycle``: a browser send, then its recipient opens the new message;
* ``paste cycle``: create a paste, GET its page, read (and burn) it.

The CPU of the server, of PostgreSQL's processes for the bench's database and
of the load clients is sampled over each window; the ratios are of CPU time per
request (all processes), the throughput ratios are reported beside them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from pathlib import Path
from urllib.parse import urlencode

from bench import loadgen, report
from bench.common import BIN, Server, free_port, log
from bench.environment import (
    ORG_DOMAIN,
    PASSWORD,
    Config,
    Results,
    clear_queue,
    disconnect,
    serve_argv,
    settle_database,
)
from bench.inbox import seed_inbox
from bench.profiling import Breakdown
from bench.sending import http_trial

PATHS = ("hello", "send", "open", "browser_send", "cycle", "paste_cycle")
LABELS = {"hello": "hello", "send": "send", "open": "open", "browser_send": "browser send",
          "cycle": "cycle", "paste_cycle": "PrivateBin-like cycle"}
SERVER_OF = {"hello": "trivial", "paste_cycle": "pastebin", "send": "hushpost",
             "open": "hushpost", "browser_send": "hushpost", "cycle": "hushpost"}
# (path, its baseline, what the ratio must reach): CPU per baseline op / CPU per path op.
COMPARED = (("send", "hello", report.Target(">=", 0.15)),
            ("open", "hello", report.Target(">=", 0.15)),
            ("browser_send", "hello", report.Target()),
            ("cycle", "paste_cycle", report.Target(">=", 0.10)))
GROUPS = ("gunicorn", "postgres", "clients")
SENDER_HOME, MESSAGE = "/app/", "/app/m/"
SENT = b"Your secure message was sent to 1 recipient."  # the flash the message page shows


# ------------------------------------------------------------------ load


def _paste() -> bytes:
    """A paste as PrivateBin's JavaScript posts it: ~1 KB of ciphertext, burn after reading."""
    b64 = base64.b64encode
    cipher = [b64(os.urandom(16)).decode(), b64(os.urandom(8)).decode(), 100000, 256, 128,
              "aes", "gcm", "zlib"]
    return json.dumps({"v": 2, "adata": [cipher, "plaintext", 0, 1],
                       "ct": b64(os.urandom(768)).decode(), "meta": {"expire": "1week"}}).encode()


AJAX = {"X-Requested-With": "JSONHttpRequest"}


def _paste_cycle(browser: loadgen.Browser):
    def step(n: int):
        status, _, body = browser.request(
            "POST", "/", body=_paste(), extra={**AJAX, "Content-Type": "application/json"})
        if status != 200 or b'"status":0' not in body:
            return False, status, body
        paste_id = json.loads(body)["id"]
        status, _, body = browser.request("GET", f"/?{paste_id}")
        if status != 200 or paste_id.encode() not in body:
            return False, status, body
        status, _, body = browser.request("GET", f"/?{paste_id}", extra=AJAX)
        return status == 200 and b'"ct":' in body, status, body
    return step


def _browser_send(browser: loadgen.Browser, to: str):
    """Compose page, send, then the message page the redirect names: the sender's browser."""
    def step(n: int):
        csrf = browser.csrf("/app/compose")
        status, headers, body = browser.request("POST", "/app/compose",
                                                loadgen.compose_form(csrf, to, n))
        location = headers.get("Location", "")
        if status != 302 or not location.startswith(MESSAGE):
            return False, status, body, ""
        status, _, body = browser.request("GET", location)
        return status == 200 and SENT in body, status, body, location[len(MESSAGE):]
    return step


def client(path: str, port: int, account: dict, cores: set[int] | None, barrier,
           warmup: float, duration: float, results) -> None:
    """One load process of (h), pinned to ``cores`` (None: not pinned)."""
    if cores:
        os.sched_setaffinity(0, cores)
    sender, reader = loadgen.Browser(port), loadgen.Browser(port)
    sender.ignored_cookies = frozenset()  # it follows redirects: the flash cookie comes back
    slug, uids = account["slug"], account["uids"]

    def setup():
        if path in ("send", "browser_send", "cycle"):
            sender.sign_in("/login", account["sender"], PASSWORD, SENDER_HOME)
        if path in ("open", "cycle"):
            reader.sign_in(f"/r/{slug}/login", account["reader"], PASSWORD, f"/r/{slug}/")
        if path == "hello":
            def hello(n: int):
                status, _, body = sender.request("GET", "/")
                return status == 200 and body == b"ok", status, body
            return hello
        if path == "paste_cycle":
            return _paste_cycle(sender)
        if path == "send":
            csrf = sender.csrf("/app/compose")

            def send(n: int):
                status, headers, body = sender.request(
                    "POST", "/app/compose", loadgen.compose_form(csrf, account["reader"], n))
                return (status == 302 and headers.get("Location", "").startswith(MESSAGE),
                        status, body)
            return send
        if path == "open":
            def open_(n: int):
                status, _, body = reader.request("GET", f"/r/{slug}/m/{uids[n % len(uids)]}")
                return status == 200, status, body
            return open_
        browser_send = _browser_send(sender, account["reader"])
        if path == "browser_send":
            return lambda n: browser_send(n)[:3]

        def cycle(n: int):
            ok, status, body, uid = browser_send(n)
            if not ok:
                return ok, status, body
            status, _, body = reader.request("GET", f"/r/{slug}/m/{uid}")
            return status == 200, status, body
        return cycle

    loadgen.run_load(setup, barrier, warmup, duration, results, [sender, reader])


# ------------------------------------------------------------------ setting up


def cores() -> tuple[int | None, set[int] | None]:
    """(the servers' core, the load's cores); (None, None) on a one-core machine."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return allowed[0], set(allowed[1:])


def seed(cfg: Config, seeds: dict) -> list[dict]:
    """A sender and a reader per load process, each reader with ``hot_messages`` messages."""
    from hushpost.accounts.actions import create_sender
    from hushpost.accounts.models import User
    from hushpost.messaging.models import Delivery

    org = seeds["org"]
    accounts = []
    for i in range(cfg.clients):
        sender = create_sender(email=f"hot-sender{i}@{ORG_DOMAIN}", name=f"Hot sender {i}",
                               password=PASSWORD)
        reader = User(org=org, email=f"hot-reader{i}@example.com", role=User.Role.RECIPIENT,
                      name="")
        reader.set_password(PASSWORD)
        reader.must_change_password = False
        reader.save()
        seed_inbox(org, reader, cfg.hot_messages, [sender])
        uids = list(Delivery.objects.filter(recipient=reader)
                    .values_list("message__uid", flat=True))
        accounts.append({"index": i, "sender": sender.email, "reader": reader.email,
                         "slug": org.slug, "uids": uids, "sender_user": sender,
                         "reader_user": reader})
    return accounts


def servers(cfg: Config, env: dict, workdir: Path, core: int | None) -> dict[str, Server]:
    """The product, the trivial view and the paste server: one gunicorn worker each, pinned."""
    pin = ["taskset", "-c", str(core)] if core is not None else []
    ports = {name: free_port() for name in ("hushpost", "trivial", "pastebin")}
    out = {"hushpost": Server(
        "hot-hushpost", [*pin, str(BIN / "hushpost"), "serve", "--bind",
                         f"127.0.0.1:{ports['hushpost']}", "--workers", "1"],
        env, ports["hushpost"], "/login", workdir)}
    pastes = workdir / "pastebin"
    pastes.mkdir(exist_ok=True)
    apps = {"trivial": "bench.trivial:application", "pastebin": "bench.pastebin:application"}
    for name, app in apps.items():
        argv = serve_argv(f"127.0.0.1:{ports[name]}", 1)
        argv = [app if a == "hushpost.wsgi:application" else a for a in argv]
        # Its own control socket, beside the product's.
        at = argv.index("--control-socket") + 1
        argv[at] = str(workdir / f"hot-{name}.ctl")
        app_env = {k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}
        app_env["BENCH_PASTEBIN_DIR"] = str(pastes)
        out[name] = Server(f"hot-{name}", [*pin, *argv], app_env, ports[name], "/", workdir)
    return out


# ------------------------------------------------------------------ measure


def bench_hot(cfg: Config, res: Results, env: dict, seeds: dict, workdir: Path) -> None:
    core, load_cores = cores()
    accounts = seed(cfg, seeds)
    log(f"(h) seeded {cfg.clients} senders and readers, {cfg.hot_messages} messages each; "
        + (f"servers on core {core}, load on {sorted(load_cores)}" if core is not None
           else "one core: nothing pinned"))
    sql = statements(accounts[0])
    clear_queue()
    settle_database()
    disconnect()
    trial_cfg = dataclasses.replace(cfg, warmup=cfg.hot_warmup, duration=cfg.hot_duration)
    plain = [{k: v for k, v in a.items() if not k.endswith("_user")} for a in accounts]
    started = servers(cfg, env, workdir, core)
    rounds: list[dict] = []
    try:
        for server in started.values():
            server.start()
        for r in range(cfg.hot_rounds):
            order = PATHS if r % 2 == 0 else tuple(reversed(PATHS))
            row: dict = {"round": r + 1}
            for path in order:
                server = started[SERVER_OF[path]]
                trial = http_trial(path, server.port, trial_cfg, plain, server.proc.pid,
                                   client=client, extra=(load_cores,))
                row[path] = trial
                c = trial["cpu_ms_per_req"]
                log(f"(h) round {r + 1} {LABELS[path]:22s}: {trial['rate']:8.1f}/s, CPU ms "
                    f"{c['gunicorn']:.2f} server + {c['postgres']:.2f} PostgreSQL + "
                    f"{c['clients']:.2f} clients")
            for path, base, _ in COMPARED:
                row[f"{path}_cpu_ratio"] = total(row[base]) / total(row[path])
                row[f"{path}_rate_ratio"] = row[path]["rate"] / row[base]["rate"]
            rounds.append(row)
    finally:
        for server in started.values():
            server.stop()
    clear_queue()
    disconnect()
    summary: dict = {"rounds": rounds, "pinned": core is not None, "core": core,
                     "load_cores": sorted(load_cores or []), "sql": sql}
    for path in PATHS:
        summary[path] = {
            "rate": report.med(r[path]["rate"] for r in rounds),
            "cpu": {g: report.med(r[path]["cpu_ms_per_req"][g] for r in rounds) for g in GROUPS},
            "p50_ms": report.med(r[path]["lat_p50_ms"] for r in rounds),
        }
    for path, _, _ in COMPARED:
        summary[f"{path}_ratios"] = [r[f"{path}_cpu_ratio"] for r in rounds]
        summary[f"{path}_ratio"] = report.med(summary[f"{path}_ratios"])
        summary[f"{path}_rate_ratio"] = report.med(r[f"{path}_rate_ratio"] for r in rounds)
    res.summary["hot"] = summary


def total(trial: dict) -> float:
    return sum(trial["cpu_ms_per_req"][g] for g in GROUPS)


# ------------------------------------------------------------------ statements


def statements(account: dict, n: int = 10) -> dict[str, dict[str, float]]:
    """SQL statements and PostgreSQL round trips per operation of each path, in-process
    (Django's test client: no gunicorn, so no connection health check at a request's start)."""
    from django.test import Client

    slug, to = account["slug"], account["reader"]
    sender, reader = Client(HTTP_HOST="127.0.0.1"), Client(HTTP_HOST="127.0.0.1")
    sender.force_login(account["sender_user"])
    reader.force_login(account["reader_user"])
    uids = account["uids"]
    form = "application/x-www-form-urlencoded"

    def post(i: int, csrf: str = "") -> str:
        r = sender.post("/app/compose", urlencode(loadgen.compose_form(csrf, to, i)),
                        content_type=form)
        if r.status_code != 302:
            raise RuntimeError(f"(h) statements, send: {r.status_code}")
        return r["Location"]

    def send(i: int) -> None:
        sender.cookies.pop("messages", None)
        post(i)

    def open_(i: int) -> None:
        if reader.get(f"/r/{slug}/m/{uids[i % len(uids)]}").status_code != 200:
            raise RuntimeError("(h) statements, open failed")

    def browser_send(i: int) -> str:
        sender.get("/app/compose")
        location = post(i)
        if sender.get(location).status_code != 200:
            raise RuntimeError("(h) statements, message page failed")
        return location[len(MESSAGE):]

    def cycle(i: int) -> None:
        if reader.get(f"/r/{slug}/m/{browser_send(i)}").status_code != 200:
            raise RuntimeError("(h) statements, recipient's page failed")

    out = {}
    for path, op in (("send", send), ("open", open_), ("browser_send", browser_send),
                     ("cycle", cycle)):
        op(0)  # warm: templates, caches
        with Breakdown() as bd:
            for i in range(1, n + 1):
                op(i)
        out[path] = {"statements": bd.n("SQL statement", n), "trips": bd.trips(n),
                     "commits": bd.commits(n)}
    return out


# ------------------------------------------------------------------- report


def _cpu(s: dict) -> str:
    c = s["cpu"]
    return f"{c['gunicorn']:.2f} / {c['postgres']:.2f} / {c['clients']:.2f}"


def results_rows(res: Results) -> list[tuple[str, ...]]:
    s = res.summary["hot"]
    rows = []
    for path, base, target in COMPARED:
        p, b = s[path], s[base]
        ratio = s[f"{path}_ratio"]
        rows.append((
            f"(h) {LABELS[path]} vs {LABELS[base]} on one core: CPU ms per operation, all "
            f"processes (throughput ratio {s[f'{path}_rate_ratio']:.3f})",
            f"{sum(p['cpu'].values()):.2f} ms ({p['rate']:.0f}/s)",
            f"{sum(b['cpu'].values()):.2f} ms ({b['rate']:.0f}/s)", f"{ratio:.3f}",
            *target.cells(ratio)))
    return rows


def verdicts(res: Results) -> list[str]:
    s = res.summary["hot"]
    return [target.log_line(f"hot_{path}", s[f"{path}_ratio"], s[f"{path}_ratios"],
                            f"CPU {LABELS[base]} / {LABELS[path]}")
            for path, base, target in COMPARED]


def method_text(res: Results) -> str:
    cfg, s = res.config, res.summary["hot"]
    pinned = (f"pinned with `taskset -c {s['core']}` to one core, the {cfg.clients} load "
              f"processes pinned (`os.sched_setaffinity`) to the other core(s) "
              f"{', '.join(map(str, s['load_cores']))}; PostgreSQL is not pinned"
              if s["pinned"] else
              "not pinned: the machine has one core, which the servers, the load and "
              "PostgreSQL share")
    return (
        "* **(h) Hot paths on one core.** Each server runs as one gunicorn worker (4 threads), "
        f"{pinned}.  The product is `hushpost serve --workers 1`; the baselines are the "
        "trivial view of (a) and `bench/pastebin.py`, a PrivateBin-like paste server (a "
        "minimal WSGI app, standard library only, since PHP and PrivateBin are not on the "
        "machine) doing what PrivateBin's server does per paste: check the posted JSON "
        "(format 2, ~1 KB of ciphertext already encrypted by the client), store it as a file "
        "(written, then renamed into place) and answer its id as JSON; serve a static page "
        "with the id; read the file back as JSON, deleting it (burn after reading).  Both run "
        "under the command line `hushpost serve` builds, only the WSGI app swapped (and a "
        f"control socket of their own).  {cfg.clients} load processes (stdlib `http.client`, "
        "keep-alive, a cookie jar each) run at once; each signs in (untimed) as a sender and a "
        "recipient of its own (password accounts; the recipient has "
        f"{cfg.hot_messages} messages seeded beforehand).  Paths: *hello* GETs `/` of the "
        "trivial view; *send* POSTs `/app/compose` to the process's recipient as in (a), not "
        "following the redirect; *open*: the recipient GETs `/r/<org>/m/<uid>` of its seeded "
        "messages in turn (opened again and again after the first time); *browser send* "
        "GETs the Compose page, takes its CSRF token, POSTs, and GETs the message page the "
        "redirect names, sending back the flash cookie as a browser does; *cycle* is a "
        "browser send, then the recipient opens the new message; the *PrivateBin-like cycle* "
        "is create, page, read.  One operation is one path (a cycle: all its requests).  "
        f"A trial is {cfg.hot_warmup:g} s of warm-up then {cfg.hot_duration:g} s measured; "
        f"{cfg.hot_rounds} rounds of all six paths, the order reversed every other round.  "
        "The ratio is CPU time per baseline operation / CPU time per operation of the path, "
        "CPU being the server's (gunicorn master and worker), PostgreSQL's (the bench "
        "database's backends and the background processes) and the load clients'; the "
        "throughput ratio (operations per second) is given beside it.  Before the first "
        "trial the queue left by earlier parts is cleared and the database vacuumed, analysed "
        "and checkpointed, so that PostgreSQL's CPU here is (h)'s own rows' and not "
        "autovacuum's and the checkpointer's work through the rows earlier parts wrote.  The "
        "worker does not run; the queued notifications are cleared afterwards.  SQL statements and "
        "PostgreSQL round trips per operation are counted in-process (Django's test client; "
        "under gunicorn a kept connection is checked on its socket before each request, no "
        "round trip either).  What each change to these paths gained, measured the same way "
        "before and after it: `docs/performance.md`.")


def rounds_text(res: Results) -> str:
    s = res.summary["hot"]
    rows = []
    for r in s["rounds"]:
        for path in PATHS:
            t = r[path]
            c = t["cpu_ms_per_req"]
            rows.append((r["round"], LABELS[path], f"{t['rate']:.1f}",
                         f"{c['gunicorn']:.2f} / {c['postgres']:.2f} / {c['clients']:.2f}",
                         f"{total(t):.2f}", f"{t['lat_p50_ms']:.1f} / {t['lat_p95_ms']:.1f}",
                         f"{t['other_cores']:.2f}"))
    ratios = [(r["round"], *(f"{r[f'{p}_cpu_ratio']:.3f} ({r[f'{p}_rate_ratio']:.3f})"
                             for p, _, _ in COMPARED)) for r in s["rounds"]]
    sql = [(LABELS[p], f"{v['statements']:.1f}", f"{v['trips']:.1f}", f"{v['commits']:.1f}")
           for p, v in s["sql"].items()]
    return "\n".join([
        "### (h) Hot paths on one core", "",
        report.table(["Round", "Path", "Operations/s",
                      "CPU ms per operation: server / PostgreSQL / clients", "CPU ms total",
                      "Latency p50 / p95 ms", "Unattributed CPU (cores)"], "rlrlrrr", rows),
        "", "CPU-cost ratios (throughput ratios) by round:", "",
        report.table(["Round", *(f"{LABELS[p]} vs {LABELS[b]}" for p, b, _ in COMPARED)],
                     "r" + "r" * len(COMPARED), ratios),
        "", "SQL per operation, in-process:", "",
        report.table(["Path", "SQL statements", "PostgreSQL round trips", "Durable commits"],
                     "lrrr", sql), ""])


def summary_line(res: Results) -> str:
    s = res.summary["hot"]
    return ("(h) CPU ms per operation on one core (server / PostgreSQL / clients): "
            + "; ".join(f"{LABELS[p]} {_cpu(s[p])}" for p in PATHS) + ".")


PART = report.Part("hot", results=results_rows, method=method_text, rounds=rounds_text,
                   cross_check=summary_line, verdicts=verdicts)
