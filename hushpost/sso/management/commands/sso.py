from django.core.management.base import BaseCommand, CommandError

from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.orgs.models import Organization
from hushpost.sso.actions import service_provider_values
from hushpost.sso.models import SingleSignOn


class Command(BaseCommand):
    help = ("An organisation's single sign-on: 'sso show ORG', or 'sso off ORG' when its identity provider "
            "is broken and nobody can sign in to fix the settings (its senders use passwords again; "
            "those with none ask for a reset link).")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        for name, text in (("show", "print the settings (never the client secret)"),
                           ("off", "turn single sign-on off, and with it 'single sign-on required'")):
            sub.add_parser(name, help=text).add_argument("org_slug", metavar="ORG_SLUG")

    def handle(self, *args, action, org_slug, **options):
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise CommandError(f"no organisation {org_slug!r}; 'hushpost org list' shows them")
        sso = SingleSignOn.objects.filter(org=org).first() or SingleSignOn(org=org)
        if action == "off":
            SingleSignOn.objects.filter(org=org).update(protocol="", required=False)
            record(AuditEvent.Action.ADMIN, org=org, actor_email="hushpost sso off", obj=org,
                   detail="turned single sign-on off")
            sso.protocol, sso.required = "", False
            self.stdout.write(self.style.SUCCESS(f"Single sign-on of {org.slug} is off."))
        rows = [
            ("Single sign-on", sso.get_protocol_display()),
            ("Required", "yes" if sso.required else "no"),
            ("Accounts at first sign-in", "yes" if sso.create_accounts else "no"),
            ("Admin group", sso.admin_group or "(none)"),
            ("OpenID Connect issuer", sso.oidc_issuer or "(none)"),
            ("OpenID Connect client ID", sso.oidc_client_id or "(none)"),
            ("Client secret", "saved" if sso.oidc_client_secret_sealed else "(none)"),
            ("SAML metadata URL", sso.saml_metadata_url or ("(pasted)" if sso.saml_metadata_xml else "(none)")),
            *service_provider_values(sso),
        ]
        width = max(len(label) for label, _ in rows) + 2
        for label, value in rows:
            self.stdout.write(f"{label + ':':<{width}}{value}")
