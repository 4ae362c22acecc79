import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hushpost.gateway import server
from hushpost.gateway.processes import Processes
from hushpost.lib.env import ConfigError


class Command(BaseCommand):
    help = "Run the SMTP gateway: mail that organisations' servers relay here becomes secure messages."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=None,
                            help="address:port to listen on (default HUSHPOST_SMTPD_BIND, 127.0.0.1:2525)")
        parser.add_argument("--processes", type=int, default=None,
                            help="gateway processes accepting on that port (default HUSHPOST_SMTPD_PROCESSES, 1); "
                                 "each uses up to one core")

    def handle(self, *args, bind, processes, **options):
        count = settings.SMTPD_PROCESSES if processes is None else processes
        if count < 1:
            raise CommandError("--processes must be 1 or more")
        try:
            several = Processes(bind, count) if count > 1 else None
            gateway = several.gateway if several else server.build(bind)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        try:
            several.listen() if several else gateway.start()
        except Exception as exc:  # the address is taken, or not this host's
            raise CommandError(f"cannot listen on {gateway.address}: {exc}") from None
        tls = "STARTTLS required" if gateway.require_tls else ("STARTTLS offered" if gateway.tls else "no TLS")
        self.stdout.write(f"Hushpost SMTP gateway listening on {gateway.address} ({tls}; "
                          f"largest message {gateway.max_bytes // (1024 * 1024)} MB"
                          + (f"; {count} processes)" if several else ")"))
        self.stdout.flush()
        try:
            if several:
                several.run(stop)
            else:
                while not stop.wait(1):
                    pass
        finally:
            if not several:
                gateway.stop()
            self.stdout.write("Hushpost SMTP gateway stopped.")
