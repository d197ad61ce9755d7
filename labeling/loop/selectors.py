"""Reads for pages and the API, shaped so templates and serializers never query in loops."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation_site.errors import ApplicationError
from labeling.loop import sql
from labeling.models import (
    AgreementReport,
    Annotation,
    AnnotatorTally,
    Campaign,
    Clip,
    JobStatus,
    Label,
    Role,
)
from labeling.models.clips import FACE_FLAGS
from pipeline.face_sheets import SHEET_COLUMNS


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
    members = Campaign.annotators.through.objects.filter(
        campaign=OuterRef("pk"), role=Role.ANNOTATOR
    )
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


# Clips on one page of the screening: a page is seen, decided and replaced by the next, never
# an unbounded list (16,372 clips at DFEW's size).
SCREENING_PAGE = 10


@dataclass(frozen=True)
class ScreeningPage:
    """One page of the clips waiting for a reviewer, and the counts the page shows."""

    rows: list[dict]  # {"clip", "sheet_url", "columns", "flags": [(name, label)]}
    page: int
    pages: int
    waiting: int  # every clip waiting for screening
    matching: int  # those the filter keeps
    flag_counts: list[tuple[str, str, int]]  # (flag, label, clips waiting with it)


def screening_flag_q(flag: str) -> Q:
    """The clips with face flag ``flag`` (`FACE_FLAGS`); ApplicationError for another name."""
    fields = {name: field for name, field, _ in FACE_FLAGS}
    if flag not in fields:
        raise ApplicationError(
            f"Unknown face flag {flag!r}; one of {', '.join(fields)}.", {"flags": list(fields)}
        )
    return Q(**{fields[flag]: True})


def screening_page(*, flag: str = "", page: int = 1, per_page: int = SCREENING_PAGE):
    """Page ``page`` (from 1) of the clips waiting for a reviewer, oldest first, only those
    with face flag ``flag`` when given, with their reports and the URL of their face sheet;
    and the counts of what waits, in all and per flag. Three queries whatever the queue's
    length: the counts (one aggregate), the page, its reports. A page past the end is the
    last one."""
    waiting = Clip.objects.awaiting_screening()
    counts = waiting.aggregate(
        all=Count("pk"),
        **{name: Count("pk", filter=Q(**{field: True})) for name, field, _ in FACE_FLAGS},
    )
    chosen = waiting.filter(screening_flag_q(flag)) if flag else waiting
    matching = counts[flag] if flag else counts["all"]
    pages = max(1, math.ceil(matching / per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    clips = list(
        chosen.select_related("campaign", "movie")
        .prefetch_related("reports")
        .order_by("updated_at", "pk")[start : start + per_page]
    )
    labels = {name: label for name, _, label in FACE_FLAGS}
    rows = [
        {
            "clip": clip,
            "sheet_url": default_storage.url(clip.faces) if clip.faces else "",
            "columns": min(SHEET_COLUMNS, clip.n_frames or SHEET_COLUMNS),
            "flags": [(name, labels[name]) for name in clip.face_flags],
        }
        for clip in clips
    ]
    return ScreeningPage(
        rows=rows,
        page=page,
        pages=pages,
        waiting=counts["all"],
        matching=matching,
        flag_counts=[(name, label, counts[name]) for name, _, label in FACE_FLAGS],
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
