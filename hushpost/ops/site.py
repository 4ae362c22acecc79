"""The operators' admin at /ops/: Django's admin, opened only by both sign-in steps.

Only the models registered in :mod:`hushpost.ops.admin` are here (Django's own
and django-tasks-db's are not: there is no autodiscovery), the site-wide
"delete" action is off, and the "view on site" redirect is not routed.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import PasswordChangeView
from django.urls import path, reverse

from hushpost.ops import signin, views
from hushpost.ops.forms import OperatorPasswordChangeForm


class OpsSite(admin.AdminSite):
    site_header = site_title = "Hushpost operations"
    index_title = "Operations"

    def has_permission(self, request):
        return signin.is_verified(request)

    def login(self, request, extra_context=None):
        return views.login(request, self)

    def get_urls(self):
        sign_in = [
            path("login/code/", self._view(views.code), name="ops-code"),
            path("login/enrol/", self._view(views.enrol), name="ops-enrol"),
        ]
        return sign_in + [url for url in super().get_urls() if getattr(url, "name", None) != "view_on_site"]

    def _view(self, view):
        def wrapper(request):
            return view(request, self)

        return wrapper

    def password_change(self, request, extra_context=None):
        """The current password is checked through the throttle, like every other one."""
        request.current_app = self.name
        return PasswordChangeView.as_view(
            form_class=OperatorPasswordChangeForm,
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
        )(request)


site = OpsSite(name="ops")
site.disable_action("delete_selected")
