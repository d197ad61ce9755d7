"""The codebook of a campaign: its instructions to annotators and, per label, what the label
means and a clip that shows it. Staff edit it (``codebook_save``); the labelling page reads it
(``codebook_of``)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from annotation_site.errors import ApplicationError
from labeling import access
from labeling.access import Role
from labeling.models import Campaign, CampaignGuide, Clip, LabelGuide, MediaStatus

INSTRUCTIONS_MAX = 5000
DESCRIPTION_MAX = 1000


@dataclass(frozen=True)
class Entry:
    """One label's line of the codebook, as a page shows it."""

    label_id: int
    code: int
    name: str
    display_name: str
    description: str
    example_number: int | None
    example_video: str  # the clip's stored video name; "" when none


@dataclass(frozen=True)
class Codebook:
    instructions: str
    entries: list[Entry]


def codebook_of(campaign: Campaign) -> Codebook:
    """The campaign's instructions and one entry per label in code order (two queries). An
    example clip whose media is not ready is named but has no video."""
    guide = CampaignGuide.objects.filter(campaign=campaign).first()
    labels = campaign.labels.select_related("guide", "guide__example_clip").order_by("code")
    entries = []
    for label in labels:
        entry = getattr(label, "guide", None)
        clip = entry.example_clip if entry else None
        entries.append(
            Entry(
                label_id=label.pk,
                code=label.code,
                name=label.name,
                display_name=label.display_name,
                description=entry.description if entry else "",
                example_number=clip.number if clip else None,
                example_video=clip.video.name if clip and clip.video else "",
            )
        )
    return Codebook(instructions=guide.instructions if guide else "", entries=entries)


def codebook_save(
    *, campaign: Campaign, instructions: str, labels: dict[int, tuple[str, int | None]]
) -> Codebook:
    """Writes the campaign's instructions and, for each label id in ``labels``, its
    description and example clip (by the clip's number in this campaign; None: no example).

    Everything is checked before anything is written, and written in one transaction: text
    lengths, labels of this campaign, example clips of this campaign whose media is ready.
    ApplicationError (400) names the first problem; nothing changes then. A re-run with the
    same input changes nothing."""
    instructions = instructions.strip()
    if len(instructions) > INSTRUCTIONS_MAX:
        raise ApplicationError(
            f"The instructions hold {len(instructions)} characters; at most {INSTRUCTIONS_MAX}."
        )
    known = {label.pk: label for label in campaign.labels.all()}
    numbers = {number for _, number in labels.values() if number is not None}
    clips = {
        clip.number: clip
        for clip in Clip.objects.filter(campaign=campaign, number__in=numbers).only(
            "pk", "number", "media_status", "video"
        )
    }
    rows = []
    for label_id, (description, number) in labels.items():
        label = known.get(label_id)
        if label is None:
            raise ApplicationError(f"Label {label_id} is not one of this campaign's.")
        description = description.strip()
        if len(description) > DESCRIPTION_MAX:
            raise ApplicationError(
                f"The description of {label.display_name} holds {len(description)} "
                f"characters; at most {DESCRIPTION_MAX}."
            )
        clip = None
        if number is not None:
            clip = clips.get(number)
            if clip is None:
                raise ApplicationError(f"This campaign has no clip {number:05d}.")
            if not clip.video or clip.media_status not in (MediaStatus.READY, MediaStatus.NONE):
                raise ApplicationError(f"Clip {number:05d} has no video yet.")
        rows.append((label, description, clip))
    with transaction.atomic():
        CampaignGuide.objects.update_or_create(
            campaign=campaign, defaults={"instructions": instructions}
        )
        for label, description, clip in rows:
            LabelGuide.objects.update_or_create(
                label=label, defaults={"description": description, "example_clip": clip}
            )
    return codebook_of(campaign)


@dataclass(frozen=True)
class Guide:
    """A campaign's name and codebook, for its annotators' page."""

    campaign_id: int
    name: str
    book: Codebook


def guides_for_annotator(user, campaign_id: int | None = None) -> list[Guide]:
    """The codebooks of the open campaigns ``user`` annotates (only ``campaign_id``'s when
    given), by name; the same membership rule as leasing (annotator memberships,
    ``access.member_q``)."""
    campaigns = Campaign.objects.filter(
        access.member_q(user, Role.ANNOTATOR), is_active=True
    ).order_by("name", "pk")
    if campaign_id is not None:
        campaigns = campaigns.filter(pk=campaign_id)
    return [Guide(c.pk, c.name, codebook_of(c)) for c in campaigns[:20]]
