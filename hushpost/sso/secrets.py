"""The organisation's OpenID Connect client secret: sealed under the master key, opened only to
redeem an authorization code, never shown again once saved."""

from __future__ import annotations

from hushpost.crypto import master
from hushpost.crypto.labels import sso_client_secret_aad
from hushpost.sso.models import SingleSignOn


def seal_client_secret(org_id: int, secret: str) -> bytes:
    return master.seal(secret.encode(), sso_client_secret_aad(org_id))


def client_secret(sso: SingleSignOn) -> str:
    if not sso.oidc_client_secret_sealed:
        return ""
    return master.open_sealed(bytes(sso.oidc_client_secret_sealed),
                            sso_client_secret_aad(sso.org_id)).decode()
