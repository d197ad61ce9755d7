"""The extractor's page: play a movie, mark clips, follow their extraction."""

from __future__ import annotations

from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from annotation_site.guards import page_guard
from labeling import access
from labeling.rewards import earnings


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
        "suggestion": _("Suggestion %(rank)s: %(emotion)s, rare-class score %(score)s"),
        "no_suggestion": _("No open suggestion: N jumps to one."),
        "accept": _("Accept"),
        "dismiss": _("Dismiss"),
        "accepted": _("Suggestion accepted: clip %(number)s (%(emotion)s) sent for extraction."),
        "dismissed": _("Suggestion dismissed."),
        "withdraw": _("Withdraw"),
        "withdrawn": _("Clip %(number)s withdrawn."),
        "preview": _("Play this segment"),
        "remove": _("Remove this segment"),
        "face_set": _("face marked"),
        "extraction_failed": _("extraction failed"),
        "earned": _(
            "Earned today %(today)s · pending %(pending)s · held %(held)s · paid %(paid)s · "
            "total %(total)s %(currency)s"
        ),
    }
    # The template shows the campaigns' names and hands the same list to the script.
    return render(
        request,
        "labeling/extract.html",
        {
            "campaigns": campaigns,
            "strings": strings,
            # The extractor's own earnings, from the rewards ledger (the same call as /me/).
            "earned": strings["earned"] % earnings.earnings_of(request.user).as_json(),
        },
    )
