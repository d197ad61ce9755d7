"""The release page: splits and DFEW-format exports."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from annotation_site.errors import ApplicationError
from annotation_site.guards import page_guard
from labeling import access
from labeling.models import (
    Campaign,
    JobStatus,
    LabelExport,
)
from labeling.release import dfew_export, splits

# Staff, or users given the export permission: the same rule as the export API.
export_required = page_guard(access.user_can_export, "Staff or exporters only.")


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
        made = splits.split_create(
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
        split = splits.split_for(campaign, int(raw)) if raw else None
        dfew_export.label_export_request(campaign=campaign, split=split, user=request.user)
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
