from django.core.management.base import BaseCommand, CommandError

from hushpost.accounts import twofactor
from hushpost.accounts.models import User
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent


class Command(BaseCommand):
    help = ("Operators of /ops/ (made with 'hushpost createsuperuser'): 'operator list', "
            "'operator reset-two-factor EMAIL' for one who lost the phone and the recovery codes.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="list operators and whether they have two-factor sign-in")
        reset = sub.add_parser("reset-two-factor",
                               help="turn it off: the next sign-in at /ops/ sets it up again")
        reset.add_argument("email")

    def handle(self, *args, action, **options):
        operators = User.objects.filter(role=User.Role.OPERATOR).order_by("email")
        if action == "list":
            for user in operators:
                state = "two-factor on" if twofactor.enabled(user) else "two-factor not set up yet"
                self.stdout.write(f"{user.email}\t{'active' if user.is_active else 'disabled'}\t{state}")
            return
        user = operators.filter(email=options["email"].strip().lower()).first()
        if user is None:
            raise CommandError(f"no operator {options['email']!r}; 'hushpost operator list' shows them")
        twofactor.disable(user)
        record(AuditEvent.Action.ADMIN, actor_email="command line", client="command line", obj=user,
               detail=f"reset the two-factor sign-in of operator {user.email}")
        self.stdout.write(self.style.SUCCESS(
            f"Two-factor sign-in of {user.email} is off; their next sign-in at /ops/ sets it up again."))
