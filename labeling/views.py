"""Pages: the annotator's labelling page, the reviewer's screening page, the staff overview.

Views get ready data from selectors and change data only through services.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from annotation_site.guards import page_guard, staff_required
from labeling import access, aggregation, agreement, release, rewards, selectors, services
from labeling.errors import ApplicationError
from labeling.models import (
    AgreementReport,
    Campaign,
    ClipReport,
    JobStatus,
    LabelExport,
    Payout,
    Role,
)
from pipeline.aggregation import BUCKETS

# DFEW's emotion names as the annotator sees them, in the page's language.
EMOTION_DISPLAY = {
    "happy": gettext_lazy("Happy"),
    "sad": gettext_lazy("Sad"),
    "neutral": gettext_lazy("Neutral"),
    "angry": gettext_lazy("Angry"),
    "surprise": gettext_lazy("Surprise"),
    "disgust": gettext_lazy("Disgust"),
    "fear": gettext_lazy("Fear"),
}


def role_required(role: Role):
    return page_guard(
        lambda user: services.user_has_role(user, role),
        f"This page is for the {role.label.lower()} role.",
    )


# Staff, or users given the export permission: the same rule as the export API.
export_required = page_guard(release.user_can_export, "Staff or exporters only.")


@login_required
@require_GET
def home(request):
    user = request.user
    if user.is_staff:
        return redirect("campaign-overview")
    if services.user_has_role(user, Role.ANNOTATOR):
        return redirect("annotate")
    if services.user_has_role(user, Role.REVIEWER):
        return redirect("screening")
    if services.user_has_role(user, Role.EXTRACTOR):
        return redirect("extract")
    return render(request, "labeling/no_role.html", status=403)


@role_required(Role.ANNOTATOR)
@require_GET
def annotate(request):
    strings = {
        "labels": {name: str(text) for name, text in EMOTION_DISPLAY.items()},
        "done": _("Nothing left to label for now. Thank you!"),
        "expired": _("Lease expired: your label is kept only if your place is still free."),
        "held": _("%(label)s — saving; press Z to take it back."),
        "undone": _("Label taken back: choose again."),
        "too_soon": _("Watch the clip a moment longer before labelling it."),
        "too_many": _("You hold too many open clips; they are being saved. Try again shortly."),
        "offline": _("The server cannot be reached; your labels are kept and retried."),
        "retrying": _("%(n)s label(s) not saved yet; retrying."),
        "not_saved": _("Clip %(clip)s was not saved: %(reason)s"),
        "n_of_m": _("%(n)s of %(m)s"),
        "error": _("Something went wrong; your last label was not saved."),
        "reported": _("Thanks, the clip goes back to a reviewer."),
        "report_failed": _("The report could not be sent; try again."),
        "earned": _(
            "Earned today %(today)s · pending %(pending)s · held %(held)s · paid %(paid)s · "
            "total %(total)s %(currency)s"
        ),
    }
    return render(
        request,
        "labeling/annotate.html",
        {
            "earned": strings["earned"] % rewards.earnings_of(request.user).as_json(),
            "strings": strings,
            "campaign_id": request.GET.get("campaign", ""),
            "problem_kinds": ClipReport.Kind.choices,
        },
    )


@role_required(Role.REVIEWER)
@require_GET
def screening(request):
    return render(
        request, "labeling/screening.html", {"clips": selectors.clip_list_for_screening()}
    )


# A reviewer's verdict button → (shows a face, shows an emotion, default reason).
SCREENING_VERDICTS = {
    "accept": (True, True, ""),
    "no_face": (False, True, gettext_lazy("no face")),
    "no_emotion": (True, False, gettext_lazy("none of the emotions")),
    "broken": (False, False, gettext_lazy("broken video")),
}


@role_required(Role.REVIEWER)
@require_POST
def screening_decide(request, clip_id: int):
    verdict = SCREENING_VERDICTS.get(request.POST.get("verdict", ""))
    if verdict is None:
        messages.error(request, _("Choose a verdict."))
        return redirect("screening")
    shows_face, shows_emotion, default_reason = verdict
    note = request.POST.get("reason", "").strip()
    reason = "; ".join(part for part in (str(default_reason), note) if part)
    try:
        services.clip_screen(
            reviewer=request.user,
            clip_id=clip_id,
            shows_face=shows_face,
            shows_emotion=shows_emotion,
            reason=reason,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("screening")


@staff_required
@require_GET
def campaign_overview(request):
    return render(request, "labeling/overview.html", {"rows": selectors.campaign_overview_list()})


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
        },
    )


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


@export_required
@require_GET
def campaign_release(request, campaign_id: int):
    """Splits with their per-fold class counts, exports with progress and downloads."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    splits = list(campaign.splits.select_related("created_by").order_by("-created_at", "-pk"))
    exports = list(
        campaign.exports.select_related("split", "requested_by").order_by("-created_at", "-pk")[:20]
    )
    names = list(campaign.labels.order_by("code").values_list("name", flat=True))
    pending = any(e.status in (JobStatus.QUEUED, JobStatus.RUNNING) for e in exports)
    return render(
        request,
        "labeling/release.html",
        {
            "campaign": campaign,
            "labels": names,
            "splits": [
                (
                    split,
                    [
                        (fold, [c[n] for n in names], sum(c.values()))
                        for fold, c in split.fold_counts.items()
                    ],
                )
                for split in splits
            ],
            "exports": exports,
            "pending": pending,
        },
    )


