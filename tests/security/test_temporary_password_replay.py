"""A temporary password works once, and the signed "send me a new one" request cannot be
replayed once the recipient has chosen a password, nor used for another organisation."""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings as django_settings
from django.test import Client

from hushpost.lib import clock
from hushpost.notifications.models import Notification
from tests.helpers import PASSWORD_SUBJECT


def _temporary_password(smtp, email: str, count: int = 1) -> str:
    return smtp.wait_for(email, PASSWORD_SUBJECT, count=count)[-1].temporary_password()


def test_temporary_password_works_once(world, db, smtp, deliver):
    w = world
    pending = w.pending_recipient()
    deliver()
    temp = _temporary_password(smtp, pending.email)
    path = f"/r/{w.slug()}/login"
    assert Client().post(path, {"email": pending.email, "password": temp}).status_code == 302
    assert Client().post(path, {"email": pending.email, "password": temp}).status_code == 400


def test_resend_token_cannot_be_replayed_after_the_password_is_set(world, db, smtp, deliver):
    w = world
    pending = w.pending_recipient()
    deliver()
    expired = _temporary_password(smtp, pending.email)
    clock.travel(timedelta(days=django_settings.TEMP_PASSWORD_DAYS, minutes=1))
    path = f"/r/{w.slug()}/login"
    page = Client().post(path, {"email": pending.email, "password": expired}).content.decode()
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    assert Client().post(f"{path}/resend", {"token": token}).status_code == 302
    deliver()
    fresh = _temporary_password(smtp, pending.email, count=2)
    owner = Client()
    assert owner.post(path, {"email": pending.email, "password": fresh}).status_code == 302
    chosen = "Granite-violin-harbour-61"
    assert owner.post(f"/r/{w.slug()}/password", {"password": chosen, "confirm": chosen}).status_code == 302
    # Minutes later, someone replays the token (it sat in the page, the history, a proxy log...).
    Client().post(f"{path}/resend", {"token": token})
    deliver()
    assert Client().post(path, {"email": pending.email, "password": chosen}).status_code == 302


def test_resend_needs_a_valid_token_for_this_organisation(world, db):
    from django.core import signing

    from hushpost.crypto.labels import RESEND_TEMPORARY

    w = world
    before = Notification.objects.count()
    for token in ("", "garbage", signing.dumps(w.users["bob"].pk, salt="another-salt"),
                  signing.dumps(w.users["erin"].pk, salt=RESEND_TEMPORARY)):
        r = Client().post(f"/r/{w.slug()}/login/resend", {"token": token})
        assert r.status_code in (302, 404)
        assert "erin@" not in r.get("Location", "")
    assert Notification.objects.count() == before
