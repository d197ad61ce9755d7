"""Holds and payouts: staff hold a person's rewards, and pay out what is payable, once."""

from __future__ import annotations

import io
import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from annotation_site.errors import ApplicationError, Conflict, Forbidden, NotFound
from labeling.models import Campaign, Payout, RewardEntry, RewardHold
from labeling.rewards.ledger import currency
from labeling.rewards.rules import cents_to_decimal
from pipeline import csv_safe

logger = logging.getLogger(__name__)

User = get_user_model()


def _staff_or_command(staff) -> None:
    if staff is not None and not getattr(staff, "is_staff", False):
        raise Forbidden("Only staff can hold rewards or pay them out.")


def _person(username: str):
    try:
        return User.objects.get(username=username)
    except User.DoesNotExist:
        raise NotFound(f"No user {username!r}.") from None


def reward_hold(*, staff, campaign_id: int, username: str, reason: str) -> RewardHold:
    """Holds a person's unpaid rewards in the campaign: they stay in the ledger, out of payouts,
    until released. One active hold per person and campaign (a database constraint)."""
    _staff_or_command(staff)
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the rewards are held (the person's record keeps it).")
    person = _person(username)
    with transaction.atomic():
        if Campaign.objects.select_for_update().filter(pk=campaign_id).first() is None:
            raise NotFound(f"Campaign {campaign_id} not found.")
        if RewardHold.objects.active().filter(campaign_id=campaign_id, person=person).exists():
            raise Conflict(f"{username}'s rewards are already held in this campaign.")
        return RewardHold.objects.create(
            campaign_id=campaign_id, person=person, reason=reason[:500], created_by=staff
        )


def reward_hold_release(*, staff, campaign_id: int, username: str) -> RewardHold:
    """Ends the active hold: the held entries are pending again and the next payout pays them."""
    _staff_or_command(staff)
    person = _person(username)
    with transaction.atomic():
        hold = (
            RewardHold.objects.select_for_update()
            .active()
            .filter(campaign_id=campaign_id, person=person)
            .first()
        )
        if hold is None:
            raise Conflict(f"{username}'s rewards are not held in this campaign.")
        hold.released_at = timezone.now()
        hold.released_by = staff
        hold.save(update_fields=["released_at", "released_by"])
        return hold


def payout_create(*, staff, campaign_id: int) -> Payout:
    """Pays every unpaid entry of each person whose unpaid, unheld total is above zero (a
    person whose reversals outweigh their earnings waits for the next payout), in one
    transaction. The campaign row's lock serializes payouts, and the entries are marked only
    while still unpaid, so a second click or a concurrent payout pays nothing twice: it finds
    nothing left and is refused. ``staff`` is None for the command line."""
    _staff_or_command(staff)
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None:
            raise NotFound(f"Campaign {campaign_id} not found.")
        held = RewardHold.objects.active().filter(campaign_id=campaign_id).covering()
        nets = dict(
            RewardEntry.objects.filter(campaign_id=campaign_id)
            .payable(held)
            .values("person_id")
            .annotate(net=Sum("amount_cents"))
            .filter(net__gt=0)
            .values_list("person_id", "net")
        )
        if not nets:
            raise Conflict("Nothing to pay: no one has unpaid, unheld rewards above zero.")
        payout = Payout.objects.create(
            campaign_id=campaign_id,
            currency=currency(),
            total_cents=sum(nets.values()),
            people=len(nets),
            entries=0,
            created_by=staff,
        )
        RewardEntry.objects.filter(campaign_id=campaign_id, person_id__in=nets).unpaid().update(
            payout=payout
        )
        # A reversal committed since the sums were read can leave a person at zero or below:
        # they wait (their entries are unmarked before anything is committed).
        short = list(
            payout.paid_entries.values("person_id")
            .annotate(net=Sum("amount_cents"))
            .filter(net__lte=0)
            .values_list("person_id", flat=True)
        )
        if short:
            payout.paid_entries.filter(person_id__in=short).update(payout=None)
        # What was marked is what is paid: the totals come from the marked rows themselves.
        paid = payout.paid_entries.aggregate(
            total=Sum("amount_cents"), entries=Count("pk"), people=Count("person", distinct=True)
        )
        payout.total_cents, payout.entries, payout.people = (
            paid["total"] or 0,
            paid["entries"],
            paid["people"],
        )
        if payout.total_cents <= 0:
            raise Conflict("Nothing to pay: the unpaid rewards changed while paying; try again.")
        payout.save(update_fields=["total_cents", "entries", "people"])
    logger.info("payout %d: %s %s to %d people", payout.pk, payout.total, payout.currency,
                payout.people)  # fmt: skip
    return payout


def _cell(text: str) -> str:
    """A spreadsheet would run a cell that starts with = + - @ (or tab, CR) as a formula
    (usernames may start with + - @, slugs with -): such a cell is written with a leading
    apostrophe, by the app's one CSV rule (``pipeline.csv_safe``)."""
    return csv_safe.neutralise(text)


CSV_COLUMNS = ("payout", "campaign", "username", "currency", "amount", "entries")


def payout_rows(payout: Payout) -> list[dict[str, str]]:
    """The payout per person, summed by the database, amounts as decimal strings."""
    rows = (
        payout.paid_entries.values("person__username")
        .annotate(cents=Sum("amount_cents"), entries=Count("pk"))
        .order_by("person__username")
    )
    slug = Campaign.objects.values_list("slug", flat=True).get(pk=payout.campaign_id)
    return [
        {
            "payout": str(payout.pk),
            "campaign": _cell(slug),
            "username": _cell(row["person__username"]),
            "currency": _cell(payout.currency),
            "amount": str(cents_to_decimal(row["cents"])),
            "entries": str(row["entries"]),
        }
        for row in rows
    ]


def payout_csv(payout: Payout) -> str:
    """The payout for finance: one row per person (header ``CSV_COLUMNS``)."""
    out = io.StringIO()
    # Every text cell neutralised again (idempotent); amounts are never negative in a payout.
    writer = csv_safe.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(payout_rows(payout))
    return out.getvalue()
