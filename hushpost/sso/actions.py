"""Changing an organisation's single sign-on (the admin area), recorded in the audit trail."""

from __future__ import annotations

from django.db import transaction

from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.sso import oidc, saml
from hushpost.sso.models import SingleSignOn
from hushpost.sso.secrets import seal_client_secret


def save_single_sign_on(sso: SingleSignOn, changed: list[str], new_secret: str, *, by) -> None:
    """Save ``sso`` as the form left it; a new client secret is sealed, and named but never recorded."""
    if new_secret:
        sso.oidc_client_secret_sealed = seal_client_secret(sso.org_id, new_secret)
    with transaction.atomic():
        sso.save()
        names = [n for n in changed if n != "oidc_client_secret"] + (["client secret"] if new_secret else [])
        record(AuditEvent.Action.ADMIN, actor=by, obj=sso.org,
               detail=("changed single sign-on: " + ", ".join(names))[:300])


def service_provider_values(sso: SingleSignOn) -> list[tuple[str, str]]:
    """What the organisation's IT team enters at its identity provider."""
    return [
        ("OpenID Connect redirect URI", oidc.redirect_uri(sso)),
        ("SAML entity ID (audience)", saml.entity_id(sso)),
        ("SAML assertion consumer service (HTTP-POST)", saml.acs_url(sso)),
        ("SAML metadata of this portal", saml.entity_id(sso)),
    ]
