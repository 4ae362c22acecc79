import uuid

from django.db import migrations, models


def give_each_a_key(apps, schema_editor):
    Notification = apps.get_model("notifications", "Notification")
    for pk in Notification.objects.filter(key__isnull=True).values_list("pk", flat=True):
        Notification.objects.filter(pk=pk).update(key=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("notifications", "0002_cancelled_status")]

    operations = [
        migrations.AddField(
            model_name="notification", name="key", field=models.UUIDField(null=True, editable=False)
        ),
        migrations.AddField(
            model_name="notification",
            name="task_id",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.RunPython(give_each_a_key, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="notification",
            name="key",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
