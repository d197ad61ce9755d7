"""The staff page of a campaign's codebook: instructions, and per label a description and an
example clip (labeling/codebook.py). The labelling page shows what is saved here."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from annotation_site.errors import ApplicationError
from annotation_site.guards import staff_required
from labeling import codebook
from labeling.models import Campaign


def _number(text: str) -> int | None:
    """A clip number as staff type it ("12", "00012"); None for an empty field."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise ApplicationError(_("“%(text)s” is not a clip number.") % {"text": text[:20]})
    return int(text)


@staff_required
@require_http_methods(["GET", "POST"])
def campaign_codebook(request, campaign_id: int):
    """GET: the form. POST: save it all (``codebook.codebook_save``), then back to the form
    with a confirmation; bad input answers 400 with the form as sent and its reason, and
    saves nothing."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    book = codebook.codebook_of(campaign)
    status, problem = 200, ""
    if request.method == "POST":
        try:
            labels = {
                entry.label_id: (
                    request.POST.get(f"description-{entry.label_id}", ""),
                    _number(request.POST.get(f"example-{entry.label_id}", "")),
                )
                for entry in book.entries
            }
            if "instructions" not in request.POST:
                raise ApplicationError(_("The form has no instructions field."))
            codebook.codebook_save(
                campaign=campaign, instructions=request.POST["instructions"], labels=labels
            )
        except ApplicationError as exc:
            status, problem = 400, exc.message
        else:
            messages.success(request, _("Codebook saved."))
            return redirect("campaign-codebook", campaign_id=campaign.pk)
    sent = request.POST if request.method == "POST" else None
    rows = [
        {
            "entry": entry,
            "description": sent.get(f"description-{entry.label_id}", "")
            if sent
            else entry.description,
            "example": sent.get(f"example-{entry.label_id}", "")
            if sent
            else (f"{entry.example_number:05d}" if entry.example_number else ""),
        }
        for entry in book.entries
    ]
    return render(
        request,
        "labeling/codebook.html",
        {
            "campaign": campaign,
            "instructions": sent.get("instructions", "") if sent else book.instructions,
            "rows": rows,
            "problem": problem,
            "instructions_max": codebook.INSTRUCTIONS_MAX,
            "description_max": codebook.DESCRIPTION_MAX,
        },
        status=status,
    )
