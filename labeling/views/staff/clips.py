"""Staff pages of clips: the clip browser (filters, keyset pages) and one clip's page with its
video, face crops, votes, result and the agreement report's flags."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from annotation_site.guards import staff_required
from labeling.models import Campaign, Clip, Label, Movie
from labeling.views.staff import selectors

FLAG_NAMES = {
    "few_faces": gettext_lazy("few faces found"),
    "reported": gettext_lazy("reported by an annotator"),
    "lowest": gettext_lazy("lowest agreement in the latest report"),
}


MOVIES_LISTED = 100


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@staff_required
@require_GET
def clip_browser(request):
    """Clips of every campaign or one, filtered by status, single label, agreement, movie,
    extractor and flag; 50 a page, in id order, with a cursor to the next page."""
    q = request.GET
    campaign_list = list(Campaign.objects.order_by("-created_at", "pk"))
    campaign_id = _int(q.get("campaign"))
    if campaign_id is None and len(campaign_list) == 1:
        campaign_id = campaign_list[0].pk
    filters = selectors.ClipFilters(
        campaign=campaign_id,
        status=q.get("status", "") if q.get("status") in Clip.Status.values else "",
        label=q.get("label", "")[:40],
        agreement=q.get("agreement", "")
        if q.get("agreement") in selectors.AGREEMENT_CHOICES
        else "",
        movie=_int(q.get("movie")),
        movie_title=q.get("movie_title", "").strip()[:100],
        extractor=q.get("extractor", "").strip()[:150],
        flag=q.get("flag", "") if q.get("flag") in selectors.FLAG_CHOICES else "",
        after=_int(q.get("after")),
    )
    clips, next_after = selectors.clip_browse(filters)
    # A list of movies to choose from while it is short; past that, part of a title (DFEW's
    # 1,500 movies are no drop-down, and would weigh on every page).
    movies = []
    if campaign_id:
        movies = list(
            Movie.objects.filter(campaign_id=campaign_id)
            .order_by("title", "pk")
            .values_list("pk", "title")[: MOVIES_LISTED + 1]
        )
        if len(movies) > MOVIES_LISTED:
            movies = []
    kept = {k: v for k, v in q.items() if k != "after" and v}
    if campaign_id is not None:
        kept["campaign"] = str(campaign_id)
    return render(
        request,
        "labeling/staff_clips.html",
        {
            "clips": clips,
            "filters": filters,
            "campaigns": campaign_list,
            "statuses": Clip.Status.choices,
            "labels": list(
                Label.objects.filter(campaign_id=campaign_id).values_list("name", "display_name")
            )
            if campaign_id
            else [],
            "movies": movies,
            "agreements": [
                ("single", _("a single label")),
                ("split", _("no single label")),
                ("pending", _("not aggregated yet")),
            ],
            "flags": list(FLAG_NAMES.items()),
            "next_query": urlencode({**kept, "after": next_after}) if next_after else "",
            "first_query": urlencode(kept) if filters.after else "",
            "any_clip": bool(clips) or Clip.objects.exists(),
        },
    )


@staff_required
@require_GET
def clip_page(request, clip_id: int):
    """One clip for staff: video, face crops, votes with who and when, the result and the
    flags. Read-only: what staff change about a clip goes through the agreement report
    (invalidating an annotator) or screening."""
    clip = get_object_or_404(
        Clip.objects.select_related("campaign", "movie", "proposed_by", "suspected_label"),
        pk=clip_id,
    )
    detail = selectors.clip_detail(clip)
    result = getattr(clip, "result", None)
    distribution = []
    if result is not None:
        names = dict(clip.campaign.labels.values_list("name", "display_name"))
        distribution = sorted(
            ((names.get(n, n), v, result.distribution.get(n, 0)) for n, v in result.votes.items()),
            key=lambda row: -row[1],
        )
    return render(
        request,
        "labeling/staff_clip.html",
        {
            "clip": clip,
            "detail": detail,
            "result": result,
            "distribution": distribution,
            "flag_names": [FLAG_NAMES[f] for f in detail.flags],
        },
    )
