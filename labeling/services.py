"""Every write the app makes. Each service is one transaction; views, the API and tasks call
these and nothing else to change data.

Locking order, everywhere: the clip row first, then its assignment rows. Following one order
is what keeps concurrent next/submit/release/report calls free of deadlocks on PostgreSQL.
On SQLite, IMMEDIATE transactions serialize writers, so the same code is safe there too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from labeling.errors import ApplicationError, Conflict, Forbidden, NotFound, TooManyOpen
from labeling.models import (
    LIVE_ASSIGNMENT_STATUSES,
    Annotation,
    AnnotatorProfile,
    Assignment,
    Campaign,
    Clip,
    ClipReport,
    Label,
    Role,
    Screening,
)
from pipeline.emotions import DFEW_EMOTIONS, DFEW_RARE

logger = logging.getLogger(__name__)
User = get_user_model()

# How many candidate clips `assignment_next` tries before giving up in one call. A candidate
# can turn out full once its lock is held (another transaction filled it between our snapshot
# and our lock), and then the next candidate is tried.
_NEXT_ATTEMPTS = 5


# --- people and campaigns -------------------------------------------------------------------


def user_create(
    *,
    username: str,
    password: str,
    roles: Iterable[str] = (),
    is_staff: bool = False,
    region: str = "",
    cultural_background: str = "",
    languages: str = "",
):
    """Creates a user with the given roles (groups) and an annotator profile."""
    with transaction.atomic():
        user = User(username=username, is_staff=is_staff, is_superuser=is_staff)
        user.set_password(password)
        user.full_clean()
        user.save()
        for role in roles:
            user.groups.add(Group.objects.get_or_create(name=Role(role).value)[0])
        AnnotatorProfile.objects.create(
            user=user, region=region, cultural_background=cultural_background, languages=languages
        )
    return user


def user_has_role(user, role: Role) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    cache = getattr(user, "_role_cache", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._role_cache = cache
    return role.value in cache


def campaign_create(
    *,
    name: str,
    slug: str,
    labels: Sequence[tuple[int, str]] = DFEW_EMOTIONS,
    rare: Iterable[str] = DFEW_RARE,
    **options,
) -> Campaign:
    """Creates a campaign with its label set (DFEW's seven emotions unless given)."""
    rare = set(rare)
    unknown = rare - {name for _, name in labels}
    if unknown:
        raise ApplicationError(f"Rare labels {sorted(unknown)} are not in the label set.")
    with transaction.atomic():
        campaign = Campaign(name=name, slug=slug, **options)
        campaign.full_clean()
        campaign.save()
        Label.objects.bulk_create(
            Label(
                campaign=campaign,
                code=code,
                name=label,
                display_name=label.capitalize(),
                is_rare=label in rare,
            )
            for code, label in labels
        )
    return campaign


# --- assignment: next, submit, release, report --------------------------------------------


def _live_q(now: datetime, prefix: str = "") -> Q:
    return Q(**{f"{prefix}status": Assignment.Status.SUBMITTED}) | Q(
        **{f"{prefix}status": Assignment.Status.LEASED, f"{prefix}expires_at__gt": now}
    )


def _annotator_campaigns(user, campaign_id: int | None):
    campaigns = Campaign.objects.filter(is_active=True, annotators=user)
    if campaign_id is not None:
        campaigns = campaigns.filter(pk=campaign_id)
        if not campaigns.exists():
            raise NotFound(f"No open campaign {campaign_id} for you.")
    return campaigns


def _reclaim_expired(clip_id: int, now: datetime, exclude_pk: int | None = None) -> None:
    """Marks the clip's lapsed leases expired, freeing their slots. Caller holds the clip lock."""
    stale = Assignment.objects.filter(
        clip_id=clip_id, status=Assignment.Status.LEASED, expires_at__lte=now
    )
    if exclude_pk is not None:
        stale = stale.exclude(pk=exclude_pk)
    stale.update(status=Assignment.Status.EXPIRED, finished_at=now)


def assignment_next(*, user, campaign_id: int | None = None, skip: Sequence[int] = ()):
    """Leases the annotator a clip slot, or returns None when nothing is left for them.

    Reads the annotator's live leases first: one not listed in ``skip`` is returned again, so a
    reloaded page resumes its clip instead of leaking a lease. Otherwise it picks, among open
    clips the annotator has neither labelled nor leased, the one with the most live slots
    (nearest completion, then lowest number), locks it with SKIP LOCKED so racing annotators
    spread over clips instead of queueing on one, re-counts its slots under the lock and leases
    the lowest free slot. Re-running it returns the same live lease.
    """
    if not user_has_role(user, Role.ANNOTATOR):
        raise Forbidden("Only annotators can ask for clips.")
    now = timezone.now()
    campaigns = _annotator_campaigns(user, campaign_id)
    mine = Assignment.objects.filter(
        annotator=user,
        status=Assignment.Status.LEASED,
        expires_at__gt=now,
        clip__campaign__in=campaigns,
    ).select_related("clip__campaign")
    open_leases = list(mine.order_by("leased_at", "pk"))
    for lease in open_leases:
        if lease.pk not in skip:
            return lease
    if len(open_leases) >= settings.LABELING_MAX_OPEN_LEASES:
        raise TooManyOpen(
            f"You hold {len(open_leases)} open clips; submit or release one before asking for more."
        )

    taken = Subquery(
        Assignment.objects.filter(_live_q(now), clip=OuterRef("pk"))
        .order_by()
        .values("clip")
        .annotate(n=Count("pk"))
        .values("n"),
        output_field=IntegerField(),
    )
    mine_on_clip = Assignment.objects.filter(
        clip=OuterRef("pk"), annotator=user, status__in=LIVE_ASSIGNMENT_STATUSES
    )
    tried: list[int] = []
    for _attempt in range(_NEXT_ATTEMPTS):
        with transaction.atomic():
            clip = (
                Clip.objects.open_for_annotation()
                .filter(campaign__in=campaigns)
                .exclude(pk__in=tried)
                .annotate(taken=Coalesce(taken, Value(0)))
                .filter(~Exists(mine_on_clip))
                .filter(taken__lt=F("campaign__annotations_per_clip"))
                .order_by("-taken", "number", "pk")
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("campaign")
                .first()
            )
            if clip is None:
                return None
            # Under the lock, with a fresh statement (a fresh snapshot on PostgreSQL's READ
            # COMMITTED): the count above may predate a commit that filled the clip.
            _reclaim_expired(clip.pk, now)
            live = list(
                Assignment.objects.filter(
                    clip=clip, status__in=LIVE_ASSIGNMENT_STATUSES
                ).values_list("slot", "annotator_id")
            )
            used = {slot for slot, _ in live}
            target = clip.campaign.annotations_per_clip
            if len(used) >= target or any(a == user.pk for _, a in live):
                tried.append(clip.pk)
                continue
            slot = min(set(range(1, target + 1)) - used)
            assignment = Assignment.objects.create(
                clip=clip,
                annotator=user,
                slot=slot,
                leased_at=now,
                expires_at=now + timedelta(minutes=clip.campaign.lease_minutes),
            )
            return assignment
    return None


def _get_assignment_for_annotator(user, assignment_id: int) -> Assignment:
    """The annotator's own assignment, or 404: someone else's looks exactly like a missing one."""
    if not user_has_role(user, Role.ANNOTATOR):
        raise Forbidden("Only annotators hold assignments.")
    try:
        return Assignment.objects.only("pk", "clip_id").get(pk=assignment_id, annotator=user)
    except Assignment.DoesNotExist:
        raise NotFound(f"Assignment {assignment_id} not found.") from None


def _lock(user, assignment_id: int) -> tuple[Clip, Assignment]:
    """Locks the clip, then the assignment (the house order). Caller is inside atomic()."""
    ref = _get_assignment_for_annotator(user, assignment_id)
    clip = Clip.objects.select_for_update().select_related("campaign").get(pk=ref.clip_id)
    assignment = Assignment.objects.select_for_update().get(pk=ref.pk)
    return clip, assignment


def _label_for(campaign: Campaign, name: str) -> Label:
    labels = list(campaign.labels.all())
    for label in labels:
        if label.name == name:
            return label
    valid = [label.name for label in labels]
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
        clip, assignment = _lock(user, assignment_id)
        label = _label_for(clip.campaign, label_name)
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
            _reclaim_expired(clip.pk, now, exclude_pk=assignment.pk)
            slot_taken = (
                Assignment.objects.filter(
                    clip=clip, slot=assignment.slot, status__in=LIVE_ASSIGNMENT_STATUSES
                )
                .exclude(pk=assignment.pk)
                .exists()
            )
            if slot_taken:
                raise Conflict(
                    "Your lease on this clip expired and its place went to another annotator; "
                    "your label was not recorded. Ask for the next clip."
                )
        assignment.status = Assignment.Status.SUBMITTED
        assignment.finished_at = now
        assignment.save(update_fields=["status", "finished_at"])
        annotation = Annotation.objects.create(
            assignment=assignment,
            clip=clip,
            annotator=user,
            label=label,
            slot=assignment.slot,
            created_at=now,
        )
        submitted = Annotation.objects.filter(clip=clip).count()
        if submitted >= clip.campaign.annotations_per_clip and clip.status == Clip.Status.ANNOTATING:
            clip.status = Clip.Status.COMPLETE
            clip.save(update_fields=["status", "updated_at"])
    return SubmitResult(annotation, created=True)


def assignment_release(*, user, assignment_id: int) -> None:
    """Gives a leased clip back to the pool. A no-op on a lease already released or expired."""
    with transaction.atomic():
        _clip, assignment = _lock(user, assignment_id)
        if assignment.status == Assignment.Status.SUBMITTED:
            raise Conflict("This clip is already labelled; a submitted label cannot be released.")
        if assignment.status == Assignment.Status.LEASED:
            assignment.status = Assignment.Status.RELEASED
            assignment.finished_at = timezone.now()
            assignment.save(update_fields=["status", "finished_at"])


def clip_report_problem(*, user, assignment_id: int, kind: str, note: str = "") -> ClipReport:
    """Annotator's "problem with this clip": releases their lease and sends the clip back to
    screening with the reason. Labels already submitted are kept."""
    if kind not in ClipReport.Kind.values:
        raise ApplicationError(
            f"Unknown problem {kind!r}. Valid: {', '.join(ClipReport.Kind.values)}.",
            {"valid_kinds": list(ClipReport.Kind.values)},
        )
    with transaction.atomic():
        clip, assignment = _lock(user, assignment_id)
        if assignment.status != Assignment.Status.LEASED:
            raise Conflict("You can report a problem only on a clip you are labelling now.")
        report = ClipReport.objects.create(clip=clip, reporter=user, kind=kind, note=note[:2000])
        assignment.status = Assignment.Status.RELEASED
        assignment.finished_at = timezone.now()
        assignment.save(update_fields=["status", "finished_at"])
        if clip.status == Clip.Status.ANNOTATING:
            clip.status = Clip.Status.SCREENING
            clip.status_reason = f"reported by an annotator: {ClipReport.Kind(kind).label}"
            clip.save(update_fields=["status", "status_reason", "updated_at"])
    return report


def assignment_expire_stale(*, now: datetime | None = None, batch: int = 5000) -> int:
    """Marks lapsed leases expired so their slots are free again; returns how many.

    Takes rows with SKIP LOCKED, so it never waits on (or deadlocks with) a request that holds
    a clip's assignments; what it skips, the next sweep or the next `next` on that clip takes.
    Re-running it changes nothing new.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Assignment.objects.select_for_update(skip_locked=True)
            .filter(status=Assignment.Status.LEASED, expires_at__lte=now)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        return Assignment.objects.filter(pk__in=ids, status=Assignment.Status.LEASED).update(
            status=Assignment.Status.EXPIRED, finished_at=now
        )


# --- screening ---------------------------------------------------------------------------------


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
            clip = Clip.objects.select_for_update().get(pk=clip_id)
        except Clip.DoesNotExist:
            raise NotFound(f"Clip {clip_id} not found.") from None
        if clip.status != Clip.Status.SCREENING:
            raise Conflict(f"Clip {clip.number:05d} is {clip.get_status_display()}, not in screening.")
        screening = Screening.objects.create(
            clip=clip,
            reviewer=reviewer,
            shows_face=shows_face,
            shows_emotion=shows_emotion,
            decision=Screening.Decision.ACCEPT if accept else Screening.Decision.REJECT,
            reason=reason,
        )
        if accept:
            clip.status = Clip.Status.ANNOTATING
            clip.status_reason = ""
        else:
            clip.status = Clip.Status.REJECTED
            clip.status_reason = reason
            Assignment.objects.filter(clip=clip, status=Assignment.Status.LEASED).update(
                status=Assignment.Status.RELEASED, finished_at=timezone.now()
            )
        clip.save(update_fields=["status", "status_reason", "updated_at"])
    return screening
