from __future__ import annotations

from django.db import models

from hushpost.lib import clock
from hushpost.messaging.models import new_uid


class Attachment(models.Model):
    """One encrypted file: uploaded as a draft by its owner, then part of a message.

    The file itself lives in the store as Tink streaming-AEAD ciphertext under
    ``store_key``.  ``sealed`` holds the file's keyset and its name, sealed under
    the organisation key while a draft and under the message's data key once
    sent, so the name and key of a sent file open only through its message.
    """

    uid = models.CharField(max_length=32, unique=True, default=new_uid, editable=False)
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        "messaging.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    # While a draft: the organisation key version that seals ``sealed``.
    draft_key_version = models.PositiveIntegerField(null=True, blank=True)
    sealed = models.BinaryField()
    size = models.BigIntegerField()
    store_key = models.CharField(max_length=64, unique=True)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [models.Index(fields=["owner", "message", "created_at"], name="attachment_drafts")]

    def __str__(self) -> str:
        return f"Attachment {self.uid}"
