"""CSRF under Referrer-Policy: no-referrer, where browsers send `Origin: null`."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.personas import PASSWORD


@pytest.fixture
def csrf_client(db):
    c = Client(enforce_csrf_checks=True)
    c.get("/login")
    return c


def _post(c, **headers):
    token = c.cookies["csrftoken"].value
    return c.post("/login", {"email": "alice@northwind.example", "password": PASSWORD,
                             "csrfmiddlewaretoken": token}, **headers)


def test_same_origin_form_with_null_origin_is_accepted(csrf_client, alice):
    r = _post(csrf_client, HTTP_ORIGIN="null", HTTP_SEC_FETCH_SITE="same-origin")
    assert r.status_code == 302


@pytest.mark.parametrize("site", ["cross-site", "same-site", "none", None])
def test_null_origin_from_anywhere_else_is_refused(csrf_client, alice, site):
    headers = {"HTTP_ORIGIN": "null"}
    if site:
        headers["HTTP_SEC_FETCH_SITE"] = site
    r = _post(csrf_client, **headers)
    assert r.status_code == 403 and b"This page has expired" in r.content


def test_foreign_origin_is_refused_even_with_a_token(csrf_client, alice):
    r = _post(csrf_client, HTTP_ORIGIN="https://evil.example", HTTP_SEC_FETCH_SITE="same-origin")
    assert r.status_code == 403


def test_null_origin_still_needs_the_token(db, alice):
    c = Client(enforce_csrf_checks=True)
    c.get("/login")
    r = c.post("/login", {"email": alice.email, "password": PASSWORD},
               HTTP_ORIGIN="null", HTTP_SEC_FETCH_SITE="same-origin")
    assert r.status_code == 403


def test_referrer_policy_stays_no_referrer(client, db):
    assert client.get("/login")["Referrer-Policy"] == "no-referrer"


def test_static_assets_are_served(client, db):
    r = client.get("/static/hushpost/hushpost.css")
    assert r.status_code == 200


def _every_route():
    """Every URL the site answers, with sample values for its parameters."""
    from django.urls import URLPattern, URLResolver, get_resolver

    samples = {"uid": "NoSuchMessage0000000000", "file_uid": "NoSuchFile000000000000", "org_slug": "northwind-health",
               "user_id": "1", "notification_id": "1", "pk": "1", "uidb64": "MQ", "token": "set-password",
               "token_id": "1", "hold_id": "1", "name": "User", "urn": "urn:ietf:params:scim:schemas:core:2.0:User",
               "code": "NoSuchCode", "digest": "0" * 64, "colour": "0b6e4f"}

    def walk(patterns, prefix=""):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                yield route, p.callback

    for route, view in walk(get_resolver().url_patterns):
        if (route.startswith(("ops/", "static/")) and not route.startswith("ops/login")) or "<path:" in route:
            continue  # Django's own admin pages (their own CSRF), static files; the operators' sign-in is ours
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: samples[m.group(1)], "/" + route)
        yield path, view


@pytest.mark.parametrize(("path", "view"), list(_every_route()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_post_anywhere_needs_the_token(db, org, path, view):
    c = Client(enforce_csrf_checks=True)
    r = c.post(path, {"email": "a@b.example", "password": "x"})
    if getattr(view, "csrf_exempt", False):
        # Server-to-server endpoints: signed requests instead (tests/test_regions.py); the SAML
        # assertion consumer service: the identity provider's signed response answering this
        # session's request instead (tests/browser/test_sso_saml.py); provisioning (SCIM): a
        # bearer token in every request, never a cookie (tests/test_scim.py).
        assert (path.startswith(("/regions/v1/", "/scim/v2/"))
                or re.fullmatch(r"/sso/[\w-]+/saml/acs", path)), path
        return
    assert r.status_code == 403, (path, r.status_code)
    assert b"This page has expired" in r.content
