"""A passkey device in software, for tests without a browser: it answers the portal's WebAuthn
options as a platform authenticator would (attestation "none", P-256 keys, user verified), and
can be told to answer wrongly (another origin, a counter that went back) the way an attacker would;
and the steps that add one to an account."""

from __future__ import annotations

import hashlib
import html
import json
import re
import secrets
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from tests.personas import PASSWORD

UP, UV, AT = 0x01, 0x04, 0x40


@dataclass
class Credential:
    key: ec.EllipticCurvePrivateKey
    user_handle: bytes
    rp_id: str
    count: int = 0


@dataclass
class PasskeyDevice:
    origin: str
    credentials: dict[str, Credential] = field(default_factory=dict)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def create(self, options: dict, raw_id: bytes | None = None) -> str:
        """Answer ``navigator.credentials.create()`` options with a new discoverable credential
        (under ``raw_id``, an id of the caller's choosing, as a rogue authenticator could)."""
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
        raw_id = raw_id or secrets.token_bytes(32)
        rp_id = options["rp"]["id"]
        auth_data = (hashlib.sha256(rp_id.encode()).digest() + bytes([UP | UV | AT]) + struct.pack(">I", 0)
                     + bytes(16) + struct.pack(">H", len(raw_id)) + raw_id + cose)
        credential_id = bytes_to_base64url(raw_id)
        self.credentials[credential_id] = Credential(key, base64url_to_bytes(options["user"]["id"]), rp_id)
        return json.dumps({
            "id": credential_id, "rawId": credential_id, "type": "public-key",
            "response": {
                "clientDataJSON": bytes_to_base64url(self._client_data("webauthn.create", options["challenge"], None)),
                "attestationObject": bytes_to_base64url(cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })

    def get(self, options: dict, credential_id: str | None = None, *, origin: str | None = None,
            count: int | None = None, user_handle: bytes | None = None) -> str:
        """Answer ``navigator.credentials.get()`` options with one of the device's credentials."""
        credential_id = credential_id or next(iter(self.credentials))
        credential = self.credentials[credential_id]
        credential.count = credential.count + 1 if count is None else count
        auth_data = (hashlib.sha256(credential.rp_id.encode()).digest() + bytes([UP | UV])
                     + struct.pack(">I", credential.count))
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = credential.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps({
            "id": credential_id, "rawId": credential_id, "type": "public-key",
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data),
                "authenticatorData": bytes_to_base64url(auth_data),
                "signature": bytes_to_base64url(signature),
                "userHandle": bytes_to_base64url(user_handle or credential.user_handle),
            },
            "clientExtensionResults": {},
        })


def add_passkey(client: Client, device: PasskeyDevice, here: str = "/app/account/passkeys",
                password: str = PASSWORD) -> str:
    """Account page → "Add a passkey" → confirm with the password → the device makes one."""
    reply = client.post(here + "/add", {"credential": device.create(registration_options(client, here, password))})
    assert reply.status_code == 200, reply.content
    return reply.json()["redirect"]


def registration_options(client: Client, here: str = "/app/account/passkeys", password: str = PASSWORD) -> dict:
    """The options the "Add a passkey" page hands its script, once the password confirms it's you."""
    page = client.post(here, {"current": password})
    assert page.status_code == 200, page.content[:400]
    return json.loads(html.unescape(re.search(r'data-options="([^"]*)"', page.content.decode()).group(1)))
