"""What a deployment has already stored still opens: ciphertexts, wrapped keys and keyed hashes.

``tests/data/stored_values.json`` holds values written once, with fixed keys, by the code that
wrote them in production: a sealed subject and body with their wrapped data key, a wrapped
organisation key, a file's keyset sealed as a draft and on its message, the file's streamed
ciphertext, audit links, a head seal and a checkpoint, a session's stored key, a session's auth
hash, a temporary password and its hash, a sealed authenticator secret with its recovery codes,
a region's signature, a provisioning token's hash, a notification's bounce address and its link's code; and an organisation key and the derivation
root as ``hushpost keys rotate-master`` re-wraps them under a new master key. Each test opens or
recomputes one through the code a deployment runs.
The file is never regenerated: a value that stops matching is data a deployment can no longer read.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pyotp
import pytest

from hushpost.accounts import twofactor
from hushpost.accounts.models import RecoveryCode, User
from hushpost.accounts.passwords import TemporaryPasswordHasher, temporary_password_for
from hushpost.accounts.sessions import stored_key
from hushpost.attachments.actions import describe, open_file
from hushpost.attachments.models import Attachment
from hushpost.attachments.store import get_store
from hushpost.audit.chain import GENESIS, head_seal, link, read_checkpoint, seal_holds
from hushpost.crypto import keys, macs, master
from hushpost.messaging.content import data_key, open_content, open_subject
from hushpost.messaging.models import Message
from hushpost.notifications import bounces, links
from hushpost.orgs.models import DerivationRoot, Organization, OrgKey
from hushpost.regions.config import Region, Regions
from hushpost.regions.discovery import sign

STORED = json.loads((Path(__file__).parent / "data" / "stored_values.json").read_text())
GIVEN = STORED["inputs"]
ORG, VERSION, UID, FILE_UID = GIVEN["org_id"], GIVEN["org_key_version"], GIVEN["message_uid"], GIVEN["file_uid"]


def _bytes(value: str) -> bytes:
    return base64.b64decode(value)


def _clear_key_caches():
    for cached in (master.master_key, keys.unwrap_org_key, keys.key_version):
        cached.cache_clear()
    keys.forget_cached_keys()


@pytest.fixture
def fixed_keys(db, settings):
    """The deployment's master key and secret key as they were when the values were written (and its
    database: the audit trail's keys derive from a root kept there, first stored from the master key)."""
    settings.MASTER_KEY = GIVEN["master_key"]
    settings.SECRET_KEY = GIVEN["secret_key"]
    settings.SECRET_KEY_FALLBACKS = []
    _clear_key_caches()
    yield
    _clear_key_caches()


@pytest.fixture
def stored_org(db, fixed_keys):
    org = Organization.objects.create(pk=ORG, name="Stored Values", slug="stored-values", sender_name="Stored")
    OrgKey.objects.create(org=org, version=VERSION, wrapped_key=_bytes(STORED["message"]["wrapped_org_key"]))
    return org


@pytest.fixture
def stored_message(stored_org):
    author = User(org=stored_org, email="alice@stored.example", role=User.Role.SENDER)
    author.set_unusable_password()
    author.save()
    sealed = STORED["message"]
    return Message.objects.create(
        uid=UID, org=stored_org, author=author, send_token="stored", key_version=VERSION,
        wrapped_key=_bytes(sealed["wrapped_key"]), subject_ct=_bytes(sealed["subject_ct"]),
        body_ct=_bytes(sealed["body_ct"]),
    )


def _reload(model, pk):
    return model.objects.get(pk=pk)  # binary fields as the database hands them back


def test_the_master_key_setting_decodes_as_before():
    assert master.master_key_from_setting(GIVEN["master_key"]) == bytes(range(32))
    assert master.master_key_from_setting(GIVEN["master_phrase"]).hex() == STORED["master_from_phrase"]


def test_the_wrapped_organisation_key_unwraps(stored_org):
    assert keys.key_version(ORG, VERSION) == _bytes(GIVEN["org_key"])


def test_a_stored_message_opens(stored_message):
    message = _reload(Message, stored_message.pk)
    assert data_key(message) == _bytes(GIVEN["data_key"])
    assert open_subject(message) == GIVEN["subject"]
    content = open_content(message)
    assert (content.subject, content.body_html) == (GIVEN["subject"], GIVEN["body_html"])


def test_a_stored_draft_file_opens(stored_org):
    owner = User(org=stored_org, email="bob@stored.example", role=User.Role.SENDER)
    owner.set_unusable_password()
    owner.save()
    draft = Attachment.objects.create(uid=FILE_UID, org=stored_org, owner=owner, draft_key_version=VERSION,
                                      sealed=_bytes(STORED["file"]["draft_sealed"]), size=1, store_key="draft")
    info = describe(_reload(Attachment, draft.pk))
    assert (info.name, info.content_type) == (GIVEN["file_name"], GIVEN["file_type"])


def test_a_stored_file_streams_back(stored_message, files_dir):
    plaintext = "".join(GIVEN["file_line"].format(i) for i in range(GIVEN["file_lines"])).encode()
    writer = get_store().writer("stored-file")
    writer.write(_bytes(STORED["file"]["ciphertext"]))
    writer.complete = True
    writer.close()
    Attachment.objects.create(uid=FILE_UID, org_id=ORG, owner=stored_message.author, message=stored_message,
                              sealed=_bytes(STORED["file"]["sealed"]), size=len(plaintext), store_key="stored-file")
    info, chunks = open_file(_reload(Message, stored_message.pk), FILE_UID, by=stored_message.author)
    assert (info.name, info.content_type, info.size) == (GIVEN["file_name"], GIVEN["file_type"], len(plaintext))
    assert b"".join(chunks) == plaintext


