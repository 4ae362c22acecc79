import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hushpost.audit.chain import BadCheckpoint, read_checkpoint
from hushpost.audit.verify import checkpoint, verify


class Command(BaseCommand):
    help = ("The audit trail: 'audit verify' checks every organisation's hash chain; 'audit checkpoint' "
            "prints a signed checkpoint to keep outside Hushpost.")
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("verify", help="check that no event was changed, removed or re-ordered")
        check.add_argument("--checkpoint", metavar="FILE",
                           help="a checkpoint kept earlier ('-' reads it from standard input): the chains "
                                "must still hold every event it saw")
        sub.add_parser("checkpoint", help="print one signed line stating every chain's length and last hash")

    def handle(self, *args, action, **options):
        if action == "checkpoint":
            verdict, line = checkpoint()
            self._refuse_if_broken(verdict)
            self.stdout.write(line)
            return
        kept, taken = {}, ""
        if options.get("checkpoint"):
            taken, kept = self._read(options["checkpoint"], options.get("stdin") or sys.stdin)
        verdict = verify(kept)
        self._refuse_if_broken(verdict)
        since = f"; every event of the checkpoint of {taken} is still there" if taken else ""
        self.stdout.write(self.style.SUCCESS(
            f"Audit trail intact: {verdict.events} events in {verdict.chains} chain(s){since}."))

    def _read(self, path: str, stdin):
        try:
            text = stdin.read() if path == "-" else Path(path).read_text()
            return read_checkpoint(text.strip())
        except OSError as exc:
            raise CommandError(f"cannot read the checkpoint {path}: {exc.strerror or exc}") from None
        except BadCheckpoint as exc:
            raise CommandError(f"{path}: {exc}") from None

    def _refuse_if_broken(self, verdict):
        if verdict.broken:
            for problem in verdict.broken:
                self.stderr.write(problem)
            raise CommandError(f"the audit trail does not verify ({len(verdict.broken)} chain(s) broken)")
