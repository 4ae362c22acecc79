"""Passkeys (WebAuthn, through py_webauthn): adding one, signing in with one, and using one as the second step.

The relying party is the portal itself: its ID is the host of ``BASE_URL`` and
the one origin accepted is ``BASE_URL``, so a passkey answers nowhere else (a
look-alike site gets nothing it can replay here).  Each ceremony's challenge
waits in the session for five minutes and is taken out before the answer is
checked, so an answer works once.  Signing in without a password asks for a
discoverable credential and lists none, so the page tells nobody which
addresses have accounts; the authenticator must verify the person (PIN,
fingerprint, face), so the passkey alone is both factors.  The account a passkey
opens is the one its user handle names, within the portal being signed in to.

Only public parts are stored: a copy of the database opens nothing.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from hushpost.accounts.models import Passkey, User
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock

RP_NAME = "Hushpost Secure Messaging"
CEREMONY = "hushpost_passkey"
CEREMONY_SECONDS = 300
MAX_PER_ACCOUNT = 20
# A credential id as WebAuthn allows it (at most 1023 bytes), in base64url; an answer at most this big.
CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{16,1364}")
MAX_ANSWER = 64 * 1024
SIGN_IN, SECOND_STEP, ADD = "sign-in", "second-step", "add"
_TRANSPORTS = {t.value for t in AuthenticatorTransport}


class NotAccepted(Exception):
    """The answer does not open this account here (the reason stays in the server's hands)."""


def rp_id() -> str:
    return settings.BASE_URL.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")


def origin() -> str:
    scheme, _, rest = settings.BASE_URL.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def of(user: User) -> QuerySet[Passkey]:
    return Passkey.objects.filter(user=user)


def registered(user: User) -> bool:
    return user.pk is not None and of(user).exists()


def may_use(user: User) -> bool:
    """Someone still holding a temporary password (or one chosen by someone else) sets their own first."""
    return user.is_active and not user.must_change_password


def _begin(request, purpose: str, challenge: bytes, user: User | None = None, handle: bytes = b"") -> None:
    request.session[CEREMONY] = {"purpose": purpose, "challenge": bytes_to_base64url(challenge),
                                 "user": user.pk if user else None, "handle": bytes_to_base64url(handle),
                                 "at": clock.now().timestamp()}


def _take(request, purpose: str, user: User | None = None) -> dict:
    """The ceremony under way, removed from the session whatever the answer turns out to be."""
    pending = request.session.pop(CEREMONY, None)
    if (not isinstance(pending, dict) or pending.get("purpose") != purpose
            or clock.now().timestamp() - pending.get("at", 0) > CEREMONY_SECONDS
            or pending.get("user") != (user.pk if user else None)):
        raise NotAccepted("no ceremony under way")
    return pending


def _take_challenge(request, purpose: str, user: User | None = None) -> bytes:
    return base64url_to_bytes(_take(request, purpose, user)["challenge"])


def _handle(user: User) -> bytes:
    """The account's WebAuthn user id: random, shared by its passkeys, naming nothing about the person."""
    existing = of(user).values_list("user_handle", flat=True).first()
    return base64url_to_bytes(existing) if existing else secrets.token_bytes(32)


def registration_options(request, user: User) -> str:
    """Options for ``navigator.credentials.create()``, as JSON; the challenge waits in the session."""
    handle = _handle(user)
    options = generate_registration_options(
        rp_id=rp_id(), rp_name=RP_NAME, user_name=user.email, user_id=handle,
        user_display_name=user.display_name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id))
                             for p in of(user)],
    )
    _begin(request, ADD, options.challenge, user, handle)
    return options_to_json(options)


def add(request, user: User, answer: str) -> Passkey:
    """Keep the passkey the browser just made, once its answer to this session's challenge checks out."""
    pending = _take(request, ADD, user)
    challenge, handle = base64url_to_bytes(pending["challenge"]), base64url_to_bytes(pending["handle"])
    if not may_use(user):
        raise NotAccepted("this account cannot add a passkey now")
    try:
        credential = parse_registration_credential_json(_well_formed(answer))
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(),
            expected_origin=origin(), require_user_verification=True)
    except (WebAuthnException, ValueError, TypeError, KeyError) as problem:
        raise NotAccepted(str(problem)) from problem
    transports = [t.value for t in (credential.response.transports or []) if isinstance(t, AuthenticatorTransport)]
    if len(verified.credential_id) > 1023:
        raise NotAccepted("credential id longer than WebAuthn allows")
    try:
        with transaction.atomic():
            # One at a time per account, so two sessions adding at once cannot pass the limit together.
            User.objects.select_for_update().filter(pk=user.pk).first()
            if of(user).count() >= MAX_PER_ACCOUNT:
                raise NotAccepted("this account has as many passkeys as it may have")
            passkey = Passkey.objects.create(
                user=user, credential_id=bytes_to_base64url(verified.credential_id),
                public_key=verified.credential_public_key, sign_count=verified.sign_count,
                user_handle=bytes_to_base64url(handle), transports=",".join(transports)[:100],
                aaguid=verified.aaguid if verified.aaguid.strip("0-") else "",
                name=_name(user), created_at=clock.now())
            record(AuditEvent.Action.PASSKEY_ADDED, actor=user, request=request, obj=passkey, detail=passkey.name)
    except IntegrityError as problem:  # a credential id some account already has: never taken over
        raise NotAccepted("credential id in use") from problem
    return passkey


