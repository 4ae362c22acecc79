"""Provisioning a sender: what a SCIM request does, in one transaction, recorded in the audit trail.

Only the token's organisation's senders are visible, minus those its identity
provider deleted (:func:`access_sender` is the one way a request loads one).
DELETE keeps the account, because the messages a sender sent belong to the
organisation's record: it is disabled, signed out everywhere, and detached from
provisioning (404 from then on). Creating the same address again attaches it
again, enabled or not as the request says.

Two limits keep a leaked token from taking the organisation over. An
organisation admin is listed but never changed or deleted: their address is
where their password resets go, and admins are managed in Hushpost's admin
area (403, ``mutability``). And provisioning enables again only a sender it
disabled itself: one an admin disabled (in the admin area or at /ops/) stays
disabled, the request's other changes are made, the answer says
``"active": false`` and the audit trail says why (:func:`may_enable`).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from hushpost.accounts.actions import create_sender, set_active, update_sender
from hushpost.accounts.models import User
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.lib.refusals import Refused
from hushpost.scim.changes import Changes
from hushpost.scim.errors import ScimError, invalid_value, not_found
from hushpost.scim.filters import Equals
from hushpost.scim.models import ScimIdentity, ScimToken
from hushpost.sso.models import SingleSignOn

IDENTITY_FIELDS = {"externalId": "external_id", "displayName": "display_name", "givenName": "given_name",
                   "familyName": "family_name"}
NAMES = {"displayName", "givenName", "familyName", "name.formatted"}
ADMIN_REFUSED = ("{email} is an admin of the organisation: admins are managed in Hushpost's admin area, "
                 "not by provisioning.")
HELD = "stays disabled (an admin disabled the account; an admin enables it again)"


def visible_senders(org):
    return (User.objects.filter(org=org, role=User.Role.SENDER)
            .exclude(scim__deleted_at__isnull=False).select_related("scim").order_by("pk"))


def access_sender(token: ScimToken, user_id: str) -> User:
    """The sender ``user_id`` names, if the token's organisation may see them; else 404."""
    if not user_id.isascii() or not user_id.isdigit() or len(user_id) > 18:
        raise not_found()
    sender = visible_senders(token.org).filter(pk=int(user_id)).first()
    if sender is None:
        raise not_found()
    return sender


def identity_of(sender: User) -> ScimIdentity | None:
    try:
        return sender.scim
    except ScimIdentity.DoesNotExist:
        return None


def find(token: ScimToken, equals: Equals):
    """The visible senders a filter names: an address compares without regard to case."""
    if equals.attribute == "userName":
        return visible_senders(token.org).filter(email=equals.value.strip().lower())
    return visible_senders(token.org).filter(scim__external_id=equals.value)


def _not_an_admin(sender: User) -> None:
    if sender.is_org_admin:
        raise ScimError(403, ADMIN_REFUSED.format(email=sender.email), "mutability")


def may_enable(sender: User, identity: ScimIdentity) -> bool:
    """Whether provisioning may enable ``sender`` again: only if it disabled them, and no admin changed them since.

    An admin's change at /ops/ or in the admin area is an ``admin`` event about
    the account in the audit trail, written with the change; that is what says
    a person, not the identity provider, had the last word.
    """
    if identity.disabled_at is None:
        return False
    return not AuditEvent.objects.filter(action=AuditEvent.Action.ADMIN, object_type=User._meta.model_name,
                                         object_id=str(sender.pk), at__gte=identity.disabled_at).exists()


def _record(token: ScimToken, client: str, sender: User, detail: str) -> None:
    record(AuditEvent.Action.SCIM, org=token.org, actor_email=token.label, client=client, obj=sender,
           detail=detail)


def _sso_required(org) -> bool:
    return SingleSignOn.objects.filter(org=org, required=True).exclude(protocol="").exists()


