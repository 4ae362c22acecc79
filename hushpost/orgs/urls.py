from django.urls import path

from hushpost.orgs import views

app_name = "brand"
urlpatterns = [
    path("<slug:org_slug>/logo/<str:digest>", views.logo, name="logo"),
    path("accent/<str:colour>.css", views.accent, name="accent"),
]
