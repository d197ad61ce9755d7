"""Acting on quality: staff leave a flagged annotator's votes out of a campaign's aggregation.

An exclusion is a kept, reversible record (`AnnotatorExclusion`). Excluding goes through the
invalidation path (``aggregation.annotations_invalidate``): the votes are kept and marked, the
clips re-open for replacement votes, and the ledger reverses the labels' rewards as it does for
any invalidation; the annotator's live leases in the campaign are released and they leave the
campaign's annotators, so the loop offers them nothing more there. Revoking restores each vote
whose clip is still being labelled with its slot free (the others already have their
replacement), puts the annotator back, and completes the clips that are then done.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation_site.errors import ApplicationError, Conflict, Forbidden, NotFound
from labeling import campaigns
from labeling.loop import services, slots
from labeling.models import (
    LIVE_ASSIGNMENT_STATUSES,
    Annotation,
    AnnotatorExclusion,
    Assignment,
    Campaign,
    Clip,
)
from labeling.models.choices import Role
from labeling.results.aggregation import annotations_invalidate
from labeling.rewards import ledger

logger = logging.getLogger(__name__)


def _staff(user) -> None:
    if not getattr(user, "is_staff", False):
        raise Forbidden("Only staff can exclude annotators.")


def annotator_exclude(*, staff, campaign_id: int, username: str, reason: str) -> AnnotatorExclusion:
    """Excludes ``username``'s votes from the campaign's aggregation (see the module). One
    transaction; a second standing exclusion of the same annotator is a Conflict (the
    constraint ``exclusion_one_standing``)."""
    _staff(staff)
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Give a reason for excluding the annotator.")
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(f"Campaign {campaign_id} not found.")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ApplicationError(f"No annotator {username!r}.")
    now = timezone.now()
    try:
        with transaction.atomic():
            exclusion = AnnotatorExclusion.objects.create(
                campaign=campaign, annotator=user, reason=reason[:2000], excluded_by=staff
            )
            ids = list(
                Annotation.objects.valid()
                .filter(clip__campaign=campaign, annotator=user)
                .values_list("pk", flat=True)
            )
            leased = Assignment.objects.filter(
                clip__campaign=campaign, annotator=user, status=Assignment.Status.LEASED
            )
            lease_clips = sorted(set(leased.values_list("clip_id", flat=True)))
            if ids:
                annotations_invalidate(
                    staff=staff, annotation_ids=ids, reason=f"annotator excluded: {reason}"
                )
            if lease_clips:
                list(Clip.objects.select_for_update().filter(pk__in=lease_clips).order_by("pk"))
                slots.assignments_set_status(
                    clip_ids=lease_clips,
                    rows=leased,
                    from_=(Assignment.Status.LEASED,),
                    to=Assignment.Status.RELEASED,
                    finished_at=now,
                )
            # Off the team as an annotator only: a role they hold besides stays.
            campaigns.membership_remove(campaign=campaign, user=user, role=Role.ANNOTATOR)
            exclusion.annotation_ids = ids
            exclusion.save(update_fields=["annotation_ids"])
    except IntegrityError:
        raise Conflict(f"{username} is already excluded from this campaign.") from None
    logger.info("excluded %s from campaign %d (%d votes)", username, campaign_id, len(ids))
    return exclusion


def exclusion_revoke(*, staff, exclusion_id: int) -> AnnotatorExclusion:
    """Revokes a standing exclusion: restores the votes it invalidated where the clip is still
    being labelled and the vote's slot is free, the annotator rejoins the campaign, and clips
    that are then done complete (and are aggregated). One transaction; clip locks first."""
    _staff(staff)
    now = timezone.now()
    with transaction.atomic():
        exclusion = (
            AnnotatorExclusion.objects.select_for_update()
            .select_related("campaign", "annotator")
            .filter(pk=exclusion_id)
            .first()
        )
        if exclusion is None:
            raise NotFound(f"Exclusion {exclusion_id} not found.")
        if exclusion.revoked_at is not None:
            raise Conflict("This exclusion was already revoked.")
        votes = list(
            Annotation.objects.filter(
                pk__in=exclusion.annotation_ids, invalidated_at__isnull=False
            ).values_list("pk", "clip_id", "slot", "assignment_id")
        )
        clip_ids = sorted({clip for _, clip, _, _ in votes})
        open_clips = set(
            Clip.objects.select_for_update()
            .filter(pk__in=clip_ids, status=Clip.Status.ANNOTATING)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        held = set(
            Assignment.objects.filter(
                clip_id__in=open_clips, status__in=LIVE_ASSIGNMENT_STATUSES
            ).values_list("clip_id", "slot")
        )
        restored = [
            (pk, clip, assignment)
            for pk, clip, slot, assignment in votes
            if clip in open_clips and (clip, slot) not in held
        ]
        touched = sorted({clip for _, clip, _ in restored})
        if restored:
            Annotation.objects.filter(pk__in=[pk for pk, _, _ in restored]).update(
                invalidated_at=None, invalidated_by=None, invalidation_reason=""
            )
            slots.assignments_set_status(
                clip_ids=touched,
                rows=Assignment.objects.filter(pk__in=[a for _, _, a in restored]),
                from_=(Assignment.Status.INVALIDATED,),
                to=Assignment.Status.SUBMITTED,
            )
            services.clips_complete_if_done(touched, exclusion.campaign)
            ledger.clips_sync(touched, now=now)
        campaigns.membership_add(
            campaign=exclusion.campaign, user=exclusion.annotator, role=Role.ANNOTATOR
        )
        exclusion.revoked_at = now
        exclusion.revoked_by = staff
        exclusion.restored = len(restored)
        exclusion.save(update_fields=["revoked_at", "revoked_by", "restored"])
    logger.info("revoked exclusion %d: %d votes restored", exclusion_id, len(restored))
    return exclusion
