"""An organisation's SAML identity provider as its metadata describes it: fetched from the URL
the admin gives (when the settings are saved, so sign-in never waits on it), or pasted in."""

from __future__ import annotations

from dataclasses import dataclass

import requests
from saml2 import BINDING_HTTP_REDIRECT
from saml2.mdstore import InMemoryMetaData

from hushpost.sso.oidc_provider import allowed_url

MAX_METADATA = 500_000  # bytes; the form accepts no more pasted in either
FETCH_TIMEOUT = 10  # seconds


class Unavailable(Exception):
    """The metadata URL did not give metadata (the message is shown to the admin)."""


@dataclass
class IdentityProvider:
    entity_id: str
    sso_url: str  # its single sign-on service for the HTTP-Redirect binding
    signing_certs: int


def fetch(url: str) -> str:
    """The metadata at ``url``, fetched once without following redirects.

    Whoever could change the metadata in transit could choose the certificate sign-in trusts:
    https only (plain http in development mode, on this machine's loopback). A redirect is not
    followed, not even to an https address: it could lead anywhere, the portal's own network too.
    No message repeats what the answer said; the admin chose the address, not what is behind it.
    """
    if not allowed_url(url):
        raise Unavailable("The metadata URL must start with https://.")
    try:
        with requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False, stream=True,
                          headers={"Accept": "application/samlmetadata+xml, application/xml"}) as answer:
            if 300 <= answer.status_code < 400:
                raise Unavailable("The metadata URL redirects elsewhere; enter the address of the metadata itself.")
            answer.raise_for_status()
            body = b""
            for chunk in answer.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_METADATA:
                    break
    except requests.RequestException:
        raise Unavailable(f"The metadata could not be fetched from {url}.") from None
    if len(body) > MAX_METADATA:
        raise Unavailable("The metadata at that URL is too large.")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unavailable("The metadata at that URL is not UTF-8 XML.") from None


def _providers(xml: str) -> list[IdentityProvider]:
    if not xml.strip():
        return []
    store = InMemoryMetaData([], metadata=xml)
    try:
        store.load()
    except Exception:  # pysaml2 raises SAMLError, ParseError or ValueError for bad documents
        return []
    found = []
    for entity, description in store.items():
        if "idpsso_descriptor" not in description:
            continue
        endpoints = store.service(entity, "idpsso_descriptor", "single_sign_on_service", BINDING_HTTP_REDIRECT)
        locations = [e["location"] for e in endpoints or []]
        found.append(IdentityProvider(entity, locations[0] if locations else "",
                                      len(store.certs(entity, "idpsso", "signing"))))
    return found


def identity_provider(xml: str) -> IdentityProvider | None:
    """The one identity provider in ``xml`` that sign-in can use; None if there isn't exactly one."""
    providers = _providers(xml)
    if len(providers) != 1 or not providers[0].sso_url or not providers[0].signing_certs:
        return None
    return providers[0]


def problems(xml: str) -> list[str]:
    """What keeps ``xml`` from describing one usable identity provider, for the admin."""
    providers = _providers(xml)
    if not providers:
        return ["That is not SAML metadata of an identity provider (no IDPSSODescriptor was found)."]
    if len(providers) > 1:
        return ["That metadata describes several identity providers; give the metadata of yours only."]
    found = []
    if not providers[0].sso_url:
        found.append("The identity provider's metadata has no single sign-on service for the HTTP-Redirect binding.")
    if not providers[0].signing_certs:
        found.append("The identity provider's metadata has no signing certificate, so its answers "
                     "could not be checked.")
    return found
