"""The staff rewards page: totals, holds, payouts."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from annotation_site.errors import ApplicationError
from annotation_site.guards import staff_required
from labeling.loop import selectors
from labeling.models import Campaign, Payout
from labeling.rewards import earnings, ledger, payouts


@staff_required
@require_GET
def campaign_rewards(request, campaign_id: int):
    """The rewards ledger of a campaign: unpaid totals per person, holds, payouts with their
    CSV, and the rare-class yield of each extractor."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    people = earnings.totals_by_person(campaign.pk)
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
            "currency": ledger.currency(),
            "people": people,
            "payable": earnings.payable_total(people),
            "payouts": list(
                Payout.objects.filter(campaign=campaign).select_related("created_by")[:50]
            ),
            "yields": earnings.extractor_yield(campaign.pk),
            "source_yields": earnings.extractor_yield_by_source(campaign.pk),
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
        payout = payouts.payout_create(staff=request.user, campaign_id=campaign.pk)
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
    response = HttpResponse(payouts.payout_csv(payout), content_type="text/csv; charset=utf-8")
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
            payouts.reward_hold_release(
                staff=request.user, campaign_id=campaign.pk, username=username
            )
            messages.success(request, _("%(user)s's rewards are no longer held.") % {
                "user": username})  # fmt: skip
        else:
            payouts.reward_hold(
                staff=request.user,
                campaign_id=campaign.pk,
                username=username,
                reason=request.POST.get("reason", ""),
            )
            messages.success(request, _("%(user)s's rewards are held.") % {"user": username})
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("campaign-rewards", campaign_id=campaign.pk)
