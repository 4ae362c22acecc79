from django.core.management.base import BaseCommand, CommandError

from hushpost.crypto.master import UnknownMasterKey
from hushpost.lib.refusals import Refused
from hushpost.orgs.models import Organization
from hushpost.server import rekey, remaster


class Command(BaseCommand):
    help = ("Organisation keys: 'keys rotate-org ORG' (a new version; the worker re-wraps older messages "
            "in the background), 'keys status ORG' (what each version still wraps), 'keys retire ORG VERSION' "
            "(destroy an old version once nothing needs it). The master key: 'keys rotate-master' (everything "
            "it wraps, wrapped again under HUSHPOST_MASTER_KEY), 'keys status' (what each master key wraps).")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("rotate-org").add_argument("org_slug", metavar="ORG_SLUG")
        sub.add_parser("status").add_argument("org_slug", metavar="ORG_SLUG", nargs="?")
        retire = sub.add_parser("retire")
        retire.add_argument("org_slug", metavar="ORG_SLUG")
        retire.add_argument("version", type=int)
        sub.add_parser("rotate-master")

    def handle(self, *args, action, org_slug=None, **options):
        try:
            if action == "rotate-master":
                moved = remaster.rotate(by="hushpost keys rotate-master")
                self.stdout.write(self.style.SUCCESS(f"{moved} wrapped values moved to the current master key."))
            if org_slug is None:
                self._master_status()
                return
            self._org(action, org_slug, options)
        except (Refused, UnknownMasterKey) as exc:
            raise CommandError(str(exc)) from None

    def _org(self, action, org_slug, options):
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise CommandError(f"no organisation {org_slug!r}; 'hushpost org list' shows them")
        if action == "rotate-org":
            key = rekey.rotate(org, by="hushpost keys rotate-org")
            self.stdout.write(self.style.SUCCESS(
                f"Key version {key.version} of {org.slug} is in use; the worker re-wraps older messages now."))
        elif action == "retire":
            rekey.retire(org, options["version"], by="hushpost keys retire")
            self.stdout.write(self.style.SUCCESS(f"Key version {options['version']} of {org.slug} is destroyed."))
        self.stdout.write(f"{'Version':<9}{'Created':<18}{'Messages':>10}{'Drafts':>8}{'Spooled':>9}")
        for use in rekey.status(org):
            self.stdout.write(f"{use.version:<9}{use.created_at:<18}{use.messages:>10}{use.drafts:>8}{use.spooled:>9}")

    def _master_status(self):
        self.stdout.write(f"{'Wrapped under the master key':<30}{'Current':>9}{'Previous':>10}{'Unreadable':>12}")
        for count in remaster.status():
            self.stdout.write(f"{count.kind:<30}{count.current:>9}{count.previous:>10}{count.unreadable:>12}")
