"""The labelling loop's services: lease a clip's slot (`next`), submit a label, release,
report a problem, expire lapsed leases, and the reviewer's screening verdict.

Assignments' statuses change through `labeling.loop.slots` (which recounts the clip's held
slots); the hot path's statements are in `labeling.loop.sql`, which hands back a clip it has
locked as a `LockedClip`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from annotation_site.errors import ApplicationError, Conflict, Forbidden, NotFound, TooManyOpen
from labeling import access
from labeling.access import user_has_role
from labeling.loop import slots, sql
from labeling.loop.sql import LockedClip
from labeling.models import (
    LIVE_ASSIGNMENT_STATUSES,
    Annotation,
    Assignment,
    Campaign,
    Clip,
    ClipReport,
    Label,
    Role,
    Screening,
)
from labeling.results import quality
from labeling.rewards import ledger

logger = logging.getLogger(__name__)


# How many candidate clips `assignment_next` tries before giving up in one call. A candidate
# can turn out full once its lock is held (another transaction filled it between our snapshot
# and our lock), and then the next candidate is tried.
_NEXT_ATTEMPTS = 5


def _check_campaign_open_to(user, campaign_id: int) -> None:
    """404 unless the campaign is open and the user annotates it (others look like missing)."""
    member = access.member_q(user, Role.ANNOTATOR)
    if not Campaign.objects.filter(member, pk=campaign_id, is_active=True).exists():
        raise NotFound(f"No open campaign {campaign_id} for you.")


def _reclaim_expired(clip_id: int, now: datetime, exclude_pk: int | None = None) -> None:
    """Marks the clip's lapsed leases expired, freeing their slots. Caller holds the clip lock."""
    stale = Assignment.objects.lapsed(now)
    if exclude_pk is not None:
        stale = stale.exclude(pk=exclude_pk)
    slots.assignments_set_status(
        clip_ids=(clip_id,),
        rows=stale,
        from_=(Assignment.Status.LEASED,),
        to=Assignment.Status.EXPIRED,
        finished_at=now,
    )


@dataclass(frozen=True)
class Lease:
    """What `next` hands an annotator: the assignment (its clip loaded with it) and the
    campaign's minimum viewing time, which the page and the API answer show."""

    assignment: Assignment
    min_view_seconds: float


def lease_next(*, user, campaign_id: int | None = None, skip: Sequence[int] = ()) -> Lease | None:
    """Leases the annotator a clip slot, or returns None when nothing is left for them.

    Reads the annotator's live leases first: one not listed in ``skip`` is returned again, so a
    reloaded page resumes its clip instead of leaking a lease. Otherwise it takes, among open
    clips with a free slot that the annotator has neither labelled nor leased, the one nearest
    completion (most slots held, then lowest number), locks it, re-checks its slots under the
    lock and leases the lowest free one. Re-running it returns the same live lease.

    Its cost does not grow with the campaign: the candidate comes off an index, and the
    annotator's progress from their tally. Only when nothing is found does it free the
    campaign's lapsed leases (whose slots are still held) and look once more.
    """
    if not user_has_role(user, Role.ANNOTATOR):
        raise Forbidden("Only annotators can ask for clips.")
    now = timezone.now()
    campaigns = [campaign_id] if campaign_id is not None else None
    tried: list[int] = []
    swept = False
    for _attempt in range(_NEXT_ATTEMPTS):
        lease = sweep = None
        with transaction.atomic():
            # The annotator's own row first: one annotator's parallel `next` calls queue here,
            # so the open-lease count below cannot be read by two of them at once.
            sql.lock_user(user.pk)
            open_leases = sql.open_lease_ids(user.pk, campaign_id, now)
            for lease_id in open_leases:
                if lease_id not in skip:
                    held = Assignment.objects.select_related("clip__campaign").get(pk=lease_id)
                    return Lease(held, held.clip.campaign.min_view_seconds)
            if len(open_leases) >= settings.LABELING_MAX_OPEN_LEASES:
                raise TooManyOpen(
                    f"You hold {len(open_leases)} open clips; submit or release one before "
                    "asking for more."
                )
            if campaigns is None:
                campaigns = sql.member_campaign_ids(user.pk)
            clip = _candidate(user.pk, campaigns, tried)
            if clip is None and not swept:
                # Lapsed leases still hold their slots until swept: free them (after this
                # transaction, holding no clip) and look again; only in campaigns the
                # annotator belongs to (a stranger's call sweeps nothing).
                if campaign_id is not None:
                    _check_campaign_open_to(user, campaign_id)
                sweep = swept = True
            elif clip is None:
                break
            else:
                lease = _lease_slot(user, clip, now, tried)
        if lease is not None:
            return lease
        if sweep:
            for campaign in campaigns:
                assignment_expire_stale(now=now, campaign_id=campaign)
    if campaign_id is not None:
        _check_campaign_open_to(user, campaign_id)
    return None


