import argparse
import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from hushpost.gateway.config import configure, describe
from hushpost.lib.refusals import Refused
from hushpost.orgs.models import Organization


class Command(BaseCommand):
    help = ("Configure an organisation's SMTP gateway: 'gateway set ORG [--networks ...] "
            "[--auth-user NAME | --no-auth] [--keyword K] [--route-all | --no-route-all]', 'gateway show ORG'.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        set_ = sub.add_parser("set", help="change the settings given; the others stay")
        set_.add_argument("org_slug", metavar="ORG_SLUG")
        set_.add_argument("--networks", default=None,
                          help="client networks that may relay, e.g. 10.0.0.0/8,192.0.2.7/32 ('' for none)")
        set_.add_argument("--allow-wide-network", action="store_true",
                          help="accept a network wider than /8 (IPv4) or /32 (IPv6); only if it is all yours")
        set_.add_argument("--auth-user", default=None,
                          help="SMTP AUTH user name; its password is read from stdin (or prompted)")
        set_.add_argument("--no-auth", action="store_true", help="remove the SMTP AUTH user")
        set_.add_argument("--keyword", default=None, help="subject keyword that makes mail secure (default [secure])")
        set_.add_argument("--route-all", action=argparse.BooleanOptionalAction, default=None,
                          help="every message relayed is secure, keyword or not")
        show = sub.add_parser("show", help="print the settings (never the password)")
        show.add_argument("org_slug", metavar="ORG_SLUG")

    def handle(self, *args, action, org_slug, **options):
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise CommandError(f"no organisation {org_slug!r}; 'hushpost org list' shows them")
        if action == "set":
            password = self._password() if options["auth_user"] is not None else None
            try:
                configure(org, networks=options["networks"], auth_user=options["auth_user"],
                          password=password, remove_auth=options["no_auth"], keyword=options["keyword"],
                          route_all=options["route_all"], allow_wide_network=options["allow_wide_network"])
            except Refused as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(self.style.SUCCESS(f"Gateway settings of {org.slug} saved."))
        width = max(len(label) for label, _ in describe(org)) + 2
        for label, value in describe(org):
            self.stdout.write(f"{label + ':':<{width}}{value}")

    def _password(self) -> str:
        if sys.stdin.isatty():
            password = getpass.getpass("Gateway password: ")
            if getpass.getpass("Gateway password (again): ") != password:
                raise CommandError("the passwords do not match")
            return password
        return sys.stdin.readline().rstrip("\r\n")
