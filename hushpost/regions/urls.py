from django.urls import path

from hushpost.regions import views

urlpatterns = [
    path("v1/domain", views.domain_lookup, name="region-domain-lookup"),
    path("v1/portals", views.portals_lookup, name="region-portals-lookup"),
]