def provision(token: ScimToken, changes: Changes, client: str) -> User:
    """POST /Users: a new sender (invited, unless the organisation requires single sign-on)."""
    email = str(changes["userName"]).lower()
    with transaction.atomic():
        existing = User.objects.filter(org=token.org, role=User.Role.SENDER, email=email).first()
        if existing is not None and identity_of(existing) is not None and existing.scim.deleted_at is not None:
            _not_an_admin(existing)
            existing.scim.deleted_at = None
            existing.scim.save(update_fields=["deleted_at"])
            _apply(token, existing, changes, client, verb="provisioned again")
            return existing
        if existing is not None:
            raise ScimError(409, f"{email} already has a sender account.", "uniqueness")
        active = bool(changes.get("active", True))
        invite = active and not _sso_required(token.org)
        try:
            sender = create_sender(email=email, name="", org=token.org, invite=invite)
        except Refused as exc:
            raise invalid_value(str(exc)) from None
        except IntegrityError:  # the same address, created by a request a moment earlier
            raise ScimError(409, f"{email} already has a sender account.", "uniqueness") from None
        ScimIdentity.objects.create(user=sender)
        _apply(token, sender, changes, client, verb="created",
               note="; invitation sent" if invite else "; no invitation (single sign-on)" if active else "")
        return sender


def update(token: ScimToken, sender: User, changes: Changes, client: str) -> User:
    """PUT or PATCH /Users/<id>: change what the identity provider sent."""
    with transaction.atomic():
        sender = User.objects.select_for_update().get(pk=sender.pk)
        _not_an_admin(sender)
        if identity_of(sender) is None:
            ScimIdentity.objects.create(user=sender)
            sender = User.objects.select_related("scim").get(pk=sender.pk)
        _apply(token, sender, changes, client, verb="updated")
        return sender


def _apply(token: ScimToken, sender: User, changes: Changes, client: str, *, verb: str, note: str = "") -> None:
    identity = sender.scim
    changed: list[str] = []
    for attribute, field in IDENTITY_FIELDS.items():
        if attribute in changes and changes[attribute] != getattr(identity, field):
            setattr(identity, field, changes[attribute])
            changed.append(attribute)
    if "formatted" in changes and "displayName" not in changes and changes["formatted"] != identity.display_name:
        identity.display_name = str(changes["formatted"])
        changed.append("name.formatted")
    identity.save()
    # A name Hushpost has (an admin typed it) stays until the identity provider sends one.
    renamed = bool(NAMES.intersection(changed))
    try:
        email = str(changes.get("userName", sender.email)).lower()
        if email != sender.email and User.objects.filter(org=sender.org, role=sender.role, email=email).exists():
            raise ScimError(409, f"{email} already has a sender account.", "uniqueness")
        if "e-mail" in update_sender(sender, name=identity.full_name()[:200] if renamed else None, email=email):
            changed.append("userName")
    except Refused as exc:
        raise invalid_value(str(exc)) from None
    if "active" in changes and changes["active"] != sender.is_active:
        if changes["active"] and not may_enable(sender, identity):
            changed.append(HELD)
        else:
            set_active(sender, bool(changes["active"]))
            sender.is_active = bool(changes["active"])
            identity.disabled_at = None if sender.is_active else clock.now()
            identity.save(update_fields=["disabled_at"])
            changed.append("enabled" if sender.is_active else "disabled")
    if changed or verb != "updated":
        # Names of what changed, never values beyond the address: the trail holds no personal details it need not.
        _record(token, client, sender, f"{verb} sender {sender.email}: {', '.join(changed) or 'no change'}{note}")


def deprovision(token: ScimToken, sender: User, client: str) -> None:
    """DELETE /Users/<id>: disabled, signed out everywhere, and detached from provisioning."""
    with transaction.atomic():
        sender = User.objects.select_for_update().get(pk=sender.pk)
        _not_an_admin(sender)
        detached = {"deleted_at": clock.now()}
        if sender.is_active:  # one already disabled keeps who disabled it
            detached["disabled_at"] = detached["deleted_at"]
        set_active(sender, False)  # which also ends every session of the account
        ScimIdentity.objects.update_or_create(user=sender, defaults=detached)
        _record(token, client, sender, f"deleted sender {sender.email}: disabled and detached; messages kept")
