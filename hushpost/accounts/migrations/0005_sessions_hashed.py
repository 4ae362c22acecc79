from django.db import migrations


def end_sessions_stored_in_clear(apps, schema_editor):
    # Rows written before sessions were stored as keyed hashes hold usable
    # cookie values; nothing looks them up any more, so they go (everyone signs
    # in again once).
    apps.get_model("sessions", "Session").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_two_factor"),
        ("sessions", "0001_initial"),
    ]

    operations = [migrations.RunPython(end_sessions_stored_in_clear, migrations.RunPython.noop)]
