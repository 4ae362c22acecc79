import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from hushpost.server.metrics import forget_dead_processes


class Command(BaseCommand):
    help = "Run Hushpost's web application under gunicorn (the production server)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=settings.BIND)
        parser.add_argument("--workers", type=int, default=settings.WEB_WORKERS,
                            help="worker processes (default: 2 x cores + 1)")
        parser.add_argument("--threads", type=int, default=settings.WEB_THREADS)

    def handle(self, *args, bind, workers, threads, **options):
        workers = workers or (2 * (os.cpu_count() or 1) + 1)
        argv = [
            sys.executable, "-m", "gunicorn", "hushpost.wsgi:application",
            "--bind", bind,
            "--workers", str(workers),
            "--threads", str(threads),
            # gthread with deadlines for reading a request (see hushpost/server/worker.py).
            "--worker-class", "hushpost.server.worker.Worker",
            # gunicorn's own defaults, stated: longer lines or more fields are refused with a 400.
            "--limit-request-line", "4094", "--limit-request-fields", "100",
            "--limit-request-field_size", "8190",  # sic: gunicorn spells this one with "_"
            "--access-logfile", "-",
            # Path only: query strings can carry addresses, which stay out of logs.
            "--access-logformat", '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms',
            "--forwarded-allow-ips", settings.FORWARDED_ALLOW_IPS,
            # One control socket per deployment, so regions on one machine don't share one.
            "--control-socket", str(Path(settings.DATA_DIR) / "gunicorn.ctl"),
        ]
        forget_dead_processes()  # their counts, from before this start
        os.execvp(argv[0], argv)  # noqa: S606 - replaces this process with gunicorn
