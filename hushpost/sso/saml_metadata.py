"""An organisation's SAML identity provider as its metadata describes it: fetched from the URL
the admin gives (when the settings are saved, so sign-in never waits on it), or pasted in."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from saml2 import BINDING_HTTP_REDIRECT
from saml2.mdstore import InMemoryMetaData

MAX_METADATA = 500_000  # bytes; the form accepts no more pasted in either
FETCH_TIMEOUT = 10  # seconds
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class Unavailable(Exception):
    """The metadata URL did not give metadata (the message is shown to the admin)."""


@dataclass
class IdentityProvider:
    entity_id: str
    sso_url: str  # its single sign-on service for the HTTP-Redirect binding
    signing_certs: int


def _trusted(url: str) -> bool:
    # Whoever could change the metadata in transit could choose the certificate sign-in trusts:
    # https only, loopback excepted (an identity provider on the same machine).
    return url.startswith("https://") or (url.startswith("http://") and urlsplit(url).hostname in LOOPBACK)


def fetch(url: str) -> str:
    if not _trusted(url):
        raise Unavailable("The metadata URL must start with https://.")
    request = urllib.request.Request(  # noqa: S310 - http(s) only, above
        url, headers={"Accept": "application/samlmetadata+xml, application/xml"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as answer:  # noqa: S310 - http(s) only, above
            if not _trusted(answer.geturl()):  # redirected off https
                raise Unavailable("The metadata URL redirects to an address that is not https://.")
            body = answer.read(MAX_METADATA + 1)
    except (urllib.error.URLError, OSError, ValueError):
        # No more than that: the admin chooses the address, and the portal's network is not theirs to map.
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
