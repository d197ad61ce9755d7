"""Reads for the staff pages: a campaign's team with each person's progress and speed, the
clip browser (keyset pages at DFEW's size) and one clip with its votes and flags."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from labeling.loop import selectors as loop_selectors
from labeling.models import (
    Annotation,
    AnnotatorTally,
    Assignment,
    Campaign,
    Clip,
    ClipReport,
    Invitation,
    Membership,
    Role,
    Screening,
)

# A person's speed is their recent pace, not their first day's: measured over the campaign's
# latest labels within this window, at most this many (a bounded read at DFEW's size, where a
# campaign holds 163,720 labels).
SPEED_WINDOW = timedelta(days=7)
SPEED_SAMPLE = 3000
PAGE_SIZE = 50


def membership_counts() -> dict[int, dict[str, int]]:
    """Members per campaign and role, in one grouped query: {campaign id: {role: n}}."""
    counts: dict[int, dict[str, int]] = {}
    for row in Membership.objects.values("campaign_id", "role").annotate(n=Count("pk")).order_by():
        counts.setdefault(row["campaign_id"], {})[row["role"]] = row["n"]
    return counts


@dataclass
class Member:
    """One person in one role on the team, with what they have done."""

    user_id: int
    username: str
    role: str
    joined: object
    done: int = 0  # labels, clips proposed, or verdicts given
    accepted: int | None = None  # an extractor's clips that passed screening
    rejected: int | None = None
    last: object = None
    median_seconds: float | None = None  # an annotator's lease-to-label time, recent week
    per_hour: float | None = None  # labels an hour in their recent active hours


@dataclass
class Team:
    members: dict[str, list[Member]] = field(default_factory=dict)
    invitations: list[Invitation] = field(default_factory=list)


def campaign_team(campaign: Campaign) -> Team:
    """The campaign's members by role with progress and speed, and pending invitations.
    A fixed number of queries, whatever the team's size: one per role's figures."""
    team = Team(members={role.value: [] for role in Role})
    rows = (
        Membership.objects.filter(campaign=campaign)
        .select_related("user")
        .order_by("role", "user__username")
    )
    by_key: dict[tuple[str, int], Member] = {}
    for m in rows:
        member = Member(m.user_id, m.user.username, m.role, m.created_at)
        team.members[m.role].append(member)
        by_key[(m.role, m.user_id)] = member
    annotator_ids = [k[1] for k in by_key if k[0] == Role.ANNOTATOR]
    for tally in AnnotatorTally.objects.filter(campaign=campaign, annotator_id__in=annotator_ids):
        member = by_key[(Role.ANNOTATOR, tally.annotator_id)]
        member.done, member.last = tally.submitted, tally.last_submitted_at
    _annotator_speed(campaign, by_key)
    extractor_ids = [k[1] for k in by_key if k[0] == Role.EXTRACTOR]
    for row in (
        Clip.objects.filter(campaign=campaign, proposed_by_id__in=extractor_ids)
        .values("proposed_by_id")
        .annotate(
            n=Count("pk"),
            ok=Count("pk", filter=Q(status__in=Clip.POOL_STATUSES)),
            no=Count("pk", filter=Q(status=Clip.Status.REJECTED)),
            last=Max("created_at"),
        )
        .order_by()
    ):
        member = by_key[(Role.EXTRACTOR, row["proposed_by_id"])]
        member.done, member.accepted, member.rejected = row["n"], row["ok"], row["no"]
        member.last = row["last"]
    reviewer_ids = [k[1] for k in by_key if k[0] == Role.REVIEWER]
    for row in (
        Screening.objects.filter(clip__campaign=campaign, reviewer_id__in=reviewer_ids)
        .values("reviewer_id")
        .annotate(n=Count("pk"), last=Max("created_at"))
        .order_by()
    ):
        member = by_key[(Role.REVIEWER, row["reviewer_id"])]
        member.done, member.last = row["n"], row["last"]
    team.invitations = list(
        Invitation.objects.filter(
            campaign=campaign, accepted_at__isnull=True, expires_at__gt=timezone.now()
        ).select_related("created_by")[:200]
    )
    return team


def _annotator_speed(campaign: Campaign, by_key: dict[tuple[str, int], Member]) -> None:
    """Each annotator's median seconds from seeing a clip (or leasing it) to labelling it,
    and labels per active hour (the clock hours in which they labelled), over the campaign's
    latest ``SPEED_SAMPLE`` labels of the last ``SPEED_WINDOW``."""
    since = timezone.now() - SPEED_WINDOW
    took: dict[int, list[float]] = {}
    hours: dict[int, set] = {}
    recent = (
        Assignment.objects.filter(
            clip__campaign=campaign,
            status=Assignment.Status.SUBMITTED,
            finished_at__gte=since,
        )
        .order_by("-finished_at")
        .values_list("annotator_id", "leased_at", "shown_at", "finished_at")[:SPEED_SAMPLE]
    )
    for annotator_id, leased, shown, finished in recent:
        seconds = (finished - (shown or leased)).total_seconds()
        if seconds > 0:
            took.setdefault(annotator_id, []).append(seconds)
        hours.setdefault(annotator_id, set()).add(finished.replace(minute=0, second=0))
    for annotator_id, values in took.items():
        member = by_key.get((Role.ANNOTATOR, annotator_id))
        if member is not None:
            member.median_seconds = round(statistics.median(values), 1)
            member.per_hour = round(len(values) / len(hours[annotator_id]), 1)


# --- The clip browser ---------------------------------------------------------------------

AGREEMENT_CHOICES = ("single", "split", "pending")
FLAG_CHOICES = ("few_faces", "reported", "lowest")


@dataclass(frozen=True)
class ClipFilters:
    campaign: int | None = None
    status: str = ""
    label: str = ""  # a label name: the clip's single label
    agreement: str = ""  # single (a single label), split (distribution only), pending
    movie: int | None = None
    movie_title: str = ""  # part of a title, where a campaign has too many movies to list
    extractor: str = ""  # a username
    flag: str = ""
    after: int | None = None  # the keyset cursor: the last clip id of the page before


def lowest_clip_ids(campaign_id: int) -> list[int]:
    """The clip ids the campaign's latest agreement report lists as lowest in agreement."""
    campaign = Campaign(pk=campaign_id)
    report = loop_selectors.agreement_report_latest(campaign=campaign)
    if report is None or not report.result:
        return []
    return [c["clip_id"] for c in report.result.get("lowest_agreement_clips", [])]


