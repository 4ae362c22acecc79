"""``hushpost worker`` with stopwatches: where each e-mail's wall time goes, for (f).

    python -m bench.worker_probe --out FILE [--cprofile FILE] -- [worker options]

Runs the ``hushpost worker`` command itself (``hushpost.cli.main``), in the same
process as the stopwatches: ``bench.profiling.Breakdown`` times chosen steps of
``hushpost.notifications.delivery`` and every SQL statement and COMMIT of the
worker's own connection (not its heartbeat thread's), and, beyond it, how long
each e-mail's transaction holds its organisation's audit-chain head row: from
the moment ``SELECT ... FROM audit_audithead ... FOR UPDATE`` returns to the end
of that transaction's COMMIT.  With ``--cprofile`` it runs under cProfile
(CPU time) instead, without the stopwatches.  Stopped by SIGTERM like the
worker; writes its findings as JSON when the worker has stopped.  SIGUSR1
starts the count afresh: the bench sends it when the e-mails are queued, so
that the idle polls before them are not counted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.profiling import Breakdown  # noqa: E402

HEAD_LOCK = re.compile(r'FROM "audit_audithead".*FOR UPDATE', re.DOTALL)


class Probe(Breakdown):
    """Breakdown, plus the audit head row's hold time and the busy window."""

    def __init__(self) -> None:
        super().__init__()
        self.restart()

    def restart(self, *_) -> None:
        self.calls.clear()
        self.secs.clear()
        self.statements.clear()
        self.locked_at: float | None = None
        self.first = self.last = 0.0

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return super().__call__(execute, sql, params, many, context)
        finally:
            if HEAD_LOCK.search(sql):
                self.locked_at = time.perf_counter()
                super().record("audit head SELECT FOR UPDATE", self.locked_at - t0)

    def record(self, label: str, dt: float) -> None:
        super().record(label, dt)
        now = time.perf_counter()
        if label == "send one":
            self.first = self.first or now - dt
            self.last = now
        if label == "COMMIT" and self.locked_at is not None:
            super().record("audit head held", now - self.locked_at)
            self.locked_at = None


def instrument(bd: Breakdown) -> None:
    from hushpost.accounts import emails as account_emails
    from hushpost.notifications import delivery, kinds
    from hushpost.notifications.models import Notification

    bd.timed(delivery, "_claim", "claim", scope=True)
    bd.timed(delivery, "send", "send one", scope=True)
    # The registry holds the Password Notification's own steps, `prepare` (is it still
    # wanted, and its temporary password) and `accepted` (the password set): registered
    # again, with a stopwatch around each.
    password = kinds.of(Notification(kind=Notification.Kind.PASSWORD))
    steps = types.SimpleNamespace(prepare=password.prepare, accepted=password.accepted)
    kinds.register(dataclasses.replace(password, prepare=lambda n: steps.prepare(n),
                                       accepted=lambda n, p: steps.accepted(n, p)))
    bd.timed(steps, "prepare", "password still wanted", scope=True)
    bd.timed(account_emails, "temporary_password", "temporary password")
    bd.timed(delivery, "build_email", "build_email")
    bd.timed(delivery.relay, "send", "SMTP")
    bd.timed(delivery, "_sent", "record sent", scope=True)
    bd.timed(steps, "accepted", "activate password", scope=True)
    bd.timed(delivery, "record", "audit record", scope=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--cprofile", default="")
    parser.add_argument("worker_args", nargs="*")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hushpost.settings")
    import django

    django.setup()
    from hushpost import cli

    argv = ["hushpost", "worker", *args.worker_args]
    started, cpu0 = time.perf_counter(), time.process_time()
    out: dict = {"pid": os.getpid()}
    if args.cprofile:
        import cProfile

        # The idle polls before the e-mails cost little CPU: counted, not reset.
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        try:
            cli.main(argv)
        finally:
            prof.disable()
            prof.dump_stats(args.cprofile)
    else:
        bd = Probe()
        instrument(bd)
        signal.signal(signal.SIGUSR1, bd.restart)
        try:
            with bd:
                cli.main(argv)
        finally:
            out.update(
                calls=dict(bd.calls), secs=dict(bd.secs), busy_s=bd.last - bd.first,
                statements=[[scope, sql, count, secs]
                            for (scope, sql), (count, secs) in bd.statements.items()],
            )
    out.update(wall_s=time.perf_counter() - started, cpu_s=time.process_time() - cpu0)
    Path(args.out).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
