"""Rotating an organisation's key while its people send and read: the operator's commands, the
worker's re-wrapping, and the old version destroyed once nothing needs it."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from hushpost.crypto import keys
from hushpost.messaging.content import open_content
from hushpost.messaging.models import Message
from hushpost.notifications.models import Notification
from hushpost.orgs.models import OrgKey
from tests.helpers import content_of, send, upload
from tests.personas import BOB, CAROL

pytestmark = pytest.mark.django_db
FILE = b"%PDF-1.7 statement " * 1000


def keys_command(*args) -> str:
    out = StringIO()
    call_command("keys", *args, stdout=out)
    return out.getvalue()


def test_rotation_rewraps_every_message_and_draft_and_retires_the_old_version(
        sender_client, org, smtp, deliver, files_dir):
    uid = upload(sender_client, FILE, "statement.pdf").json()["uid"]
    assert send(sender_client, to=BOB, subject="Before rotation", attachment=[uid]).status_code == 302
    draft = upload(sender_client, FILE, "draft.pdf").json()["uid"]  # uploaded, not yet sent
    deliver()
    before = Message.objects.get()
    assert before.key_version == 1

    out = keys_command("rotate-org", org.slug)
    assert "Key version 2 of northwind-health is in use" in out
    # Sent now: under version 2 at once (this process was told).
    assert send(sender_client, to=CAROL, subject="After rotation").status_code == 302
    deliver()  # the worker runs the re-wrap task and the notifications alike
    assert set(Message.objects.values_list("key_version", flat=True)) == {2}
    status = keys_command("status", org.slug)
    assert [line.split()[0::3] for line in status.splitlines()[1:]] == [["1", "0"], ["2", "2"]]

    keys_command("retire", org.slug, "1")
    assert list(OrgKey.objects.filter(org=org).values_list("version", flat=True)) == [2]
    keys.forget_cached_keys()  # as in a process started now: version 1 exists nowhere
    assert open_content(Message.objects.get(subject_ct=before.subject_ct)).subject == "Before rotation"
    assert content_of(sender_client.get(f"/app/m/{before.uid}/files/{uid}")) == FILE
    # The draft moved too, and still goes out with a message.
    assert send(sender_client, to=BOB, subject="With the draft", attachment=[draft]).status_code == 302
    sent = Message.objects.get(attachments__uid=draft)
    assert content_of(sender_client.get(f"/app/m/{sent.uid}/files/{draft}")) == FILE
    # Nothing was e-mailed twice: one Password Notification for each new recipient, one per message.
    deliver()
    assert Notification.objects.filter(status="sent").count() == 5
    assert len(smtp.to(BOB)) == 3 and len(smtp.to(CAROL)) == 2


def test_a_message_sealed_by_a_process_not_yet_told_is_moved_before_retiring(sender_client, org, smtp, deliver):
    keys_command("rotate-org", org.slug)
    deliver()
    # Another web process still holds version 1 as current for up to a minute, and sends.
    keys._current[org.pk] = (1, time.monotonic())
    assert send(sender_client, to=BOB, subject="From a process not yet told").status_code == 302
    assert Message.objects.get().key_version == 1
    keys_command("retire", org.slug, "1")
    keys.forget_cached_keys()
    assert open_content(Message.objects.get()).subject == "From a process not yet told"


def test_the_newest_version_cannot_be_retired(org):
    with pytest.raises(CommandError, match="newest"):
        keys_command("retire", org.slug, "1")
    with pytest.raises(CommandError, match="no organisation"):
        keys_command("status", "no-such-org")