def assignment_next(
    *, user, campaign_id: int | None = None, skip: Sequence[int] = ()
) -> Assignment | None:
    """`lease_next`'s assignment, or None when nothing is left for the annotator."""
    lease = lease_next(user=user, campaign_id=campaign_id, skip=skip)
    return None if lease is None else lease.assignment


def _lease_slot(user, clip: LockedClip, now: datetime, tried: list[int]) -> Lease | None:
    """Leases the lowest free slot of the locked clip; None (the clip noted in `tried`) when
    its slots turn out all held, or the annotator already holds one."""
    # Under the lock: the clip's rows that hold a slot, the lapsed ones freed.
    live = sql.live_assignments(clip.pk)
    stale = {pk for pk, _, _, status, expires in live if status == "leased" and expires <= now}
    if stale:
        _reclaim_expired(clip.pk, now)
    holders = {slot: annotator for pk, slot, annotator, _, _ in live if pk not in stale}
    if len(holders) >= clip.target or user.pk in holders.values():
        tried.append(clip.pk)
        return None
    assignment = slots.assignment_lease(
        clip=clip.clip,
        annotator=user,
        slot=min(set(range(1, clip.target + 1)) - set(holders)),
        now=now,
        expires_at=now + timedelta(minutes=clip.lease_minutes),
    )
    return Lease(assignment, clip.min_view_seconds)


def _candidate(user_id: int, campaigns: list[int], tried: list[int]) -> LockedClip | None:
    """The first campaign's candidate clip, locked. A clip locked for an instant by another
    annotator's submit is skipped, but "nothing left" must not mean "nothing unlocked right
    now", so when every candidate is locked it waits for one: the candidate is chosen without
    a lock and only that clip is then waited for, so no transaction ever holds one clip while
    it waits for another (a scan that locks as it goes keeps the rows it passed over locked,
    and two such scans deadlock)."""
    for campaign in campaigns:
        clip = sql.candidate_clip(user_id, campaign, tried, lock="skip")
        if clip is not None:
            return clip
    if not connection.features.has_select_for_update_skip_locked:
        return None  # SQLite: the IMMEDIATE transaction already holds the database
    for campaign in campaigns:
        for _ in range(_NEXT_ATTEMPTS):
            clip = sql.candidate_clip(user_id, campaign, tried, lock="none")
            if clip is None:
                break
            if sql.clip_lock_if_open(clip.pk):
                return clip
            tried.append(clip.pk)  # completed, withdrawn or reported while we waited
    return None


def _lock(user, assignment_id: int) -> tuple[LockedClip, Assignment]:
    """Locks the clip of the annotator's assignment, then the assignment (the house order).

    The clip comes with its campaign's loop settings. Someone else's assignment looks exactly
    like a missing one (404). Caller is inside atomic().
    """
    if not user_has_role(user, Role.ANNOTATOR):
        raise Forbidden("Only annotators hold assignments.")
    clip = sql.clip_of_assignment_locked(assignment_id, user.pk)
    if clip is None:
        raise NotFound(f"Assignment {assignment_id} not found.")
    return clip, sql.assignment_locked(assignment_id)


def _label_for(campaign_id: int, name: str) -> Label:
    label = sql.label_named(campaign_id, name)
    if label is not None:
        return label
    valid = list(Label.objects.filter(campaign_id=campaign_id).values_list("name", flat=True))
    raise ApplicationError(
        f"Unknown label {name!r}. Valid labels: {', '.join(valid)}.", {"valid_labels": valid}
    )


@dataclass(frozen=True)
class SubmitResult:
    annotation: Annotation
    created: bool


