from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from hushpost.accounts.models import User
from hushpost.accounts.passwords import password_problems
from hushpost.orgs.actions import org_for_address


class AccountError(ValueError):
    pass


def create_sender(*, email: str, name: str, password: str, admin: bool = False) -> User:
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise AccountError(f"{email!r} is not an e-mail address") from None
    if "\r" in name or "\n" in name:
        raise AccountError("a name cannot contain line breaks")
    org = org_for_address(email)
    if org is None:
        raise AccountError(
            f"no organisation owns the domain of {email}; add it with 'hushpost org add'"
        )
    if User.objects.filter(org=org, role=User.Role.SENDER, email=email).exists():
        raise AccountError(f"{email} already has a sender account")
    problems = password_problems(password, email=email, name=name)
    if problems:
        raise AccountError(" ".join(problems))
    user = User(org=org, email=email, name=name.strip(), role=User.Role.SENDER, is_org_admin=admin)
    user.set_password(password)
    user.save()
    return user
