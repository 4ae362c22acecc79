"""Identity providers for the single sign-on tests, each a real server in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


class OIDCProvider:
    """``tests/idp/oidc_provider.py`` running in a process of its own on 127.0.0.1."""

    def __init__(self, *auth_methods: str):
        args = [arg for method in auth_methods for arg in ("--auth-method", method)]
        self.process = subprocess.Popen([sys.executable, "-m", "tests.idp.oidc_provider", *args],
                                        cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.issuer = self.process.stdout.readline().strip()
        assert self.issuer.startswith("http://127.0.0.1:"), "the provider did not start"

    def misbehave(self, **wishes) -> None:
        """For the next answer (see the provider's docstring): ``token={...}``, ``error=...``."""
        requests.post(f"{self.issuer}/control", json=wishes, timeout=5).raise_for_status()

    def reset(self) -> None:
        self.misbehave(reset=True)

    def seen(self) -> dict:
        """What the last authorization and token requests carried."""
        return requests.get(f"{self.issuer}/control", timeout=5).json()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()


class SAMLIdentityProvider:
    """``tests/idp/saml_idp.py`` running in a process of its own on 127.0.0.1."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "tests.idp.saml_idp"],
                                        cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), "the identity provider did not start"

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/metadata"

    def metadata(self) -> str:
        return requests.get(self.metadata_url, timeout=5).text

    def next_response(self, **how) -> None:
        """How the next response misbehaves (``misbehave=...``), or whom it names (``email``, ``groups``);
        with nothing, a normal one (see the identity provider's docstring)."""
        requests.post(f"{self.url}/control", json=how, timeout=5).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()
