"""The codebook: a campaign's instructions and, per label, a description and an example clip."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0013_suggestions"),
    ]

    operations = [
        migrations.CreateModel(
            name="CampaignGuide",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "instructions",
                    models.TextField(blank=True, max_length=5000, verbose_name="instructions"),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "campaign",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="guide",
                        to="labeling.campaign",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="LabelGuide",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "description",
                    models.TextField(blank=True, max_length=1000, verbose_name="description"),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "example_clip",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="labeling.clip",
                        verbose_name="example clip",
                    ),
                ),
                (
                    "label",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="guide",
                        to="labeling.label",
                    ),
                ),
            ],
        ),
    ]
