from django.core.management.base import BaseCommand

from hushpost.server.background import BackgroundWorker


class Command(BaseCommand):
    help = ("Run the background worker: delivers notifications and runs queued tasks. "
            "Rides out database and mail relay outages; stop it with SIGTERM.")

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.5,
                            help="seconds between polls when idle (default 0.5)")
        parser.add_argument("--batch", action="store_true", help="deliver what is due, then exit")

    def handle(self, *args, interval, batch, **options):
        worker = BackgroundWorker(interval=interval, batch=batch, heartbeat=not batch)
        worker.configure_signals()
        try:
            worker.run()
        finally:
            worker.reset_signals()
