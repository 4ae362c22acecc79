"""What an organisation's OpenID Connect provider publishes: its discovery document and its
signing keys, fetched over HTTPS with short timeouts and kept for a few minutes.

The issuer in the discovery document must be the one the admin entered: a document naming
another issuer would let that other issuer's tokens through. Plain ``http://`` is accepted only
on this machine's loopback addresses (a provider run for tests or development).
"""

from __future__ import annotations

import time
from ipaddress import ip_address
from urllib.parse import urlsplit

import requests
from django.conf import settings
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from hushpost.sso.signin import SSORefused

TIMEOUT = 5  # seconds, for every request to the provider
KEEP_SECONDS = 300
DISCOVERY = "/.well-known/openid-configuration"
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")

_kept: dict[str, tuple[float, object]] = {}


class Unreachable(Exception):
    """The provider did not give a usable answer; the message is a sentence for an admin."""


def issuer_url(configured: str) -> str:
    """The issuer an admin entered (the discovery URL is accepted too), without a trailing slash."""
    issuer = configured.strip().rstrip("/")
    return issuer.removesuffix(DISCOVERY).rstrip("/")


def loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_url(url: str) -> bool:
    """https://; plain http:// only in development mode, for a provider on this machine."""
    scheme = urlsplit(url).scheme
    return scheme == "https" or (scheme == "http" and not settings.PRODUCTION and loopback(url))


def _reason(error: Exception) -> str:
    if isinstance(error, requests.Timeout):
        return f"no answer within {TIMEOUT} seconds"
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"it answered with HTTP status {error.response.status_code}"
    if isinstance(error, requests.ConnectionError):
        return "the connection failed (is the address right, and the server up?)"
    if isinstance(error, ValueError):
        return "the answer was not a JSON document"
    return error.__class__.__name__


def fetch_json(url: str) -> dict:
    """A provider's JSON document, or :class:`Unreachable` saying why not."""
    if not allowed_url(url):
        raise Unreachable(f"{url} must use https://.")
    try:
        response = requests.get(url, timeout=TIMEOUT, allow_redirects=False,
                                headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise Unreachable(f"Hushpost could not reach {url}: {_reason(error)}.") from None
    if not isinstance(document, dict):
        raise Unreachable(f"Hushpost could not reach {url}: the answer was not a JSON document.")
    return document


def problems_with(issuer: str, document: dict) -> list[str]:
    """What is wrong with a discovery document for this issuer, as sentences for the admin."""
    if document.get("issuer") != issuer:
        # What it names is not repeated: the URL is the admin's to choose, the answer is not theirs to read.
        return [f"The discovery document at that address names another issuer than {issuer}. "
                "Enter the issuer exactly as the provider names it."]
    problems = []
    for name in ENDPOINTS:
        url = document.get(name)
        if not isinstance(url, str) or not url:
            problems.append(f"The provider's discovery document has no {name}.")
        elif not allowed_url(url):
            problems.append(f"The provider's {name} ({url}) must use https://.")
    return problems


def discover(configured_issuer: str, *, fresh: bool = False) -> dict:
    """The issuer's discovery document, checked; :class:`Unreachable` with the first problem."""
    issuer = issuer_url(configured_issuer)
    url = issuer + DISCOVERY
    kept = _kept.get(url)
    if kept and not fresh and time.monotonic() - kept[0] < KEEP_SECONDS:
        return kept[1]
    document = fetch_json(url)
    problems = problems_with(issuer, document)
    if problems:
        raise Unreachable(problems[0])
    _kept[url] = (time.monotonic(), document)
    return document


def signing_keys(document: dict, kid: str | None) -> KeySet:
    """The provider's published keys; fetched again once when a token names a key not yet seen
    (the provider has rotated its keys)."""
    url = document["jwks_uri"]
    kept = _kept.get(url)
    if kept and time.monotonic() - kept[0] < KEEP_SECONDS:
        keys = kept[1]
        if kid is None or any(key.kid == kid for key in keys.keys):
            return keys
    try:
        keys = KeySet.import_key_set(fetch_json(url))
    except Unreachable as error:
        raise SSORefused("misconfigured", str(error)) from None
    except (JoseError, ValueError, TypeError, KeyError):
        raise SSORefused("misconfigured", f"unusable signing keys at {url}") from None
    _kept[url] = (time.monotonic(), keys)
    return keys
