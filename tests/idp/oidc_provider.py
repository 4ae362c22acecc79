"""A small OpenID Connect provider for the tests: a real HTTP server on 127.0.0.1, in its own
process, speaking the authorization code flow with PKCE.

It publishes a discovery document and its signing keys, shows a login form at its authorization
endpoint (any address, with ``IDP_PASSWORD``), remembers who signed in with a cookie (so
``prompt=login`` or ``max_age=0`` visibly asks again), and answers its token endpoint only for
the registered client, with the client secret (HTTP Basic or in the form, as configured) and the
PKCE verifier. ID tokens are RS256-signed with joserfc.

A test makes it misbehave through ``POST /control``:

* ``{"token": {...}}`` changes the next ID token only: ``aud``, ``iss``, ``claims`` (merged in,
  ``null`` removes one), ``exp``/``nbf``/``iat`` (seconds from now), ``key`` (``"other"``: another
  key under the published key ID; ``"unknown"``: another key under a new ID), ``alg``
  (``"none"``, ``"HS256"``), ``replay`` (the previous ID token again);
* ``{"error": "access_denied"}``: the next authorization answers with that error;
* ``{"rotate": true}``: a new signing key, published under a new key ID;
* ``{"ignore_prompt": true}``: a remembered person is waved through even when asked to sign in again;
* ``{"clock": seconds}``: the provider's clock that far ahead (as the portal's test clock travels);
* ``{"reset": true}``: back to normal behaviour.

``GET /control`` tells what the last authorization and token requests carried.

Run: ``python -m tests.idp.oidc_provider [--auth-method client_secret_post]``; the first line
printed is the issuer's URL.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import secrets
import sys
import threading
import time
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

CLIENT_ID = "hushpost-portal"
CLIENT_SECRET = "idp-client-secret-5Yt8q"
IDP_PASSWORD = "Idp-password-Quartz-41"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Provider:
    """What the provider knows: its keys, the codes it issued, who is signed in, the test's wishes."""

    def __init__(self, issuer: str, auth_methods: list[str]):
        self.issuer, self.auth_methods = issuer, auth_methods
        self.lock = threading.Lock()
        self.key = self._new_key("k1")
        self.codes: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.token_wishes: dict = {}
        self.error = ""
        self.ahead = 0
        self.ignore_prompt = False
        self.last_id_token = ""
        self.seen: dict = {"authorize": {}, "token": {}}

    def now(self) -> int:
        return int(time.time()) + self.ahead

    @staticmethod
    def _new_key(kid: str) -> RSAKey:
        return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": self.auth_methods,
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name", "groups"],
        }

    def jwks(self) -> dict:
        return KeySet([self.key]).as_dict(private=False)

    def id_token(self, grant: dict) -> str:
        with self.lock:
            wishes, self.token_wishes = self.token_wishes, {}
        if wishes.get("replay") and self.last_id_token:
            return self.last_id_token
        now = self.now()
        claims = {
            "iss": wishes.get("iss", self.issuer), "sub": hashlib.sha256(grant["email"].encode()).hexdigest()[:20],
            "aud": wishes.get("aud", CLIENT_ID), "exp": now + wishes.get("exp", 300),
            "iat": now + wishes.get("iat", 0), "auth_time": grant["auth_time"], "nonce": grant["nonce"],
            "email": grant["email"], "email_verified": True, "name": grant["email"].split("@")[0].title(),
        }
        if "nbf" in wishes:
            claims["nbf"] = now + wishes["nbf"]
        for name, value in wishes.get("claims", {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        alg, key = wishes.get("alg", "RS256"), self.key
        if alg == "none":
            token = f"{b64url(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64url(json.dumps(claims).encode())}."
        elif alg == "HS256":
            token = jwt.encode({"alg": "HS256", "kid": self.key.kid}, claims, OctKey.import_key(CLIENT_SECRET))
        else:
            if wishes.get("key") == "other":
                key = self._new_key(self.key.kid)
            elif wishes.get("key") == "unknown":
                key = self._new_key("k-unpublished")
            token = jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
        self.last_id_token = token
        return token

    def control(self, wishes: dict) -> None:
        with self.lock:
            if wishes.get("reset"):
                self.token_wishes, self.error, self.ahead, self.ignore_prompt = {}, "", 0, False
            if "ignore_prompt" in wishes:
                self.ignore_prompt = bool(wishes["ignore_prompt"])
            if "clock" in wishes:
                self.ahead = int(wishes["clock"])
            if "token" in wishes:
                self.token_wishes = wishes["token"]
            if "error" in wishes:
                self.error = wishes["error"]
            if wishes.get("rotate"):
                self.key = self._new_key(f"k{secrets.token_hex(3)}")


LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test Identity Provider</title></head>
<body><main><h1>Test Identity Provider</h1>{error}
<form method="post" action="/authorize">{hidden}
<label for="username">Username</label> <input id="username" name="username" type="email" value="{hint}">
<label for="password">Password</label> <input id="password" name="password" type="password">
<button type="submit">Sign in</button></form></main></body></html>"""


class Handler(BaseHTTPRequestHandler):
    provider: Provider

    def log_message(self, format, *args):  # quiet: the test output is for the tests
        pass

    # --- plumbing
    def _send(self, status: int, body: bytes | str, content_type="application/json", headers=()):
        body = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict, headers=()):
        self._send(status, json.dumps(data), headers=headers)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(raw or "{}")
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def _redirect(self, url: str, headers=()):
        self._send(302, "", "text/plain", headers=[("Location", url), *headers])

    # --- routes
    def do_GET(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        p = self.provider
        if url.path == "/.well-known/openid-configuration":
            return self._json(200, p.discovery())
        if url.path == "/jwks":
            return self._json(200, p.jwks())
        if url.path == "/authorize":
            return self._authorize(query)
        if url.path == "/control":
            return self._json(200, p.seen)
        return self._json(404, {"error": "not_found"})

    def do_POST(self):
        path = urlsplit(self.path).path
        if path == "/authorize":
            return self._login(self._form())
        if path == "/token":
            return self._token(self._form())
        if path == "/control":
            self.provider.control(self._form())
            return self._json(200, {"ok": True})
        return self._json(404, {"error": "not_found"})

    def _authorize(self, query: dict):
        p = self.provider
        p.seen["authorize"] = query
        problem = self._bad_request(query)
        if problem:
            return self._send(400, problem, "text/plain")
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        who = p.sessions.get(cookie["idp"].value) if "idp" in cookie else None
        asked_again = query.get("prompt") == "login" or query.get("max_age") == "0"
        if who and (not asked_again or p.ignore_prompt):
            return self._answer(query, who)
        return self._login_page(query, "")

    @staticmethod
    def _bad_request(query: dict) -> str:
        if query.get("client_id") != CLIENT_ID:
            return "unknown client"
        if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
            return "only the code flow with scope openid"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE with S256 is required"
        if not query.get("redirect_uri") or not query.get("state") or not query.get("nonce"):
            return "redirect_uri, state and nonce are required"
        return ""

    def _login_page(self, query: dict, error: str):
        keep = ("client_id", "response_type", "scope", "redirect_uri", "state", "nonce",
                "code_challenge", "code_challenge_method")
        hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(query.get(k, ""))}">' for k in keep)
        error_html = f'<p role="alert">{html.escape(error)}</p>' if error else ""
        page = LOGIN_PAGE.format(error=error_html, hidden=hidden, hint=html.escape(query.get("login_hint", "")))
        return self._send(200 if not error else 401, page, "text/html; charset=utf-8")

    def _login(self, form: dict):
        problem = self._bad_request(form)
        if problem:
            return self._send(400, problem, "text/plain")
        if form.get("password") != IDP_PASSWORD or "@" not in form.get("username", ""):
            return self._login_page(form, "Wrong username or password.")
        who = {"email": form["username"].strip().lower(), "auth_time": self.provider.now()}
        session = secrets.token_urlsafe(16)
        self.provider.sessions[session] = who
        return self._answer(form, who, [("Set-Cookie", f"idp={session}; Path=/; HttpOnly; SameSite=Lax")])

    def _answer(self, query: dict, who: dict, headers=()):
        p = self.provider
        target = query["redirect_uri"]
        if p.error:
            error, p.error = p.error, ""
            answer = {"error": error, "error_description": "<b>Refused</b> by policy", "state": query["state"]}
        else:
            code = secrets.token_urlsafe(24)
            p.codes[code] = {**who, "nonce": query["nonce"], "challenge": query["code_challenge"],
                             "redirect_uri": target}
            answer = {"code": code, "state": query["state"]}
        return self._redirect(target + ("&" if "?" in target else "?") + urlencode(answer), headers)

    def _token(self, form: dict):
        p = self.provider
        client_id, secret, method = form.get("client_id", ""), form.get("client_secret", ""), "client_secret_post"
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            method = "client_secret_basic"
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        p.seen["token"] = {"auth_method": method, "fields": sorted(form)}
        if method not in p.auth_methods or client_id != CLIENT_ID or secret != CLIENT_SECRET:
            return self._json(401, {"error": "invalid_client"})
        grant = p.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return self._json(400, {"error": "invalid_grant"})
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return self._json(400, {"error": "invalid_grant", "error_description": "redirect_uri"})
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return self._json(400, {"error": "invalid_grant", "error_description": "PKCE"})
        return self._json(200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                                "expires_in": 300, "id_token": p.id_token(grant)})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--auth-method", action="append", dest="auth_methods",
                        choices=["client_secret_basic", "client_secret_post"])
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    issuer = f"http://127.0.0.1:{server.server_address[1]}"
    Handler.provider = Provider(issuer, args.auth_methods or ["client_secret_basic", "client_secret_post"])
    print(issuer, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
