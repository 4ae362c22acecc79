"""The hot paths' hand-written rows (hushpost.lib.rows) are the rows the ORM would write and find."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.forms.models import model_to_dict

from hushpost.accounts.models import User
from hushpost.lib import clock, rows
from hushpost.notifications.models import Notification
from tests.helpers import send

pytestmark = pytest.mark.django_db


def _as_stored(obj) -> dict:
    fresh = type(obj).objects.get(pk=obj.pk)
    return {f.attname: getattr(fresh, f.attname) for f in fresh._meta.concrete_fields if not f.primary_key}


def test_an_inserted_row_reads_back_as_the_orm_writes_it(org, alice):
    fields = {"org_id": org.pk, "kind": Notification.Kind.MESSAGE, "user": alice, "task_id": "t",
              "created_at": clock.now()}
    by_orm = Notification.objects.create(key=uuid.uuid4(), **fields)
    by_hand = Notification(key=uuid.uuid4(), **fields)
    rows.insert(by_hand)
    assert by_hand.pk and by_hand.pk != by_orm.pk and not by_hand._state.adding
    # The database's own default (the first attempt is due at once) is read back as the ORM does.
    assert by_hand.next_attempt_at == Notification.objects.get(pk=by_hand.pk).next_attempt_at
    orm, hand = _as_stored(by_orm), _as_stored(by_hand)
    assert orm.pop("key") != hand.pop("key")
    orm.pop("next_attempt_at"), hand.pop("next_attempt_at")
    assert orm == hand


def test_a_sent_message_reads_back_whole(sender_client, org):
    assert send(sender_client, to="bob@client.example", subject="Your results").status_code == 302
    bob = User.objects.get(email="bob@client.example")
    delivery = bob.deliveries.select_related("message").get()
    assert model_to_dict(delivery)["field"] == "to" and delivery.message.org_id == org.pk
    assert Notification.objects.filter(delivery=delivery, kind=Notification.Kind.MESSAGE).count() == 1


def test_finding_a_key(org, alice):
    assert rows.find_id(User, org=org.pk, role=User.Role.SENDER, email=alice.email) == alice.pk
    assert rows.find_id(User, org=org.pk, role=User.Role.RECIPIENT, email=alice.email) is None


def test_a_model_that_changes_saving_is_refused():
    with pytest.raises(TypeError, match="save it through the ORM"):
        rows.insert(User(email="x@example.com"))


def test_a_value_given_for_a_column_the_database_fills_is_written(org, alice):
    due = clock.now().replace(microsecond=0) + timedelta(hours=1)
    notification = Notification(key=uuid.uuid4(), org_id=org.pk, kind=Notification.Kind.MESSAGE, user=alice,
                                next_attempt_at=due)
    rows.insert(notification)
    assert Notification.objects.get(pk=notification.pk).next_attempt_at == due


def test_a_queued_task_is_the_row_django_tasks_db_writes(alice):
    """The queue's task row is written by the row writer: the library's pre_save receiver
    (an unset run_after is "at once") and enqueued_at's auto_now_add are applied as the ORM
    applies them, and the library reads the row back as its own."""
    from django_tasks import task_backends
    from django_tasks_db import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    from hushpost.lib.tasks import DatabaseBackend as OurBackend
    from hushpost.notifications.tasks import deliver_notification

    backend = task_backends["default"]
    assert isinstance(backend, OurBackend)
    before = clock.now()
    ours = deliver_notification.enqueue("a-key")
    # What the library itself writes, through the ORM.
    library = DatabaseBackend._task_to_db_task(backend, deliver_notification, ("a-key",), {})
    mine, theirs = DBTaskResult.objects.get(id=ours.id), DBTaskResult.objects.get(id=library.id)
    assert mine.enqueued_at >= before and mine.run_after == theirs.run_after
    as_orm = {f.attname: getattr(theirs, f.attname) for f in DBTaskResult._meta.concrete_fields}
    as_ours = {f.attname: getattr(mine, f.attname) for f in DBTaskResult._meta.concrete_fields}
    for moved in ("id", "enqueued_at"):
        as_orm.pop(moved), as_ours.pop(moved)
    assert as_ours == as_orm
    assert backend.get_result(ours.id).args == ["a-key"]


def test_auto_now_add_is_stamped_and_save_signals_are_sent(org, alice):
    from django.db.models.signals import post_save, pre_save

    seen = []

    def before(sender, instance, **kw):
        seen.append(("pre", instance.pk, kw["raw"]))

    def after(sender, instance, created, **kw):
        seen.append(("post", instance.pk, created))

    pre_save.connect(before, sender=Notification)
    post_save.connect(after, sender=Notification)
    try:
        notification = Notification(key=uuid.uuid4(), org_id=org.pk, kind=Notification.Kind.MESSAGE, user=alice)
        rows.insert(notification)
    finally:
        pre_save.disconnect(before, sender=Notification)
        post_save.disconnect(after, sender=Notification)
    assert seen == [("pre", None, False), ("post", notification.pk, True)]
