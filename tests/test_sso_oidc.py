"""OpenID Connect single sign-on, through the Django test client and a real provider process.

The browser tests (tests/browser/test_sso_oidc.py) walk the pages; these look at what travels:
PKCE, the login hint, the client secret's way to the token endpoint, and the attacks that need
a hand on the session or the provider's settings (a restored session replaying a nonce).
"""

from __future__ import annotations

import html
import logging
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from hushpost.accounts.actions import create_sender
from hushpost.audit.models import AuditEvent
from hushpost.sso import oidc
from hushpost.sso.forms import SingleSignOnForm
from hushpost.sso.models import SeenAssertion, SingleSignOn
from hushpost.sso.oidc_token import identity
from hushpost.sso.secrets import seal_client_secret
from hushpost.sso.signin import SSORefused
from tests import personas
from tests.idp import OIDCProvider
from tests.idp.oidc_provider import CLIENT_ID, CLIENT_SECRET, IDP_PASSWORD


@pytest.fixture
def sso(org, idp):
    return personas.oidc_sign_on(org, idp.issuer)


def _to_provider(client, email: str, **extra) -> str:
    """Next, then Continue with single sign-on: the provider's authorization URL."""
    r = client.post("/login", {"email": email, "sso": "1", **extra})
    onward = re.search(r'href="(/sso/[^"]+)"', r.content.decode()).group(1)  # the page going on there
    r = client.get(html.unescape(onward))
    assert r.status_code == 302, r.content[:300]
    return r["Location"]


