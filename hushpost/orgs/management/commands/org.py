from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib.refusals import Refused
from hushpost.orgs.actions import add_domain, create_organization, normalize_domain
from hushpost.orgs.models import Organization
from hushpost.regions.discovery import regions_hosting


class Command(BaseCommand):
    help = ("Manage organisations: 'org add --name NAME --domain DOMAIN', 'org add-domain SLUG DOMAIN', "
            "'org list'.")

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
        add.add_argument("--skip-region-check", action="store_true",
                         help="create it even if another region cannot be asked whether it hosts the domain")
        more = sub.add_parser("add-domain", help="another mail domain of an organisation's staff")
        more.add_argument("slug")
        more.add_argument("domain")
        more.add_argument("--skip-region-check", action="store_true",
                          help="add it even if another region cannot be asked whether it hosts the domain")
        sub.add_parser("list", help="list organisations")

    def handle(self, *args, action, **options):
        if action == "list":
            for org in Organization.objects.prefetch_related("domains").order_by("name"):
                domains = ", ".join(d.name for d in org.domains.all())
                self.stdout.write(f"{org.slug}\t{org.name}\t{domains}")
            return
        if action == "add-domain":
            return self._add_domain(options["slug"], options["domain"], skip_silent=options["skip_region_check"])
        region = (options["region"] or settings.REGION).lower()
        if region != settings.REGION:
            where = settings.REGIONS.get(region)
            hint = f" ({where.base_url})" if where else ""
            raise CommandError(
                f"this deployment serves region {settings.REGION!r}; an organisation of region "
                f"{region!r} lives only in that region's deployment{hint}: run the command there"
            )
        try:
            self._check_other_regions(options["domain"], skip_silent=options["skip_region_check"])
            org = create_organization(
                name=options["name"], domains=options["domain"], sender_name=options["sender_name"]
            )
        except Refused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Created organisation {org.name} ({org.slug})"))

    def _add_domain(self, slug, domain, *, skip_silent):
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise CommandError(f"no organisation {slug!r} here; 'hushpost org list' shows them")
        try:
            self._check_other_regions([domain], skip_silent=skip_silent)
            added = add_domain(org, domain)
        except Refused as exc:
            raise CommandError(str(exc)) from None
        record(AuditEvent.Action.ADMIN, org=org, actor_email="hushpost org add-domain (server shell)", obj=org,
               detail=f"added the domain {added.name}")
        self.stdout.write(self.style.SUCCESS(f"{org.name} now has the domain {added.name}"))

    def _check_other_regions(self, domains, *, skip_silent):
        """A domain lives in one region: refuse one that another region already hosts."""
        for domain in domains:
            hosting, silent = regions_hosting(normalize_domain(domain))
            if hosting:
                where = ", ".join(f"{r.code!r} ({r.base_url})" for r in hosting)
                raise CommandError(f"{domain} is already an organisation's domain in region {where}; "
                                   "a domain lives in one region only")
            if silent and not skip_silent:
                names = ", ".join(repr(r.code) for r in silent)
                raise CommandError(f"region {names} did not answer, so it may already host {domain}; "
                                   "try again when it is reachable, or pass --skip-region-check")
