"""Memberships: one row per person, campaign and role, in place of the campaign's one
"annotators" list (into which extractors were put too); and one-time invitations.

The data step keeps everyone's access: each row of the old list becomes an annotator
membership when its person is an annotator (or holds no extractor role), and an extractor
membership when they are an extractor (both when both); every reviewer gets a reviewer
membership on every campaign that exists. Going back writes annotator and extractor members
into the old list again (reviewers were never on it).

Django cannot add ``through=`` to an existing many-to-many field, so the field is removed
(its table dropped after the copy) and added again over the new table."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

ROLES = [("annotator", "Annotator"), ("extractor", "Extractor"), ("reviewer", "Reviewer")]


def _group_members(apps, name: str) -> set[int]:
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    return set(User.objects.filter(groups__name=name).values_list("pk", flat=True))


def lists_to_memberships(apps, schema_editor):
    Campaign = apps.get_model("labeling", "Campaign")
    Membership = apps.get_model("labeling", "Membership")
    annotators = _group_members(apps, "annotator")
    extractors = _group_members(apps, "extractor")
    reviewers = _group_members(apps, "reviewer")
    rows = []
    for campaign_id, user_id in Campaign.annotators.through.objects.values_list(
        "campaign_id", "user_id"
    ).iterator():
        if user_id in annotators or user_id not in extractors:
            rows.append(Membership(campaign_id=campaign_id, user_id=user_id, role="annotator"))
        if user_id in extractors:
            rows.append(Membership(campaign_id=campaign_id, user_id=user_id, role="extractor"))
    for campaign_id in Campaign.objects.values_list("pk", flat=True):
        rows.extend(
            Membership(campaign_id=campaign_id, user_id=user_id, role="reviewer")
            for user_id in sorted(reviewers)
        )
    Membership.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


def memberships_to_lists(apps, schema_editor):
    Campaign = apps.get_model("labeling", "Campaign")
    Membership = apps.get_model("labeling", "Membership")
    pairs = set(
        Membership.objects.filter(role__in=["annotator", "extractor"]).values_list(
            "campaign_id", "user_id"
        )
    )
    Campaign.annotators.through.objects.bulk_create(
        [Campaign.annotators.through(campaign_id=c, user_id=u) for c, u in sorted(pairs)],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0014_codebook"),
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Membership",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "role",
                    models.CharField(
                        choices=ROLES, default="annotator", max_length=16, verbose_name="role"
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "added_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="labeling.campaign",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["campaign", "role", "user"],
                "indexes": [models.Index(fields=["user", "role"], name="membership_user_role")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("campaign", "user", "role"), name="membership_unique"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("role__in", ["annotator", "extractor", "reviewer"])),
                        name="membership_role_valid",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="Invitation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("role", models.CharField(choices=ROLES, max_length=16, verbose_name="role")),
                (
                    "username",
                    models.CharField(blank=True, max_length=150, verbose_name="username"),
                ),
                ("nonce", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
                ("accepted_at", models.DateTimeField(blank=True, null=True)),
                (
                    "accepted_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="invitations",
                        to="labeling.campaign",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-pk"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("role__in", ["annotator", "extractor", "reviewer"])),
                        name="invitation_role_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("expires_at__gt", models.F("created_at"))),
                        name="invitation_expires_later",
                    ),
                ],
            },
        ),
        migrations.RunPython(lists_to_memberships, memberships_to_lists),
        migrations.RemoveField(model_name="campaign", name="annotators"),
        migrations.AddField(
            model_name="campaign",
            name="annotators",
            field=models.ManyToManyField(
                blank=True,
                related_name="annotation_campaigns",
                through="labeling.Membership",
                through_fields=("campaign", "user"),
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
