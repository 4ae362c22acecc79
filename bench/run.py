"""``make bench``: Hushpost's throughput and latency on PostgreSQL, each against a baseline.

    .venv/bin/python bench/run.py [--quick] [--keep-db] [--no-profile] [--output PATH]
                                  [--database NAME] [--only LETTERS]

It creates its own database (``hushpost_bench``, or NAME) on the local PostgreSQL
(127.0.0.1:5432, user postgres), runs the production server (``hushpost serve``,
gunicorn) and the real worker against it, and measures, in one run:

(a) messages sent per second through the web send path (sign in, POST
    /app/compose with confirm=1) vs a trivial Django view served by the same
    gunicorn configuration (bench/sending.py, bench/trivial.py);
(b) notifications delivered per second by ``hushpost worker`` into a counting
    SMTP sink on loopback vs plain smtplib sending equivalent e-mails into it
    (bench/delivery.py);
(c) the recipient inbox page's latency (p50/p95) with 100 vs 10,000 messages
    (bench/inbox.py);
(d) a 1 GB attachment uploaded and downloaded through the web app vs a plain file
    copy / read on the same disk, and the gunicorn workers' peak memory meanwhile
    (bench/files.py);
(e) messages accepted per second by the SMTP gateway (``hushpost smtpd``), and
    by a second one with its spool on, vs a plain aiosmtpd sink, one process
    each, under the same SMTP load, with the worker's CPU to store what the
    spool accepted (bench/gateway.py, bench/spool_drain.py);
(f) Password Notifications (every recipient new) delivered per second by one
    and by two ``hushpost worker`` processes vs plain smtplib, with what the
    workers' database sessions wait for (bench/password_mail.py,
    bench/workers.py, bench/password_diagnosis.py);
(g) the time from sending a message to its e-mail reaching the sink while the
    send load of (a) runs for a minute, with one and with two workers
    (bench/latency.py);
(h) the hot paths (send, open, a browser's send, send-and-open) with the
    server pinned to one core as one gunicorn worker, by CPU time per request,
    vs a trivial view and a PrivateBin-like paste server (bench/hotpaths.py,
    bench/pastebin.py).

``--only`` runs some parts alone (``--only h``, ``--only a,c``): the database,
the seeding and the report as usual, the other parts left out of the report.

Trials of a measurement and its baseline alternate and repeat; the medians are
reported.  Each path is then profiled in-process (cProfile).  The report is
written to docs/benchmarks.md (bench/report.py).  The settings, the database,
the servers and the seeded organisation are bench/environment.py's.  All
traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import (  # noqa: E402
    delivery,
    environment,
    files,
    gateway,
    hotpaths,
    inbox,
    latency,
    password_diagnosis,
    password_mail,
    report,
    sending,
)
from bench.common import Server, free_port, log  # noqa: E402
from bench.environment import Config, Results  # noqa: E402
from bench.sink import Sink  # noqa: E402

# Each measurement's share of the report, in the report's order: (a) to (h).
PARTS = (sending.PART, delivery.PART, inbox.PART, files.PART, gateway.PART, password_mail.PART,
         latency.PART, hotpaths.PART)
LETTERS = "abcdefgh"
# The parts that load the shared servers (``hushpost serve`` and the trivial view).
ON_SHARED_SERVERS = set("acdg")


def measure(res: Results, env: dict, sink: Sink, servers: list[Server], seeds: dict,
            workdir: Path, only: set[str]) -> None:
    cfg = res.config
    product, trivial = servers or (None, None)
    if "a" in only:
        log("(a) sending vs trivial view")
        sending.bench_send(cfg, res, product, trivial, seeds)
    if "b" in only:
        log("(b) worker vs smtplib")
        delivery.bench_notify(cfg, res, env, sink, seeds, workdir)
    if "f" in only:
        log("(f) Password Notifications: one and two workers vs smtplib")
        password_mail.bench_password_mail(cfg, res, env, sink, seeds, workdir)
    if "c" in only:
        log("(c) inbox latency")
        inbox.bench_inbox(cfg, res, product, seeds)
    if "g" in only:
        log(f"(g) send to delivery under {cfg.latency_seconds:g} s of sending")
        latency.bench_latency(cfg, res, env, sink, product, seeds, workdir)
    if "d" in only:
        log(f"(d) a {cfg.files_mb} MB file up and down vs file copy and read")
        files.bench_files(cfg, res, product, seeds, workdir)
    for server in servers:
        server.stop()
    if "e" in only:
        log("(e) SMTP gateway vs plain aiosmtpd sink")
        gateway.bench_gateway(cfg, res, env, seeds, workdir)
    if "h" in only:
        log("(h) hot paths on one core vs a trivial view and a PrivateBin-like server")
        hotpaths.bench_hot(cfg, res, env, seeds, workdir)


def profile(res: Results, env: dict, sink: Sink, seeds: dict, workdir: Path,
            only: set[str]) -> None:
    if "a" in only:
        log("profiling the send path")
        res.profiles["send"] = sending.describe_send(sending.profile_send(seeds), res)
    if "b" in only:
        log("profiling the worker")
        res.profiles["notify"] = delivery.describe_notify(delivery.profile_notify(seeds), res)
    if "f" in only:
        log("(f) one and two workers under stopwatches and cProfile")
        res.profiles["password"] = password_diagnosis.describe(
            password_diagnosis.diagnose(res.config, env, sink, seeds, workdir), res)
    if "c" in only:
        log("profiling the inbox page")
        res.profiles["inbox"] = inbox.describe_inbox(inbox.profile_inbox(seeds), res)
    if "d" in only:
        log("profiling the file transfers")
        res.profiles["files"] = files.describe_files(files.profile_files(seeds, workdir), res)
    if "e" in only:
        log("profiling the SMTP gateway")
        res.profiles["gateway"] = gateway.describe_gateway(gateway.profile_gateway(seeds), res)


def letters(text: str) -> set[str]:
    """``--only``'s argument: part letters, commas optional (``h``, ``a,c``, ``ach``)."""
    chosen = {c for c in text.lower() if c not in ", "}
    if not chosen or chosen - set(LETTERS):
        raise argparse.ArgumentTypeError(f"parts are letters of {LETTERS}: {text!r}")
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short trials, 2k large inbox")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process profiles")
    parser.add_argument("--output", default=str(REPO / "docs" / "benchmarks.md"))
    parser.add_argument("--database", default=environment.DATABASE,
                        help="the database to create (and drop) for the run")
    parser.add_argument("--only", "--parts", type=letters, default=set(LETTERS),
                        metavar="LETTERS", help="run only these parts, e.g. h or a,c")
    args = parser.parse_args()
    only = args.only
    cfg = Config.quick() if args.quick else Config()
    ncpu = os.cpu_count() or 1
    cfg.workers = cfg.workers or 2 * ncpu + 1
    cfg.database = args.database
    res = Results(config=cfg, started=time.monotonic(), quick=args.quick)

    workdir = Path(tempfile.mkdtemp(prefix="hushpost-bench-"))
    web_port, trivial_port, smtp_port = free_port(), free_port(), free_port()
    env = environment.production_env(cfg.database, workdir, web_port, smtp_port)
    os.environ.clear()
    os.environ.update(env)

    log(f"{ncpu} cores; logs in {workdir}")
    res.machine = report.machine_info()
    environment.create_database(cfg.database)
    sink = Sink(smtp_port, workdir / "arrivals.log")
    servers: list[Server] = []
    failed = False
    try:
        res.machine["postgres"] = environment.migrate()
        seeds = environment.seed_base(cfg)
        sink.start()
        if only & ON_SHARED_SERVERS:
            servers = list(environment.web_servers(cfg, env, workdir, web_port, trivial_port))
            for server in servers:
                server.start()
            log(f"servers up: hushpost :{web_port}, trivial :{trivial_port}; sink :{smtp_port}")
        measure(res, env, sink, servers, seeds, workdir, only)
        report.log_verdicts(res, PARTS)
        if not args.no_profile:
            profile(res, env, sink, seeds, workdir, only)
        res.machine["loadavg_end"] = report.loadavg()
        res.finished = time.monotonic()
        report.write_report(res, Path(args.output), PARTS)
        log(f"wrote {args.output} ({res.finished - res.started:.0f} s)")
    except BaseException:
        failed = True
        for server in servers:
            tail = server.log_tail(20)
            if tail:
                print(f"--- {server.name} log tail ---\n{tail}", file=sys.stderr)
        raise
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop()
        with contextlib.suppress(Exception):
            sink.stop()
        with contextlib.suppress(Exception):
            environment.disconnect()
        if not args.keep_db:
            with contextlib.suppress(Exception):
                environment.drop_database(cfg.database)
        if failed:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
