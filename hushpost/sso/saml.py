"""SAML 2.0: the Web Browser SSO profile (HTTP-Redirect request, HTTP-POST response), with
pysaml2 as the service provider, one configuration per organisation built from the identity
provider's metadata it saved.

A response is looked at only in a session waiting for a request to the same organisation; any
other is refused before it is parsed or xmlsec1 runs on it. pysaml2 verifies the XML signatures
(through xmlsec1, against the certificates in that metadata),
the assertion's time window and subject confirmation. Before it runs, the response is read (not
trusted) to say precisely what is wrong with one that will be refused anyway: its status, who
issued it, whether anything is signed, its audience. After it, the assertion is used once
(:func:`hushpost.sso.signin.first_use`) and must answer the request this browser's session
started. AuthnRequests are not signed: that would need a key per portal to keep and roll over,
and a forged request gains nothing, since the response must still answer this session's request.
"""

from __future__ import annotations

import base64
import binascii
import shutil
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.response import IncorrectlySigned, StatusError
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID, Subject
from saml2.sigver import SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly
from saml2.xmldsig import (
    DIGEST_SHA256,
    DIGEST_SHA384,
    DIGEST_SHA512,
    SIG_ECDSA_SHA256,
    SIG_ECDSA_SHA384,
    SIG_ECDSA_SHA512,
    SIG_RSA_SHA256,
    SIG_RSA_SHA384,
    SIG_RSA_SHA512,
)

from hushpost.lib import clock
from hushpost.sso import saml_metadata
from hushpost.sso.signin import Identity, SSORefused, first_use

# What the session remembers between the request and the response: its ID, the organisation it was
# for, where the sender was going (the RelayState carries none of these), and whether and when
# ForceAuthn asked the identity provider to authenticate the person again.
PENDING = "hushpost_saml_request"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
EMAIL_ATTRIBUTES = ("email", "mail", "emailaddress",
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                    "urn:oid:0.9.2342.19200300.100.1.3")
NAME_ATTRIBUTES = ("displayName", "name", "cn", "http://schemas.microsoft.com/identity/claims/displayname",
                   "urn:oid:2.16.840.1.113730.3.1.241")
ENTRA_GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
# pysaml2 accepts RSA-SHA1; Entra ID, Okta, Google and Keycloak all sign with SHA-256 by default.
STRONG_SIGNATURES = {SIG_RSA_SHA256, SIG_RSA_SHA384, SIG_RSA_SHA512, SIG_ECDSA_SHA256, SIG_ECDSA_SHA384,
                     SIG_ECDSA_SHA512}
STRONG_DIGESTS = {DIGEST_SHA256, DIGEST_SHA384, DIGEST_SHA512}
MAX_RESPONSE = 256_000  # bytes of base64; real responses are a few kilobytes, large group lists tens
CLOCK_SKEW = 60  # seconds allowed between the identity provider's clock and ours


def entity_id(sso) -> str:
    return f"{settings.BASE_URL}/sso/{sso.org.slug}/saml/metadata"


def acs_url(sso) -> str:
    return f"{settings.BASE_URL}/sso/{sso.org.slug}/saml/acs"


def _config(sso, *, with_idp: bool = True) -> SPConfig:
    conf = {
        "entityid": entity_id(sso),
        "xmlsec_binary": shutil.which("xmlsec1"),
        "accepted_time_diff": CLOCK_SKEW,
        "allow_unknown_attributes": True,
        "service": {"sp": {
            "name": f"Secure Messaging for {sso.org.name}",
            "endpoints": {"assertion_consumer_service": [(acs_url(sso), BINDING_HTTP_POST)]},
            "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            "authn_requests_signed": False,
            "want_response_signed": False,
            "want_assertions_signed": False,
            "want_assertions_or_response_signed": True,  # either covers the assertion
            # InResponseTo is checked below, after the one-use check, so that a response
            # posted again is told apart from one this session never asked for.
            "allow_unsolicited": True,
        }},
    }
    if with_idp:
        conf["metadata"] = {"inline": [sso.saml_metadata_xml]}
    return SPConfig().load(conf)


