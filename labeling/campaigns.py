"""People and campaigns: creating users with their roles, creating and changing campaigns
(the annotations per clip are fixed once labelling has begun)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from annotation_site.errors import ApplicationError, NotFound
from labeling.models import (
    Annotation,
    AnnotatorProfile,
    Assignment,
    Campaign,
    Label,
    Role,
)
from pipeline.emotions import DFEW_EMOTIONS, DFEW_RARE

User = get_user_model()


def user_create(
    *,
    username: str,
    password: str,
    roles: Iterable[str] = (),
    is_staff: bool = False,
    region: str = "",
    cultural_background: str = "",
    languages: str = "",
):
    """Creates a user with the given roles (groups) and an annotator profile."""
    with transaction.atomic():
        user = User(username=username, is_staff=is_staff, is_superuser=is_staff)
        user.set_password(password)
        user.full_clean()
        user.save()
        for role in roles:
            user.groups.add(Group.objects.get_or_create(name=Role(role).value)[0])
        AnnotatorProfile.objects.create(
            user=user, region=region, cultural_background=cultural_background, languages=languages
        )
    return user


def campaign_create(
    *,
    name: str,
    slug: str,
    labels: Sequence[tuple[int, str]] = DFEW_EMOTIONS,
    rare: Iterable[str] = DFEW_RARE,
    **options,
) -> Campaign:
    """Creates a campaign with its label set (DFEW's seven emotions unless given)."""
    rare = set(rare)
    unknown = rare - {name for _, name in labels}
    if unknown:
        raise ApplicationError(f"Rare labels {sorted(unknown)} are not in the label set.")
    with transaction.atomic():
        campaign = Campaign(name=name, slug=slug, **options)
        campaign.full_clean()
        campaign.save()
        Label.objects.bulk_create(
            Label(
                campaign=campaign,
                code=code,
                name=label,
                display_name=label.capitalize(),
                is_rare=label in rare,
            )
            for code, label in labels
        )
    return campaign


def campaign_labelling_begun(campaign_id: int) -> bool:
    """Labelling has begun once any clip of the campaign has had a lease or a label (live,
    ended or invalidated: each was counted against the campaign's annotations per clip)."""
    return (
        Assignment.objects.filter(clip__campaign_id=campaign_id).exists()
        or Annotation.objects.filter(clip__campaign_id=campaign_id).exists()
    )


def campaign_check_change(campaign_id: int, **changes) -> None:
    """The rule for changing an existing campaign, which every door calls (the admin's form,
    ``campaign_update``): its annotations per clip are fixed once labelling has begun, since
    clips already complete would keep the old count while open ones filled to the new one.

    Raises ``ValidationError`` keyed by field. Locks the campaign row for the rest of the
    caller's transaction, so the check and the save see the same row."""
    stored = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if stored is None:
        raise NotFound(f"No campaign {campaign_id}.")
    per_clip = changes.get("annotations_per_clip")
    if (
        per_clip is not None
        and per_clip != stored.annotations_per_clip
        and campaign_labelling_begun(campaign_id)
    ):
        raise ValidationError(
            {
                "annotations_per_clip": gettext(
                    "The annotations per clip cannot change once labelling has begun: clips "
                    "of this campaign already have leases or labels counted against %(n)d."
                )
                % {"n": stored.annotations_per_clip}
            }
        )


def campaign_update(*, campaign: Campaign) -> Campaign:
    """Saves the changes made to ``campaign`` (an existing row), under the change rule."""
    with transaction.atomic():
        campaign_check_change(campaign.pk, annotations_per_clip=campaign.annotations_per_clip)
        campaign.full_clean()
        campaign.save()
    return campaign
