from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hushpost.orgs.actions import OrgError, create_organization
from hushpost.orgs.models import Organization


class Command(BaseCommand):
    help = "Manage organisations: 'org add --name NAME --domain DOMAIN', 'org list'."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="create an organisation")
        add.add_argument("--name", required=True)
        add.add_argument("--domain", required=True, action="append",
                         help="a mail domain of its staff; repeat for several")
        add.add_argument("--region", default="",
                         help="the region it lives in; must be this deployment's (HUSHPOST_REGION)")
        add.add_argument("--sender-name", default="",
                         help="display name on notifications (default: the name)")
        sub.add_parser("list", help="list organisations")

    def handle(self, *args, action, **options):
        if action == "list":
            for org in Organization.objects.prefetch_related("domains").order_by("name"):
                domains = ", ".join(d.name for d in org.domains.all())
                self.stdout.write(f"{org.slug}\t{org.name}\t{domains}")
            return
        region = (options["region"] or settings.REGION).lower()
        if region != settings.REGION:
            where = settings.REGIONS.get(region)
            hint = f" ({where.base_url})" if where else ""
            raise CommandError(
                f"this deployment serves region {settings.REGION!r}; an organisation of region "
                f"{region!r} lives only in that region's deployment{hint}: run the command there"
            )
        try:
            org = create_organization(
                name=options["name"], domains=options["domain"], sender_name=options["sender_name"]
            )
        except OrgError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Created organisation {org.name} ({org.slug})"))
