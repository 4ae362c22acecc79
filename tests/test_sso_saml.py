"""SAML 2.0 without a browser: the portal's own metadata, and the checks on an organisation's
identity provider settings (the browser tests in tests/browser/test_sso_saml.py sign in)."""

from __future__ import annotations

import base64

from defusedxml import ElementTree

from hushpost.audit.models import AuditEvent
from hushpost.orgs.models import Organization
from hushpost.sso import saml
from hushpost.sso.models import SingleSignOn
from hushpost.sso.signin import REASONS

MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
IDP_METADATA = """<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
  entityID="https://idp.example/saml"><md:IDPSSODescriptor
  protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}<md:SingleSignOnService
  Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example/sso"/>
  </md:IDPSSODescriptor></md:EntityDescriptor>"""


def test_the_portal_publishes_its_service_provider_metadata(client, org, base_url_testserver):
    SingleSignOn.objects.create(org=org, protocol="saml")
    response = client.get(f"/sso/{org.slug}/saml/metadata")
    assert response.status_code == 200 and response["Content-Type"] == "application/samlmetadata+xml"
    root = ElementTree.fromstring(response.content)
    assert root.get("entityID") == f"http://testserver/sso/{org.slug}/saml/metadata"
    acs = root.find(f"{MD}SPSSODescriptor/{MD}AssertionConsumerService")
    assert acs.get("Location") == f"http://testserver/sso/{org.slug}/saml/acs"
    assert acs.get("Binding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    assert "PRIVATE KEY" not in response.content.decode() and "md5" not in response.content.decode()


def test_an_organisation_without_single_sign_on_has_no_metadata(client, org):
    assert client.get(f"/sso/{org.slug}/saml/metadata").status_code == 404


def test_metadata_that_is_not_an_identity_provider_s_is_explained(org):
    sso = SingleSignOn(org=org, protocol="saml", saml_metadata_xml="<html>Sign in</html>")
    assert saml.check(sso) == [
        "That is not SAML metadata of an identity provider (no IDPSSODescriptor was found)."]


def test_metadata_without_a_redirect_endpoint_or_signing_key_is_explained(org):
    sso = SingleSignOn(org=org, protocol="saml", saml_metadata_xml=IDP_METADATA.format(keys=""))
    problems = " ".join(saml.check(sso))
    assert "no single sign-on service for the HTTP-Redirect binding" in problems
    assert "no signing certificate" in problems


def test_a_server_without_xmlsec1_says_so(org, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    sso = SingleSignOn(org=org, protocol="saml", saml_metadata_xml=IDP_METADATA.format(keys=""))
    assert "the xmlsec1 program is missing" in saml.check(sso)[0]


def test_a_sign_in_through_saml_without_usable_metadata_is_refused(client, org):
    SingleSignOn.objects.create(org=org, protocol="saml", saml_metadata_xml="<broken")
    response = client.get(f"/sso/{org.slug}/start")
    assert response.status_code == 403
    assert "Single sign-on is not set up correctly" in response.content.decode()


def waiting(client, org_slug: str) -> None:
    """The session waits for an answer to a request made for ``org_slug``, as after its start."""
    session = client.session
    session[saml.PENDING] = {"id": "id-4f2a", "org": org_slug, "next": "/app/", "force": False, "at": 0}
    session.save()


def refusal(response) -> str:
    assert response.status_code == 403
    return AuditEvent.objects.get(action=AuditEvent.Action.SSO_REFUSED).detail


def test_a_response_from_the_identity_provider_s_site_is_posted_again_from_this_one(client, org):
    # Cross-site, the browser keeps back the session cookie (SameSite=Lax); posted again from
    # this site, it comes with it, and only then is the response read.
    SingleSignOn.objects.create(org=org, protocol="saml", saml_metadata_xml="<broken")
    response = client.post(f"/sso/{org.slug}/saml/acs", {"SAMLResponse": "bm90IHhtbA=="})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert 'name="SAMLResponse" value="bm90IHhtbA=="' in page and 'name="again" value="1"' in page
    response = client.post(f"/sso/{org.slug}/saml/acs", {"SAMLResponse": "bm90IHhtbA==", "again": "1"})
    assert response.status_code == 403


def test_metadata_is_fetched_over_https_only(org):
    sso = SingleSignOn(org=org, protocol="saml", saml_metadata_url="http://idp.example/metadata")
    assert "The metadata URL must start with https://." in saml.check(sso)


def test_in_production_not_even_an_identity_provider_on_this_machine_is_fetched_over_http(
        org, saml_idp, settings):
    settings.PRODUCTION = True
    sso = SingleSignOn(org=org, protocol="saml", saml_metadata_url=saml_idp.metadata_url)
    assert "The metadata URL must start with https://." in saml.check(sso)
    assert sso.saml_metadata_xml == ""


def test_a_metadata_url_that_redirects_is_not_followed(org, saml_idp):
    """Not even to metadata on the same server: a redirect could lead anywhere."""
    sso = SingleSignOn(org=org, protocol="saml", saml_metadata_url=f"{saml_idp.url}/moved")
    assert saml.check(sso) == [
        "The metadata URL redirects elsewhere; enter the address of the metadata itself."]
    assert sso.saml_metadata_xml == ""


def test_what_a_metadata_url_answered_is_not_repeated(org, saml_idp):
    sso = SingleSignOn(org=org, protocol="saml", saml_metadata_url=f"{saml_idp.url}/nothing-here")
    assert saml.check(sso) == [f"The metadata could not be fetched from {saml_idp.url}/nothing-here."]


def test_a_response_with_a_document_type_is_refused_unread(client, org):
    SingleSignOn.objects.create(org=org, protocol="saml", saml_metadata_xml="<broken")
    waiting(client, org.slug)
    laughs = b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>'
    response = client.post(f"/sso/{org.slug}/saml/acs",
                           {"SAMLResponse": base64.b64encode(laughs).decode(), "again": "1"})
    assert refusal(response) == "saml: idp_error (unreadable response (EntitiesForbidden))"


def test_a_response_no_sign_in_here_waits_for_is_refused_unread(client, org, monkeypatch, tmp_path):
    """Anyone may post to the ACS: without a request of this session to answer, the response is
    neither parsed nor given to xmlsec1 (there is none on this PATH to run)."""
    SingleSignOn.objects.create(org=org, protocol="saml", saml_metadata_xml="<broken")
    monkeypatch.setenv("PATH", str(tmp_path))
    laughs = b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>'
    response = client.post(f"/sso/{org.slug}/saml/acs",
                           {"SAMLResponse": base64.b64encode(laughs).decode(), "again": "1"})
    assert refusal(response) == "saml: state (no sign-in started in this session)"
    assert REASONS["state"] in response.content.decode()


def test_a_sign_in_started_for_another_organisation_is_refused_at_this_one_s_acs(client, org):
    other = Organization.objects.create(name="Contoso", slug="contoso")
    SingleSignOn.objects.create(org=org, protocol="saml", saml_metadata_xml="<broken")
    waiting(client, other.slug)
    response = client.post(f"/sso/{org.slug}/saml/acs", {"SAMLResponse": "bm90IHhtbA==", "again": "1"})
    assert refusal(response) == "saml: state (sign-in started for another organisation)"
    assert saml.PENDING not in client.session  # used up: the sign-in starts again


def test_a_response_larger_than_any_identity_provider_sends_is_refused_unread(client, org):
    SingleSignOn.objects.create(org=org, protocol="saml", saml_metadata_xml="<broken")
    waiting(client, org.slug)
    response = client.post(f"/sso/{org.slug}/saml/acs",
                           {"SAMLResponse": base64.b64encode(b"<x/>" * 70_000).decode(), "again": "1"})
    assert refusal(response) == "saml: idp_error (unreadable response (ValueError))"
