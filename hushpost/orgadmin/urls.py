from django.urls import path

from hushpost.orgadmin import branding, export_views, retention, views

app_name = "orgadmin"
urlpatterns = [
    path("", views.senders, name="senders"),
    path("senders/import", views.sender_import, name="sender-import"),
    path("senders/<int:user_id>/active", views.sender_active, name="sender-active"),
    path("senders/<int:user_id>/reset", views.sender_reset, name="sender-reset"),
    path("senders/<int:user_id>/invite", views.sender_invite, name="sender-invite"),
    path("recipients", views.recipients, name="recipients"),
    path("recipients/<int:user_id>/reset", views.recipient_reset, name="recipient-reset"),
    path("people/<int:user_id>/unlock", views.unlock, name="unlock"),
    path("messages", views.messages, name="messages"),
    path("messages/<str:uid>/recall", views.message_recall, name="message-recall"),
    path("messages/<str:uid>/export", export_views.message_export, name="message-export"),
    path("audit", views.audit, name="audit"),
    path("policy", views.policy, name="policy"),
    path("retention", retention.retention, name="retention"),
    path("retention/holds", retention.hold_place, name="hold-place"),
    path("retention/holds/<int:hold_id>/release", retention.hold_release, name="hold-release"),
    path("branding", branding.branding, name="branding"),
    path("sso", views.single_sign_on, name="sso"),
    path("provisioning", views.provisioning, name="provisioning"),
    path("provisioning/<int:token_id>/revoke", views.provisioning_revoke, name="provisioning-revoke"),
]
