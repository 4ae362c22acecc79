from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hushpost.lib.refusals import Refused
from hushpost.server.backup import restore


class Command(BaseCommand):
    help = ("Restore a backup into a fresh deployment (an empty database, the same master key and secret "
            "key): 'restore FOLDER'. Sessions are not carried over; the audit trail is verified.")

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path)

    def handle(self, *args, folder, **options):
        try:
            summary = restore(folder)
        except Refused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Restored {summary.organisations} organisation(s), {summary.messages} message(s) and "
            f"{summary.files} file(s) from {folder}."))
        if not summary.audit_ok:
            raise CommandError("the restored audit trail does not verify: 'hushpost audit verify' says where")
        self.stdout.write("The audit trail verifies. Run 'hushpost migrate' if this Hushpost is newer than the backup.")
