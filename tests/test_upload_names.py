"""A file's name that no file could have is refused at once, in words, and nothing is kept.

Names over 255 characters (no file system holds one) are refused before any
work is done on them, by script upload and in a form alike; a form part too
large for Django to read (over 1 KB of part headers, a long name being the
usual cause) gets a page that says so, and files stored before it go too.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from hushpost.attachments.models import Attachment
from hushpost.messaging.models import Message
from tests.personas import BOB

TOO_LONG = "A file's name is longer than 255 characters. Rename the file and attach it again."


def upload(client, name: str, data: bytes = b"%PDF-1.7 report"):
    return client.post("/app/files", data=data, content_type="application/pdf", HTTP_X_FILE_NAME=quote(name))


def compose(client, *files: tuple[str, bytes]):
    """Compose sent without script, its files in the form, named exactly as given
    (Django's test client would shorten a name to 255 characters)."""
    boundary = "hushpostboundary7MA4YWxkTrZu0gW"
    fields = {"to": BOB, "subject": "Two files", "body": "<p>See the files.</p>", "body_format": "html",
              "restriction": "none", "expire_days": "0", "send_token": "impossible-names-1", "confirm": "1"}
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                    for name, value in fields.items())
    for name, data in files:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                 "Content-Type: text/plain\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return client.post("/app/compose", data=body, content_type=f"multipart/form-data; boundary={boundary}")


@pytest.mark.parametrize("name", [
    "Quarterly report " * 500 + ".pdf",  # 8.5 KB of name
    "a" + "\u0301\u0316" * 4000 + ".pdf",  # combining marks: costly to normalise, refused before
    "\u202e" * 300 + "fdp.exe",  # direction marks, then a name
])
def test_a_script_upload_with_an_impossible_name_is_refused_and_nothing_kept(store, sender_client, name):
    started = time.monotonic()
    r = upload(sender_client, name)
    assert time.monotonic() - started < 10  # generous: no work is done on such a name
    assert (r.status_code, r.json()) == (400, {"error": TOO_LONG})
    assert not Attachment.objects.exists() and store() == {}


def test_a_name_of_255_characters_is_taken_and_cleaned_as_ever(store, sender_client):
    r = upload(sender_client, "r" * 251 + ".pdf")
    assert r.status_code == 201
    assert r.json()["name"] == "r" * 146 + ".pdf"  # shortened to 150, the extension kept


def test_a_form_with_an_impossible_name_is_sent_back_with_the_reason(store, sender_client):
    r = compose(sender_client, ("notes.txt", b"first file"), ("n" * 300 + ".txt", b"second"))
    assert r.status_code == 400
    page = r.content.decode().replace("&#x27;", "'")
    assert TOO_LONG in page and "Two files" in page  # the form comes back, filled in
    [kept] = Attachment.objects.all()  # the good file stays a draft on the form, as any refusal leaves it
    assert f'name="attachment" value="{kept.uid}"' in page
    assert not Message.objects.exists()


def test_a_form_part_too_large_to_read_gets_a_page_in_words_and_nothing_is_kept(store, sender_client):
    # Django reads at most 1 KB of a part's headers: a 3,000-character name breaks the whole form.
    r = compose(sender_client, ("notes.txt", b"stored before the bad part"), ("n" * 3000 + ".txt", b"second"))
    assert r.status_code == 400
    page = r.content.decode().replace("&#x27;", "'")
    assert "The form could not be read, and nothing of it was kept" in page
    assert "usually a file whose name is too long (a file's name and type must fit in 1 KB)" in page
    assert not Message.objects.exists()
    assert not Attachment.objects.exists() and store() == {}
