from django.urls import path

from hushpost.scim import views

app_name = "scim"
urlpatterns = [
    path("ServiceProviderConfig", views.service_provider_config, name="service-provider-config"),
    path("ResourceTypes", views.resource_types, name="resource-types"),
    path("ResourceTypes/<str:name>", views.resource_types, name="resource-type"),
    path("Schemas", views.schemas, name="schemas"),
    path("Schemas/<str:urn>", views.schemas, name="schema"),
    path("Users", views.users, name="users"),
    path("Users/<str:user_id>", views.user, name="user"),
]
