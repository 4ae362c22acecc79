from django.urls import include, path

from hushpost.lib.views import home
from hushpost.notifications import views as mailbox
from hushpost.ops.site import site as ops_site
from hushpost.regions.views import find_portal

handler400 = "hushpost.lib.views.bad_request"
handler500 = "hushpost.server.errors.server_error"

urlpatterns = [
    path("", home, name="home"),
    path("app/admin/", include("hushpost.orgadmin.urls")),
    path("regions/", include("hushpost.regions.urls")),
    path("brand/", include("hushpost.orgs.urls")),
    path("sso/", include("hushpost.sso.urls")),
    path("scim/v2/", include("hushpost.scim.urls")),
    path("find-my-portal", find_portal, name="find-portal"),
    path("", include("hushpost.senders.urls")),
    path("r/<slug:org_slug>/", include("hushpost.recipients.urls")),
    path("dev/mailbox", mailbox.mailbox, name="dev-mailbox"),
    path("dev/mailbox/<int:pk>", mailbox.mail_detail, name="dev-mail"),
    path("dev/mailbox/<int:pk>/html", mailbox.mail_html, name="dev-mail-html"),
    path("ops/", ops_site.urls),
]
