"""Reads for pages and the API, shaped so templates and serializers never query in loops."""

from __future__ import annotations

from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from labeling.loop import sql
from labeling.models import (
    AgreementReport,
    Annotation,
    AnnotatorTally,
    Campaign,
    Clip,
    JobStatus,
    Label,
)


def labels_and_submitted_count(*, user, campaign_id: int) -> tuple[list[Label], int]:
    """The campaign's label set, and how many labels this annotator has submitted in it (their
    own work only: never anyone else's). One query: it runs on every `next`."""
    return sql.labels_and_submitted(campaign_id, user.pk)


def campaign_pool_size(*, campaign_id: int) -> int:
    """Clips of the campaign in the labelling pool (`Clip.POOL_STATUSES`: being labelled or
    complete): the M of the annotator's "N of M". Cached for a minute, so `next` never counts
    a campaign's clips."""
    return cache.get_or_set(
        f"labeling:pool-size:{campaign_id}",
        lambda: Clip.objects.filter(campaign_id=campaign_id).in_pool().count(),
        timeout=60,
    )


def _count(queryset, group: str):
    """`count(*)` of a correlated queryset, as a subquery (0 when it has no rows)."""
    counted = queryset.order_by().values(group).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted), 0)


def campaign_overview_list(*, active_within: timedelta = timedelta(hours=24)) -> list[dict]:
    """Per campaign: clips by status, labels collected and needed, annotators who labelled
    lately."""
    since = timezone.now() - active_within
    # One subquery per figure, never a join of annotations × members (16 M rows per campaign
    # at DFEW's size): each is an index range of one campaign.
    members = Campaign.annotators.through.objects.filter(campaign=OuterRef("pk"))
    campaigns = list(
        Campaign.objects.annotate(
            # Valid labels = every label submitted (the members' tallies, kept with each
            # label) less the invalidated ones (a partial index): no count of 163,720 rows.
            labels_submitted=Coalesce(
                Subquery(
                    AnnotatorTally.objects.filter(campaign=OuterRef("pk"))
                    .order_by()
                    .values("campaign")
                    .annotate(n=Sum("submitted"))
                    .values("n")
                ),
                0,
            ),
            labels_invalidated=_count(
                Annotation.objects.filter(
                    invalidated_at__isnull=False, clip__campaign=OuterRef("pk")
                ),
                "clip__campaign",
            ),
            annotators_active=_count(
                AnnotatorTally.objects.filter(
                    campaign=OuterRef("pk"), last_submitted_at__gte=since
                ),
                "campaign",
            ),
            annotators_enrolled=_count(members, "campaign"),
            # The latest finished report's kappa: one row per campaign, however long the
            # history of hourly reports grows.
            kappa=Subquery(
                AgreementReport.objects.filter(campaign=OuterRef("pk"), status=JobStatus.DONE)
                .order_by("-finished_at", "-pk")
                .values(k=KT("result__fleiss_kappa"))[:1]
            ),
        ).order_by("-created_at", "pk")
    )
    free = dict(
        Clip.objects.with_free_slot()
        .values("campaign_id")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("campaign_id", "n")
    )
    by_status: dict[int, dict[str, int]] = {}
    for row in Clip.objects.values("campaign_id", "status").annotate(n=Count("pk")).order_by():
        by_status.setdefault(row["campaign_id"], {})[row["status"]] = row["n"]
    rows = []
    for campaign in campaigns:
        statuses = by_status.get(campaign.pk, {})
        in_pool = sum(statuses.get(s, 0) for s in Clip.POOL_STATUSES)
        rows.append(
            {
                "campaign": campaign,
                "statuses": [
                    (label, statuses.get(value, 0)) for value, label in Clip.Status.choices
                ],
                "clips_total": sum(statuses.values()),
                "labels_collected": campaign.labels_submitted - campaign.labels_invalidated,
                "labels_needed": in_pool * campaign.annotations_per_clip,
                "annotators_enrolled": campaign.annotators_enrolled,
                "annotators_active": campaign.annotators_active,
                "clips_with_free_slot": free.get(campaign.pk, 0),
                "kappa": campaign.kappa,
            }
        )
    return rows


def clip_list_for_screening() -> list[Clip]:
    """Clips waiting for a reviewer, oldest first, with the annotators' reports on them."""
    return list(
        Clip.objects.awaiting_screening()
        .select_related("campaign", "movie")
        .prefetch_related("reports")
        .order_by("updated_at", "pk")
    )


def agreement_report_latest(*, campaign: Campaign) -> AgreementReport | None:
    """The campaign's latest finished agreement report, or None."""
    return (
        AgreementReport.objects.filter(campaign=campaign, status=JobStatus.DONE)
        .order_by("-finished_at", "-pk")
        .first()
    )


def agreement_report_history(*, campaign: Campaign, limit: int = 20) -> list[AgreementReport]:
    """The campaign's latest reports, newest first, without their (large) plots."""
    return list(
        AgreementReport.objects.filter(campaign=campaign)
        .defer("plots", "result")
        .annotate(kappa=KT("result__fleiss_kappa"), n_clips=KT("result__n_clips"))
        .select_related("requested_by")
        .order_by("-created_at", "-pk")[:limit]
    )
