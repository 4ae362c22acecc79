from __future__ import annotations

import base64
import binascii

from django import forms
from django.core.exceptions import ValidationError

from hushpost.audit.models import AuditEvent
from hushpost.lib import zones
from hushpost.lib.input import DayField, plain_text, single_line
from hushpost.lib.refusals import Refused
from hushpost.messaging.actions import EXPIRY_CHOICES
from hushpost.messaging.models import Restriction
from hushpost.orgs.branding import MAX_FOOTER, Logo, check_accent, check_footer, reencode_logo
from hushpost.orgs.models import Organization

EXPIRY_LABELS = {0: "Never", 1: "1 Day", 7: "7 Days", 30: "30 Days"}


class AddSenderForm(forms.Form):
    """Who to invite: they choose their own password from the invitation's link."""

    email = single_line(forms.EmailField(label="E-mail address"))
    name = single_line(forms.CharField(label="Name", max_length=200))  # it goes into e-mail headers
    admin = forms.BooleanField(label="Organisation admin", required=False)


class ProvisioningTokenForm(forms.Form):
    """A provisioning token for the organisation's identity provider, named for the admins' list."""

    name = single_line(forms.CharField(label="Name", max_length=100,
                                       help_text="Which identity provider uses it, e.g. \"Microsoft Entra ID\"."))


MESSAGE_STATUSES = {"": "Any", "active": "Active", "recalled": "Recalled", "expired": "Expired"}


class Filters(forms.Form):
    """A search form of the admin area: each problem is told with the field's label."""

    def problems(self) -> list[str]:
        return [f"{self.fields[name].label}: {e}" if name in self.fields else e
                for name, errors in self.errors.items() for e in errors]


class RecipientSearch(Filters):
    q = single_line(forms.CharField(label="Search", max_length=254, required=False))


class MessageFilters(Filters):
    sender = single_line(forms.CharField(label="Sender", max_length=254, required=False))
    recipient = single_line(forms.CharField(label="Recipient", max_length=254, required=False))
    since = DayField(label="Sent from", required=False)
    until = DayField(label="Sent until", required=False)
    status = forms.ChoiceField(label="State", choices=list(MESSAGE_STATUSES.items()), required=False)


class AuditFilters(Filters):
    actor = single_line(forms.CharField(label="Who", max_length=254, required=False))
    action = forms.ChoiceField(label="What", choices=[("", "Anything"), *AuditEvent.Action.choices], required=False)
    since = DayField(label="From", required=False)
    until = DayField(label="Until", required=False)


MAX_ATTACHMENT_MB = 10 * 1024  # 10 GB: the store streams, so size costs disk, not memory


REMIND_DAYS, REMIND_TIMES = 30, 5