def annotation_submit(*, user, assignment_id: int, label_name: str) -> SubmitResult:
    """Records the annotator's label for their assignment; completes the clip at its n-th label.

    Idempotent: the same label again returns the existing annotation (created=False); a
    different label after submission is a Conflict. A lapsed lease is honoured only while its
    slot is still free, otherwise Conflict and nothing is written.
    """
    now = timezone.now()
    with transaction.atomic():
        locked, assignment = _lock(user, assignment_id)
        clip = locked.clip
        label = _label_for(clip.campaign_id, label_name)
        if assignment.status == Assignment.Status.SUBMITTED:
            annotation = Annotation.objects.select_related("label").get(assignment=assignment)
            if annotation.label_id == label.pk:
                return SubmitResult(annotation, created=False)
            raise Conflict(
                f"You already labelled this clip {annotation.label.name!r}; a submitted label "
                "cannot be changed.",
                {"label": annotation.label.name},
            )
        if assignment.status == Assignment.Status.RELEASED:
            raise Conflict("You released this clip; ask for the next one.")
        if clip.status == Clip.Status.REJECTED:
            raise Conflict("This clip was withdrawn by a reviewer; ask for the next one.")
        if not assignment.is_live_lease(now):
            _check_lapsed_lease(clip, assignment, user, now, "your label was not recorded")
        _check_viewed_long_enough(locked, assignment, now)
        # A swept lease whose slot was still free holds it again (recounted).
        slots.assignment_set_status(assignment, Assignment.Status.SUBMITTED, finished_at=now)
        annotation = Annotation.objects.create(
            assignment=assignment,
            clip=clip,
            annotator=user,
            label=label,
            slot=assignment.slot,
            created_at=now,
        )
        sql.tally_add(clip.campaign_id, user.pk, now)
        sql.reward_earn_label(clip.campaign_id, user.pk, clip.pk, annotation.pk, now)
        if clip.status == Clip.Status.ANNOTATING and _is_done(locked, clip.pk, clip.campaign_id):
            # Counted under the clip lock, so exactly one submit sees the clip done.
            _complete(clip.pk, now)
        elif clip.status == Clip.Status.COMPLETE:
            # The adaptive rule closed the clip while this lease was out: the label counts
            # (it is within the clip's slots) and the result is computed again with it.
            _reaggregate(clip.pk)
    return SubmitResult(annotation, created=True)


def _check_viewed_long_enough(clip: LockedClip, assignment: Assignment, now: datetime) -> None:
    """A label is accepted only once the clip has been visible for the campaign's minimum
    viewing time (held keys and accidental presses label nothing); else Conflict."""
    seen = (now - assignment.visible_since()).total_seconds()
    if seen < clip.min_view_seconds:
        wait = clip.min_view_seconds - seen
        raise Conflict(
            f"The clip has been on screen for {seen:.2f} s; watch it for at least "
            f"{clip.min_view_seconds:g} s before labelling it. Nothing was recorded.",
            {"retry_after_s": round(wait, 3)},
        )


def _check_lapsed_lease(clip: Clip, assignment: Assignment, user, now, lost: str) -> None:
    """A lapsed lease is honoured only while its slot is still free and the annotator holds
    no newer lease on the clip; else Conflict. Caller holds the clip lock."""
    _reclaim_expired(clip.pk, now, exclude_pk=assignment.pk)
    newer = (
        Assignment.objects.filter(clip=clip, annotator=user, status__in=LIVE_ASSIGNMENT_STATUSES)
        .exclude(pk=assignment.pk)
        .values_list("pk", flat=True)
        .first()
    )
    if newer is not None:
        raise Conflict(
            f"Your lease on this clip expired and you hold it again as assignment {newer}; "
            "use that one.",
            {"assignment": newer},
        )
    slot_taken = (
        Assignment.objects.filter(
            clip=clip, slot=assignment.slot, status__in=LIVE_ASSIGNMENT_STATUSES
        )
        .exclude(pk=assignment.pk)
        .exists()
    )
    if slot_taken:
        raise Conflict(
            f"Your lease on this clip expired and its place went to another annotator; {lost}. "
            "Ask for the next clip."
        )


