"""The worker's share of the gateway's spool, for (e): what was spooled, stored as messages.

    python -m bench.spool_drain        (the bench's environment: its database, its keys)

``hushpost worker`` stores spooled e-mails with ``hushpost.gateway.spool.store_due``, a
batch per round; its ``--batch`` run would also deliver the notifications those messages
queue, which (e) does not count for the synchronous gateway either.  This process runs the
same function alone, until it finds nothing due, so that its CPU (with its reader process,
which parses each e-mail) and PostgreSQL's is the cost of storing what the spool accepted.

Protocol, one line each on stdin and stdout: it prints ``READY`` once Django is set up and
its reader process is started (a running worker has both), drains when it reads a line,
prints ``DRAINED {"tried": n, "seconds": s, "rounds": k}``, and exits when stdin closes,
so that its CPU can be read from ``/proc`` while it is still there.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main() -> int:
    import django

    django.setup()
    from django.conf import settings

    from hushpost.gateway import reader, spool

    reader.read_mail(b"Subject: warm-up\r\n\r\nthe reader process, started\r\n",
                     settings.SMTPD_READ_CPU_SECONDS)
    print("READY", flush=True)
    sys.stdin.readline()
    tried = rounds = 0
    started = time.monotonic()
    while (batch := spool.store_due()) > 0:
        tried += batch
        rounds += 1
    seconds = time.monotonic() - started
    print("DRAINED " + json.dumps({"tried": tried, "seconds": seconds, "rounds": rounds}),
          flush=True)
    sys.stdin.read()
    reader.close_readers()
    return 0


if __name__ == "__main__":
    sys.exit(main())
