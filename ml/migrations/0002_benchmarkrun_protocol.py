from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ml", "0001_initial"),
    ]

    operations = [
        # Runs recorded before this field trained with the modern recipe.
        migrations.AddField(
            model_name="benchmarkrun",
            name="protocol",
            field=models.CharField(default="modern", max_length=20),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="benchmarkrun",
            name="protocol",
            field=models.CharField(default="dfew", max_length=20),
        ),
    ]
