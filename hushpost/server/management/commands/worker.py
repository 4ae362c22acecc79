from django.core.management import call_command
from django.core.management.base import BaseCommand

from hushpost.notifications.actions import requeue_overdue


class Command(BaseCommand):
    help = "Run the background worker that delivers notifications."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.5,
                            help="seconds between polls when idle (default 0.5)")
        parser.add_argument("--batch", action="store_true", help="deliver what is due, then exit")

    def handle(self, *args, interval, batch, **options):
        requeued = requeue_overdue()
        if requeued:
            self.stdout.write(f"Re-queued {requeued} overdue notification(s).")
        call_command(
            "db_worker",
            interval=interval,
            batch=batch,
            reload=False,
            queue_name="*",
            startup_delay=False,
            verbosity=options.get("verbosity", 1),
        )
