"""Staff pages of results: the campaigns' overview and the agreement report."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from annotation_site.errors import ApplicationError
from annotation_site.guards import staff_required
from labeling.loop import selectors
from labeling.models import (
    AgreementReport,
    AnnotatorExclusion,
    Campaign,
    JobStatus,
    Role,
)
from labeling.results import aggregation, agreement
from labeling.results import exclusion as exclusion_services
from labeling.results import overlap as overlap_services
from labeling.views.staff import selectors as staff_selectors
from pipeline.aggregation import BUCKETS
from pipeline.overlap import overlap_svg


@staff_required
@require_GET
def campaign_overview(request):
    """Every campaign with its progress, its team by role (annotators counted as annotators:
    extractors and reviewers have memberships of their own) and the next step when there is
    nothing yet to show."""
    rows = selectors.campaign_overview_list()
    members = staff_selectors.membership_counts()
    for row in rows:
        counts = members.get(row["campaign"].pk, {})
        row["annotators_enrolled"] = counts.get(Role.ANNOTATOR, 0)
        row["extractors"] = counts.get(Role.EXTRACTOR, 0)
        row["reviewers"] = counts.get(Role.REVIEWER, 0)
    return render(request, "labeling/overview.html", {"rows": rows})


@staff_required
@require_GET
def campaign_agreement(request, campaign_id: int, report_id: int | None = None):
    """The agreement report page: the latest finished report (or the one asked for), the one
    running now with its progress, and the history."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if report_id is None:
        report = selectors.agreement_report_latest(campaign=campaign)
    else:
        report = get_object_or_404(AgreementReport, pk=report_id, campaign=campaign)
    history = selectors.agreement_report_history(campaign=campaign)
    pending = [r for r in history if r.status in (JobStatus.QUEUED, JobStatus.RUNNING)]
    return render(
        request,
        "labeling/agreement.html",
        {
            "campaign": campaign,
            "report": report,
            "result": report.result if report else None,
            "table2": _table2_rows(report.result) if report and report.result else [],
            "kappa_per_label": [
                (name, report.result["kappa_per_label"][name]) for name in report.result["labels"]
            ]
            if report and report.result
            else [],
            "buckets": [name for name, _, _ in BUCKETS],
            "history": history,
            "pending": pending,
            "methods": _methods_rows(report.result) if report and report.result else [],
            "exclusions": AnnotatorExclusion.objects.filter(campaign=campaign).select_related(
                "annotator", "excluded_by"
            ),
        },
    )


def _methods_rows(result: dict) -> list[tuple]:
    """The methods' comparison as rows: (method, figures, differing clips per label in code
    order). Reports made before it have none."""
    methods = result.get("aggregation_methods") or {}
    return [
        (name, row, [row["differ_per_label"][label] for label in result["labels"]])
        for name, row in methods.items()
    ]


def _table2_rows(result: dict) -> list[tuple]:
    """Table 2 as rows a template can lay out (its bucket keys are not template names), in
    label-code order (a stored report's objects come back from PostgreSQL's jsonb unordered)."""
    table = result["table2"]
    return [
        (
            name,
            [table[name][b] for b, _, _ in BUCKETS],
            table[name]["total"],
            table[name]["percent"],
        )
        for name in [*result["labels"], "total"]
    ]


@staff_required
@require_POST
def campaign_agreement_run(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    agreement.agreement_report_request(campaign=campaign, user=request.user)
    messages.success(request, _("The report is queued; this page shows its progress."))
    return redirect("campaign-agreement", campaign_id=campaign.pk)


@staff_required
@require_POST
def annotator_invalidate(request, campaign_id: int):
    """Invalidates every label of one annotator in the campaign (after a quality review)."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    username = request.POST.get("annotator", "")
    reason = request.POST.get("reason", "").strip()
    if not reason:
        messages.error(request, _("Give a reason for invalidating the labels."))
        return redirect("campaign-agreement", campaign_id=campaign.pk)
    try:
        n = aggregation.annotator_invalidate(
            staff=request.user, campaign_id=campaign.pk, username=username, reason=reason
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("%(n)d labels of %(user)s invalidated; their clips are open again.")
            % {"n": n, "user": username},
        )
    return redirect("campaign-agreement", campaign_id=campaign.pk)


@staff_required
@require_POST
def annotator_exclude(request, campaign_id: int):
    """Leaves one annotator's votes out of the campaign's aggregation (logged, reversible):
    their clips re-open for replacement votes (``labeling.results.exclusion``)."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    username = request.POST.get("annotator", "")
    try:
        exclusion = exclusion_services.annotator_exclude(
            staff=request.user,
            campaign_id=campaign.pk,
            username=username,
            reason=request.POST.get("reason", ""),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("%(user)s excluded: %(n)d votes left out, their clips are open again.")
            % {"user": username, "n": len(exclusion.annotation_ids)},
        )
    return redirect("campaign-agreement", campaign_id=campaign.pk)


@staff_required
@require_POST
def exclusion_revoke(request, campaign_id: int, exclusion_id: int):
    """Revokes an exclusion: the votes whose slots are still free count again."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    get_object_or_404(AnnotatorExclusion, pk=exclusion_id, campaign=campaign)
    try:
        exclusion = exclusion_services.exclusion_revoke(
            staff=request.user, exclusion_id=exclusion_id
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("Exclusion revoked; %(n)d votes count again.") % {"n": exclusion.restored}
        )
    return redirect("campaign-agreement", campaign_id=campaign.pk)


@staff_required
@require_GET
def campaign_overlap(request, campaign_id: int):
    """Adaptive overlap replayed on the campaign's votes: labels saved against single-label
    agreement for K = 3..10 (``?confidence=`` C, default the campaign's). Reads only."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    raw = request.GET.get("confidence", "")
    confidence = campaign.adaptive_confidence
    error = None
    if raw:
        try:
            confidence = float(raw)
            if not 0.5 <= confidence <= 1:
                raise ValueError
        except ValueError:
            error = _("The confidence must be a number between 0.5 and 1.")
            confidence = campaign.adaptive_confidence
    points = overlap_services.campaign_overlap_curve(campaign, confidence=confidence)
    return render(
        request,
        "labeling/overlap.html",
        {
            "campaign": campaign,
            "points": points,
            "confidence": confidence,
            "error": error,
            "plot": overlap_svg(points, confidence) if points else "",
        },
        status=400 if error else 200,
    )
