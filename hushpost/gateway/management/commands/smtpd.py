import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from hushpost.gateway import server
from hushpost.lib.env import ConfigError


class Command(BaseCommand):
    help = "Run the SMTP gateway: mail that organisations' servers relay here becomes secure messages."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=None,
                            help="address:port to listen on (default HUSHPOST_SMTPD_BIND, 127.0.0.1:2525)")

    def handle(self, *args, bind, **options):
        try:
            gateway = server.build(bind)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        try:
            gateway.start()
        except Exception as exc:  # the address is taken, or not this host's
            raise CommandError(f"cannot listen on {gateway.address}: {exc}") from None
        tls = "STARTTLS required" if gateway.require_tls else ("STARTTLS offered" if gateway.tls else "no TLS")
        self.stdout.write(f"Hushpost SMTP gateway listening on {gateway.address} ({tls}; "
                          f"largest message {gateway.max_bytes // (1024 * 1024)} MB)")
        self.stdout.flush()
        try:
            while not stop.wait(1):
                pass
        finally:
            gateway.stop()
            self.stdout.write("Hushpost SMTP gateway stopped.")
