from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("orgs", "0011_branding"),
    ]

    operations = [
        migrations.CreateModel(
            name='DkimKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('domain', models.CharField(max_length=253)),
                ('selector', models.CharField(max_length=63)),
                ('sealed_key', models.BinaryField()),
                ('public_key', models.TextField()),
                ('is_active', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('domain', 'selector'), name='dkimkey_unique_selector')],
            },
        ),
    ]
