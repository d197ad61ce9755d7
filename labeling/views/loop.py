"""Pages of the labelling loop: home, the annotator's page, the reviewer's screening."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from annotation_site.errors import ApplicationError
from annotation_site.guards import page_guard
from labeling import access, codebook
from labeling.loop import selectors, services
from labeling.models import (
    ClipReport,
    Role,
)
from labeling.rewards import earnings

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
        lambda user: access.user_has_role(user, role),
        f"This page is for the {role.label.lower()} role.",
    )


@login_required
@require_GET
def home(request):
    user = request.user
    if user.is_staff:
        return redirect("campaign-overview")
    if access.user_has_role(user, Role.ANNOTATOR):
        return redirect("annotate")
    if access.user_has_role(user, Role.REVIEWER):
        return redirect("screening")
    if access.user_has_role(user, Role.EXTRACTOR):
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
        "undo_none": _("Nothing to take back."),
        "earned": _(
            "Earned today %(today)s · pending %(pending)s · held %(held)s · paid %(paid)s · "
            "total %(total)s %(currency)s"
        ),
    }
    chosen = request.GET.get("campaign", "")
    guides = codebook.guides_for_annotator(
        request.user, int(chosen) if chosen.isdigit() and len(chosen) < 10 else None
    )
    return render(
        request,
        "labeling/annotate.html",
        {
            "earned": strings["earned"] % earnings.earnings_of(request.user).as_json(),
            "strings": strings,
            "campaign_id": chosen if chosen.isdigit() else "",
            "problem_kinds": ClipReport.Kind.choices,
            # Each campaign's name, instructions and codebook; the script shows the one of
            # the clip on screen (all of them open when the annotator has one campaign).
            "guides": [
                {
                    "guide": guide,
                    "entries": [
                        {
                            "entry": entry,
                            "display": EMOTION_DISPLAY.get(entry.name, entry.display_name),
                            "example_url": default_storage.url(entry.example_video)
                            if entry.example_video
                            else "",
                        }
                        for entry in guide.book.entries
                    ],
                }
                for guide in guides
            ],
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
