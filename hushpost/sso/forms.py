"""The admin area's single sign-on form: the identity provider, and the organisation's rules."""

from __future__ import annotations

from django import forms

from hushpost.lib.input import plain_text, single_line
from hushpost.sso import oidc, saml
from hushpost.sso.models import SingleSignOn
from hushpost.sso.secrets import client_secret


class SingleSignOnForm(forms.ModelForm):
    protocol = forms.ChoiceField(
        label="Sign senders in with", choices=SingleSignOn.Protocol.choices, widget=forms.RadioSelect,
        required=False)
    oidc_issuer = single_line(forms.URLField(
        label="Issuer or discovery URL", required=False, max_length=500, assume_scheme="https",
        help_text="For example https://login.microsoftonline.com/<tenant>/v2.0 or "
                  "https://<org>.okta.com (the discovery document at …/.well-known/openid-configuration "
                  "is found from it)."))
    oidc_client_id = single_line(forms.CharField(label="Client ID", max_length=255, required=False))
    oidc_client_secret = single_line(forms.CharField(
        label="Client secret", required=False, max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted and never shown again; leave empty to keep the saved one."))
    saml_metadata_url = single_line(forms.URLField(label="IdP metadata URL", required=False, max_length=500,
                                                   assume_scheme="https"))
    saml_metadata_xml = plain_text(forms.CharField(
        label="…or the IdP metadata XML", required=False, max_length=500_000,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"})))
    group_claim = single_line(forms.CharField(label="Groups claim or attribute", max_length=200, required=False))
    admin_group = single_line(forms.CharField(label="Admin group", max_length=200, required=False))

    class Meta:
        model = SingleSignOn
        fields = ["protocol", "oidc_issuer", "oidc_client_id", "saml_metadata_url", "saml_metadata_xml",
                  "required", "create_accounts", "group_claim", "admin_group"]
        labels = {"required": "Single sign-on required",
                  "create_accounts": "Create accounts at first sign-in"}

    def _client_changed(self, data) -> bool:
        saved = SingleSignOn.objects.filter(pk=self.instance.pk).values("oidc_issuer", "oidc_client_id").first()
        return saved is not None and (saved["oidc_issuer"], saved["oidc_client_id"]) != (
            data.get("oidc_issuer"), data.get("oidc_client_id"))

    def clean(self):
        data = super().clean()
        protocol = data.get("protocol") or ""
        secret = data.get("oidc_client_secret") or ""
        if protocol == "oidc":
            for name in ("oidc_issuer", "oidc_client_id"):
                if not data.get(name):
                    self.add_error(name, "Needed for OpenID Connect.")
            if not secret and not self.instance.oidc_client_secret_sealed:
                self.add_error("oidc_client_secret", "Needed for OpenID Connect.")
            elif not secret and self._client_changed(data):
                # The saved secret goes only to the provider it was given for.
                self.add_error("oidc_client_secret", "Enter the client secret again: the issuer or client ID changed.")
        if protocol == "saml" and not (data.get("saml_metadata_url") or data.get("saml_metadata_xml")):
            self.add_error("saml_metadata_url", "Give the metadata's URL, or paste the metadata below.")
        if data.get("required") and not protocol:
            self.add_error("required", "Choose an identity provider first: with none, nobody could sign in.")
        if self.errors:
            return data
        candidate = self.instance
        for name in self.Meta.fields:
            setattr(candidate, name, data.get(name) if data.get(name) is not None else "")
        if protocol == "oidc":
            for problem in oidc.check(candidate, secret or client_secret(self.instance)):
                self.add_error(None, problem)
        elif protocol == "saml":
            for problem in saml.check(candidate):
                self.add_error(None, problem)
            data["saml_metadata_xml"] = candidate.saml_metadata_xml  # as fetched from the URL
        return data
