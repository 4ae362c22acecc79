"""``hushpost worker`` with stopwatches: where each e-mail's wall time goes, for (f).

    python -m bench.worker_probe --out FILE [--cprofile FILE] -- [worker options]

Runs the ``hushpost worker`` command itself (``hushpost.cli.main``), in the same
process as the stopwatches: ``bench.profiling.Breakdown`` times chosen steps of
``hushpost.notifications.delivery`` (among them ``record``, the audit event's
INSERT in each e-mail's transaction) and of the audit linker the worker runs
between e-mails (``hushpost.audit.linker.link``: its calls, the events it chains,
each chain's transaction, which holds the chain's head row from its
``FOR UPDATE`` to its COMMIT), and every SQL statement and COMMIT of the worker's
own connection (not its heartbeat thread's).  With ``--cprofile`` it runs under
cProfile (CPU time) instead, without the stopwatches.  Stopped by SIGTERM like
the worker; writes its findings as JSON when the worker has stopped.  SIGUSR1
starts the count afresh: the bench sends it when the e-mails are queued, so
that the idle polls before them are not counted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.profiling import Breakdown  # noqa: E402


class Probe(Breakdown):
    """Breakdown, plus the busy window: from the first e-mail sent to the last."""

    def __init__(self) -> None:
        super().__init__()
        self.restart()

    def restart(self, *_) -> None:
        self.calls.clear()
        self.secs.clear()
        self.statements.clear()
        self.first = self.last = 0.0

    def record(self, label: str, dt: float) -> None:
        super().record(label, dt)
        if label == "send one":
            now = time.perf_counter()
            self.first = self.first or now - dt
            self.last = now


def instrument(bd: Breakdown) -> None:
    from hushpost.accounts import emails as account_emails
    from hushpost.audit import linker
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
    # The linker as the worker calls it (``linker.link``), registered again so that what
    # each call returns is counted: the events it chained, and the calls that chained any.
    chained = linker.link

    def link(**kwargs) -> int:
        count = chained(**kwargs)
        bd.calls["audit events linked"] += count
        bd.calls["audit linker calls that linked"] += bool(count)
        return count

    linking = types.SimpleNamespace(link=link)
    linker.link = lambda **kwargs: linking.link(**kwargs)
    bd.timed(linking, "link", "audit linker", scope=True)
    # One chain's transaction: the head row locked from its FOR UPDATE to the COMMIT.
    bd.timed(linker, "_link_chain", "audit chain transaction", scope=True)


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
