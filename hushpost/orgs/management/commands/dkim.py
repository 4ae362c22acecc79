from django.core.management.base import BaseCommand, CommandError

from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.crypto import dkim
from hushpost.orgs.models import DkimKey


class Command(BaseCommand):
    help = ("DKIM signing keys of the domains notifications come from: 'dkim keygen --domain DOMAIN "
            "[--selector SELECTOR]' makes one and prints its DNS record; 'dkim show' lists them (docs/email.md).")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        keygen = sub.add_parser("keygen", help="create a signing key for a domain and print its DNS TXT record")
        keygen.add_argument("--domain", required=True, help="the domain of the From address notifications use")
        keygen.add_argument("--selector", default="",
                            help="the DNS selector (default: hp and the year and month, e.g. hp202611)")
        sub.add_parser("show", help="list the signing keys and their DNS TXT records")

    def handle(self, *args, action, **options):
        if action == "show":
            return self._show()
        try:
            key = dkim.create_key(options["domain"], options["selector"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        record(AuditEvent.Action.ADMIN, org=None, actor_email="hushpost dkim keygen (server shell)",
               detail=f"created the DKIM key {key.selector} for {key.domain}")
        self.stdout.write(self.style.SUCCESS(
            f"Created DKIM key {key.selector} for {key.domain}: e-mails from {key.domain} are signed with it "
            "from now on (every worker within a minute)."))
        self.stdout.write("Publish this DNS TXT record before the first e-mail goes (docs/email.md):")
        self._record(key)

    def _show(self):
        keys = list(DkimKey.objects.order_by("domain", "-created_at", "-pk"))
        if not keys:
            self.stdout.write("No DKIM keys: e-mails go unsigned. 'hushpost dkim keygen --domain DOMAIN' makes one.")
        signing = set()
        for key in keys:
            state = "inactive"
            if key.is_active:
                state = "signs" if key.domain not in signing else "published, no longer signs"
                signing.add(key.domain)
            self.stdout.write(f"{key.domain}\t{key.selector}\t{key.created_at:%Y-%m-%d %H:%M} UTC\t{state}")
            self._record(key)

    def _record(self, key: DkimKey):
        txt = dkim.record_of(key)
        self.stdout.write(f"  Name:  {txt.name}")
        self.stdout.write("  Type:  TXT")
        self.stdout.write("  Value: " + " ".join(f'"{s}"' for s in txt.strings))
        self.stdout.write(f"  Zone file: {txt.zone_line}")