def assignment_show(*, user, assignment_id: int) -> Assignment:
    """The page shows a leased clip (a prefetched one, typically): its lease clock starts now,
    so a clip never arrives already expired. Renews ``expires_at`` to now + the campaign's
    lease; records the first ``shown_at``. A lapsed (or swept) lease is renewed only while its
    slot is free and the annotator holds no newer lease on the clip. Re-running it renews
    again."""
    now = timezone.now()
    with transaction.atomic():
        locked, assignment = _lock(user, assignment_id)
        if assignment.status not in (Assignment.Status.LEASED, Assignment.Status.EXPIRED):
            raise Conflict("This lease is no longer open; ask for the next clip.")
        if not assignment.is_live_lease(now):
            _check_lapsed_lease(locked.clip, assignment, user, now, "nothing was lost")
        # A swept lease whose slot was still free holds it again (recounted).
        slots.assignment_set_status(
            assignment,
            Assignment.Status.LEASED,
            shown_at=assignment.shown_at or now,
            expires_at=now + timedelta(minutes=locked.lease_minutes),
        )
    return assignment


def _is_done(settings, clip_id: int, campaign_id: int) -> bool:
    """Whether the clip needs no more labels, counted under the clip lock the caller holds:
    all its slots (`slots.clip_is_full`: one count), or, in a campaign with adaptive overlap,
    the stop rule on its votes (`slots.clip_is_done`, with the campaign's stored quality model
    when the rule has a confidence; without a stored model only the exact rule applies).
    ``settings``: the campaign, or the `LockedClip` that carries its settings."""
    rule = slots.stop_rule_of(settings)
    if not rule.adaptive:
        return slots.clip_is_full(sql.annotation_count(clip_id), rule.max_votes)
    votes = sql.clip_votes(clip_id)
    codes = sql.label_codes(campaign_id)
    index = np.searchsorted(codes, [code for _, code in votes]).astype(np.int64)
    counts = np.bincount(index, minlength=len(codes))
    probs = None
    if rule.confidence is not None and votes:
        model = quality.stored_model(campaign_id, quality.confidence_method(settings))
        if model is not None:
            annotators = [annotator for annotator, _ in votes]
            post = model.posteriors(np.zeros(len(votes), dtype=np.int64), annotators, index, 1)
            probs = model.vote_probs(post)[0]
    return slots.clip_is_done(counts, rule, probs)


def clips_complete_if_done(clip_ids, campaign: Campaign) -> list[int]:
    """Completes each of the campaign's clips being labelled that needs no more labels (after
    votes are restored, ``labeling.results.exclusion``); returns those. Caller holds the clips'
    locks."""
    now = timezone.now()
    done = [
        pk
        for pk in Clip.objects.filter(pk__in=list(clip_ids), status=Clip.Status.ANNOTATING)
        .order_by("pk")
        .values_list("pk", flat=True)
        if _is_done(campaign, pk, campaign.pk)
    ]
    for pk in done:
        _complete(pk, now)
    return done


def _reaggregate(clip_id: int) -> None:
    from labeling.tasks import clip_aggregate_task  # the tasks module imports this one

    clip_aggregate_task.delay_on_commit(clip_id)


def _complete(clip_id: int, now: datetime) -> None:
    """Marks a full clip complete and, once committed, has a worker aggregate its votes.
    Caller holds the clip lock."""
    from labeling.tasks import clip_aggregate_task  # the tasks module imports this one

    Clip.objects.filter(pk=clip_id).update(status=Clip.Status.COMPLETE, updated_at=now)
    clip_aggregate_task.delay_on_commit(clip_id)


def assignment_release(*, user, assignment_id: int) -> None:
    """Gives a leased clip back to the pool. A no-op on a lease already released or expired."""
    with transaction.atomic():
        _, assignment = _lock(user, assignment_id)
        if assignment.status == Assignment.Status.SUBMITTED:
            raise Conflict("This clip is already labelled; a submitted label cannot be released.")
        if assignment.status == Assignment.Status.LEASED:
            slots.assignment_set_status(
                assignment, Assignment.Status.RELEASED, finished_at=timezone.now()
            )


