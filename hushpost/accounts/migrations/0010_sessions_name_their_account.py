import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def keep_signed_in(apps, schema_editor):
    # Sessions move to the new table as they are: nobody is signed out by the upgrade.
    # Their account is filled in the next time each is written.
    old, new = apps.get_model("sessions", "Session"), apps.get_model("accounts", "Session")
    rows = old.objects.all()
    new.objects.bulk_create(new(session_key=r.session_key, session_data=r.session_data, expire_date=r.expire_date)
                            for r in rows.iterator())
    rows.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_security_phrase"),
        ("sessions", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Session",
            fields=[
                ("session_key", models.CharField(max_length=40, primary_key=True, serialize=False,
                                                 verbose_name="session key")),
                ("session_data", models.TextField(verbose_name="session data")),
                ("expire_date", models.DateTimeField(db_index=True, verbose_name="expire date")),
                ("user", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                                           related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"verbose_name": "session", "verbose_name_plural": "sessions", "abstract": False},
        ),
        migrations.RunPython(keep_signed_in, migrations.RunPython.noop),
    ]
