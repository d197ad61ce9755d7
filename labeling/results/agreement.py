"""The agreement report of a campaign: load its votes, compute (``pipeline.report``), store.

A report is a row (``AgreementReport``) created by ``agreement_report_request`` and filled by
``agreement_report_run``, which the Celery task, the beat schedule and the management command
all call. Figures are recomputed from the raw annotations every time.
"""

from __future__ import annotations

import logging

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import DurationField, ExpressionWrapper, F, Max

from annotation_site.errors import Forbidden
from labeling import jobs
from labeling.models import AgreementReport, Annotation, Campaign, Clip, ClipLabel, JobStatus
from labeling.results import quality
from pipeline import crowd
from pipeline.plots import report_plots
from pipeline.report import Progress, Votes, agreement_report

logger = logging.getLogger(__name__)

# A report still "running" after this long was lost with its worker and may be claimed again.
STALE_SETTING = "AGREEMENT_REPORT_STALE_SECONDS"


def campaign_votes(campaign: Campaign, *, people: bool = True) -> Votes:
    """The valid votes on the campaign's complete clips, as arrays. Two queries (clips, votes);
    ``people=False`` skips annotators and timings (for kappa and Table 2 alone)."""
    clips = np.array(
        list(
            Clip.objects.filter(campaign=campaign, status=Clip.Status.COMPLETE)
            .order_by("pk")
            .values_list("pk", "number", "start_s", "end_s")
        ),
        dtype=np.float64,
    ).reshape(-1, 4)
    clip_ids = clips[:, 0].astype(np.int64)
    labels = list(campaign.labels.order_by("code").values_list("code", "name"))
    codes = [code for code, _ in labels]
    label_names = [name for _, name in labels]
    # No ORDER BY (the model's default ordering costs a join and a sort): rows are placed by
    # searchsorted, so their order does not matter.
    votes = (
        Annotation.objects.valid()
        .filter(clip__campaign=campaign, clip__status=Clip.Status.COMPLETE)
        .order_by()
    )
    if people:
        votes = votes.annotate(
            took=ExpressionWrapper(
                F("created_at") - F("assignment__leased_at"), output_field=DurationField()
            )
        ).values_list("clip_id", "label__code", "annotator_id", "took")
        width = 3
    else:
        votes = votes.values_list("clip_id", "label__code")
        width = 2
    rows = list(votes)
    ints = np.fromiter(
        (value for row in rows for value in row[:width]), dtype=np.int64, count=len(rows) * width
    ).reshape(-1, width)
    item = np.searchsorted(clip_ids, ints[:, 0])
    label = np.searchsorted(np.array(codes), ints[:, 1])
    rater_names: list[str] = []
    rater = np.zeros(len(rows), dtype=np.int64)
    seconds = np.full(len(rows), np.nan)
    if people and rows:
        annotator_ids, rater = np.unique(ints[:, 2], return_inverse=True)
        names = dict(
            get_user_model()
            .objects.filter(pk__in=annotator_ids.tolist())
            .values_list("pk", "username")
        )
        rater_names = [names[int(pk)] for pk in annotator_ids]
        # Imported votes have no lease: their lease and submit times coincide (unknown).
        seconds = np.fromiter(
            (row[3].total_seconds() if row[3] is not None else np.nan for row in rows),
            dtype=np.float64,
            count=len(rows),
        )
        seconds[seconds <= 0] = np.nan
    with np.errstate(invalid="ignore"):
        durations = clips[:, 3] - clips[:, 2]  # NaN where the end is unknown
    return Votes(
        item=item.astype(np.int64),
        rater=np.asarray(rater, dtype=np.int64),
        label=label.astype(np.int64),
        seconds=seconds,
        clip_ids=clip_ids,
        clip_numbers=clips[:, 1].astype(np.int64),
        durations=durations,
        rater_names=rater_names,
        label_names=label_names,
    )


