import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from hushpost.accounts.actions import AccountError, create_sender


class Command(BaseCommand):
    help = "Manage sender accounts: 'user add --email EMAIL --name NAME [--admin]'."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="create a sender; the password is read from stdin or prompted")
        add.add_argument("--email", required=True)
        add.add_argument("--name", required=True)
        add.add_argument("--admin", action="store_true", help="organisation administrator")

    def handle(self, *args, action, **options):
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("the passwords do not match")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        try:
            user = create_sender(
                email=options["email"], name=options["name"], password=password, admin=options["admin"]
            )
        except AccountError as exc:
            raise CommandError(str(exc)) from None
        role = "organisation admin" if user.is_org_admin else "sender"
        self.stdout.write(self.style.SUCCESS(f"Created {role} {user.email} in {user.org.name}"))