def _name(user: User) -> str:
    """What the owner sees in the list: "Passkey added 30 Nov 2026", numbered when one day has several."""
    name = f"Passkey added {clock.now():%-d %b %Y}"
    same = of(user).filter(name__startswith=name).count()
    return f"{name} ({same + 1})" if same else name


def remove(request, user: User, passkey_id, *, keep_one: bool = False) -> Passkey | None:
    """Remove one of the account's passkeys; with ``keep_one``, never its last (checked with the
    account locked, so two removals at once cannot both pass)."""
    if not str(passkey_id).isdigit():
        return None
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        passkey = of(user).filter(pk=passkey_id).first()
        if passkey is None or (keep_one and of(user).count() <= 1):
            return None
        passkey.delete()
        record(AuditEvent.Action.PASSKEY_REMOVED, actor=user, request=request, object_type="passkey",
               object_id=str(passkey_id), detail=passkey.name)
    return passkey


def sign_in_options(request) -> str:
    """Options for a sign-in with any passkey of this portal: no credentials listed, verification required."""
    options = generate_authentication_options(rp_id=rp_id(), user_verification=UserVerificationRequirement.REQUIRED)
    _begin(request, SIGN_IN, options.challenge)
    return options_to_json(options)


def second_step_options(request, user: User) -> str:
    """Options for the second step after the password: the account's own passkeys only."""
    options = generate_authentication_options(
        rp_id=rp_id(), user_verification=UserVerificationRequirement.PREFERRED,
        allow_credentials=[PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(p.credential_id),
            transports=[AuthenticatorTransport(t) for t in p.transports.split(",") if t in _TRANSPORTS])
            for p in of(user)])
    _begin(request, SECOND_STEP, options.challenge, user)
    return options_to_json(options)


def credential_id(answer: str) -> str:
    """The credential a well-formed answer names (not yet checked): what the throttle counts failures
    against; empty for anything else."""
    parsed = _parsed(answer)
    value = parsed.get("id") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) and CREDENTIAL_ID.fullmatch(value) else ""


def _parsed(answer: str):
    """The answer's JSON, or None when it is too big, nested too deep or not JSON at all."""
    if not isinstance(answer, str) or len(answer) > MAX_ANSWER:
        return None
    try:
        return json.loads(answer)
    except (ValueError, RecursionError):
        return None


def _well_formed(answer: str) -> str:
    if not credential_id(answer):
        raise NotAccepted("not a passkey's answer")
    return answer


@dataclass(frozen=True)
class Scope:
    """Which accounts a sign-in may open: a role, and for recipients one organisation's portal."""

    role: str
    org: object = None

    def accounts(self) -> QuerySet[Passkey]:
        passkeys = Passkey.objects.select_related("user", "user__org").filter(
            user__role=self.role, user__is_active=True, user__must_change_password=False)
        if self.org is not None:
            return passkeys.filter(user__org=self.org)
        return passkeys.filter(user__org__is_active=True)


def owner(answer: str, scope: Scope) -> User | None:
    passkey = scope.accounts().filter(credential_id=credential_id(answer)).first()
    return passkey.user if passkey else None


def _verify(answer: str, passkeys: QuerySet[Passkey], challenge: bytes, *, verification: bool) -> User:
    try:
        credential = parse_authentication_credential_json(_well_formed(answer))
    except (WebAuthnException, ValueError, TypeError, KeyError) as problem:
        raise NotAccepted(str(problem)) from problem
    passkey = passkeys.filter(credential_id=credential.id).first()
    if passkey is None:
        raise NotAccepted("no passkey of this portal's accounts")
    handle = credential.response.user_handle
    if (verification or handle) and (handle is None or bytes_to_base64url(handle) != passkey.user_handle):
        raise NotAccepted("the user handle names another account")
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(),
            expected_origin=origin(), credential_public_key=bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count, require_user_verification=verification)
    except (WebAuthnException, ValueError, TypeError) as problem:
        raise NotAccepted(str(problem)) from problem
    # Conditional: of two answers racing on one count, one wins.
    if not Passkey.objects.filter(pk=passkey.pk, sign_count=passkey.sign_count).update(
            sign_count=verified.new_sign_count, last_used_at=clock.now()):
        raise NotAccepted("the passkey was used at the same moment")
    return passkey.user


def verify_sign_in(request, answer: str, scope: Scope, *, allowed=None) -> User | None:
    """The account this answer opens on this portal, or None (the challenge is used up either way)."""
    try:
        challenge = _take_challenge(request, SIGN_IN)
        user = _verify(answer, scope.accounts(), challenge, verification=True)
    except NotAccepted:
        return None
    return user if allowed is None or allowed(user) else None


def verify_second_step(request, user: User, answer: str) -> str | None:
    """'passkey' when the answer comes from one of ``user``'s passkeys, else None."""
    try:
        challenge = _take_challenge(request, SECOND_STEP, user)
        _verify(answer, of(user), challenge, verification=False)
    except NotAccepted:
        return None
    return "passkey"