def begin(request, sso, *, login_hint: str, next_url: str, force: bool):
    """An AuthnRequest by HTTP-Redirect; its ID and ``next_url`` stay in the session."""
    idp = saml_metadata.identity_provider(sso.saml_metadata_xml)
    if idp is None or not shutil.which("xmlsec1"):
        raise SSORefused("misconfigured", "no usable IdP metadata" if idp is None else "xmlsec1 missing")
    client = Saml2Client(config=_config(sso))
    # The address typed at "Next" goes as the request's Subject, which Okta, Keycloak and others
    # use to fill in their login form; the answer must still name an address of this organisation.
    hint = {}
    if login_hint:
        hint["subject"] = Subject(name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=login_hint))
    request_id, info = client.prepare_for_authenticate(
        entityid=idp.entity_id, binding=BINDING_HTTP_REDIRECT, relay_state=sso.org.slug,
        force_authn="true" if force else None, nameid_format=NAMEID_FORMAT_EMAILADDRESS, **hint)
    request.session[PENDING] = {"id": request_id, "org": sso.org.slug, "next": next_url,
                                "force": force, "at": clock.now().timestamp()}
    location = dict(info["headers"])["Location"]
    return redirect(location)


def finish(request, sso) -> tuple[Identity, str]:
    """The identity in the posted response, once every check holds; and where the sender was going."""
    pending = request.session.pop(PENDING, None) or {}
    # Nothing is parsed, and xmlsec1 not run, for a response this session is not waiting for.
    if not pending.get("id"):
        raise SSORefused("state", "no sign-in started in this session")
    if pending.get("org") != sso.org.slug:
        raise SSORefused("state", "sign-in started for another organisation")
    posted = request.POST.get("SAMLResponse", "")
    document = _read(posted)
    idp = saml_metadata.identity_provider(sso.saml_metadata_xml)
    if idp is None:
        raise SSORefused("misconfigured", "no usable IdP metadata")
    _precheck(document, idp.entity_id, entity_id(sso))
    try:
        answer = Saml2Client(config=_config(sso)).parse_authn_request_response(
            posted, BINDING_HTTP_POST, outstanding={})
    except ResponseLifetimeExceed as problem:
        raise SSORefused("expired", str(problem)[:100]) from None
    except ToEarly as problem:
        raise SSORefused("not_yet_valid", str(problem)[:100]) from None
    except StatusError as problem:
        raise SSORefused("idp_error", type(problem).__name__) from None
    except (IncorrectlySigned, SigverError) as problem:
        raise SSORefused("signature", type(problem).__name__) from None
    except Exception as problem:  # pysaml2 raises plain exceptions for several checks
        raise SSORefused("signature", f"{type(problem).__name__}: {str(problem)[:100]}") from None
    if answer is None or answer.assertion is None:
        raise SSORefused("signature", "no verified assertion")
    assertion = answer.assertion
    if assertion.issuer is None or assertion.issuer.text != idp.entity_id:
        raise SSORefused("issuer", "assertion issued by another entity")
    if not first_use(idp.entity_id, assertion.id, _expiry(answer)):
        raise SSORefused("replay", "assertion already used")
    if not _answers(answer.response, assertion, pending["id"]):
        raise SSORefused("state", "InResponseTo differs")
    identity = _identity(answer, sso)
    if pending.get("force") and not _again(identity.authenticated_at, pending.get("at")):
        raise SSORefused("expired", "the provider did not sign the person in again")
    return identity, pending.get("next") or "/app/"


def _read(posted: str) -> samlp.Response:
    """The response as posted, parsed but not yet trusted."""
    try:
        if not posted or len(posted) > MAX_RESPONSE:
            raise ValueError("size")
        document = samlp.response_from_string(base64.b64decode(posted, validate=True))
    except (ValueError, binascii.Error, SyntaxError) as problem:
        raise SSORefused("idp_error", f"unreadable response ({type(problem).__name__})") from None
    if document is None:
        raise SSORefused("idp_error", "not a SAML response")
    return document


def _precheck(document, idp_entity: str, audience: str) -> None:
    """Refusals that need no signature to be decided; each response refused here would fail later too."""
    status = document.status.status_code.value if document.status and document.status.status_code else ""
    if status != SUCCESS:
        inner = document.status.status_code.status_code if status else None
        raise SSORefused("idp_error", (inner.value if inner else status or "no status")[:150])
    if not document.assertion:
        raise SSORefused("idp_error", "no assertion (encrypted assertions are not supported)")
    issuers = [document.issuer] + [a.issuer for a in document.assertion]
    if any(i is not None and i.text != idp_entity for i in issuers):
        raise SSORefused("issuer", "issued by another entity")
    signatures = [sig for sig in [document.signature, *(a.signature for a in document.assertion)] if sig]
    if not signatures:
        raise SSORefused("unsigned")
    for signature in signatures:
        info = signature.signed_info
        if info.signature_method.algorithm not in STRONG_SIGNATURES or any(
                r.digest_method.algorithm not in STRONG_DIGESTS for r in info.reference):
            raise SSORefused("signature", f"weak algorithm {info.signature_method.algorithm}"[:150])
    for assertion in document.assertion:
        conditions = assertion.conditions
        for restriction in (conditions.audience_restriction if conditions else []):
            if audience not in [a.text for a in restriction.audience]:
                raise SSORefused("audience", "meant for another service provider")


