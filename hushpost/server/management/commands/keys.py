from django.core.management.base import BaseCommand, CommandError

from hushpost.lib.refusals import Refused
from hushpost.orgs.models import Organization
from hushpost.server import rekey


class Command(BaseCommand):
    help = ("Organisation keys: 'keys rotate-org ORG' (a new version; the worker re-wraps older messages "
            "in the background), 'keys status ORG' (what each version still wraps), 'keys retire ORG VERSION' "
            "(destroy an old version once nothing needs it).")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        for name in ("rotate-org", "status"):
            sub.add_parser(name).add_argument("org_slug", metavar="ORG_SLUG")
        retire = sub.add_parser("retire")
        retire.add_argument("org_slug", metavar="ORG_SLUG")
        retire.add_argument("version", type=int)

    def handle(self, *args, action, org_slug, **options):
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise CommandError(f"no organisation {org_slug!r}; 'hushpost org list' shows them")
        try:
            if action == "rotate-org":
                key = rekey.rotate(org, by="hushpost keys rotate-org")
                self.stdout.write(self.style.SUCCESS(
                    f"Key version {key.version} of {org.slug} is in use; the worker re-wraps older messages now."))
            elif action == "retire":
                rekey.retire(org, options["version"], by="hushpost keys retire")
                self.stdout.write(self.style.SUCCESS(f"Key version {options['version']} of {org.slug} is destroyed."))
        except Refused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{'Version':<9}{'Created':<18}{'Messages':>10}{'Drafts':>8}")
        for use in rekey.status(org):
            self.stdout.write(f"{use.version:<9}{use.created_at:<18}{use.messages:>10}{use.drafts:>8}")
