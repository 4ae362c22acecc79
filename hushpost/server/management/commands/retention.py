import os
import socket
import uuid

from django.core.management.base import BaseCommand, CommandError

from hushpost.orgs.models import Organization
from hushpost.retention import purge, summary
from hushpost.retention.plan import policy_of
from hushpost.server import periodic
from hushpost.server.background import RETENTION_JOB

COMMAND = "hushpost retention run"  # who the audit trail says purged: the operator's command, not the worker


def _owner() -> str:
    """This run's name on the lease, its own: two runs at once never end each other's lease."""
    return f"cli:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Command(BaseCommand):
    help = ("Retention: 'retention run' purges what each organisation's policy says is due (never what a legal "
            "hold keeps); 'retention show ORG' lists the holds and what the next purge would remove.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="purge now, whatever the worker's schedule; one run at a time")
        run.add_argument("--org", metavar="SLUG", help="only this organisation")
        run.add_argument("--dry-run", action="store_true", help="count what is due, change nothing")
        show = sub.add_parser("show", help="an organisation's policy, holds and the next purge")
        show.add_argument("org", metavar="ORG", help="the organisation's slug")

    def handle(self, *args, action, **options):
        if action == "show":
            return self._show(self._org(options["org"]))
        org = self._org(options["org"]) if options.get("org") else None
        if options["dry_run"]:
            for outcome in self._purge(org, dry_run=True, still_ours=None):
                self.stdout.write(f"{outcome.line()} (dry run: nothing changed)")
            return
        # The worker's lease, taken whatever the interval: never alongside a worker's run.
        lease = periodic.claim(RETENTION_JOB, _owner())
        if lease is None:
            raise CommandError("A retention purge is running already (a worker holds it); try again later.")
        outcomes = []
        try:
            outcomes = self._purge(org, dry_run=False, still_ours=lease.renew)
        finally:
            lease.finish("; ".join(o.line() for o in outcomes) or "nothing to do")
        for outcome in outcomes:
            self.stdout.write(outcome.line())

    def _purge(self, org, *, dry_run, still_ours):
        if org is not None:
            return [purge.purge_org(org, dry_run=dry_run, still_ours=still_ours, by=COMMAND)]
        if not dry_run:
            return purge.purge_all(still_ours=still_ours, by=COMMAND)
        return [purge.purge_org(o, dry_run=True) for o in Organization.objects.order_by("pk")
                if policy_of(o).is_on]

    def _org(self, slug):
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise CommandError(f"No organisation {slug!r}.")
        return org

    def _show(self, org):
        policy = policy_of(org)
        days = {"after expiry": policy.after_expiry_days, "after deletion by everyone": policy.after_deletion_days,
                "after the last activity": policy.after_activity_days}
        self.stdout.write(f"{org.name} ({org.slug})")
        if not policy.is_on:
            self.stdout.write("Retention policy: off (nothing is purged)")
        for label, value in days.items():
            if policy.is_on:
                self.stdout.write(f"  purge {label}: {'never' if value is None else f'{value} days'}")
        holds = list(summary.active_holds(org))
        self.stdout.write(f"Legal holds: {len(holds)}")
        for hold in holds:
            by = hold.created_by.email if hold.created_by else "?"
            self.stdout.write(f"  #{hold.pk} {summary.what_is_held(hold)}, since {hold.created_at:%Y-%m-%d} "
                              f"by {by}: {hold.reason}")
        preview = summary.next_purge(org)
        self.stdout.write(f"Next purge: {preview.count} message(s); {preview.held} kept by a hold")
        for item in preview.items:
            self.stdout.write(f"  {item.message.created_at:%Y-%m-%d %H:%M} {item.sender} → "
                              f"{', '.join(item.recipients) or '-'}: {item.why}")
