from django.core.management.base import BaseCommand, CommandError

from hushpost.audit.actions import verify


class Command(BaseCommand):
    help = "The audit trail: 'audit verify' checks every organisation's hash chain."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="check that no event was changed, removed or re-ordered")

    def handle(self, *args, action, **options):
        verdict = verify()
        if verdict.broken:
            for problem in verdict.broken:
                self.stderr.write(problem)
            raise CommandError(f"the audit trail does not verify ({len(verdict.broken)} chain(s) broken)")
        self.stdout.write(self.style.SUCCESS(
            f"Audit trail intact: {verdict.events} events in {verdict.chains} chain(s)."))
