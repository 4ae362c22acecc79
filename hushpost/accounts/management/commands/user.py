import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from hushpost.accounts.actions import create_sender, update_sender
from hushpost.accounts.models import User
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib.refusals import Refused


class Command(BaseCommand):
    help = ("Manage sender accounts: 'user add --email EMAIL --name NAME [--admin] [--invite]', "
            "'user set --email EMAIL [--name NAME] [--admin|--no-admin] [--new-email NEW]'.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="create a sender: with --invite they choose their password from an "
                                         "e-mailed link; else a first password is read from stdin or prompted, "
                                         "and they must replace it at first sign-in")
        add.add_argument("--email", required=True)
        add.add_argument("--name", required=True)
        add.add_argument("--admin", action="store_true", help="organisation administrator")
        add.add_argument("--invite", action="store_true",
                         help="e-mail an invitation to choose their own password (no password is asked for)")
        change = sub.add_parser("set", help="change a sender's name, admin flag or address")
        change.add_argument("--email", required=True, help="the sender's address now")
        change.add_argument("--name")
        change.add_argument("--admin", action="store_true", default=None, help="make an organisation admin")
        change.add_argument("--no-admin", dest="admin", action="store_false", help="no longer an admin")
        change.add_argument("--new-email", help="a new address at the organisation's domains; ends their sessions")

    def handle(self, *args, action, **options):
        if action == "set":
            return self._set(**options)
        if options["invite"]:
            return self._add(options, password=None)
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("the passwords do not match")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        return self._add(options, password=password)

    def _add(self, options, *, password):
        # A password typed here is someone else's choice: the owner replaces it at first sign-in.
        try:
            user = create_sender(
                email=options["email"], name=options["name"], password=password, admin=options["admin"],
                by_label="hushpost user add (server shell)", must_change_password=True,
            )
        except Refused as exc:
            raise CommandError(str(exc)) from None
        role = "organisation admin" if user.is_org_admin else "sender"
        self.stdout.write(self.style.SUCCESS(f"Created {role} {user.email} in {user.org.name}"))
        if password is None:
            self.stdout.write(f"An invitation to choose their password is queued for {user.email}.")
        else:
            self.stdout.write("They must choose their own password when they first sign in.")

    def _set(self, *, email, name, admin, new_email, **options):
        user = User.objects.select_related("org").filter(role=User.Role.SENDER, email=email.strip().lower()).first()
        if user is None:
            raise CommandError(f"no sender has the address {email}")
        before = user.email
        try:
            changed = update_sender(user, name=name, admin=admin, email=new_email)
        except Refused as exc:
            raise CommandError(str(exc)) from None
        if not changed:
            self.stdout.write(f"{user.email}: nothing to change")
            return
        detail = f"changed {', '.join(changed)} of {before}" + (f" (now {user.email})" if user.email != before else "")
        record(AuditEvent.Action.ADMIN, org=user.org, actor_email="hushpost user set (server shell)",
               obj=user, detail=detail)
        self.stdout.write(self.style.SUCCESS(f"{user.email}: {detail}"))