def _answers(response, assertion, request_id: str) -> bool:
    """Whether the response and the signed assertion's confirmations answer ``request_id``.

    The profile has the assertion's bearer confirmation name the request; that one is signed even
    where the response around it is not, so it must be there and match.
    """
    if response.in_response_to != request_id:
        return False
    named = [c.subject_confirmation_data.in_response_to for c in assertion.subject.subject_confirmation
             if c.subject_confirmation_data is not None]
    return bool(named) and all(n == request_id for n in named)


def _expiry(answer) -> datetime:
    """Until when the assertion could be used: kept that long for the one-use check."""
    if answer.not_on_or_after:
        return datetime.fromtimestamp(answer.not_on_or_after, tz=UTC) + timedelta(seconds=CLOCK_SKEW)
    return clock.now() + timedelta(hours=1)


def _again(authenticated_at: datetime | None, started: float | None) -> bool:
    """Whether the person authenticated after the ForceAuthn request was made (allowing for clocks)."""
    return (authenticated_at is not None and started is not None
            and authenticated_at.timestamp() >= started - CLOCK_SKEW)


def _authenticated_at(assertion) -> datetime | None:
    """When the identity provider authenticated the person (AuthnStatement's AuthnInstant, UTC).

    With several statements the earliest counts: a sign-on is fresh only if all of it is.
    """
    instants = []
    for statement in assertion.authn_statement:
        try:
            instant = datetime.fromisoformat(statement.authn_instant or "")
        except ValueError:
            return None
        instants.append(instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC))
    return min(instants, default=None)


def _identity(answer, sso) -> Identity:
    assertion = answer.assertion
    values: dict[str, list[str]] = {}
    for statement in assertion.attribute_statement:
        for attribute in statement.attribute:
            texts = [v.text.strip() for v in attribute.attribute_value if v.text and v.text.strip()]
            for key in {attribute.name, attribute.friendly_name} - {None, ""}:
                values.setdefault(key, []).extend(texts)
    name_id = assertion.subject.name_id
    email = ""
    if name_id is not None and name_id.format == NAMEID_FORMAT_EMAILADDRESS and name_id.text:
        email = name_id.text.strip()
    if not email:
        email = next((values[k][0] for k in EMAIL_ATTRIBUTES if values.get(k)), "")
    groups = values.get(sso.group_claim, []) if sso.group_claim else []
    groups += [g for g in values.get(ENTRA_GROUPS, []) if g not in groups]
    return Identity(
        email=email, name=next((values[k][0] for k in NAME_ATTRIBUTES if values.get(k)), ""),
        groups=groups, subject=name_id.text if name_id is not None else "",
        authenticated_at=_authenticated_at(assertion))


def check(sso) -> list[str]:
    """Problems with the settings; the metadata is fetched from its URL here and kept."""
    problems = [] if shutil.which("xmlsec1") else [
        "This server cannot check SAML signatures: the xmlsec1 program is missing (Debian package "
        "xmlsec1). Ask whoever runs Secure Messaging to install it."]
    if sso.saml_metadata_url:
        try:
            sso.saml_metadata_xml = saml_metadata.fetch(sso.saml_metadata_url)
        except saml_metadata.Unavailable as problem:
            return [*problems, str(problem)]
    return problems + saml_metadata.problems(sso.saml_metadata_xml)


def metadata(request, sso) -> HttpResponse:
    """This portal's service provider metadata for the organisation's identity provider."""
    descriptor = entity_descriptor(_config(sso, with_idp=False))
    descriptor.extensions = None  # pysaml2's list of every algorithm xmlsec1 knows, MD5 and SHA-1 too
    return HttpResponse(descriptor.to_string(), content_type="application/samlmetadata+xml")
