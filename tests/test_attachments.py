"""Attachments: encrypted as they arrive, downloaded only through the message's gate.

Every test that stores files runs against both stores: the data directory and
an S3-compatible server on loopback.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from hushpost.attachments.cleanup import purge_stale_drafts
from hushpost.attachments.models import Attachment
from hushpost.crypto.streams import StreamError
from hushpost.lib import clock
from hushpost.messaging.models import Message
from tests.helpers import content_of, send, upload
from tests.personas import BOB, PASSWORD, first_login, sign_in_again

REPORT = b"%PDF-1.7 Quarterly statement for Bob: balance 1,234.56 " + os.urandom(3 * 1024 * 1024)


@pytest.fixture
def bob(client_factory, smtp, deliver, org):
    """Bob's own browser, signed in after the first message reached him."""
    def sign_in():
        deliver()
        c = client_factory()
        first_login(c, smtp, org, BOB)
        return c
    return sign_in


def test_a_sent_file_reaches_the_recipient_byte_for_byte(store, sender_client, bob, org):
    r = upload(sender_client, REPORT, "Statement Q3.pdf")
    assert r.status_code == 201, r.content
    uid = r.json()["uid"]
    assert r.json()["name"] == "Statement Q3.pdf" and r.json()["size"] == len(REPORT)
    r = send(sender_client, to=BOB, attachment=[uid])
    assert r.status_code == 302
    message = Message.objects.get()
    assert [a.uid for a in message.attachments.all()] == [uid]

    bob_client = bob()
    page = bob_client.get(f"/r/{org.slug}/m/{message.uid}").content.decode().replace("\xa0", " ")
    assert "1 attachment" in page and "Statement Q3.pdf" in page and "3.0 MB" in page
    r = bob_client.get(f"/r/{org.slug}/m/{message.uid}/files/{uid}")
    assert r.status_code == 200
    assert r["Content-Type"] == "application/octet-stream"
    assert r["Content-Disposition"] == 'attachment; filename="Statement Q3.pdf"'
    assert r["X-Content-Type-Options"] == "nosniff"
    assert r["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert r["Content-Length"] == str(len(REPORT))
    assert content_of(r) == REPORT
    # The sender sees and downloads the same file from Sent.
    assert content_of(sender_client.get(f"/app/m/{message.uid}/files/{uid}")) == REPORT


def test_files_are_ciphertext_at_rest_and_their_names_too(store, sender_client, org):
    uid = upload(sender_client, REPORT, "Bob-secret-diagnosis.pdf").json()["uid"]
    send(sender_client, to=BOB, attachment=[uid])
    blobs = store()
    assert len(blobs) == 1
    [ciphertext] = blobs.values()
    assert b"Quarterly statement" not in ciphertext and REPORT[-4096:] not in ciphertext
    assert len(ciphertext) > len(REPORT)  # authenticated segments
    row = Attachment.objects.get(uid=uid)
    assert b"diagnosis" not in bytes(row.sealed) and "diagnosis" not in row.store_key


def test_without_script_the_form_itself_carries_the_files(store, sender_client, bob, org):
    files = [SimpleUploadedFile("scan one.png", b"\x89PNG first"), SimpleUploadedFile("two.txt", b"second file")]
    r = send(sender_client, to=BOB, files=files)
    assert r.status_code == 302
    message = Message.objects.get()
    names = {a.uid: a for a in message.attachments.all()}
    assert len(names) == 2
    bob_client = bob()
    page = bob_client.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    assert "2 attachments" in page and "scan one.png" in page and "two.txt" in page


def test_a_form_sent_back_with_an_error_keeps_its_files(store, sender_client):
    r = send(sender_client, to="not-an-address", files=[SimpleUploadedFile("kept.txt", b"keep me")])
    assert r.status_code == 400
    page = r.content.decode()
    [draft] = Attachment.objects.filter(message__isnull=True)
    assert "kept.txt" in page and f'name="attachment" value="{draft.uid}"' in page
    assert send(sender_client, to=BOB, attachment=[draft.uid]).status_code == 302
    assert Message.objects.get().attachments.get().uid == draft.uid


def test_a_file_over_the_limit_is_refused_and_nothing_is_kept(store, sender_client, org):
    org.max_file_mb = 1
    org.save()
    r = upload(sender_client, os.urandom(1024 * 1024 + 1), "big.bin")
    assert r.status_code == 413
    assert r.json()["error"] == "big.bin is larger than 1 MB, the largest file your organisation allows."
    # A file inside a form has no length of its own: it is stopped as its bytes arrive.
    r = send(sender_client, to=BOB, files=[SimpleUploadedFile("inside.bin", os.urandom(3 * 1024 * 1024))])
    assert r.status_code == 400
    assert "inside.bin is larger than 1 MB" in r.content.decode()
    assert not Message.objects.exists()
    assert not Attachment.objects.exists() and store() == {}


def test_files_over_the_message_limit_are_refused_and_kept_as_drafts(store, sender_client, org):
    org.max_file_mb, org.max_message_mb = 2, 3
    org.save()
    uids = [upload(sender_client, os.urandom(2 * 1024 * 1024), f"part{i}.bin").json()["uid"] for i in (1, 2)]
    r = send(sender_client, to=BOB, attachment=uids)
    assert r.status_code == 400
    assert "more than 3 MB, the most your organisation allows on one message" in r.content.decode()
    assert not Message.objects.exists()
    assert Attachment.objects.filter(message__isnull=True).count() == 2


def test_a_double_submit_with_files_sends_one_message(store, sender_client):
    uid = upload(sender_client, b"once", "once.txt").json()["uid"]
    first = send(sender_client, to=BOB, attachment=[uid], token="a-repeated-send-token-1")
    again = send(sender_client, to=BOB, attachment=[uid], token="a-repeated-send-token-1")
    assert first.status_code == again.status_code == 302 and first["Location"] == again["Location"]
    assert Message.objects.count() == 1 and Attachment.objects.get().message is not None


@pytest.mark.parametrize(("uploaded", "downloaded"), [
    ("../../etc/passwd", 'attachment; filename="passwd"'),
    ("C:\\Users\\eve\\invoice.pdf", 'attachment; filename="invoice.pdf"'),
    ("invoice\u202efdp.exe", 'attachment; filename="invoicefdp.exe"'),
    ("report\r\nX-Injected: yes.pdf", 'attachment; filename="reportX-Injected_ yes.pdf"'),
    ("CON.txt", 'attachment; filename="_CON.txt"'),
    ('quote".txt', 'attachment; filename="quote_.txt"'),
    ("Résumé.pdf", "attachment; filename=\"R_sum_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf"),
    ("50% off.pdf", "attachment; filename=\"50_ off.pdf\"; filename*=UTF-8''50%25%20off.pdf"),
    ("COM¹.txt", "attachment; filename=\"_COM_.txt\"; filename*=UTF-8''_COM%C2%B9.txt"),
    ("...", 'attachment; filename="file"'),
])
def test_dangerous_filenames_are_neutralised(sender_client, uploaded, downloaded):
    uid = upload(sender_client, b"content", uploaded).json()["uid"]
    send(sender_client, to=BOB, attachment=[uid])
    message = Message.objects.get()
    r = sender_client.get(f"/app/m/{message.uid}/files/{uid}")
    assert r["Content-Disposition"] == downloaded


def test_only_people_who_may_see_the_message_get_its_files(sender_client, bob, org, make_sender, client_factory):
    uid = upload(sender_client, b"private", "private.txt").json()["uid"]
    send(sender_client, to=BOB, attachment=[uid])
    message = Message.objects.get()
    path = f"/app/m/{message.uid}/files/{uid}"
    other = make_sender(org, "carol", "Carol Other")
    carol = client_factory()
    carol.post("/login", {"email": other.email, "password": PASSWORD})
    assert carol.get(path).status_code == 404
    assert Client().get(path).status_code == 302  # to sign in
    assert Client().get(f"/r/{org.slug}/m/{message.uid}/files/{uid}").status_code == 302
    # A real file uid under another message's uid is no way in either.
    send(sender_client, to="dave@client.example", subject="Other")
    other_message = Message.objects.exclude(pk=message.pk).get()
    assert sender_client.get(f"/app/m/{other_message.uid}/files/{uid}").status_code == 404
    bob_client = bob()
    assert bob_client.get(f"/r/{org.slug}/m/{other_message.uid}/files/{uid}").status_code == 404
    assert bob_client.get(f"/r/{org.slug}/m/{message.uid}/files/{uid}").status_code == 200


def test_expired_messages_keep_their_files_deleted_ones_do_not(sender_client, bob, org):
    uid = upload(sender_client, b"kept after expiry", "kept.txt").json()["uid"]
    send(sender_client, to=BOB, attachment=[uid], expire_days=1)
    message = Message.objects.get()
    bob_client = bob()
    clock.travel(timedelta(days=2))
    sign_in_again(bob_client, org, BOB)
    r = bob_client.get(f"/r/{org.slug}/m/{message.uid}/files/{uid}")
    assert r.status_code == 200 and content_of(r) == b"kept after expiry"
    bob_client.post(f"/r/{org.slug}/m/{message.uid}/delete")
    assert bob_client.get(f"/r/{org.slug}/m/{message.uid}/files/{uid}").status_code == 404


def test_nobody_attaches_someone_elses_upload(sender_client, org, make_sender, client_factory):
    other = make_sender(org, "carol", "Carol Other")
    carol = client_factory()
    carol.post("/login", {"email": other.email, "password": PASSWORD})
    carols = upload(carol, b"carol's file", "carol.txt").json()["uid"]
    r = send(sender_client, to=BOB, attachment=[carols])
    assert r.status_code == 400 and "no longer available" in r.content.decode()
    assert not Message.objects.exists()
    assert sender_client.post(f"/app/files/{carols}/discard").status_code == 404
    assert Attachment.objects.filter(uid=carols, message__isnull=True).exists()


def test_a_recipient_attaches_files_to_a_reply(store, sender_client, bob, org):
    send(sender_client, to=BOB)
    message = Message.objects.get()
    bob_client = bob()
    uid = upload(bob_client, b"signed form", "signed.pdf", url=f"/r/{org.slug}/files").json()["uid"]
    r = bob_client.post(f"/r/{org.slug}/m/{message.uid}/reply",
                        {"body": "<p>Signed, attached.</p>", "body_format": "html", "send_token": "reply-token-0123456789",
                         "reply_all": "False", "attachment": [uid]})
    assert r.status_code == 302
    reply = Message.objects.get(kind=Message.Kind.REPLY)
    page = sender_client.get(f"/app/m/{reply.uid}").content.decode()
    assert "signed.pdf" in page
    assert content_of(sender_client.get(f"/app/m/{reply.uid}/files/{uid}")) == b"signed form"


def test_notifications_never_name_a_file(sender_client, smtp, deliver, org):
    uid = upload(sender_client, b"x", "Bob-HIV-test-result.pdf").json()["uid"]
    send(sender_client, to=BOB, attachment=[uid], read_receipt=True)
    deliver()
    assert smtp.messages
    for mail in smtp.messages:
        assert "HIV" not in mail.message.as_string()


def test_tampered_ciphertext_is_refused_not_served(sender_client, settings):
    uid = upload(sender_client, REPORT, "statement.pdf").json()["uid"]
    send(sender_client, to=BOB, attachment=[uid])
    message = Message.objects.get()
    key = Attachment.objects.get(uid=uid).store_key
    blob = Path(settings.FILE_STORAGE["root"]) / key[:2] / key
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 1
    blob.write_bytes(bytes(data))
    r = sender_client.get(f"/app/m/{message.uid}/files/{uid}")
    with pytest.raises(StreamError):
        content_of(r)


def test_unsent_drafts_are_removed_after_a_day(store, sender_client, django_capture_on_commit_callbacks):
    upload(sender_client, b"forgotten", "forgotten.txt")
    assert purge_stale_drafts(24) == 0
    clock.travel(timedelta(hours=25))
    with django_capture_on_commit_callbacks(execute=True):
        assert purge_stale_drafts(24) == 1
    assert not Attachment.objects.exists() and store() == {}


def test_uploads_need_the_right_portal_and_a_csrf_token(store, sender_client, bob, org, alice):
    send(sender_client, to=BOB)
    bob_client = bob()
    # A recipient cannot use the senders' upload, nor a sender the recipients'.
    assert upload(bob_client, b"x", "x.txt").status_code == 302
    assert upload(sender_client, b"x", "x.txt", url=f"/r/{org.slug}/files").status_code == 302
    assert upload(Client(), b"x", "x.txt").status_code == 302
    # A page on another site cannot post a file into a signed-in sender's drafts.
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(alice, backend="hushpost.accounts.backends.HushpostBackend")
    forged.get("/app/compose")
    assert upload(forged, b"planted", "planted.txt").status_code == 403
    token = forged.cookies["csrftoken"].value
    r = forged.post("/app/files", data=b"mine", content_type="text/plain", HTTP_X_FILE_NAME="mine.txt",
                    HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 201
    assert [a.size for a in Attachment.objects.all()] == [4] and len(store()) == 1


def test_a_filename_cannot_script_the_page(sender_client, bob, org):
    uids = [upload(sender_client, b"x", name).json()["uid"]
            for name in ('<img src=x onerror=alert(1)>.png', "Tom & Jerry's <b>.txt")]
    send(sender_client, to=BOB, attachment=uids)
    message = Message.objects.get()
    for page in (sender_client.get(f"/app/m/{message.uid}").content.decode(),
                 bob().get(f"/r/{org.slug}/m/{message.uid}").content.decode()):
        assert "<img src=x" not in page and "_img src=x onerror=alert(1)_.png" in page
        assert "Tom &amp; Jerry&#x27;s _b_.txt" in page


def test_an_empty_file_is_still_a_file(sender_client):
    r = sender_client.post("/app/files", data=b"", content_type="text/plain", HTTP_X_FILE_NAME="empty.txt",
                           CONTENT_LENGTH="0")
    uid = r.json()["uid"]
    send(sender_client, to=BOB, attachment=[uid])
    r = sender_client.get(f"/app/m/{Message.objects.get().uid}/files/{uid}")
    assert r["Content-Length"] == "0" and content_of(r) == b""


def test_an_upload_without_its_length_is_refused(sender_client):
    r = sender_client.post("/app/files", data=b"abc", content_type="text/plain", HTTP_X_FILE_NAME="a.txt",
                           CONTENT_LENGTH="")
    assert r.status_code == 411 and not Attachment.objects.exists()


def test_a_store_that_cannot_write_loses_nothing_and_says_so(sender_client, settings):
    settings.FILE_STORAGE = {**settings.FILE_STORAGE, "kind": "local", "root": "/dev/null/files"}
    r = upload(sender_client, b"abc", "a.txt")
    assert r.status_code == 503 and r.json()["error"] == "The file could not be stored just now. Try again in a moment."
    r = send(sender_client, to=BOB, subject="Kept draft", files=[SimpleUploadedFile("a.txt", b"abc")])
    assert r.status_code == 400
    page = r.content.decode()
    assert "A file could not be stored just now. Try again in a moment." in page and "Kept draft" in page
    assert not Attachment.objects.exists() and not Message.objects.exists()


def _multipart(fields: dict[str, str], file_part: bytes) -> tuple[bytes, str]:
    boundary = "hushpostboundary7MA4YWxkTrZu0gW"
    body = b""
    for name, value in fields.items():
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n').encode()
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="scan.pdf"\r\n'
             "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode()
    body += file_part + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_an_upload_broken_off_midway_leaves_nothing_behind(store, sender_client):
    fields = {"to": BOB, "subject": "S", "body": "B", "send_token": "broken-upload-token-1", "confirm": "1"}
    body, content_type = _multipart(fields, b"QUJD" * 300_000 + b"!!! not base64 ***" + b"QUJD" * 10)
    r = sender_client.post("/app/compose", data=body, content_type=content_type)
    assert r.status_code == 400
    assert not Message.objects.exists() and not Attachment.objects.exists()
    assert store() == {}


def test_an_upload_cut_short_is_not_kept(store, sender_client):
    r = sender_client.post("/app/files", data=b"only ten b", content_type="text/plain", HTTP_X_FILE_NAME="a.txt",
                           CONTENT_LENGTH="1000")
    assert r.status_code == 400 and r.json()["error"] == "The upload was cut short. Try again."
    assert not Attachment.objects.exists() and store() == {}


def test_a_form_from_another_site_stores_no_file(store, sender_client):
    data = {"to": BOB, "subject": "S", "body": "B", "send_token": "cross-site-token-01", "confirm": "1"}
    for header in ({"HTTP_SEC_FETCH_SITE": "cross-site"}, {"HTTP_ORIGIN": "https://evil.example"}):
        r = sender_client.post("/app/compose", {**data, "files": [SimpleUploadedFile("planted.txt", b"x")]}, **header)
        assert r.status_code in (400, 403)
    assert not Attachment.objects.exists() and store() == {} and not Message.objects.exists()
    # The site's own page, as a browser marks it, still works.
    r = sender_client.post("/app/compose", {**data, "files": [SimpleUploadedFile("mine.txt", b"x")]},
                           HTTP_SEC_FETCH_SITE="same-origin", HTTP_ORIGIN="http://testserver")
    assert r.status_code == 302 and Message.objects.get().attachments.count() == 1


def test_unsent_files_are_bounded_per_person(store, sender_client, org):
    org.max_file_mb = org.max_message_mb = 1
    org.save()
    for n in range(2):
        assert upload(sender_client, os.urandom(1024 * 1024), f"part{n}.bin").status_code == 201
    r = upload(sender_client, b"one more", "more.txt")
    assert r.status_code == 400 and "too many files waiting to be sent" in r.json()["error"]


def test_a_recipient_with_nothing_to_answer_cannot_upload(sender_client, bob, org):
    send(sender_client, to=BOB, restriction="no_print_no_reply")
    bob_client = bob()
    r = upload(bob_client, b"x", "x.txt", url=f"/r/{org.slug}/files")
    assert r.status_code == 400 and "none of your messages can be answered" in r.json()["error"]
    assert not Attachment.objects.exists()


def test_a_draft_sent_meanwhile_is_not_purged(sender_client):
    from hushpost.attachments.cleanup import _delete_draft

    uid = upload(sender_client, b"keep", "keep.txt").json()["uid"]
    stale_view = Attachment.objects.get(uid=uid)  # loaded as a draft by the purge...
    send(sender_client, to=BOB, attachment=[uid])  # ...sent before it deletes
    assert _delete_draft(stale_view) is False
    assert Message.objects.get().attachments.count() == 1
