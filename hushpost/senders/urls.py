from django.urls import path

from hushpost.senders import views

app_name = "senders"
urlpatterns = [
    path("login", views.login_view, name="login"),
    path("logout", views.logout_view, name="logout"),
    path("app/", views.inbox, name="inbox"),
    path("app/sent", views.sent, name="sent"),
    path("app/compose", views.compose, name="compose"),
    path("app/files", views.upload_file, name="upload"),
    path("app/files/<str:file_uid>/discard", views.discard_file, name="discard-file"),
    path("app/m/<str:uid>", views.message_view, name="message"),
    path("app/m/<str:uid>/files/<str:file_uid>", views.download_file, name="file"),
    path("app/m/<str:uid>/retry/<int:notification_id>", views.retry_notification, name="retry"),
]
