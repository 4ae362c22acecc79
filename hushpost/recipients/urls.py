from django.urls import path

from hushpost.recipients import passkeys, views

app_name = "recipients"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("login", views.login_view, name="login"),
    path("n/<str:code>", views.notification_link, name="notification-link"),
    path("login/resend", views.resend_temporary, name="resend"),
    path("logout", views.logout_view, name="logout"),
    path("login/2fa", views.second_factor, name="second-factor"),
    path("login/passkey", passkeys.sign_in, name="passkey-sign-in"),
    path("login/2fa/passkey", passkeys.second_step, name="passkey-second-step"),
    path("passkeys", passkeys.add, name="passkey-add"),
    path("passkeys/add", passkeys.keep, name="passkey-keep"),
    path("passkeys/remove", passkeys.remove, name="passkey-remove"),
    path("2fa", views.two_factor_settings, name="two-factor"),
    path("phrase", views.security_phrase, name="security-phrase"),
    path("forgot", views.forgot_password, name="forgot"),
    path("reset", views.reset_password, name="reset"),
    path("password", views.set_password, name="password"),
    path("time-zone", views.time_zone_view, name="time-zone"),
    path("sign-out-everywhere", views.sign_out_everywhere_view, name="sign-out-everywhere"),
    path("sent", views.sent, name="sent"),
    path("files", views.upload_file, name="upload"),
    path("files/<str:file_uid>/discard", views.discard_file, name="discard-file"),
    path("m/<str:uid>", views.message_view, name="message"),
    path("m/<str:uid>/files/<str:file_uid>", views.download_file, name="file"),
    path("m/<str:uid>/reply", views.reply, name="reply"),
    path("m/<str:uid>/print", views.print_view, name="print"),
    path("m/<str:uid>/delete", views.delete, name="delete"),
]