def _provider_login(authorize_url: str, email: str) -> str:
    """The person signs in at the provider: its answer, the callback path with code and state."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    r = requests.post(authorize_url.split("?")[0], data={**query, "username": email, "password": IDP_PASSWORD},
                      allow_redirects=False, timeout=5)
    assert r.status_code == 302, r.text
    return _callback(r)


def _callback(answer) -> str:
    """The portal's part of the provider's redirect: the callback path with code and state."""
    url = urlsplit(answer.headers["Location"])
    return f"{url.path}?{url.query}"


def _refusals() -> list[str]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.SSO_REFUSED).values_list("detail", flat=True))


def test_the_authorization_request_uses_pkce_a_nonce_and_the_login_hint_and_no_secret(client, sso, alice, idp,
                                                                                       caplog):
    caplog.set_level(logging.DEBUG)
    url = _to_provider(client, alice.email)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["login_hint"] == [alice.email] and query["scope"] == ["openid email profile"]
    assert query["redirect_uri"] == [oidc.redirect_uri(sso)] and query["client_id"] == [CLIENT_ID]
    assert "prompt" not in query and "max_age" not in query
    assert CLIENT_SECRET not in url and "code_verifier" not in url
    r = client.get(_provider_login(url, alice.email))
    assert r.status_code == 302 and r["Location"] == "/app/"
    assert client.get("/app/").status_code == 200
    assert idp.seen()["token"]["auth_method"] == "client_secret_basic"
    assert CLIENT_SECRET not in caplog.text
    assert CLIENT_SECRET.encode() not in str(list(client.session.items())).encode()


def test_the_client_secret_goes_in_the_form_where_the_provider_accepts_only_that(client, org, alice):
    provider = OIDCProvider("client_secret_post")
    try:
        personas.oidc_sign_on(org, provider.issuer)
        r = client.get(_provider_login(_to_provider(client, alice.email), alice.email))
        assert r["Location"] == "/app/"
        assert provider.seen()["token"] == {
            "auth_method": "client_secret_post",
            "fields": ["client_id", "client_secret", "code", "code_verifier", "grant_type", "redirect_uri"]}
    finally:
        provider.stop()


def test_a_wrong_client_secret_is_refused_by_the_provider_and_said_so(client, sso, alice):
    sso.oidc_client_secret_sealed = seal_client_secret(sso.org_id, "not-the-secret")
    sso.save()
    r = client.get(_provider_login(_to_provider(client, alice.email), alice.email))
    assert r.status_code == 403 and "did not sign you in" in r.content.decode()
    assert _refusals() == ["oidc: idp_error (token endpoint: invalid_client)"]


def test_a_restored_session_cannot_replay_a_nonce(client, sso, alice):
    """The state is gone once used; a copy of the session from before (a backup, a second
    browser holding the same cookie) brings it back, but the nonce is still spent."""
    url = _to_provider(client, alice.email)
    before = dict(client.session.items())
    assert client.get(_provider_login(url, alice.email))["Location"] == "/app/"
    session = client.session
    session.update({k: v for k, v in before.items() if k == oidc.PENDING})
    session.save()
    r = client.get(_provider_login(url, alice.email))  # the provider answers the same request again
    assert _refusals() == ["oidc: replay (nonce already used)"]
    assert r.status_code == 403 and "already used" in r.content.decode()
    assert SeenAssertion.objects.count() == 1  # a keyed hash, nothing the provider issued
    assert all(len(key) == 64 and "nonce" not in key for key in SeenAssertion.objects.values_list("key", flat=True))


def test_an_answer_for_another_organisation_is_refused(client, sso, alice, idp):
    other = personas.harbour()
    personas.oidc_sign_on(other, idp.issuer)
    url = _to_provider(client, alice.email)
    callback = _provider_login(url, alice.email).replace(f"/sso/{sso.org.slug}/", f"/sso/{other.slug}/")
    r = client.get(callback)
    assert r.status_code == 403 and "not started here" in r.content.decode()


def test_the_provider_error_is_kept_to_its_code(client, sso, alice, idp):
    idp.misbehave(error="access_denied")
    r = client.get(_provider_login(_to_provider(client, alice.email), alice.email))
    page = r.content.decode()
    assert r.status_code == 403 and "Your identity provider did not sign you in." in page
    assert "Refused" not in page and "policy" not in page
    assert _refusals() == ["oidc: idp_error (access_denied)"]


def test_an_unreachable_provider_is_explained_not_a_crash(client, sso, alice):
    sso.oidc_issuer = "http://127.0.0.1:9"  # discard: nothing listens
    sso.save()
    client.post("/login", {"email": alice.email, "sso": "1"})
    r = client.get(f"/sso/{sso.org.slug}/start")
    assert r.status_code == 403 and "not set up correctly" in r.content.decode()
    assert _refusals() == ["oidc: misconfigured (Hushpost could not reach "
                           "http://127.0.0.1:9/.well-known/openid-configuration: the connection failed "
                           "(is the address right, and the server up?).)"]


@pytest.mark.parametrize("issuer, problem", [
    ("http://idp.example.net", "must use https://"),
    ("http://127.0.0.1:9", "Hushpost could not reach http://127.0.0.1:9/.well-known/openid-configuration"),
])
def test_the_settings_check_explains_what_is_wrong(org, issuer, problem):
    form = SingleSignOnForm({"protocol": "oidc", "oidc_issuer": issuer, "oidc_client_id": CLIENT_ID,
                             "oidc_client_secret": CLIENT_SECRET, "group_claim": "groups"},
                            instance=SingleSignOn(org=org))
    assert not form.is_valid()
    assert problem in " ".join(form.non_field_errors())


def test_the_settings_check_accepts_the_provider_and_its_discovery_url(org, idp):
    for issuer in (idp.issuer, idp.issuer + "/.well-known/openid-configuration"):
        form = SingleSignOnForm({"protocol": "oidc", "oidc_issuer": issuer, "oidc_client_id": CLIENT_ID,
                                 "oidc_client_secret": CLIENT_SECRET, "group_claim": "groups"},
                                instance=SingleSignOn(org=org))
        assert form.is_valid(), form.errors


def test_a_rotated_signing_key_is_fetched_once_the_token_names_it(client, sso, alice, idp):
    assert client.get(_provider_login(_to_provider(client, alice.email), alice.email))["Location"] == "/app/"
    client.post("/logout")
    idp.misbehave(rotate=True)
    assert client.get(_provider_login(_to_provider(client, alice.email), alice.email))["Location"] == "/app/"


def test_confirming_at_a_provider_that_does_not_ask_again_is_refused(client, sso, alice, idp):
    """"Confirm it's you" must mean a fresh sign-in at the provider, not its remembered session."""
    browser = requests.Session()  # the person's browser at the provider, keeping its cookie
    idp.misbehave(clock=-15 * 60)  # signed in there a quarter of an hour ago
    url = _to_provider(client, alice.email)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    answer = browser.post(url.split("?")[0], data={**query, "username": alice.email, "password": IDP_PASSWORD},
                          allow_redirects=False, timeout=5)
    idp.misbehave(clock=0, ignore_prompt=True)
    assert client.get(_callback(answer))["Location"] == "/app/"
    r = client.get(f"/sso/{sso.org.slug}/start?force=1&next=/app/admin/")
    assert "prompt=login" in r["Location"] and "max_age=0" in r["Location"]
    answer = browser.get(r["Location"], allow_redirects=False, timeout=5)  # waved through, no form
    assert answer.status_code == 302
    r = client.get(_callback(answer))
    assert r.status_code == 403
    assert _refusals() == ["oidc: expired (the provider did not sign the person in again)"]


@pytest.mark.parametrize("claims, email, groups", [
    ({"email": "Alice@Northwind.example", "groups": ["a", "b"]}, "Alice@Northwind.example", ["a", "b"]),
    ({"preferred_username": "alice@northwind.example", "groups": "admins"}, "alice@northwind.example", ["admins"]),
    ({"preferred_username": "ALICE", "upn": "alice@northwind.example"}, "alice@northwind.example", []),
])
def test_the_address_comes_from_email_or_entra_ids_user_name(claims, email, groups):
    found = identity({"sub": "x", **claims}, "groups")
    assert (found.email, found.groups) == (email, groups)


def test_no_address_at_all_is_refused():
    with pytest.raises(SSORefused) as refusal:
        identity({"sub": "x", "preferred_username": "alice"}, "groups")
    assert refusal.value.reason == "no_email"


def test_the_settings_check_refuses_a_provider_naming_another_issuer(org, idp):
    """The same provider reached under another name: its tokens say 127.0.0.1, not localhost."""
    elsewhere = idp.issuer.replace("127.0.0.1", "localhost")
    form = SingleSignOnForm({"protocol": "oidc", "oidc_issuer": elsewhere, "oidc_client_id": CLIENT_ID,
                             "oidc_client_secret": CLIENT_SECRET, "group_claim": "groups"},
                            instance=SingleSignOn(org=org))
    assert not form.is_valid()
    assert form.non_field_errors() == [
        f"The discovery document at that address names another issuer than {elsewhere}. "
        "Enter the issuer exactly as the provider names it."]
    assert idp.issuer not in form.non_field_errors()[0]  # what the answer said is not repeated


def test_a_provider_session_a_quarter_of_an_hour_old_signs_in_but_does_not_confirm(client, sso, alice, idp):
    """Signing in counts as "confirm it's you" only when the provider asked the person just now."""
    idp.misbehave(clock=-15 * 60)  # the person signed in at the provider a quarter of an hour ago
    answer = _provider_login(_to_provider(client, alice.email), alice.email)
    idp.misbehave(clock=0)
    assert client.get(answer)["Location"] == "/app/"
    assert "hushpost_confirmed" not in client.session
    client.post("/logout")
    assert client.get(_provider_login(_to_provider(client, alice.email), alice.email))["Location"] == "/app/"
    assert client.session["hushpost_confirmed"]["user"] == alice.pk


@pytest.mark.parametrize("claims", [
    {"email": "alice@northwind.example", "email_verified": "false"},
    {"email": "alice@northwind.example", "email_verified": 0},
    # An unusable address claim is not replaced by another claim that happens to look like one.
    {"email": "not an address", "preferred_username": "alice@northwind.example"},
])
def test_an_address_not_vouched_for_is_refused(claims):
    with pytest.raises(SSORefused) as refusal:
        identity({"sub": "x", **claims}, "groups")
    assert refusal.value.reason == "no_email"


def test_a_sign_on_started_from_another_site_asks_first(client, sso, alice):
    """A link elsewhere to /sso/<org>/start must not sign a visitor in to an account of that
    organisation's identity provider's choosing (login CSRF): the person decides."""
    start = f"/sso/{sso.org.slug}/start?next=/app/"
    r = client.get(start, HTTP_SEC_FETCH_SITE="cross-site")
    assert r.status_code == 200 and "Continue only if you work at Northwind Health" in r.content.decode()
    assert 'http-equiv="refresh"' not in r.content.decode()
    assert client.get(start, HTTP_SEC_FETCH_SITE="same-origin").status_code == 302  # the button, from here


def test_production_accepts_only_https_providers(org, settings):
    settings.PRODUCTION = True
    form = SingleSignOnForm({"protocol": "oidc", "oidc_issuer": "http://127.0.0.1:9", "oidc_client_id": CLIENT_ID,
                             "oidc_client_secret": CLIENT_SECRET, "group_claim": "groups"},
                            instance=SingleSignOn(org=org))
    assert not form.is_valid() and "must use https://" in " ".join(form.non_field_errors())


def test_a_password_someone_else_chose_stops_working_at_the_first_single_sign_on(client, sso, org, idp):
    nia = create_sender(email="nia@northwind.example", name="Nia", password=personas.PASSWORD, org=org,
                        by_label="hushpost user add", must_change_password=True)
    assert client.get(_provider_login(_to_provider(client, nia.email), nia.email))["Location"] == "/app/"
    assert client.get("/app/").status_code == 200  # not held at "choose your password"
    nia.refresh_from_db()
    assert not nia.has_usable_password() and not nia.must_change_password
    client.post("/logout")
    assert personas.password_step(client, nia.email).status_code == 400


def test_the_saved_client_secret_goes_only_to_the_provider_it_was_given_for(org, idp, sso):
    form = SingleSignOnForm({"protocol": "oidc", "oidc_issuer": "https://attacker.example", "oidc_client_id": CLIENT_ID,
                             "group_claim": "groups"}, instance=sso)
    assert not form.is_valid()
    assert form.errors["oidc_client_secret"] == ["Enter the client secret again: the issuer or client ID changed."]
