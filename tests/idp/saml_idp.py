"""A real SAML 2.0 identity provider for the tests: pysaml2's ``saml2.server.Server`` behind a small
HTTP server on 127.0.0.1, in its own process (``python -m tests.idp.saml_idp``, which prints its URL).

It serves its metadata (``/metadata``), a single sign-on service for the HTTP-Redirect binding
(``/sso``) that shows a login form the browser fills in, and answers with a page that posts a
signed response to the service provider's ACS (HTTP-POST binding). Its key and certificate are
made when it starts and never leave the temporary folder it runs in. The tests reach it through
``tests.idp.SAMLIdentityProvider`` (the ``saml_idp`` fixture).

``POST /control`` (JSON) sets how the next response misbehaves: ``{"misbehave": "audience" |
"issuer" | "expired" | "confirmation_expired" | "not_yet_valid" | "unsigned" | "other_key" |
"denied" | "response_signed" (the response signed, not the assertion) | "sha1", "email": ...,
"groups": [...], "shape": "entra", "authn_offset": seconds}`` (``entra``: Entra ID's attribute
names and a persistent NameID; ``authn_offset``: the AuthnInstant that far from now, as when the
person signed in at the identity provider a while ago). ``/replay`` posts the last response again;
``/unsolicited?sp=<metadata URL>`` posts one no request asked for; ``/moved`` redirects to the
metadata.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import secrets
import shutil
import sys
import tempfile
import threading
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.sigver import pre_signature_part
from saml2.time_util import instant
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

OTHER_AUDIENCE = "https://another-service.example/saml"
OTHER_ISSUER = "https://another-idp.example/saml"
ENTRA_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
ENTRA_GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"


def make_key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """A throwaway RSA key and self-signed certificate for signing test responses."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Test identity provider {name}")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class IdentityProvider:
    def __init__(self, base_url: str, folder: Path):
        self.base_url = base_url
        self.key, self.cert = make_key_pair(folder, "idp")
        self.other_key, self.other_cert = make_key_pair(folder, "other")
        self.pending: dict[str, dict] = {}  # login form token -> the AuthnRequest it answers
        self.next: dict = {}
        self.last: tuple[str, str] | None = None  # (ACS URL, SAMLResponse) of the last answer
        self.lock = threading.Lock()

    def config(self, sp_metadata: str = "") -> IdPConfig:
        return IdPConfig().load({
            "entityid": f"{self.base_url}/metadata",
            "xmlsec_binary": shutil.which("xmlsec1"),
            "key_file": str(self.key), "cert_file": str(self.cert),
            "allow_unknown_attributes": True,
            "metadata": {"inline": [sp_metadata]} if sp_metadata else {},
            "service": {"idp": {
                "name": "Test identity provider",
                "endpoints": {"single_sign_on_service": [(f"{self.base_url}/sso", BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                "policy": {"default": {"lifetime": {"minutes": 5}}},
            }},
        })

    def metadata(self) -> str:
        return entity_descriptor(self.config()).to_string().decode()

    def server_for(self, sp_entity_id: str) -> Server:
        # The service provider's entity ID is its metadata's URL (as Hushpost's is).
        with urllib.request.urlopen(sp_entity_id, timeout=10) as answer:  # noqa: S310 - loopback in tests
            return Server(config=self.config(answer.read().decode()))

    def begin(self, query: dict) -> str:
        """An AuthnRequest arrives: remember it behind a token, for the login form."""
        encoded = query["SAMLRequest"][0]
        request = samlp.authn_request_from_string(zlib.decompress(base64.b64decode(encoded), -15))
        token = secrets.token_urlsafe(16)
        self.pending[token] = {"sp": request.issuer.text, "id": request.id,
                               "acs": request.assertion_consumer_service_url,
                               "relay": query.get("RelayState", [""])[0],
                               "force": request.force_authn == "true",
                               "hint": request.subject.name_id.text if request.subject and request.subject.name_id else ""}
        return token

    def answer(self, sp: str, in_response_to: str | None, acs: str, email: str) -> str:
        """The signed response, misbehaving as the control asked (once)."""
        with self.lock:
            how, self.next = self.next, {}
        email = how.get("email") or email
        server = self.server_for(sp)
        if how.get("misbehave") == "denied":
            response = server.create_error_response(
                in_response_to, acs, info=(samlp.STATUS_REQUEST_DENIED, "Denied by the test"), sign=True)
            return base64.b64encode(str(response).encode()).decode()
        name = email.split("@")[0].title()
        if how.get("shape") == "entra":
            # Entra ID's defaults: a persistent NameID, the address and groups under its claim URIs.
            name_id = NameID(format=NAMEID_FORMAT_PERSISTENT, text=secrets.token_hex(16))
            identity = {ENTRA_CLAIMS + "emailaddress": [email], ENTRA_GROUPS: how.get("groups", []),
                        "http://schemas.microsoft.com/identity/claims/displayname": [name]}
        else:
            name_id = NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email)
            identity = {"mail": [email], "displayName": [name], "groups": how.get("groups", [])}
        response = server.create_authn_response(
            identity, in_response_to, acs, sp, name_id=name_id,
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_assertion=False, sign_response=False)
        if "authn_offset" in how:
            when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=how["authn_offset"])
            for statement in response.assertion.authn_statement:
                statement.authn_instant = instant(time_stamp=int(when.timestamp()))
        return base64.b64encode(self._misbehave(server, response, how.get("misbehave", ""))).decode()

    def _misbehave(self, server: Server, response, how: str) -> bytes:
        assertion = response.assertion
        conditions = assertion.conditions
        now = dt.datetime.now(dt.UTC)
        if how == "audience":
            conditions.audience_restriction[0].audience[0].text = OTHER_AUDIENCE
        elif how == "issuer":
            response.issuer.text = assertion.issuer.text = OTHER_ISSUER
        elif how == "expired":
            past = instant(time_stamp=int((now - dt.timedelta(minutes=10)).timestamp()))
            conditions.not_on_or_after = past
            conditions.not_before = instant(time_stamp=int((now - dt.timedelta(minutes=20)).timestamp()))
            for confirmation in assertion.subject.subject_confirmation:
                confirmation.subject_confirmation_data.not_on_or_after = past
        elif how == "confirmation_expired":  # the conditions still valid, the bearer's time up
            for confirmation in assertion.subject.subject_confirmation:
                confirmation.subject_confirmation_data.not_on_or_after = instant(
                    time_stamp=int((now - dt.timedelta(minutes=10)).timestamp()))
        elif how == "not_yet_valid":
            conditions.not_before = instant(time_stamp=int((now + dt.timedelta(minutes=10)).timestamp()))
            conditions.not_on_or_after = instant(time_stamp=int((now + dt.timedelta(minutes=20)).timestamp()))
        if how == "unsigned":
            return str(response).encode()
        cert, key = (self.other_cert, self.other_key) if how == "other_key" else (self.cert, self.key)
        pem = cert.read_text()
        body = "".join(pem.strip().splitlines()[1:-1])
        # Normally the assertion is signed; "response_signed" signs the response around it instead.
        part, node = ((response, "protocol:Response") if how == "response_signed"
                      else (assertion, "assertion:Assertion"))
        weak = how == "sha1"
        part.signature = pre_signature_part(part.id, body, 1, digest_alg=DIGEST_SHA1 if weak else DIGEST_SHA256,
                                            sign_alg=SIG_RSA_SHA1 if weak else SIG_RSA_SHA256)
        signed = server.sec.sign_statement(str(response), node_name=f"urn:oasis:names:tc:SAML:2.0:{node}",
                                           key_file=str(key), node_id=part.id)
        return signed.encode() if isinstance(signed, str) else signed

    def unsolicited(self, sp: str) -> tuple[str, str]:
        server = self.server_for(sp)
        acs = server.metadata.assertion_consumer_service(sp, BINDING_HTTP_POST)[0]["location"]
        return acs, self.answer(sp, None, acs, self.next.get("email", ""))


def _page(title: str, body: str, onload: str = "") -> bytes:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body{onload}><main><h1>{title}</h1>{body}</main></body></html>").encode()


def post_form(acs: str, saml_response: str, relay: str) -> bytes:
    fields = (f"<input type='hidden' name='SAMLResponse' value='{saml_response}'>"
              f"<input type='hidden' name='RelayState' value='{html.escape(relay)}'>")
    return _page("Signing you in", f"<form method='post' action='{html.escape(acs)}'>{fields}"
                 "<noscript><button type='submit'>Continue</button></noscript></form>",
                 " onload='document.forms[0].submit()'")


def handler(idp: IdentityProvider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/metadata":
                return self._send(idp.metadata().encode(), "application/samlmetadata+xml")
            if url.path == "/sso":
                token = idp.begin(query)
                asked = idp.pending[token]
                again = "<p>The service asks you to sign in again.</p>" if asked["force"] else ""
                form = (f"{again}<form method='post' action='/login'><input type='hidden' name='token' value='{token}'>"
                        "<p><label for='username'>Username</label> "
                        f"<input id='username' name='username' value='{html.escape(asked['hint'], quote=True)}'></p>"
                        "<p><label for='password'>Password</label> "
                        "<input id='password' name='password' type='password'></p>"
                        "<button type='submit'>Log in</button></form>")
                return self._send(_page("Test identity provider", form))
            if url.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/metadata")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if url.path == "/replay" and idp.last:
                return self._send(post_form(idp.last[0], idp.last[1], ""))
            if url.path == "/unsolicited":
                acs, response = idp.unsolicited(query["sp"][0])
                return self._send(post_form(acs, response, ""))
            return self._send(b"not found", "text/plain", 404)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if self.path == "/control":
                with idp.lock:
                    idp.next = json.loads(body or "{}")
                return self._send(b"{}", "application/json")
            form = parse_qs(body)
            request = idp.pending.pop(form.get("token", [""])[0], None)
            if self.path != "/login" or request is None:
                return self._send(b"unknown sign-in", "text/plain", 400)
            response = idp.answer(request["sp"], request["id"], request["acs"], form.get("username", [""])[0])
            idp.last = (request["acs"], response)
            return self._send(post_form(request["acs"], response, request["relay"]))

    return Handler


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory(prefix="saml-idp-") as folder:
        server.RequestHandlerClass = handler(IdentityProvider(base_url, Path(folder)))
        print(base_url, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    sys.exit(main())
