from django.urls import path

from hushpost.senders import passkeys, signin, views

app_name = "senders"
urlpatterns = [
    path("login", signin.login_view, name="login"),
    path("logout", signin.logout_view, name="logout"),
    path("login/2fa", signin.second_factor, name="second-factor"),
    path("login/passkey", passkeys.sign_in, name="passkey-sign-in"),
    path("login/2fa/passkey", passkeys.second_step, name="passkey-second-step"),
    path("forgot", signin.forgot_password, name="forgot"),
    path("reset", signin.reset_password, name="reset"),
    path("welcome", signin.accept_invitation, name="welcome"),
    path("app/", views.inbox, name="inbox"),
    path("app/sent", views.sent, name="sent"),
    path("app/compose", views.compose, name="compose"),
    path("app/account", views.account, name="account"),
    path("app/account/time-zone", views.time_zone_view, name="time-zone"),
    path("app/account/2fa", views.two_factor_settings, name="two-factor"),
    path("app/account/passkeys", passkeys.add, name="passkey-add"),
    path("app/account/passkeys/add", passkeys.keep, name="passkey-keep"),
    path("app/account/passkeys/remove", passkeys.remove, name="passkey-remove"),
    path("app/account/sign-out-everywhere", views.sign_out_everywhere_view, name="sign-out-everywhere"),
    path("app/files", views.upload_file, name="upload"),
    path("app/files/<str:file_uid>/discard", views.discard_file, name="discard-file"),
    path("app/m/<str:uid>", views.message_view, name="message"),
    path("app/m/<str:uid>/files/<str:file_uid>", views.download_file, name="file"),
    path("app/m/<str:uid>/retry/<int:notification_id>", views.retry_notification, name="retry"),
    path("app/m/<str:uid>/recall", views.recall_view, name="recall"),
    path("app/m/<str:uid>/resend", views.resend_view, name="resend"),
    path("app/m/<str:uid>/correct", views.correct_address_view, name="correct-address"),
    path("app/m/<str:uid>/expiry", views.expiry_view, name="expiry"),
]