def clip_browse(filters: ClipFilters, page_size: int = PAGE_SIZE) -> tuple[list[Clip], int | None]:
    """One page of clips matching ``filters``, in id order after the cursor, and the cursor
    of the next page (None on the last). Keyset paging: the cost of a page does not grow with
    how far the reader has paged (no OFFSET), and each filter is an indexed column or a
    correlated EXISTS."""
    clips = clip_browse_queryset(filters)
    if filters.after is not None:
        clips = clips.filter(pk__gt=filters.after)
    # Two steps: the page's ids alone (joins only where a filter needs them), then its rows
    # with what the page shows. In one, PostgreSQL sorted every matching wide joined row
    # (all 16,372 for status=complete: 250 ms) before the LIMIT.
    ids = list(clips.order_by("pk").values_list("pk", flat=True)[: page_size + 1])
    more = len(ids) > page_size
    ids = ids[:page_size]
    page = list(
        Clip.objects.filter(pk__in=ids)
        .select_related("campaign", "movie", "proposed_by", "result", "result__single_label")
        .order_by("pk")
    )
    return page, (ids[-1] if more else None)


def clip_browse_queryset(filters: ClipFilters) -> QuerySet[Clip]:
    """The clips matching ``filters``, unordered and without their related rows."""
    clips = Clip.objects.all()
    if filters.campaign is not None:
        clips = clips.filter(campaign_id=filters.campaign)
    if filters.status:
        clips = clips.filter(status=filters.status)
    if filters.movie is not None:
        clips = clips.filter(movie_id=filters.movie)
    if filters.movie_title:
        clips = clips.filter(movie__title__icontains=filters.movie_title)
    if filters.extractor:
        clips = clips.filter(proposed_by__username=filters.extractor)
    if filters.label:
        clips = clips.filter(result__single_label__name=filters.label)
    if filters.agreement == "single":
        clips = clips.filter(result__single_label__isnull=False)
    elif filters.agreement == "split":
        clips = clips.filter(result__isnull=False, result__single_label__isnull=True)
    elif filters.agreement == "pending":
        clips = clips.filter(result__isnull=True)
    if filters.flag == "few_faces":
        clips = clips.filter(few_faces=True)
    elif filters.flag == "reported":
        clips = clips.filter(Exists(ClipReport.objects.filter(clip=OuterRef("pk"))))
    elif filters.flag == "lowest" and filters.campaign is not None:
        clips = clips.filter(pk__in=lowest_clip_ids(filters.campaign))
    elif filters.flag == "lowest":
        clips = clips.none()
    return clips


# --- One clip -----------------------------------------------------------------------------


@dataclass
class ClipDetail:
    clip: Clip
    votes: list[Annotation]
    screenings: list[Screening]
    reports: list[ClipReport]
    lowest: dict | None  # the clip's row in the latest report's lowest-agreement list
    flags: list[str]


def clip_detail(clip: Clip) -> ClipDetail:
    """A clip with its votes (who and when, invalidated ones marked), verdicts, annotators'
    reports, and its row in the latest agreement report's lowest-agreement list."""
    votes = list(
        Annotation.objects.filter(clip=clip)
        .select_related("annotator", "label", "invalidated_by")
        .order_by("created_at", "pk")
    )
    screenings = list(clip.screenings.select_related("reviewer").order_by("created_at"))
    reports = list(clip.reports.select_related("reporter").order_by("created_at"))
    lowest = None
    report = loop_selectors.agreement_report_latest(campaign=clip.campaign)
    if report is not None and report.result:
        lowest = next(
            (
                row
                for row in report.result.get("lowest_agreement_clips", [])
                if row.get("clip_id") == clip.pk
            ),
            None,
        )
    flags = []
    if clip.few_faces:
        flags.append("few_faces")
    if reports:
        flags.append("reported")
    if lowest is not None:
        flags.append("lowest")
    return ClipDetail(clip, votes, screenings, reports, lowest, flags)
