from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hushpost.lib.refusals import Refused
from hushpost.server.backup import backup


class Command(BaseCommand):
    help = ("Back up the database and the file store into a new folder: 'backup FOLDER'. The keys are "
            "not in it; keep HUSHPOST_MASTER_KEY and HUSHPOST_SECRET_KEY apart, 'restore' needs them.")

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path)

    def handle(self, *args, folder, **options):
        try:
            summary = backup(folder)
        except Refused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Backed up {summary.organisations} organisation(s), {summary.messages} message(s) and "
            f"{summary.files} file(s) to {folder}."))
