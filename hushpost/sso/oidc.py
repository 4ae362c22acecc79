"""OpenID Connect: the authorization code flow with PKCE, against the organisation's issuer.

``begin`` sends the browser to the provider with a fresh state, nonce and PKCE verifier, kept in
the session (never in a URL beyond the state and the S256 challenge); ``finish`` takes the
provider's answer back: the state must be one this session started and not yet used, the code
is redeemed with the client secret (HTTP Basic or in the form, as the provider says), and the
ID token is checked (:mod:`hushpost.sso.oidc_token`) before anyone is signed in.

Authlib builds the requests and redeems the code; joserfc checks the ID token.
"""

from __future__ import annotations

import re

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.shortcuts import redirect

from hushpost.lib import clock
from hushpost.sso import oidc_token
from hushpost.sso.oidc_provider import TIMEOUT, Unreachable, discover, fetch_json, issuer_url
from hushpost.sso.secrets import client_secret
from hushpost.sso.signin import Identity, SSORefused

# The session's sign-ins under way, by state: a few at once (two tabs), each for ten minutes.
PENDING = "hushpost_oidc"
MOST_PENDING = 5
PENDING_SECONDS = 600
SCOPE = "openid email profile"
SAFE_ERROR = re.compile(r"^[a-z_]{1,40}$")


def redirect_uri(sso) -> str:
    return f"{settings.BASE_URL}/sso/{sso.org.slug}/oidc/callback"


def _provider(sso) -> dict:
    try:
        return discover(sso.oidc_issuer)
    except Unreachable as error:
        raise SSORefused("misconfigured", str(error)) from None


def _client(sso, document: dict, secret: str | None = None) -> OAuth2Session:
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
    return OAuth2Session(sso.oidc_client_id, secret, token_endpoint_auth_method=method, scope=SCOPE,
                         redirect_uri=redirect_uri(sso), code_challenge_method="S256")


def begin(request, sso, *, login_hint: str, next_url: str, force: bool):
    """A redirect to the provider's authorization endpoint; state kept in the session."""
    document = _provider(sso)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    now = clock.now().timestamp()
    pending = {s: flow for s, flow in (request.session.get(PENDING) or {}).items()
               if now - flow["at"] < PENDING_SECONDS}
    for old in sorted(pending, key=lambda s: pending[s]["at"])[:-(MOST_PENDING - 1)]:
        del pending[old]
    pending[state] = {"org": sso.org_id, "nonce": nonce, "verifier": verifier, "next": next_url,
                      "force": force, "at": now}
    request.session[PENDING] = pending
    extra = {"nonce": nonce}
    if login_hint:
        extra["login_hint"] = login_hint
    if force:  # "confirm it's you": the provider must ask again, not wave a remembered session through
        extra.update(prompt="login", max_age="0")
    url, _ = _client(sso, document).create_authorization_url(
        document["authorization_endpoint"], state=state, code_verifier=verifier, **extra)
    return redirect(url)


def _flow(request, sso) -> dict:
    """The sign-in this answer belongs to, taken from the session so it cannot be used twice."""
    state = request.GET.get("state", "")
    pending = request.session.get(PENDING) or {}
    flow = pending.pop(state, None) if state else None
    request.session[PENDING] = pending
    if flow is None or flow.get("org") != sso.org_id:
        raise SSORefused("state", "unknown or used state")
    if clock.now().timestamp() - flow["at"] >= PENDING_SECONDS:
        raise SSORefused("state", "sign-in started too long ago")
    return flow


def finish(request, sso) -> tuple[Identity, str]:
    """The identity in the provider's answer, checked, and where the sender was going."""
    flow = _flow(request, sso)
    if "error" in request.GET:
        # Only a code of the protocol's own alphabet is kept; the provider's description is not shown.
        error = request.GET["error"]
        raise SSORefused("idp_error", error if SAFE_ERROR.match(error) else "unrecognised error")
    code = request.GET.get("code", "")
    if not code:
        raise SSORefused("idp_error", "no authorization code")
    document = _provider(sso)
    id_token = _redeem(sso, document, code, flow["verifier"])
    claims = oidc_token.verified_claims(id_token, document, sso.oidc_client_id, flow)
    return oidc_token.identity(claims, sso.group_claim), flow["next"]


def _redeem(sso, document: dict, code: str, verifier: str) -> str:
    """The ID token for the code, from the token endpoint (the client secret goes only there)."""
    client = _client(sso, document, client_secret(sso))
    try:
        token = client.fetch_token(document["token_endpoint"], grant_type="authorization_code", code=code,
                                   code_verifier=verifier, timeout=TIMEOUT)
    except AuthlibBaseError as error:
        raise SSORefused("idp_error", f"token endpoint: {_safe(error.error)}") from None
    except requests.RequestException as error:
        raise SSORefused("misconfigured", f"token endpoint unreachable ({error.__class__.__name__})") from None
    except ValueError:
        raise SSORefused("misconfigured", "token endpoint answered without JSON") from None
    finally:
        client.close()
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise SSORefused("idp_error", "no ID token (is the openid scope allowed?)")
    return id_token


def _safe(code) -> str:
    return code if isinstance(code, str) and SAFE_ERROR.match(code) else "unrecognised error"


def check(sso, client_secret: str) -> list[str]:
    """Problems with the settings, found by asking the provider (shown in the admin's form).

    The client secret can only be tried by signing in; what is checked here is that the issuer
    answers, names itself as entered, and publishes its endpoints and signing keys.
    """
    try:
        document = discover(sso.oidc_issuer, fresh=True)
        fetch_json(document["jwks_uri"])
    except Unreachable as error:
        return [str(error)]
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if not {"client_secret_basic", "client_secret_post"} & set(methods):
        return [f"The provider at {issuer_url(sso.oidc_issuer)} does not accept a client secret "
                "(client_secret_basic or client_secret_post) at its token endpoint."]
    return []
