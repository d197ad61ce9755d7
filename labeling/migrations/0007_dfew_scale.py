"""The annotation loop at DFEW scale: the clip's held-slot count and the index `next` walks,
the minimum viewing time, the per-annotator tally, and the composite key that ties an
annotation to its own assignment's clip, slot and annotator."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# PostgreSQL: a composite foreign key onto assignment_identity (id, clip, slot, annotator).
# SQLite cannot add a foreign key to an existing table: triggers enforce the same rule.
_FK = "annotation_matches_assignment"


def _tie_annotation_to_assignment(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE labeling_annotation ADD CONSTRAINT {_FK} "
            "FOREIGN KEY (assignment_id, clip_id, slot, annotator_id) "
            "REFERENCES labeling_assignment (id, clip_id, slot, annotator_id) "
            "DEFERRABLE INITIALLY DEFERRED"
        )
    elif vendor == "sqlite":
        for event in ("INSERT", "UPDATE"):
            schema_editor.execute(
                f"CREATE TRIGGER {_FK}_{event.lower()} BEFORE {event} ON labeling_annotation "
                "WHEN NOT EXISTS (SELECT 1 FROM labeling_assignment a "
                "WHERE a.id = NEW.assignment_id AND a.clip_id = NEW.clip_id "
                "AND a.slot = NEW.slot AND a.annotator_id = NEW.annotator_id) "
                "BEGIN SELECT RAISE(ABORT, "
                f"'CHECK constraint failed: {_FK} (an annotation must carry its "
                "assignment''s clip, slot and annotator)'); END"
            )


def _untie(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE labeling_annotation DROP CONSTRAINT {_FK}")
    elif vendor == "sqlite":
        for event in ("insert", "update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {_FK}_{event}")


def _fill(apps, schema_editor):
    """Counts for data that exists: held slots per clip, submitted labels per member."""
    schema_editor.execute(
        "UPDATE labeling_clip SET slots_held = (SELECT count(*) FROM labeling_assignment a "
        "WHERE a.clip_id = labeling_clip.id AND a.status IN ('leased', 'submitted'))"
    )
    schema_editor.execute(
        "INSERT INTO labeling_annotatortally (campaign_id, annotator_id, submitted) "
        "SELECT c.campaign_id, n.annotator_id, count(*) FROM labeling_annotation n "
        "JOIN labeling_clip c ON c.id = n.clip_id GROUP BY c.campaign_id, n.annotator_id"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0006_assignment_shown_at"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AnnotatorTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("submitted", models.PositiveIntegerField(default=0)),
            ],
        ),
        migrations.AddField(
            model_name="campaign",
            name="min_view_seconds",
            field=models.FloatField(
                default=0.5,
                help_text="A label is accepted only after the clip has been on screen this long (counted from when the page showed it); 0 turns the check off.",
                verbose_name="minimum viewing time (s)",
            ),
        ),
        migrations.AddField(
            model_name="clip",
            name="slots_held",
            field=models.PositiveSmallIntegerField(default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(fields=["clip", "annotator"], name="assignment_clip_annotator"),
        ),
        migrations.AddIndex(
            model_name="clip",
            index=models.Index(
                models.F("campaign"),
                models.F("status"),
                models.OrderBy(models.F("slots_held"), descending=True),
                models.F("number"),
                name="clip_lease_order",
            ),
        ),
        migrations.AddConstraint(
            model_name="assignment",
            constraint=models.UniqueConstraint(
                fields=("id", "clip", "slot", "annotator"), name="assignment_identity"
            ),
        ),
        migrations.AddConstraint(
            model_name="campaign",
            constraint=models.CheckConstraint(
                condition=models.Q(("min_view_seconds__gte", 0)), name="campaign_min_view_gte_0"
            ),
        ),
        migrations.AddField(
            model_name="annotatortally",
            name="annotator",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="annotatortally",
            name="campaign",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="labeling.campaign",
            ),
        ),
        migrations.AddConstraint(
            model_name="annotatortally",
            constraint=models.UniqueConstraint(
                fields=("campaign", "annotator"), name="tally_one_per_member"
            ),
        ),
        migrations.RunPython(_fill, migrations.RunPython.noop),
        migrations.RunPython(_tie_annotation_to_assignment, _untie),
    ]
