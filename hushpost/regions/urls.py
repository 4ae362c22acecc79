from django.urls import path

from hushpost.regions import views

urlpatterns = [path("v1/domain", views.domain_lookup, name="region-domain-lookup")]