@export_required
@require_POST
def campaign_split_create(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    try:
        made = release.split_create(
            campaign=campaign,
            k=int(request.POST.get("k", 5)),
            seed=int(request.POST.get("seed", 0)),
            group_by_movie=request.POST.get("group_by_movie") == "on",
            user=request.user,
        )
    except ValueError:
        messages.error(request, _("Folds and seed must be whole numbers."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Split %(id)d made.") % {"id": made.split.pk})
        for warning in made.warnings:
            messages.warning(request, warning)
    return redirect("campaign-release", campaign_id=campaign.pk)


@export_required
@require_POST
def campaign_export_create(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    raw = request.POST.get("split", "")
    try:
        split = release.split_for(campaign, int(raw)) if raw else None
        release.label_export_request(campaign=campaign, split=split, user=request.user)
    except ValueError:
        messages.error(request, _("Choose a split."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The export is queued; this page shows its progress."))
    return redirect("campaign-release", campaign_id=campaign.pk)


@export_required
@require_GET
def export_download(request, export_id: int):
    export = get_object_or_404(LabelExport, pk=export_id, status=JobStatus.DONE)
    if not export.file.storage.exists(export.file.name):
        raise Http404("The export's file is no longer on the server; export again.")
    response = FileResponse(
        export.file.open("rb"), as_attachment=True, filename=Path(export.file.name).name
    )
    response["X-Content-MD5"] = export.md5  # hex, as the release page shows it
    return response


@page_guard(access.can_extract, "This page is for extractors and staff.")
@require_GET
def extract(request):
    """The extractor page: play a movie, mark clips, follow their extraction (all through the
    REST API, from labeling/static/labeling/extract.js)."""
    campaigns = [
        {
            "id": c.pk,
            "name": c.name,
            "clips_per_movie": c.clips_per_movie,
            "clip_min_seconds": c.clip_min_seconds,
            "clip_max_seconds": c.clip_max_seconds,
            "labels": [
                {"code": label.code, "name": label.name, "display_name": label.display_name}
                for label in c.labels.all()
            ],
        }
        for c in access.campaigns_for_extractor(request.user)
        .filter(is_active=True)
        .prefetch_related("labels")
        .order_by("name")
    ]
    strings = {
        "limits": _("Clips last %(min)s–%(max)s s; at most %(per_movie)s per movie."),
        "progress": _(
            "Pending %(pending)s · extracting %(extracting)s · ready %(ready)s · failed %(failed)s"
        ),
        "length": _("length out of bounds"),
        "overlap": _("overlaps"),
        "mark_first": _("Mark an in point (I) and a later out point (O) first."),
        "sent": _("%(n)s clips sent for extraction."),
        "uploaded": _("Uploaded; the movie is being checked."),
        "error": _("Something went wrong."),
    }
    # The template shows the campaigns' names and hands the same list to the script.
    return render(request, "labeling/extract.html", {"campaigns": campaigns, "strings": strings})


@staff_required
@require_GET
def campaign_rewards(request, campaign_id: int):
    """The rewards ledger of a campaign: unpaid totals per person, holds, payouts with their
    CSV, and the rare-class yield of each extractor."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    people = rewards.totals_by_person(campaign.pk)
    latest = selectors.agreement_report_latest(campaign=campaign)
    flagged = sorted(
        a["annotator"]
        for a in ((latest.result or {}).get("annotators", []) if latest else [])
        if a.get("flagged")
    )
    held = {p.username for p in people if p.on_hold}
    flagged_set = set(flagged)
    return render(
        request,
        "labeling/rewards.html",
        {
            "campaign": campaign,
            "currency": rewards.currency(),
            "people": people,
            "payable": sum((p.pending for p in people if p.pending > 0), start=Decimal(0)),
            "payouts": list(
                Payout.objects.filter(campaign=campaign).select_related("created_by")[:50]
            ),
            "yields": rewards.extractor_yield(campaign.pk),
            "flagged": [name for name in flagged if name not in held],
            "flagged_set": flagged_set,
            "rare_labels": list(
                campaign.labels.filter(is_rare=True).values_list("display_name", flat=True)
            ),
        },
    )


@staff_required
@require_POST
def campaign_payout_create(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    try:
        payout = rewards.payout_create(staff=request.user, campaign_id=campaign.pk)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Payout %(id)d: %(total)s %(currency)s to %(people)d people; download its CSV below.")
            % {
                "id": payout.pk,
                "total": payout.total,
                "currency": payout.currency,
                "people": payout.people,
            },
        )
    return redirect("campaign-rewards", campaign_id=campaign.pk)


@staff_required
@require_GET
def payout_download(request, payout_id: int):
    payout = get_object_or_404(Payout, pk=payout_id)
    response = HttpResponse(rewards.payout_csv(payout), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="payout-{payout.pk}.csv"'
    return response


@staff_required
@require_POST
def campaign_reward_hold(request, campaign_id: int):
    """Holds a person's rewards pending review (``action=hold`` with a reason) or releases the
    hold (``action=release``)."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    username = request.POST.get("person", "")
    try:
        if request.POST.get("action") == "release":
            rewards.reward_hold_release(
                staff=request.user, campaign_id=campaign.pk, username=username
            )
            messages.success(request, _("%(user)s's rewards are no longer held.") % {
                "user": username})  # fmt: skip
        else:
            rewards.reward_hold(
                staff=request.user,
                campaign_id=campaign.pk,
                username=username,
                reason=request.POST.get("reason", ""),
            )
            messages.success(request, _("%(user)s's rewards are held.") % {"user": username})
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("campaign-rewards", campaign_id=campaign.pk)
