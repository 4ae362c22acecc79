"""Events are chained after their commit by the linker: ``seq`` gives each its place, and
each event carries its own keyed seal (``mac``) from the moment it is written.

Events written before were chained as they were written, in id order within
their organisation, so that order gives their ``seq``; their links already
prove them, and they are sealed now. On PostgreSQL the append-only trigger now
lets an event take its link once (``hash`` from NULL to a value, nothing else
changed, its seal included) and still refuses every other change.
"""

from django.db import migrations, models

NUMBER_EXISTING = """
UPDATE audit_auditevent AS e SET seq = n.seq
FROM (SELECT id, row_number() OVER (PARTITION BY org_id ORDER BY id) AS seq FROM audit_auditevent) AS n
WHERE e.id = n.id
"""

LINK_ONCE = """
CREATE OR REPLACE FUNCTION hushpost_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_auditevent' THEN
        IF OLD.hash IS NULL AND NEW.hash IS NOT NULL AND NEW.seq IS NOT NULL
           AND NEW.prev_hash IS NOT NULL AND NEW.id = OLD.id
           AND NEW.org_id IS NOT DISTINCT FROM OLD.org_id AND NEW.at = OLD.at
           AND NEW.action = OLD.action AND NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id
           AND NEW.actor_email = OLD.actor_email AND NEW.client = OLD.client
           AND NEW.object_type = OLD.object_type AND NEW.object_id = OLD.object_id
           AND NEW.detail = OLD.detail AND NEW.mac = OLD.mac THEN
            RETURN NEW;  -- the linker chaining it, once
        END IF;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END
$$ LANGUAGE plpgsql;
"""

NEVER_CHANGED = """
CREATE OR REPLACE FUNCTION hushpost_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END
$$ LANGUAGE plpgsql;
"""


def number_existing(apps, schema_editor):
    from hushpost.audit.chain import event_mac

    AuditEvent = apps.get_model("audit", "AuditEvent")
    postgresql = schema_editor.connection.vendor == "postgresql"
    if postgresql:
        schema_editor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only")
    schema_editor.execute(NUMBER_EXISTING)
    batch = []
    for event in AuditEvent.objects.using(schema_editor.connection.alias).order_by("id").iterator(chunk_size=2000):
        event.mac = event_mac(event)
        batch.append(event)
        if len(batch) == 2000:
            AuditEvent.objects.bulk_update(batch, ["mac"])
            batch = []
    AuditEvent.objects.bulk_update(batch, ["mac"])
    if postgresql:
        schema_editor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only")
        schema_editor.execute(LINK_ONCE)


def never_changed(apps, schema_editor):
    """Back to events chained as they are written: those still waiting are chained now.

    The older code walks a chain in id order; a chain whose events were linked in
    another order (one committed late) cannot go back."""
    from hushpost.audit.chain import GENESIS, head_seal, link

    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditHead = apps.get_model("audit", "AuditHead")
    linked = list(AuditEvent.objects.filter(hash__isnull=False).order_by("org_id", "seq")
                  .values_list("org_id", "id"))
    for (org_a, id_a), (org_b, id_b) in zip(linked, linked[1:], strict=False):
        if org_a == org_b and id_b < id_a:
            raise migrations.exceptions.IrreversibleError(
                f"audit chain {org_a or 0} holds events linked out of id order (event {id_b} after "
                f"{id_a}); the older code would read it as broken")
    waiting = AuditEvent.objects.filter(hash__isnull=True)
    for org_id in sorted(set(waiting.values_list("org_id", flat=True)), key=lambda o: o or 0):
        chain = org_id or 0
        AuditHead.objects.get_or_create(
            chain=chain, defaults={"last_hash": GENESIS, "events": 0, "seal": head_seal(chain, 0, GENESIS)})
        head = AuditHead.objects.select_for_update().get(chain=chain)
        prev, count = head.last_hash, head.events
        for event in waiting.filter(org_id=org_id).order_by("id"):
            count += 1
            own = link(prev, event)
            AuditEvent.objects.filter(pk=event.pk).update(seq=count, prev_hash=prev, hash=own)
            prev = own
        AuditHead.objects.filter(pk=head.pk).update(last_hash=prev, events=count,
                                                    seal=head_seal(chain, count, prev))
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NEVER_CHANGED)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0004_storage_full_action"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="mac",
            field=models.CharField(default="", max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="seq",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
        migrations.RunPython(number_existing, never_changed),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["org", "seq"], name="audit_chain_order"),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(condition=models.Q(("hash__isnull", True)), fields=["org", "id"],
                               name="audit_unlinked"),
        ),
    ]
