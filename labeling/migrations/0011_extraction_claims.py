"""Extraction claims record their task and process, so that a killed worker's message, delivered
again, takes its own clip over at once; clips count the extractions whose worker died; the beat
sweep finds claims older than the task's time limit through a partial index."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0010_rewards"),
    ]

    operations = [
        migrations.AddField(
            model_name="clip",
            name="media_claim_task",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddField(
            model_name="clip",
            name="media_claim_worker",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddField(
            model_name="clip",
            name="media_lost_claims",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="clip",
            index=models.Index(
                condition=models.Q(("media_status", "extracting")),
                fields=["media_claimed_at"],
                name="clip_extracting_claimed_at",
            ),
        ),
    ]