def test_audit_links_seals_and_checkpoints_reproduce(fixed_keys):
    audit = STORED["audit"]
    previous = _audit_links_reproduce()
    assert head_seal(ORG, 2, previous) == audit["head_seal"]
    assert seal_holds(SimpleNamespace(chain=ORG, events=2, last_hash=previous, seal=audit["head_seal"]))
    at, chains = read_checkpoint(audit["checkpoint"])
    assert chains == {ORG: (2, audit["links"][1]), 0: (5, audit["links"][0])}
    assert at == json.loads(audit["checkpoint"])["at"]


def _audit_links_reproduce() -> str:
    previous = GENESIS
    for fields, expected in zip(STORED["audit"]["events"], STORED["audit"]["links"], strict=True):
        event = SimpleNamespace(**{**fields, "at": datetime.fromisoformat(fields["at"])})
        previous = link(previous, event)
        assert previous == expected
    return previous


def test_after_a_master_key_rotation_everything_opens_and_derives_as_before(stored_org, settings):
    """Values re-wrapped by ``keys rotate-master`` under a new key: the organisation key they wrap
    and the derivation root (the old master key's bytes), so the audit keys are unchanged."""
    rotated = STORED["rotated"]
    assert master.key_id(master.master_key_from_setting(GIVEN["master_key"])).hex() == rotated["previous_key_id"]
    settings.MASTER_KEY = rotated["master_key"]
    _clear_key_caches()
    OrgKey.objects.filter(org=stored_org).update(wrapped_key=_bytes(rotated["wrapped_org_key"]))
    DerivationRoot.objects.create(pk=1, wrapped=_bytes(rotated["derivation_root"]))
    assert keys.key_version(ORG, VERSION) == _bytes(GIVEN["org_key"])
    assert head_seal(ORG, 2, _audit_links_reproduce()) == STORED["audit"]["head_seal"]
    assert macs.scim_token(STORED["scim_token"]["token"]) == STORED["scim_token"]["digest"]


def test_session_hashes_reproduce(fixed_keys):
    sessions = STORED["sessions"]
    assert stored_key(sessions["session_key"]) == sessions["stored_key"]
    assert stored_key(sessions["session_key"], GIVEN["secret_key"]) == sessions["stored_key"]
    ended = datetime.fromisoformat(sessions["sessions_ended_at"])
    user = User(password=sessions["password"], sessions_ended_at=ended)
    assert user.get_session_auth_hash() == sessions["auth_hash"]
    assert User(password=sessions["password"]).get_session_auth_hash() == sessions["auth_hash_never_ended"]


def test_temporary_passwords_derive_and_hash_as_before(fixed_keys):
    temporary = STORED["temporary_password"]
    assert temporary_password_for(temporary["seed"], secret=GIVEN["secret_key"]) == temporary["password"]
    assert temporary_password_for(temporary["seed"]) == temporary["password"]
    hasher = TemporaryPasswordHasher()
    assert hasher.encode(temporary["password"], temporary["salt"]) == temporary["encoded"]
    assert hasher.verify(temporary["password"], temporary["encoded"])
    assert not hasher.verify("aaaaa-aaaaa-aaaaa-aaaaa", temporary["encoded"])


def test_a_sealed_authenticator_secret_and_its_recovery_codes_still_work(db, fixed_keys):
    stored = STORED["two_factor"]
    user = User(pk=stored["user_id"], email="ops@stored.example", role=User.Role.OPERATOR,
                totp_secret_sealed=_bytes(stored["sealed"]))
    user.set_unusable_password()
    user.save()
    RecoveryCode.objects.create(user=user, digest=stored["recovery_digest"])
    RecoveryCode.objects.create(user=user, digest=stored["old_recovery_digest"])
    user = _reload(User, user.pk)
    assert twofactor.secret_from_session(user, stored["in_session"]) == stored["secret"]
    assert twofactor.verify(user, pyotp.TOTP(stored["secret"]).now()) == "app"
    assert twofactor.verify(user, stored["recovery_code"]) == "recovery"
    assert twofactor.verify(user, stored["old_recovery_code"]) == "recovery"


def test_a_region_signature_reproduces(settings):
    regions = {c: Region(c, c.upper(), f"https://{c}.example") for c in ("eu", "us")}
    settings.REGIONS = Regions(here="eu", regions=regions, key=GIVEN["region_key"].encode())
    assert sign(STORED["region"]["body"].encode()) == STORED["region"]["signature"]


def test_a_stored_provisioning_token_is_still_found_by_its_hash(fixed_keys):
    stored = STORED["scim_token"]
    assert macs.scim_token(stored["token"]) == stored["digest"]


def test_a_bounce_address_sent_out_still_names_its_notification(fixed_keys, settings):
    stored = STORED["bounce_tag"]
    settings.BOUNCE_ADDRESS = stored["bounce_address"]
    key = uuid.UUID(stored["notification_key"])
    assert bounces.return_path(key) == stored["return_path"]
    assert bounces.key_of(stored["return_path"]) == key


def test_an_e_mailed_link_still_names_its_notification(fixed_keys):
    stored = STORED["link_code"]
    key = uuid.UUID(stored["notification_key"])
    assert links.link_code(SimpleNamespace(key=key)) == stored["code"]
    assert links.notification_key(stored["code"]) == key
