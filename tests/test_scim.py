"""Provisioning over SCIM 2.0: what Microsoft Entra ID and Okta do, over real HTTP.

The identity provider of Northwind Health holds a provisioning token made by Ada, its
admin; Harbour Legal's holds another. Each walk below sends the requests those
services send, in their order, to the live server, and checks what the organisation
would notice: who can sign in, what the admin area shows, what the audit trail says.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from django.test import Client

from hushpost.accounts.actions import set_active
from hushpost.accounts.models import User
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.notifications.models import Notification
from hushpost.scim import changes, filters, tokens
from hushpost.scim.errors import ScimError
from hushpost.scim.models import ScimIdentity, ScimToken
from hushpost.sso.models import SingleSignOn
from tests.helpers import signed_in_as
from tests.personas import PASSWORD, ada, hal, harbour, sender, signed_in_sender

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
NEW = "dana.new@northwind.example"


class Scim:
    """An identity provider's provisioning client: JSON over HTTP with its bearer token."""

    def __init__(self, base: str, token: str | None):
        self.base, self.token = base.rstrip("/") + "/scim/v2", token

    def call(self, method: str, path: str, body=None, *, headers=None):
        request = urllib.request.Request(self.base + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        request.add_header("Accept", "application/scim+json")
        if body is not None:
            request.add_header("Content-Type", "application/scim+json")
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        if raw:
            assert kind.startswith("application/scim+json"), kind
        return status, json.loads(raw) if raw else None

    def find(self, attribute: str, value: str):
        query = urllib.parse.urlencode({"filter": f'{attribute} eq "{value}"'})
        return self.call("GET", f"/Users?{query}")

    def patch(self, user_id: str, *operations):
        return self.call("PATCH", f"/Users/{user_id}", {"schemas": [PATCH], "Operations": list(operations)})


@pytest.fixture
def site(live_server, settings, transactional_db):
    settings.BASE_URL = live_server.url
    return live_server.url


@pytest.fixture
def northwind_admin(org):
    return ada(org)


@pytest.fixture
def entra(site, org, northwind_admin):
    """Northwind's identity provider, holding a token Ada made."""
    return Scim(site, tokens.issue(org, "Microsoft Entra ID", by=northwind_admin)[1])


def new_user(email: str = NEW, **extra) -> dict:
    return {"schemas": [USER], "userName": email, "active": True, "displayName": "Dana New",
            "name": {"givenName": "Dana", "familyName": "New"},
            "emails": [{"primary": True, "type": "work", "value": email}], "externalId": "dana.new", **extra}


def scim_events(org) -> list[str]:
    """What the organisation's identity provider did (the admins' token changes are theirs)."""
    return list(AuditEvent.objects.filter(org=org, action=AuditEvent.Action.SCIM, actor__isnull=True).order_by("id")
                .values_list("detail", flat=True))


def assert_error(answer, status: int, scim_type: str = ""):
    code, body = answer
    assert code == status, body
    assert body["schemas"] == [ERROR] and body["status"] == str(status)
    assert body.get("scimType", "") == scim_type


# --- What Entra ID does ------------------------------------------------------------------------


def test_entra_creates_updates_disables_enables_and_deletes_a_sender(entra, org):
    status, found = entra.find("userName", NEW)
    assert status == 200 and found["totalResults"] == 0 and found["Resources"] == []

    status, created = entra.call("POST", "/Users", new_user())
    assert status == 201, created
    dana = User.objects.get(email=NEW)
    assert created["id"] == str(dana.pk) and created["userName"] == NEW and created["active"] is True
    assert created["externalId"] == "dana.new" and created["name"]["givenName"] == "Dana"
    assert dana.is_sender and dana.org == org and dana.name == "Dana New" and not dana.has_usable_password()
    assert Notification.objects.filter(user=dana, kind=Notification.Kind.INVITATION).count() == 1

    status, found = entra.find("userName", NEW.upper())  # the address compares without regard to case
    assert status == 200 and found["totalResults"] == 1 and found["Resources"][0]["id"] == str(dana.pk)
    status, found = entra.find("externalId", "dana.new")
    assert found["totalResults"] == 1

    status, changed = entra.patch(created["id"], {"op": "Replace", "path": "displayName", "value": "Dana Newman"})
    assert status == 200 and changed["displayName"] == "Dana Newman"
    assert User.objects.get(pk=dana.pk).name == "Dana Newman"

    status, changed = entra.patch(created["id"], {"op": "Replace", "path": "active", "value": "False"})
    assert status == 200 and changed["active"] is False
    assert not User.objects.get(pk=dana.pk).is_active
    status, changed = entra.patch(created["id"], {"op": "Replace", "path": "active", "value": "True"})
    assert status == 200 and changed["active"] is True and User.objects.get(pk=dana.pk).is_active

    status, body = entra.call("DELETE", f"/Users/{created['id']}")
    assert status == 204 and body is None
    assert_error(entra.call("GET", f"/Users/{created['id']}"), 404)
    assert entra.find("userName", NEW)[1]["totalResults"] == 0
    dana.refresh_from_db()
    assert not dana.is_active and dana.sessions_ended_at is not None  # the account, and what it sent, stay

    assert scim_events(org) == [
        f"created sender {NEW}: externalId, displayName, givenName, familyName; invitation sent",
        f"updated sender {NEW}: displayName",
        f"updated sender {NEW}: disabled",
        f"updated sender {NEW}: enabled",
        f"deleted sender {NEW}: disabled and detached; messages kept",
    ]
    assert all(e.actor_email.startswith("SCIM token Microsoft Entra ID (hpscim_")
               for e in AuditEvent.objects.filter(action=AuditEvent.Action.SCIM, actor__isnull=True))


def later():
    """A minute on: the slow-down after a wrong token (2, 4, 8 s) is over for the next step."""
    clock.travel(timedelta(minutes=1))


def test_a_deleted_sender_created_again_comes_back_with_the_same_account(entra):
    created = entra.call("POST", "/Users", new_user())[1]
    assert entra.call("DELETE", f"/Users/{created['id']}")[0] == 204
    status, again = entra.call("POST", "/Users", new_user(displayName="Dana Returns"))
    assert status == 201 and again["id"] == created["id"] and again["active"] is True
    assert User.objects.get(pk=created["id"]).name == "Dana Returns"


def test_entra_patches_without_a_path_and_with_the_paths_it_maps(entra):
    created = entra.call("POST", "/Users", new_user())[1]
    status, changed = entra.patch(
        created["id"],
        {"op": "replace", "value": {"active": False, "displayName": "Dana N."}},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": NEW},
        {"op": "Add", "path": "name.familyName", "value": "Newer"},
        {"op": "Replace", "path": "externalId", "value": "dana.n"},
        {"op": "Add", "path": "title", "value": "Nurse"},  # not kept by Hushpost, and no reason to fail
    )
    assert status == 200, changed
    assert changed["active"] is False and changed["displayName"] == "Dana N."
    assert changed["name"]["familyName"] == "Newer" and changed["externalId"] == "dana.n"
    status, changed = entra.patch(created["id"], {"op": "Remove", "path": "displayName"})
    assert status == 200 and changed["displayName"] == "Dana Newer"  # given and family names are left
    status, changed = entra.patch(created["id"], {"op": "Replace", "path": "userName", "value": "dana.n@northwind.example"})
    assert status == 200 and changed["userName"] == "dana.n@northwind.example"


# --- What Okta does ------------------------------------------------------------------------------


def test_okta_replaces_the_whole_user_with_put(entra, org):
    created = entra.call("POST", "/Users", new_user(displayName=""))[1]
    assert created["displayName"] == "Dana New"  # from the given and family names
    replacement = new_user(active=False, displayName="", name={"givenName": "Dana", "familyName": "Okta"},
                           externalId="00u1okta")
    status, replaced = entra.call("PUT", f"/Users/{created['id']}", replacement)
    assert status == 200, replaced
    assert replaced["active"] is False and replaced["displayName"] == "Dana Okta"
    assert replaced["externalId"] == "00u1okta"
    dana = User.objects.get(pk=created["id"])
    assert not dana.is_active and dana.name == "Dana Okta"
    assert entra.find("externalId", "00u1okta")[1]["totalResults"] == 1


def test_the_service_describes_itself(entra):
    status, config = entra.call("GET", "/ServiceProviderConfig")
    assert status == 200 and config["patch"]["supported"] and config["filter"]["supported"]
    assert not config["bulk"]["supported"]
    status, types = entra.call("GET", "/ResourceTypes")
    assert status == 200 and [t["id"] for t in types["Resources"]] == ["User"]
    status, schemas = entra.call("GET", "/Schemas")
    names = [a["name"] for a in schemas["Resources"][0]["attributes"]]
    assert {"userName", "active", "displayName", "externalId", "name"} <= set(names)
    assert entra.call("GET", f"/Schemas/{USER}")[0] == 200


def test_a_listing_pages_through_the_senders(entra, org):
    for n in range(3):
        sender(org, f"s{n}", f"Sender {n}")
    status, page = entra.call("GET", "/Users?startIndex=2&count=2")
    assert status == 200 and page["totalResults"] == 4 and page["itemsPerPage"] == 2 and page["startIndex"] == 2
    assert [r["userName"] for r in page["Resources"]] == ["s0@northwind.example", "s1@northwind.example"]


def test_a_json_body_sent_as_application_json_is_read_too(entra):
    status, created = entra.call("POST", "/Users", new_user(), headers={"Content-Type": "application/json"})
    assert status == 201, created


# --- Who may provision whom ----------------------------------------------------------------------


def test_without_a_valid_token_nothing_is_answered(site, entra, org, northwind_admin):
    dana = entra.call("POST", "/Users", new_user())[1]
    assert_error(Scim(site, None).call("GET", "/Users"), 401)
    assert_error(Scim(site, "hpscim_" + "x" * 43).call("GET", "/Users"), 401)
    later()
    assert_error(Scim(site, "not-even-the-shape").call("GET", f"/Users/{dana['id']}"), 401)
    later()
    token, raw = tokens.issue(org, "Okta", by=northwind_admin)
    okta = Scim(site, raw)
    assert okta.call("GET", "/Users")[0] == 200
    tokens.revoke(token, by=northwind_admin)
    assert_error(okta.call("GET", "/Users"), 401)
    later()
    assert_error(okta.patch(dana["id"], {"op": "replace", "path": "active", "value": False}), 401)
    assert User.objects.get(pk=dana["id"]).is_active
    assert_error(Scim(site, None).call("GET", "/ServiceProviderConfig"), 401)


def test_another_organisations_token_can_neither_see_nor_touch_northwinds_senders(site, entra, org):
    dana = entra.call("POST", "/Users", new_user())[1]
    other = harbour()
    theirs = Scim(site, tokens.issue(other, "Harbour Entra", by=hal(other))[1])
    assert theirs.find("userName", NEW)[1]["totalResults"] == 0
    assert NEW not in json.dumps(theirs.call("GET", "/Users")[1])
    assert_error(theirs.call("GET", f"/Users/{dana['id']}"), 404)
    assert_error(theirs.patch(dana["id"], {"op": "replace", "path": "active", "value": "False"}), 404)
    assert_error(theirs.call("PUT", f"/Users/{dana['id']}", new_user(active=False)), 404)
    assert_error(theirs.call("DELETE", f"/Users/{dana['id']}"), 404)
    assert_error(theirs.call("POST", "/Users", new_user()), 400, "invalidValue")  # not at Harbour's domains
    assert User.objects.get(pk=dana["id"]).is_active


def test_recipients_are_not_senders_to_provision(entra, org):
    bob = User.objects.create(org=org, email="bob@client.example", role=User.Role.RECIPIENT)
    assert_error(entra.call("GET", f"/Users/{bob.pk}"), 404)
    assert_error(entra.call("DELETE", f"/Users/{bob.pk}"), 404)
    assert_error(entra.call("GET", "/Users/not-a-number"), 404)
    assert entra.find("userName", "bob@client.example")[1]["totalResults"] == 0
    assert User.objects.get(pk=bob.pk).is_active


# --- Requests that cannot be done change nothing -------------------------------------------------


def test_bad_requests_are_refused_in_scims_words(entra, org):
    assert_error(entra.call("GET", "/Users?filter=" + urllib.parse.quote('userName co "dana"')), 400, "invalidFilter")
    assert_error(entra.call("GET", "/Users?filter=" + urllib.parse.quote('title eq "Nurse"')), 400, "invalidFilter")
    assert_error(entra.call("GET", "/Users?filter=" + urllib.parse.quote('userName eq "a\u0000"')), 400, "invalidFilter")
    assert_error(entra.call("GET", "/Users?startIndex=%00"), 400, "invalidValue")
    assert_error(entra.call("GET", "/Users?count=many"), 400, "invalidValue")
    assert_error(entra.call("POST", "/Users", new_user(), headers={"Content-Type": "text/plain"}), 415, "invalidSyntax")
    assert_error(entra.call("POST", "/Users", new_user("dana@elsewhere.example")), 400, "invalidValue")
    assert_error(entra.call("POST", "/Users", {"schemas": [USER], "active": True}), 400, "invalidValue")
    created = entra.call("POST", "/Users", new_user())[1]
    assert_error(entra.call("POST", "/Users", new_user(NEW.upper())), 409, "uniqueness")
    sender(org, "taken", "Taken")
    assert_error(entra.patch(created["id"], {"op": "replace", "path": "userName", "value": "taken@northwind.example"}),
                 409, "uniqueness")
    assert_error(entra.patch(created["id"], {"op": "replace", "path": "userName", "value": "dana@elsewhere.example"}),
                 400, "invalidValue")
    assert_error(entra.patch(created["id"], {"op": "replace", "path": "id", "value": "1"}), 400, "mutability")
    assert_error(entra.patch(created["id"], {"op": "remove", "path": "userName"}), 400, "mutability")
    # One bad operation and the good one before it is undone too.
    assert_error(entra.patch(created["id"], {"op": "replace", "path": "displayName", "value": "Changed"},
                             {"op": "replace", "path": "active", "value": "maybe"}), 400, "invalidValue")
    assert_error(entra.patch(created["id"], {"op": "Move", "path": "active"}), 400, "invalidSyntax")
    assert_error(entra.call("PATCH", f"/Users/{created['id']}", {"Operations": "replace"}), 400, "invalidSyntax")
    dana = User.objects.get(pk=created["id"])
    assert dana.name == "Dana New" and dana.is_active and dana.email == NEW
    assert User.objects.filter(email="dana@elsewhere.example").count() == 0
    assert len(scim_events(org)) == 1  # the one creation


def test_repeated_wrong_tokens_from_one_client_are_held_off(org, northwind_admin, settings, client_factory):
    raw = tokens.issue(org, "Entra", by=northwind_admin)[1]
    guesser = client_factory(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer hpscim_wrong")
    answers = [guesser.get("/scim/v2/Users").status_code for _ in range(settings.LOCKOUT_FAILURES + 1)]
    assert answers[0] == 401 and answers[-1] == 429
    held = guesser.get("/scim/v2/Users")
    assert held.status_code == 429 and int(held["Retry-After"]) > 0
    assert json.loads(held.content)["schemas"] == [ERROR]
    fine = client_factory(REMOTE_ADDR="198.51.100.7", HTTP_AUTHORIZATION=f"Bearer {raw}").get("/scim/v2/Users")
    assert fine.status_code == 200


def test_one_tenants_broken_token_does_not_hold_off_another_provisioning_from_the_same_address(
        org, northwind_admin, settings, client_factory):
    """Entra ID provisions every tenant from Microsoft's shared addresses."""
    raw = tokens.issue(org, "Entra", by=northwind_admin)[1]
    harbours_admin = hal(harbour())
    revoked, revoked_raw = tokens.issue(harbours_admin.org, "Old Entra", by=harbours_admin)
    tokens.revoke(revoked, by=harbours_admin)
    microsoft = "20.36.0.10"
    broken = client_factory(REMOTE_ADDR=microsoft, HTTP_AUTHORIZATION=f"Bearer {revoked_raw}")
    answers = [broken.get("/scim/v2/Users").status_code for _ in range(settings.CLIENT_FAILURES + 1)]
    assert answers[0] == 401 and set(answers[-3:]) == {429}  # the revoked token stays refused
    northwind = client_factory(REMOTE_ADDR=microsoft, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert northwind.get("/scim/v2/Users").status_code == 200
    r = northwind.post("/scim/v2/Users", json.dumps(new_user()), content_type="application/scim+json")
    assert r.status_code == 201
    other = client_factory(REMOTE_ADDR=microsoft, HTTP_AUTHORIZATION="Bearer hpscim_another")
    assert other.get("/scim/v2/Users").status_code == 401  # another wrong token is only counted


# --- Effects a person notices ---------------------------------------------------------------------


def scim_client(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_a_sender_disabled_by_the_identity_provider_is_signed_out_at_their_next_request(org, northwind_admin):
    alice = sender(org)
    browser = signed_in_sender(alice)
    assert browser.get("/app/").status_code == 200
    provider = scim_client(tokens.issue(org, "Entra", by=northwind_admin)[1])
    r = provider.patch(f"/scim/v2/Users/{alice.pk}", json.dumps(
        {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
        content_type="application/scim+json")
    assert r.status_code == 200 and r["Content-Type"] == "application/scim+json"
    r = browser.get("/app/")
    assert r.status_code == 302 and r["Location"].startswith("/login")
    assert Client().post("/login", {"email": alice.email, "password": PASSWORD}).status_code == 400


def test_a_session_ended_by_disabling_stays_ended_once_the_sender_is_enabled_again(org, northwind_admin):
    alice = sender(org)
    browser = signed_in_sender(alice)
    provider = scim_client(tokens.issue(org, "Entra", by=northwind_admin)[1])
    for active in ("False", "True"):  # off and on again, without a request from Alice in between
        r = provider.patch(f"/scim/v2/Users/{alice.pk}", json.dumps(
            {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": active}]}),
            content_type="application/scim+json")
        assert r.status_code == 200
    assert browser.get("/app/").status_code == 302
    assert signed_in_sender(alice).get("/app/").status_code == 200  # she signs in again


def test_a_deleted_sender_is_signed_out_too(org, northwind_admin):
    alice = sender(org)
    browser = signed_in_sender(alice)
    provider = scim_client(tokens.issue(org, "Entra", by=northwind_admin)[1])
    assert provider.delete(f"/scim/v2/Users/{alice.pk}").status_code == 204
    assert browser.get("/app/").status_code == 302
    assert ScimIdentity.objects.get(user=alice).deleted_at is not None


def test_with_single_sign_on_required_new_senders_get_no_invitation(org, northwind_admin):
    SingleSignOn.objects.create(org=org, protocol=SingleSignOn.Protocol.OIDC, required=True,
                                oidc_issuer="https://login.example/tenant", oidc_client_id="hushpost")
    provider = scim_client(tokens.issue(org, "Entra", by=northwind_admin)[1])
    r = provider.post("/scim/v2/Users", json.dumps(new_user()), content_type="application/scim+json")
    assert r.status_code == 201, r.content
    dana = User.objects.get(email=NEW)
    assert not Notification.objects.filter(user=dana).exists()
    assert scim_events(org)[-1].endswith("; no invitation (single sign-on)")


def test_a_sender_created_disabled_gets_no_invitation(org, northwind_admin):
    provider = scim_client(tokens.issue(org, "Entra", by=northwind_admin)[1])
    r = provider.post("/scim/v2/Users", json.dumps(new_user(active=False)), content_type="application/scim+json")
    assert r.status_code == 201 and json.loads(r.content)["active"] is False
    assert not Notification.objects.filter(user__email=NEW).exists()


# --- What a token may not do: take the organisation over --------------------------------------


def send(provider: Client, method: str, path: str, body=None):
    r = getattr(provider, method.lower())(f"/scim/v2{path}", json.dumps(body) if body is not None else None,
                                          content_type="application/scim+json")
    return r.status_code, json.loads(r.content) if r.content else None


def replace(**values) -> dict:
    return {"schemas": [PATCH], "Operations": [{"op": "replace", "value": values}]}


def test_a_token_sees_the_organisations_admins_but_cannot_change_or_delete_them(org, northwind_admin):
    provider = scim_client(tokens.issue(org, "Entra", by=northwind_admin)[1])
    path = f"/Users/{northwind_admin.pk}"
    status, listed = send(provider, "GET", path)
    assert status == 200 and listed["userName"] == northwind_admin.email
    for method, body in (("PATCH", replace(userName="mallory@attacker.example")),
                         ("PATCH", replace(active=False)),
                         ("PUT", new_user("mallory@attacker.example")),
                         ("DELETE", None)):
        answer = send(provider, method, path, body)
        assert_error(answer, 403, "mutability")
        assert "admins are managed in Hushpost's admin area" in answer[1]["detail"]
    ada = User.objects.get(pk=northwind_admin.pk)
    assert ada.email == northwind_admin.email and ada.is_active and ada.is_org_admin
    assert not ScimIdentity.objects.filter(user=ada).exists() and scim_events(org) == []
    assert signed_in_sender(ada).get("/app/").status_code == 200  # Ada still signs in


def test_a_sender_made_admin_leaves_provisioning_s_hands(org, northwind_admin):
    provider = scim_client(tokens.issue(org, "Entra", by=northwind_admin)[1])
    status, created = send(provider, "POST", "/Users", new_user())
    assert status == 201
    User.objects.filter(pk=created["id"]).update(is_org_admin=True)  # promoted in the admin area
    assert_error(send(provider, "PATCH", f"/Users/{created['id']}", replace(displayName="Dana Admin")), 403,
                 "mutability")
    assert_error(send(provider, "DELETE", f"/Users/{created['id']}"), 403, "mutability")
    assert User.objects.get(pk=created["id"]).is_active


def test_a_put_without_active_leaves_the_sender_as_they_are(org, northwind_admin):
    provider = scim_client(tokens.issue(org, "Entra", by=northwind_admin)[1])
    status, created = send(provider, "POST", "/Users", new_user(active=False))
    assert status == 201 and created["active"] is False
    body = new_user(displayName="Dana Put")
    del body["active"]
    status, replaced = send(provider, "PUT", f"/Users/{created['id']}", body)
    assert status == 200 and replaced["active"] is False and replaced["displayName"] == "Dana Put"
    assert not User.objects.get(pk=created["id"]).is_active


def test_a_sender_an_admin_disabled_stays_disabled_whatever_provisioning_sends(org, northwind_admin):
    alice = sender(org)
    set_active(alice, False, by=northwind_admin)  # what the admin area's Disable does
    provider = scim_client(tokens.issue(org, "Entra", by=northwind_admin)[1])
    status, answered = send(provider, "PATCH", f"/Users/{alice.pk}", replace(active="True", displayName="Alice M."))
    assert status == 200 and answered["active"] is False and answered["displayName"] == "Alice M."
    status, answered = send(provider, "PUT", f"/Users/{alice.pk}", new_user(alice.email))
    assert status == 200 and answered["active"] is False
    assert not User.objects.get(pk=alice.pk).is_active
    assert Client().post("/login", {"email": alice.email, "password": PASSWORD}).status_code == 400
    assert all("stays disabled (an admin disabled the account" in e for e in scim_events(org))
    # Deleted and created again by the identity provider: still the admin's word.
    assert send(provider, "DELETE", f"/Users/{alice.pk}")[0] == 204
    status, again = send(provider, "POST", "/Users", new_user(alice.email))
    assert status == 201 and again["active"] is False


def test_an_admin_who_disabled_a_sender_provisioning_had_disabled_has_the_last_word(org, northwind_admin):
    alice = sender(org)
    provider = scim_client(tokens.issue(org, "Entra", by=northwind_admin)[1])
    assert send(provider, "PATCH", f"/Users/{alice.pk}", replace(active=False))[0] == 200
    set_active(alice, True, by=northwind_admin)
    set_active(alice, False, by=northwind_admin)
    status, answered = send(provider, "PATCH", f"/Users/{alice.pk}", replace(active=True))
    assert status == 200 and answered["active"] is False
    # Enabled by the admin, then disabled by provisioning: provisioning may enable her again.
    set_active(alice, True, by=northwind_admin)
    assert send(provider, "PATCH", f"/Users/{alice.pk}", replace(active=False))[1]["active"] is False
    assert send(provider, "PATCH", f"/Users/{alice.pk}", replace(active=True))[1]["active"] is True
    assert User.objects.get(pk=alice.pk).is_active


# --- Tokens: kept as a hash, made and revoked by an admin who confirmed it is them ---------------


def test_a_token_is_kept_only_as_a_keyed_hash_and_its_use_noted_once_a_minute(org, northwind_admin):
    token, raw = tokens.issue(org, "Entra", by=northwind_admin)
    stored = json.dumps(ScimToken.objects.filter(pk=token.pk).values().get(), default=str)
    assert raw not in stored and raw[13:] not in stored
    assert token.prefix == raw[:13] and len(token.digest) == 64
    clock.freeze()
    provider = scim_client(raw)
    assert provider.get("/scim/v2/Users").status_code == 200
    first = ScimToken.objects.get(pk=token.pk).last_used_at
    assert first == clock.now()
    clock.travel(timedelta(seconds=30))
    provider.get("/scim/v2/Users")
    assert ScimToken.objects.get(pk=token.pk).last_used_at == first
    clock.travel(timedelta(seconds=31))
    provider.get("/scim/v2/Users")
    assert ScimToken.objects.get(pk=token.pk).last_used_at == clock.now()


def test_an_admin_makes_a_token_once_confirmed_sees_it_once_and_revokes_it(org, northwind_admin):
    admin = signed_in_sender(northwind_admin)
    clock.travel(timedelta(minutes=11))
    r = admin.post("/app/admin/provisioning", {"name": "Microsoft Entra ID"})
    assert r.status_code == 200 and "Confirm it's you" in r.content.decode()
    assert not ScimToken.objects.exists()
    r = admin.post("/app/admin/provisioning", {"name": "Microsoft Entra ID", "current": PASSWORD})
    page = r.content.decode()
    token = ScimToken.objects.get()
    shown = re.search(r'value="(hpscim_[^"]+)"', page).group(1)
    assert r.status_code == 200 and "no-store" in r["Cache-Control"]
    assert "shown this once only" in page and "http://testserver/scim/v2" in page
    assert scim_client(shown).get("/scim/v2/Users").status_code == 200
    again = admin.get("/app/admin/provisioning").content.decode()
    assert shown not in again and token.prefix in again and "Microsoft Entra ID" in again
    r = admin.post(f"/app/admin/provisioning/{token.pk}/revoke")
    assert r.status_code == 302
    assert scim_client(shown).get("/scim/v2/Users").status_code == 401
    assert f'data-token="{token.prefix}"' not in admin.get("/app/admin/provisioning").content.decode()
    events = AuditEvent.objects.filter(action=AuditEvent.Action.SCIM, actor=northwind_admin).order_by("id")
    assert [e.detail for e in events] == [f"created provisioning token Microsoft Entra ID ({token.prefix}…)",
                                         f"revoked provisioning token Microsoft Entra ID ({token.prefix}…)"]
    assert all(shown not in e.detail for e in AuditEvent.objects.all())


def test_only_the_organisations_own_admins_manage_its_tokens(org, northwind_admin):
    token = tokens.issue(org, "Entra", by=northwind_admin)[0]
    other = harbour()
    outsider = signed_in_as(Client(), hal(other))
    assert f'data-token="{token.prefix}"' not in outsider.get("/app/admin/provisioning").content.decode()
    assert outsider.post(f"/app/admin/provisioning/{token.pk}/revoke").status_code == 404
    plain = signed_in_as(Client(), sender(org))
    assert plain.get("/app/admin/provisioning").status_code == 404
    assert plain.post(f"/app/admin/provisioning/{token.pk}/revoke").status_code == 404
    assert ScimToken.objects.get(pk=token.pk).revoked_at is None


def test_a_token_needs_a_name(org, northwind_admin):
    r = signed_in_as(Client(), northwind_admin).post("/app/admin/provisioning", {"name": ""})
    assert r.status_code == 400 and not ScimToken.objects.exists()


# --- Reading what identity providers send (no database) -------------------------------------------


@pytest.mark.parametrize(("text", "attribute", "value"), [
    ('userName eq "dana@northwind.example"', "userName", "dana@northwind.example"),
    ('USERNAME EQ "Dana@Northwind.example"', "userName", "Dana@Northwind.example"),
    (' externalId eq "a \\"quoted\\" id" ', "externalId", 'a "quoted" id'),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"', None, None),
    ('userName eq "x" and active eq true', None, None),
    ('userName sw "d"', None, None),
    ("userName eq dana", None, None),
    ('displayName eq "Dana"', None, None),
])
def test_only_equality_on_username_and_externalid_is_understood(text, attribute, value):
    if attribute is None:
        with pytest.raises(ScimError) as refused:
            filters.parse(text)
        assert refused.value.status == 400 and refused.value.scim_type == "invalidFilter"
    else:
        assert filters.parse(text) == filters.Equals(attribute, value)


def test_patch_reads_the_shapes_entra_and_okta_send():
    assert changes.from_patch({"Operations": [
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "add", "value": {"name.givenName": "Dana", "displayName": "Dana N",
                                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Care"}},
        {"op": "replace", "value": {"name": {"familyName": "New", "formatted": "Dana New"}, "active": True}},
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:externalId", "value": "e1"},
        {"op": "remove", "path": "name.givenName"},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "dana@northwind.example"},
    ]}) == {"active": True, "givenName": "", "displayName": "Dana N", "familyName": "New",
            "formatted": "Dana New", "externalId": "e1"}


@pytest.mark.parametrize("operation", [
    {"op": "replace", "path": "active", "value": "yes"},
    {"op": "replace", "path": "displayName", "value": 7},
    {"op": "replace", "path": "displayName", "value": "two\nlines"},
    {"op": "replace", "path": "displayName", "value": "x" * 201},
    {"op": "replace", "value": "not an object"},
    {"op": "remove"},
    {"op": "copy", "path": "active"},
])
def test_patch_refuses_what_it_cannot_use(operation):
    with pytest.raises(ScimError) as refused:
        changes.from_patch({"Operations": [operation]})
    assert refused.value.status == 400 and refused.value.scim_type