class PolicyForm(forms.ModelForm):
    allowed_expiry = forms.TypedMultipleChoiceField(
        label="Expiry choices senders may pick",
        choices=[(str(d), EXPIRY_LABELS[d]) for d in EXPIRY_CHOICES],
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
    )
    default_restriction = forms.ChoiceField(label="Default restriction", choices=Restriction.choices)
    default_expire_days = forms.TypedChoiceField(
        label="Default expiry",
        choices=[(str(d), EXPIRY_LABELS[d]) for d in EXPIRY_CHOICES],
        coerce=int,
    )
    temp_password_days = forms.IntegerField(
        label="Temporary passwords work for (days)", min_value=1, max_value=30, required=False,
        help_text="Empty uses the deployment's setting.",
    )

    max_file_mb = forms.IntegerField(
        label="Largest attached file (MB)", min_value=1, max_value=MAX_ATTACHMENT_MB, required=False,
        help_text="For senders and recipients alike. Files up to 2 GB and more work when allowed.",
    )
    max_message_mb = forms.IntegerField(
        label="Largest total of files on one message (MB)", min_value=1, max_value=MAX_ATTACHMENT_MB,
        required=False,
    )

    sender_idle_minutes = forms.IntegerField(
        label="Sign senders out after (minutes without activity)", min_value=1, max_value=480, required=False,
        help_text="Empty uses the deployment's setting (30).")
    recipient_idle_minutes = forms.IntegerField(
        label="Sign recipients out after (minutes without activity)", min_value=1, max_value=480, required=False,
        help_text="Empty uses the deployment's setting (15).")

    time_zone = forms.ChoiceField(
        label="Time zone", choices=zones.choices, error_messages={"invalid_choice": zones.INVALID}, required=False,
        help_text="Pages and e-mails show times in it for anyone whose account or browser sets none.")
    remind_after_days = forms.IntegerField(
        label="Remind recipients who have not opened a message after (days)", min_value=1,
        max_value=REMIND_DAYS, required=False,
        help_text="Counted from when it was sent, and again from each reminder. Empty: no reminders.")
    remind_times = forms.IntegerField(
        label="Remind at most (times)", min_value=1, max_value=REMIND_TIMES, required=False)

    class Meta:
        model = Organization
        fields = [
            "sender_name", "notify_from_email", "default_read_receipt", "default_restriction",
            "default_expire_days", "temp_password_days", "receipt_includes_subject",
            "max_file_mb", "max_message_mb", "sender_idle_minutes", "recipient_idle_minutes",
            "require_2fa_senders", "require_2fa_recipients", "time_zone",
            "remind_after_days", "remind_times", "remind_tells_sender",
        ]
        labels = {
            "sender_name": "Display name on notifications",
            "notify_from_email": "Notifications come from",
            "default_read_receipt": "Request Read Receipt by default",
            "receipt_includes_subject": "Read receipts and reply notices may name the message subject",
            "require_2fa_senders": "Senders must use two-factor sign-in",
            "require_2fa_recipients": "Recipients must use two-factor sign-in",
            "remind_tells_sender": "Tell the sender when a reminder goes",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["allowed_expiry"].initial = [str(d) for d in self.instance.expiry_choices]
        for name in ("sender_name", "notify_from_email"):  # both go into every notification's From
            single_line(self.fields[name])

    def clean_time_zone(self):
        return self.cleaned_data.get("time_zone") or self.instance.time_zone  # left out: unchanged

    def clean_notify_from_email(self):
        address = self.cleaned_data.get("notify_from_email", "").strip().lower()
        if address:
            domains = [d.name for d in self.instance.domains.all()]
            if address.rsplit("@", 1)[-1] not in domains:
                # Anything else would let the platform's mail server speak for others.
                raise ValidationError(
                    f"Use an address at your organisation's domains ({', '.join(domains)})."
                )
        return address

    def clean(self):
        data = super().clean()
        allowed = data.get("allowed_expiry") or []
        if "default_expire_days" in data and data["default_expire_days"] not in allowed:
            self.add_error("default_expire_days", "The default must be one of the allowed choices.")
        for name in ("max_file_mb", "max_message_mb", "remind_times"):
            if name in data and data[name] is None:  # left empty: unchanged
                data[name] = getattr(self.instance, name)
        if data.get("max_file_mb") and data.get("max_message_mb") and data["max_file_mb"] > data["max_message_mb"]:
            self.add_error("max_file_mb", "A file cannot be larger than the total allowed on a message.")
        return data

    def save(self, commit=True):
        self.instance.allowed_expiry_days = ",".join(str(d) for d in sorted(self.cleaned_data["allowed_expiry"]))
        return super().save(commit=commit)


RETENTION_DAYS = 36500  # a hundred years: longer is "never", which is an empty field


RETENTION_TOO_SHORT = ("At least 1 day: a shorter wait would destroy content the moment it is due, "
                       "before anyone could place a hold. Leave it empty for never.")


def _days_field(label: str, help_text: str) -> forms.IntegerField:
    return forms.IntegerField(label=label, min_value=1, max_value=RETENTION_DAYS, required=False,
                              help_text=help_text, error_messages={"min_value": RETENTION_TOO_SHORT})


class RetentionPolicyForm(forms.Form):
    """When message content is destroyed; every field empty keeps everything (the default).

    Each count is one day at least, so no single save destroys everything at once."""

    after_expiry_days = _days_field(
        "Purge expired messages after (days)",
        "Counted from the day a message expired. Empty: never for this reason.")
    after_deletion_days = _days_field(
        "Purge messages deleted by every recipient after (days)",
        "Counted from the day the last recipient deleted it. Empty: never for this reason.")
    after_activity_days = _days_field(
        "Purge conversations without activity for (days)",
        "Activity is any message sent, opened, replied to or deleted in the conversation. "
        "Empty: never for this reason.")


class HoldForm(forms.Form):
    """A legal hold on a sender's or a recipient's messages, or on one conversation."""

    KINDS = [("sender", "A sender (every conversation they took part in, under any of their accounts)"),
             ("recipient", "A recipient (every conversation they took part in, under any of their accounts)"),
             ("conversation", "The conversation picked on the Messages tab")]
    kind = forms.ChoiceField(label="Hold", choices=KINDS, widget=forms.RadioSelect)
    address = single_line(forms.EmailField(label="Address", required=False, max_length=254))
    conversation = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    reason = single_line(forms.CharField(
        label="Reason", max_length=500,
        help_text="Shown to the organisation's admins with the hold, e.g. a case or matter reference."))

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind in ("sender", "recipient") and not data.get("address"):
            self.add_error("address", f"Enter the {kind}'s address.")
        if kind == "conversation" and not data.get("conversation"):
            self.add_error("kind", "Pick the conversation on the Messages tab first (its Hold action).")
        return data


class BrandingForm(forms.Form):
    """What recipients see of the organisation: on its portal and in every e-mail it sends.

    The rules are :mod:`hushpost.orgs.branding`'s; this form shows their words beside the field.
    A logo shown by "Preview" travels back re-encoded in ``pending_logo`` (and is checked again),
    so "Save" after a preview needs no second upload."""

    accent = single_line(forms.CharField(
        label="Accent colour", max_length=7, required=False,
        help_text="#RRGGBB, for buttons and links on white: it must have a contrast of 4.5:1 with white. "
                  "Empty keeps Hushpost's blue.",
        widget=forms.TextInput(attrs={"placeholder": "#1d4ed8", "autocomplete": "off", "spellcheck": "false",
                                      "size": 9})))
    logo = forms.FileField(
        label="Logo", required=False, widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg"}),
        help_text="PNG or JPEG, at most 1 MB; shown at most 600 × 200 pixels (larger ones are scaled down). "
                  "SVG is not accepted.")
    remove_logo = forms.BooleanField(label="Remove the logo", required=False)
    footer = plain_text(forms.CharField(
        label="Footer text", max_length=MAX_FOOTER, required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=f"Plain text (no HTML), at most {MAX_FOOTER} characters: a disclaimer or your address."))
    support_email = single_line(forms.EmailField(label="Support e-mail address", required=False))
    support_phone = single_line(forms.RegexField(
        label="Support phone number", regex=r"^\+?[0-9()./ -]{3,40}$", max_length=40, required=False,
        error_messages={"invalid": "Write the number with digits, spaces and + ( ) - . / only."}))
    pending_logo = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_accent(self) -> str:
        try:
            return check_accent(self.cleaned_data["accent"])
        except Refused as e:
            raise ValidationError(str(e), code="accent") from e

    def clean_footer(self) -> str:
        try:
            return check_footer(self.cleaned_data["footer"])
        except Refused as e:
            raise ValidationError(str(e), code="footer") from e

    def clean(self):
        data = super().clean()
        data["new_logo"] = None
        upload, pending = data.get("logo"), data.get("pending_logo")
        try:
            if upload:
                data["new_logo"] = reencode_logo(upload.read())
            elif pending:
                data["new_logo"] = reencode_logo(base64.b64decode(pending, validate=True))
        except (Refused, binascii.Error, ValueError) as e:
            self.add_error("logo", str(e) if isinstance(e, Refused) else "Choose the logo again.")
        return data

    @property
    def new_logo(self) -> Logo | None:
        return self.cleaned_data.get("new_logo") if hasattr(self, "cleaned_data") else None
