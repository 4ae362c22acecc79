from django.urls import path

from hushpost.recipients import views

app_name = "recipients"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("login", views.login_view, name="login"),
    path("login/resend", views.resend_temporary, name="resend"),
    path("logout", views.logout_view, name="logout"),
    path("password", views.set_password, name="password"),
    path("sent", views.sent, name="sent"),
    path("files", views.upload_file, name="upload"),
    path("files/<str:file_uid>/discard", views.discard_file, name="discard-file"),
    path("m/<str:uid>", views.message_view, name="message"),
    path("m/<str:uid>/files/<str:file_uid>", views.download_file, name="file"),
    path("m/<str:uid>/reply", views.reply, name="reply"),
    path("m/<str:uid>/print", views.print_view, name="print"),
    path("m/<str:uid>/delete", views.delete, name="delete"),
]
