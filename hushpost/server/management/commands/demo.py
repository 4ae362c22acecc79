import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from hushpost.accounts.actions import create_sender
from hushpost.accounts.models import User
from hushpost.orgs.actions import create_organization
from hushpost.orgs.models import Domain

DEMO_ORG = "Northwind Health"
DEMO_DOMAIN = "northwind.example"
DEMO_EMAIL = "alice@northwind.example"
DEMO_PASSWORD = "Quiet-harbour-lantern-42"  # noqa: S105 - the published demo login
IN_PRODUCTION = ("the demo creates an organisation admin whose password is published, so production mode "
                 "refuses it; run it with HUSHPOST_MODE=development for a local trial")


def ensure_demo() -> None:
    if not Domain.objects.filter(name=DEMO_DOMAIN).exists():
        create_organization(name=DEMO_ORG, domains=[DEMO_DOMAIN])
    if not User.objects.filter(email=DEMO_EMAIL, role=User.Role.SENDER).exists():
        create_sender(email=DEMO_EMAIL, name="Alice Moreno", password=DEMO_PASSWORD, admin=True)


class Command(BaseCommand):
    help = "Set up the demo organisation and run the web server and worker together."

    def add_arguments(self, parser):
        parser.add_argument("--setup-only", action="store_true", help="create the demo data and exit")

    def handle(self, *args, setup_only, **options):
        if settings.PRODUCTION:
            raise CommandError(IN_PRODUCTION)  # before migrate: nothing is created
        call_command("migrate", interactive=False, verbosity=0)
        ensure_demo()
        if setup_only:
            return
        env = dict(os.environ)
        hushpost = [sys.executable, "-m", "hushpost.cli"]
        procs = [
            subprocess.Popen([*hushpost, "serve", "--workers", "2"], env=env),  # noqa: S603
            subprocess.Popen([*hushpost, "worker"], env=env),  # noqa: S603
        ]
        mailbox = f"\n  Dev mailbox:  {settings.BASE_URL}/dev/mailbox" if settings.DEV_MAILBOX_ENABLED else ""
        self.stdout.write(
            self.style.SUCCESS("\nHushpost is running.\n")
            + f"  Open:         {settings.BASE_URL}/login\n"
            + f"  Sign in as:   {DEMO_EMAIL}\n"
            + f"  Password:     {DEMO_PASSWORD}"
            + mailbox
            + "\n  Stop with Ctrl+C.\n"
        )

        def stop(*_):
            for p in procs:
                if p.poll() is None:
                    p.terminate()

        signal.signal(signal.SIGTERM, stop)
        try:
            while all(p.poll() is None for p in procs):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
