"""Pages of the labelling loop: home, the annotator's page, the reviewer's screening."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from annotation_site.errors import ApplicationError
from annotation_site.guards import page_guard
from labeling import access, codebook
from labeling.loop import selectors, services
from labeling.models import (
    Clip,
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


def _screening_strings() -> dict:
    return {
        "held": _("Clip %(clip)s: %(verdict)s. Press Z to undo."),
        "undone": _("Clip %(clip)s: verdict taken back; choose again."),
        "saved": _("Clip %(clip)s: %(verdict)s, saved."),
        "failed": _("Clip %(clip)s was not saved: %(reason)s"),
        "offline": _("The server cannot be reached; try again."),
        "no_face": _("no face in this frame"),
        "no_face_n": _("%(n)s frames without the face (marked)"),
        "verdicts": {key: str(text) for key, (_f, _e, _r, text, _k) in SCREENING_VERDICTS.items()},
    }


@role_required(Role.REVIEWER)
@require_GET
def screening(request):
    """The reviewer's queue, a page at a time: each clip's video beside its face crops, its
    face ratio and flags, filterable by flag; verdicts by buttons or keys (`screening.js`)."""
    flag = request.GET.get("flag", "")
    status = 200
    try:
        page_number = int(request.GET.get("page", "1"))
        page = selectors.screening_page(flag=flag, page=page_number)
    except ValueError:
        messages.error(request, _("The page number must be a whole number."))
        page, status = selectors.screening_page(), 400
    except ApplicationError as exc:
        messages.error(request, exc.message)
        page, status, flag = selectors.screening_page(), 400, ""
    return render(
        request,
        "labeling/screening.html",
        {
            "page": page,
            "flag": flag,
            "strings": _screening_strings(),
            "verdicts": [(key, v[3], v[4]) for key, v in SCREENING_VERDICTS.items()],
        },
        status=status,
    )


# A reviewer's verdict → (shows a face, shows an emotion, default reason, what the page calls
# it, its key on the screening page).
SCREENING_VERDICTS = {
    "accept": (True, True, "", gettext_lazy("Face and emotion: open for labelling"), "a"),
    "no_face": (False, True, gettext_lazy("no face"), gettext_lazy("Reject: no face"), "f"),
    "no_emotion": (
        True,
        False,
        gettext_lazy("none of the emotions"),
        gettext_lazy("Reject: none of the emotions"),
        "e",
    ),
    "broken": (False, False, gettext_lazy("broken video"), gettext_lazy("Reject: broken"), "b"),
}


def _wants_json(request) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


@role_required(Role.REVIEWER)
@require_POST
def screening_decide(request, clip_id: int):
    """One verdict through `services.clip_screen`. The form gets a redirect back to the queue
    (its filter kept); the page's script (``Accept: application/json``) gets the outcome as
    JSON: the clip's new status and how many clips still wait, or the refusal and its status."""
    wants_json = _wants_json(request)
    verdict = SCREENING_VERDICTS.get(request.POST.get("verdict", ""))
    back = reverse("screening")
    if flag := request.POST.get("flag", ""):
        back += "?" + urlencode({"flag": flag})
    if verdict is None:
        if wants_json:
            return JsonResponse({"detail": _("Choose a verdict.")}, status=400)
        messages.error(request, _("Choose a verdict."))
        return redirect(back)
    shows_face, shows_emotion, default_reason, _label, _key = verdict
    note = request.POST.get("reason", "").strip()
    reason = "; ".join(part for part in (str(default_reason), note) if part)
    try:
        screened = services.clip_screen(
            reviewer=request.user,
            clip_id=clip_id,
            shows_face=shows_face,
            shows_emotion=shows_emotion,
            reason=reason,
        )
    except ApplicationError as exc:
        if wants_json:
            return JsonResponse({"detail": exc.message}, status=exc.status_code)
        messages.error(request, exc.message)
        return redirect(back)
    if wants_json:
        return JsonResponse(
            {
                "clip": clip_id,
                "status": screened.clip.status,
                "waiting": Clip.objects.awaiting_screening().count(),
            }
        )
    return redirect(back)
