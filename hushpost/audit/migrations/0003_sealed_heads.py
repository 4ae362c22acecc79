from django.db import migrations, models


def seal_existing_heads(apps, schema_editor):
    """Heads written before seals existed: count each chain as it stands now and seal it.

    What was already missing stays visible: the head still names its last hash,
    and ``hushpost audit verify`` checks that the chain ends there.
    """
    from hushpost.audit.chain import head_seal

    AuditHead = apps.get_model("audit", "AuditHead")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    for head in AuditHead.objects.all():
        events = AuditEvent.objects.filter(org_id=head.chain or None).count()
        AuditHead.objects.filter(pk=head.pk).update(
            events=events, seal=head_seal(head.chain, events, head.last_hash))


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_append_only'),
    ]

    operations = [
        migrations.AddField(
            model_name='audithead',
            name='events',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='audithead',
            name='seal',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(seal_existing_heads, migrations.RunPython.noop),
    ]
