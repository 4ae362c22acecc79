from django.urls import path

from hushpost.sso import views

app_name = "sso"
urlpatterns = [
    path("<slug:org_slug>/start", views.start, name="start"),
    path("<slug:org_slug>/oidc/callback", views.oidc_callback, name="oidc-callback"),
    path("<slug:org_slug>/saml/acs", views.saml_acs, name="saml-acs"),
    path("<slug:org_slug>/saml/metadata", views.saml_metadata, name="saml-metadata"),
]
