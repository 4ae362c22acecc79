"""The delivery worker's own cost per e-mail: CPU milliseconds and SQL statements.

    python -m bench.worker_cpu [--count 400] [--runs 3] [--mix both|password|message]

A quick, repeatable measurement of one worker's cost per e-mail, for changes to the
delivery path (``make bench`` measures the rates).  Each run, on a fresh PostgreSQL
database (``hushpost_speed_bench`` by default, dropped at the end):

* queues ``count`` notifications through the real ``send_message``: for the
  ``password`` mix (as in (f)) half as many messages to addresses never seen, each
  a Password Notification then a Secure Messaging Notification; for the ``message``
  mix (as in (b)) as many messages to existing recipients, each a Secure Messaging
  Notification;
* runs ``hushpost worker``'s loop in batch mode in this process (no heartbeat, no
  migration check) against a counting SMTP sink in another process, and reads the
  worker's CPU time (``time.process_time``) over the whole loop;
* queues a quarter as many again and counts the statements the worker runs for
  them (each BEGIN, COMMIT, SAVEPOINT and RELEASE included, as the query budgets
  count them), in a separate pass so that counting does not weigh on the CPU time.

With ``--cprofile FILE`` the last run's CPU pass runs under cProfile (and so
slower), its statistics written to ``FILE.<mix>``.

A few e-mails go first, unmeasured: templates compiled, the organisation's key
unwrapped, the audit chain begun.  Prints each run and the medians.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import free_port  # noqa: E402
from bench.environment import production_env  # noqa: E402
from bench.sink import Sink  # noqa: E402

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
ORG_DOMAIN = "cpu-bench.example"
WARM_UP = 6


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(sql)


def _queue(author, readers: list, count: int, mix: str, tag: str) -> None:
    from hushpost.messaging.actions import Addressees, SendOptions, send_message

    messages = count // 2 if mix == "password" else count
    for i in range(messages):
        to = f"new-{tag}-{i}@first-contact.example" if mix == "password" else readers[i % len(readers)].email
        send_message(author=author, addressees=Addressees(to=[to]), subject=f"Your results ({i})",
                     body_html="<p>Your results are ready.</p>", options=SendOptions(),
                     send_token=secrets.token_urlsafe(24))


def _work() -> None:
    from hushpost.server.background import BackgroundWorker

    loop = BackgroundWorker(interval=0, batch=True, heartbeat=False)
    loop.wait_until_ready = lambda: True
    loop.run()


def one_run(db: str, count: int, mix: str, sink: Sink, profile: str = "") -> dict:
    from django.core.management import call_command
    from django.db import connection, connections

    _admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{db}"')
    try:
        call_command("migrate", interactive=False, verbosity=0)
        from hushpost.accounts.actions import create_sender
        from hushpost.accounts.models import User
        from hushpost.notifications.models import Notification
        from hushpost.orgs.actions import create_organization

        org = create_organization(name="CPU Bench", domains=[ORG_DOMAIN])
        author = create_sender(email=f"sender@{ORG_DOMAIN}", name="Sender", password="Bench-orchard-velvet-73")
        readers = []
        for i in range(count):
            user = User(org=org, email=f"reader{i}@example.com", role=User.Role.RECIPIENT,
                        must_change_password=False)
            user.set_unusable_password()
            user.save()
            readers.append(user)

        _queue(author, readers, WARM_UP, mix, "warm")
        _work()

        _queue(author, readers, count, mix, "cpu")
        sink.reset()
        if profile:
            import cProfile

            prof = cProfile.Profile(time.process_time)
            prof.enable()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        _work()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if profile:
            prof.disable()
            prof.dump_stats(profile)
        delivered = sink.wait_for(count, 10)

        counted = count // 4
        _queue(author, readers, counted, mix, "sql")
        connection.force_debug_cursor = True
        connection.queries_log.clear()
        try:
            _work()
            statements = len(connection.queries_log)
        finally:
            connection.force_debug_cursor = False
        pending = Notification.objects.exclude(status=Notification.Status.SENT).count()
        if delivered != count or pending:
            raise RuntimeError(f"{delivered} of {count} e-mails arrived, {pending} notification(s) not sent")
        return {"cpu_ms": 1000 * cpu / count, "wall_ms": 1000 * wall / count,
                "statements": statements / counted}
    finally:
        connections.close_all()
        _admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=400, help="e-mails measured per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mix", choices=["both", "password", "message"], default="both")
    parser.add_argument("--database", default="hushpost_speed_bench")
    parser.add_argument("--cprofile", default="", help="profile the CPU pass of the last run into this file")
    args = parser.parse_args()

    smtp_port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="hushpost-worker-cpu-"))
    env = production_env(args.database, workdir, web_port=8000, smtp_port=smtp_port)
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()
    # As `hushpost worker` logs: a line per task, kept here in memory.
    tasks_logger = logging.getLogger("django.tasks")
    tasks_logger.setLevel(logging.INFO)
    tasks_logger.addHandler(logging.StreamHandler(StringIO()))
    tasks_logger.propagate = False

    mixes = ["password", "message"] if args.mix == "both" else [args.mix]
    sink = Sink(smtp_port)
    sink.start()
    try:
        for mix in mixes:
            runs = []
            for n in range(args.runs):
                profile = f"{args.cprofile}.{mix}" if args.cprofile and n == args.runs - 1 else ""
                result = one_run(args.database, args.count, mix, sink, profile)
                runs.append(result)
                print(f"{mix:8} run {n + 1}: {result['cpu_ms']:.2f} ms CPU per e-mail, "
                      f"{result['statements']:.2f} statements per e-mail "
                      f"({result['wall_ms']:.2f} ms wall)", flush=True)
            print(f"{mix:8} median: {statistics.median(r['cpu_ms'] for r in runs):.2f} ms CPU per e-mail "
                  f"(least {min(r['cpu_ms'] for r in runs):.2f}), "
                  f"{statistics.median(r['statements'] for r in runs):.2f} statements per e-mail "
                  f"({statistics.median(r['wall_ms'] for r in runs):.2f} ms wall)", flush=True)
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