def campaign_agreement(campaign: Campaign, *, progress: Progress | None = None) -> dict:
    """The campaign's agreement report computed now, stored nowhere (GET-safe)."""
    votes = campaign_votes(campaign)
    report = agreement_report(votes, campaign.single_label_min_votes, progress=progress)
    report["campaign"] = {"id": campaign.pk, "slug": campaign.slug, "name": campaign.name}
    report["aggregation_method"] = campaign.aggregation_method
    report["adaptive_overlap"] = {
        "on": campaign.adaptive_overlap,
        "min_votes_before_stop": campaign.adaptive_min_votes,
        "confidence": campaign.adaptive_confidence,
        "max_votes": campaign.annotations_per_clip,
    }
    report["aggregation_methods"] = (
        crowd.methods_report(
            votes.item,
            votes.rater,
            votes.label,
            len(votes.clip_ids),
            len(votes.rater_names),
            votes.label_names,
            campaign.single_label_min_votes,
        )
        if len(votes.item)
        else {}
    )
    return report


def agreement_report_request(*, campaign: Campaign, user=None) -> AgreementReport:
    """Queues a new report of the campaign (staff only); a worker fills it after commit."""
    from labeling.tasks import agreement_report_task  # the tasks module imports this one

    if user is not None and not user.is_staff:
        raise Forbidden("Only staff can run agreement reports.")
    with transaction.atomic():
        report = AgreementReport.objects.create(campaign=campaign, requested_by=user)
        agreement_report_task.delay_on_commit(report.pk)
    return report


def agreement_report_run(report_id: int, *, progress: Progress | None = None) -> bool:
    """Computes a queued report and stores its figures and plots; False if not claimed
    (`jobs.claim`: only one worker runs a report; a lost run may be taken over).

    Progress is written to the row as it goes (each update its own statement, so a page polling
    the row sees it). A failure is stored on the row with its message, then raised again.
    """
    if not jobs.claim(AgreementReport, report_id, stale=STALE_SETTING):
        return False
    report = AgreementReport.objects.select_related("campaign").get(pk=report_id)

    def step(fraction: float, stage: str) -> None:
        jobs.step(AgreementReport, report_id, fraction, stage)
        if progress is not None:
            progress(fraction, stage)

    with jobs.failing(AgreementReport, report_id):
        # The loop's confidence rule and the next aggregations score clips with these models.
        quality.quality_models_refit(report.campaign_id)
        result = campaign_agreement(report.campaign, progress=step)
        step(0.97, "drawing the plots")
        plots = report_plots(result)
    jobs.finish(AgreementReport, report_id, result=result, plots=plots)
    return True


def campaigns_due_for_report() -> list[Campaign]:
    """Active campaigns whose results changed (a clip aggregated, or labels invalidated) since
    their last report (or that have results and no report yet). The beat schedule reports on
    these."""
    due = []
    latest_result = dict(
        ClipLabel.objects.values("clip__campaign_id")
        .annotate(at=Max("computed_at"))
        .values_list("clip__campaign_id", "at")
    )
    # Invalidating labels drops results, which no computed_at shows: count it as a change.
    for campaign_id, at in (
        Annotation.objects.filter(invalidated_at__isnull=False)
        .values("clip__campaign_id")
        .annotate(at=Max("invalidated_at"))
        .values_list("clip__campaign_id", "at")
    ):
        latest_result[campaign_id] = max(at, latest_result.get(campaign_id, at))
    latest_report = dict(
        AgreementReport.objects.exclude(status=JobStatus.FAILED)
        .values("campaign_id")
        .annotate(at=Max("created_at"))
        .values_list("campaign_id", "at")
    )
    for campaign in Campaign.objects.filter(is_active=True, pk__in=list(latest_result)):
        reported = latest_report.get(campaign.pk)
        if reported is None or reported < latest_result[campaign.pk]:
            due.append(campaign)
    return due