def clip_report_problem(*, user, assignment_id: int, kind: str, note: str = "") -> ClipReport:
    """Annotator's "problem with this clip": releases their lease and sends the clip back to
    screening with the reason. Labels already submitted are kept."""
    if kind not in ClipReport.Kind.values:
        raise ApplicationError(
            f"Unknown problem {kind!r}. Valid: {', '.join(ClipReport.Kind.values)}.",
            {"valid_kinds": list(ClipReport.Kind.values)},
        )
    with transaction.atomic():
        locked, assignment = _lock(user, assignment_id)
        clip = locked.clip
        if assignment.status != Assignment.Status.LEASED:
            raise Conflict("You can report a problem only on a clip you are labelling now.")
        report = ClipReport.objects.create(clip=clip, reporter=user, kind=kind, note=note[:2000])
        slots.assignment_set_status(
            assignment, Assignment.Status.RELEASED, finished_at=timezone.now()
        )
        if clip.status == Clip.Status.ANNOTATING:
            clip.status = Clip.Status.SCREENING
            clip.status_reason = f"reported by an annotator: {ClipReport.Kind(kind).label}"
            clip.save(update_fields=["status", "status_reason", "updated_at"])
    return report


def assignment_expire_stale(
    *, now: datetime | None = None, campaign_id: int | None = None, batch: int = 5000
) -> int:
    """Marks lapsed leases expired so their slots are free again; returns how many.

    In the house order: it locks the clips first, with SKIP LOCKED, so it never waits on (or
    deadlocks with) a request that holds a clip; what it skips, the next sweep or the next
    `next` on that clip takes. Re-running it changes nothing new.
    """
    now = now or timezone.now()
    with transaction.atomic():
        lapsed = Assignment.objects.lapsed(now)
        if campaign_id is not None:
            lapsed = lapsed.filter(clip__campaign_id=campaign_id)
        clip_ids = list(lapsed.order_by().values_list("clip_id", flat=True).distinct()[:batch])
        if not clip_ids:
            return 0
        locked = list(
            Clip.objects.select_for_update(skip_locked=True)
            .filter(pk__in=clip_ids)
            .values_list("pk", flat=True)
        )
        return slots.assignments_set_status(
            clip_ids=locked,
            rows=Assignment.objects.lapsed(now),
            from_=(Assignment.Status.LEASED,),
            to=Assignment.Status.EXPIRED,
            finished_at=now,
        )


def clip_screen(
    *, reviewer, clip_id: int, shows_face: bool, shows_emotion: bool, reason: str = ""
) -> Screening:
    """A reviewer's verdict: a clip with a face and an emotion opens for labelling, any other is
    rejected with its reason kept. Live leases on a rejected clip are released."""
    if not user_has_role(reviewer, Role.REVIEWER):
        raise Forbidden("Only reviewers screen clips.")
    accept = shows_face and shows_emotion
    if not accept and not reason:
        reason = "; ".join(
            text
            for ok, text in ((shows_face, "no face"), (shows_emotion, "none of the emotions"))
            if not ok
        )
    with transaction.atomic():
        try:
            clip = Clip.objects.select_for_update().select_related("campaign").get(pk=clip_id)
        except Clip.DoesNotExist:
            raise NotFound(f"Clip {clip_id} not found.") from None
        if clip.status != Clip.Status.SCREENING:
            raise Conflict(
                f"Clip {clip.number:05d} is {clip.get_status_display()}, not in screening."
            )
        screening = Screening.objects.create(
            clip=clip,
            reviewer=reviewer,
            shows_face=shows_face,
            shows_emotion=shows_emotion,
            decision=Screening.Decision.ACCEPT if accept else Screening.Decision.REJECT,
            reason=reason,
        )
        if accept:
            # A clip reported mid-way keeps its labels; one that already has all of them is done.
            if _is_done(clip.campaign, clip.pk, clip.campaign_id):
                _complete(clip.pk, timezone.now())
                clip.status = Clip.Status.COMPLETE
            else:
                clip.status = Clip.Status.ANNOTATING
            clip.status_reason = ""
        else:
            clip.status = Clip.Status.REJECTED
            clip.status_reason = reason
            slots.assignments_set_status(
                clip_ids=(clip.pk,),
                from_=(Assignment.Status.LEASED,),
                to=Assignment.Status.RELEASED,
                finished_at=timezone.now(),
            )
        clip.save(update_fields=["status", "status_reason", "updated_at"])
        ledger.clips_sync([clip.pk])
    return screening
