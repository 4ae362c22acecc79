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


def _message(org, alice, token: str):
    from hushpost.messaging.models import Message

    return Message(org_id=org.pk, author=alice, kind=Message.Kind.MESSAGE, send_token=token,
                   created_at=clock.now(), key_version=1, wrapped_key=b"k", subject_ct=b"s", body_ct=b"b")


def test_rows_written_together_refer_to_each_other_by_the_keys_the_statement_makes(org, alice):
    """A message, its delivery and the delivery's notification inside ``together()``: one
    statement on PostgreSQL (each at once elsewhere), the rows the ORM would have written,
    every key and reference set on the objects afterwards, ``post_save`` sent for each."""
    from django.db import connection
    from django.db.models.signals import post_save
    from django.test.utils import CaptureQueriesContext

    from hushpost.messaging.models import Delivery, Message

    bob = User.objects.create(org=org, email="bob@client.example", role=User.Role.RECIPIENT)
    saved = []

    def after(sender, instance, created, **kw):
        saved.append((sender.__name__, instance.pk))

    for model in (Message, Delivery, Notification):
        post_save.connect(after, sender=model)
    try:
        with CaptureQueriesContext(connection) as run, rows.together():
            message = _message(org, alice, "together-1")
            rows.insert(message)
            delivery = Delivery(message=message, recipient=bob, field=Delivery.Field.TO)
            rows.insert(delivery)
            notification = Notification(key=uuid.uuid4(), org_id=org.pk, kind=Notification.Kind.MESSAGE,
                                        user=bob, delivery=delivery, task_id="t")
            rows.insert(notification)
            if connection.vendor == "postgresql":
                assert message.pk is None and not saved  # nothing written yet
    finally:
        for model in (Message, Delivery, Notification):
            post_save.disconnect(after, sender=model)
    assert len(run.captured_queries) == (1 if connection.vendor == "postgresql" else 3)
    assert saved == [("Message", message.pk), ("Delivery", delivery.pk), ("Notification", notification.pk)]
    assert delivery.message_id == message.pk and notification.delivery_id == delivery.pk
    stored = Notification.objects.select_related("delivery__message").get(pk=notification.pk)
    assert stored.delivery.message.send_token == "together-1" and stored.delivery.recipient_id == bob.pk
    # The database's own default is read back, as for a row written alone.
    assert stored.next_attempt_at == notification.next_attempt_at is not None


def test_rows_waiting_are_not_written_when_the_block_fails(org, alice):
    from django.db import transaction

    from hushpost.messaging.models import Message

    with pytest.raises(RuntimeError), transaction.atomic(), rows.together():
        rows.insert(_message(org, alice, "together-2"))
        raise RuntimeError("the send failed half-way")
    assert not Message.objects.filter(send_token="together-2").exists()


def test_a_key_asked_for_writes_what_waits(org, alice):
    """``written(obj)``: code that needs a waiting row's key (attaching files by it) gets it."""
    from hushpost.messaging.models import Message

    with rows.together():
        message = _message(org, alice, "together-3")
        rows.insert(message)
        rows.written(message)
        assert message.pk is not None
        assert Message.objects.filter(pk=message.pk, send_token="together-3").exists()


def test_a_repeated_send_token_fails_the_statement_and_writes_nothing(org, alice):
    from django.db import IntegrityError, transaction

    from hushpost.messaging.models import Message

    rows.insert(_message(org, alice, "together-4"))
    with pytest.raises(IntegrityError), transaction.atomic(), rows.together():
        rows.insert(_message(org, alice, "together-5"))
        rows.insert(_message(org, alice, "together-4"))
    assert not Message.objects.filter(send_token="together-5").exists()


def test_a_long_send_is_written_in_several_statements_its_references_kept(org, alice, monkeypatch):
    """A statement takes a bounded number of values: past it, what waits is written and the
    rest goes on, rows referring to ones already written by their keys."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from hushpost.messaging.models import Delivery

    monkeypatch.setattr(rows, "_MOST_VALUES", 40)
    people = [User.objects.create(org=org, email=f"p{n}@client.example", role=User.Role.RECIPIENT)
              for n in range(6)]
    with CaptureQueriesContext(connection) as run, rows.together():
        message = _message(org, alice, "together-6")
        rows.insert(message)
        deliveries = []
        for person in people:
            deliveries.append(Delivery(message=message, recipient=person, field=Delivery.Field.TO))
            rows.insert(deliveries[-1])
    if connection.vendor == "postgresql":
        assert 1 < len(run.captured_queries) < 7
    assert sorted(Delivery.objects.filter(message=message).values_list("pk", flat=True)) == sorted(
        d.pk for d in deliveries)
    assert {d.message_id for d in deliveries} == {message.pk}


def test_a_tables_rows_written_together_take_their_keys_in_the_order_they_came(org, alice):
    """Rows of two tables interleaved (as a send writes a delivery, then its notifications,
    then the next delivery): each table's keys rise in the order its rows were inserted, and
    each reference names the right row. PostgreSQL runs a statement's WITH parts in no set
    order, so this holds only because a table's rows are one part."""
    from hushpost.messaging.models import Delivery

    people = [User.objects.create(org=org, email=f"order{n}@client.example", role=User.Role.RECIPIENT)
              for n in range(8)]
    made = []
    with rows.together():
        message = _message(org, alice, "together-7")
        rows.insert(message)
        for person in people:
            delivery = Delivery(message=message, recipient=person, field=Delivery.Field.TO)
            rows.insert(delivery)
            for kind in (Notification.Kind.PASSWORD, Notification.Kind.MESSAGE):
                made.append(Notification(key=uuid.uuid4(), org_id=org.pk, kind=kind, user=person,
                                         delivery=delivery, task_id="t"))
                rows.insert(made[-1])
    keys = [n.pk for n in made]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    stored = {n.pk: n for n in Notification.objects.filter(pk__in=keys).select_related("delivery")}
    for notification in made:
        row = stored[notification.pk]
        assert (row.kind, row.user_id, row.delivery_id) == (
            notification.kind, notification.user_id, notification.delivery_id)
        assert row.delivery.recipient_id == row.user_id  # the reference names this person's delivery
    deliveries = list(Delivery.objects.filter(message=message).order_by("pk"))
    assert [d.recipient_id for d in deliveries] == [p.pk for p in people]


def test_a_send_to_new_recipients_numbers_each_password_notification_before_its_message(sender_client):
    """The worker sends a recipient's e-mails in the order of their keys: the first-time
    password must come before the link it opens."""
    addresses = [f"new{n}@client.example" for n in range(6)]
    assert send(sender_client, to=", ".join(addresses)).status_code == 302
    for address in addresses:
        kinds = list(Notification.objects.filter(user__email=address).order_by("pk").values_list("kind", flat=True))
        assert kinds == [Notification.Kind.PASSWORD, Notification.Kind.MESSAGE], address
