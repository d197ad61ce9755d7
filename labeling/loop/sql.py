"""The statements of the labelling hot path (`next`, `submit`), written as SQL (token auth's
is in `annotation_site.auth`).

These run for every label of every annotator. Measured with bench/annotation_load.py on the
2-core development machine, building and compiling each ORM query cost 0.5–2.3 ms of CPU,
more than PostgreSQL spent running it, and was most of the server's CPU per label. Here the
same statements go through ``Model.objects.raw`` or a cursor. Everything else in the app uses
the ORM. Most are reads; the writes here are the counts kept beside the rows (a clip's
``slots_held``, `clip_slots_recount`, called only by `labeling.loop.slots`; the annotator's
tally, `tally_add`; both rebuilt by `campaign_counts_rebuild`), the label's reward
(`reward_earn_label`) and the planner's statistics (`analyze_after_bulk_load`). Table names
come from the models' metadata.

Locking clauses are added only where the backend has them; on SQLite the IMMEDIATE
transaction already holds the database's write lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection

from labeling.models import (
    HELD_OR_DONE_STATUSES,
    LIVE_ASSIGNMENT_STATUSES,
    Annotation,
    AnnotatorTally,
    Assignment,
    Campaign,
    Clip,
    Label,
    RewardEntry,
    RewardKind,
    Role,
)
from labeling.rewards.rules import RATE_TO_CENTS_SQL

CLIP = Clip._meta.db_table
CAMPAIGN = Campaign._meta.db_table
ASSIGNMENT = Assignment._meta.db_table
ANNOTATION = Annotation._meta.db_table
LABEL = Label._meta.db_table
MEMBERS = Campaign.annotators.through._meta.db_table
# Only annotator memberships let a person lease (labeling.access: one row per role).
ANNOTATOR_ROLE = Role.ANNOTATOR.value
TALLY = AnnotatorTally._meta.db_table
REWARD = RewardEntry._meta.db_table
USER = get_user_model()._meta.db_table


def _for_update(of: str = "", skip_locked: bool = False) -> str:
    features = connection.features
    if not features.has_select_for_update:
        return ""
    clause = "FOR UPDATE"
    if of and features.has_select_for_update_of:
        clause += f" OF {of}"
    if skip_locked and features.has_select_for_update_skip_locked:
        clause += " SKIP LOCKED"
    return clause


def _when(moment: datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def _first(raw_queryset):
    return next(iter(raw_queryset), None)


@dataclass(frozen=True, slots=True)
class LockedClip:
    """A clip as the loop reads it under its row lock, with its campaign's loop settings.

    ``clip`` is the model row and only that (no attributes added to it); the campaign's
    settings come in the same statement, in their own fields."""

    clip: Clip
    target: int  # the campaign's annotations_per_clip: the clip's slots are 1..target
    lease_minutes: int
    min_view_seconds: float
    # The stop rule's settings (`slots.stop_rule_of` reads them by the campaign's names).
    single_label_min_votes: int = 7
    adaptive_overlap: bool = False
    adaptive_min_votes: int = 5
    adaptive_confidence: float | None = None
    aggregation_method: str = "majority"

    @property
    def pk(self) -> int:
        return self.clip.pk

    @property
    def annotations_per_clip(self) -> int:
        return self.target


# The campaign's settings that a `LockedClip` carries, as the statements below select them.
_LOOP_SETTINGS = (
    "k.annotations_per_clip AS target, k.lease_minutes AS lease_minutes, "
    "k.min_view_seconds AS min_view_seconds, k.single_label_min_votes AS k_min_votes, "
    "k.adaptive_overlap AS k_adaptive, k.adaptive_min_votes AS k_adaptive_min, "
    "k.adaptive_confidence AS k_confidence, k.aggregation_method AS k_method"
)


def _locked_clip(raw_queryset) -> LockedClip | None:
    """The first row of a raw ``SELECT c.*, {_LOOP_SETTINGS}``, as a `LockedClip`. A raw query
    sets extra columns as attributes of the row; they are taken off it here."""
    clip = _first(raw_queryset)
    if clip is None:
        return None
    extra = clip.__dict__
    return LockedClip(
        clip=clip,
        target=extra.pop("target"),
        lease_minutes=extra.pop("lease_minutes"),
        min_view_seconds=extra.pop("min_view_seconds"),
        single_label_min_votes=extra.pop("k_min_votes"),
        # SQLite hands back 0/1 for a boolean selected by a raw query.
        adaptive_overlap=bool(extra.pop("k_adaptive")),
        adaptive_min_votes=extra.pop("k_adaptive_min"),
        adaptive_confidence=extra.pop("k_confidence"),
        aggregation_method=extra.pop("k_method"),
    )


def lock_user(user_id: int) -> None:
    """Locks the user's row until the transaction ends (a no-op lock on SQLite, whose
    IMMEDIATE transaction already serialises writers)."""
    clause = _for_update()
    if clause:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {USER} WHERE id = %(user)s {clause}", {"user": user_id})


def _in(name: str, values) -> tuple[str, dict]:
    """Named placeholders for an IN list: ("%(name_0)s, %(name_1)s", {"name_0": …})."""
    params = {f"{name}_{i}": value for i, value in enumerate(values)}
    return ", ".join(f"%({key})s" for key in params), params


# `AssignmentQuerySet.live_leases` in SQL, for the one statement below that needs it; the
# test tests/labeling/test_loop_rules.py (LiveLeaseRuleTests) checks that both select the same
# rows.
LIVE_LEASE = "a.status = %(leased)s AND a.expires_at > %(now)s"


def open_lease_ids(user_id: int, campaign_id: int | None, now: datetime) -> list[int]:
    """The annotator's live leases in open campaigns, oldest first."""
    by_campaign = "AND c.campaign_id = %(campaign)s" if campaign_id is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT a.id FROM {ASSIGNMENT} a JOIN {CLIP} c ON c.id = a.clip_id "
            f"JOIN {CAMPAIGN} k ON k.id = c.campaign_id "
            f"WHERE a.annotator_id = %(user)s AND {LIVE_LEASE} AND k.is_active {by_campaign} "
            "ORDER BY a.leased_at, a.id",
            {
                "user": user_id,
                "leased": Assignment.Status.LEASED,
                "now": _when(now),
                "campaign": campaign_id,
            },
        )
        return [row[0] for row in cursor.fetchall()]


# How many in-flight clips (some slots held, some free) `candidate_clip` looks at before it
# turns to fresh ones: an annotator far ahead of the others has touched many of them, and the
# walk past those must stay bounded.
CANDIDATE_WINDOW = 200

# The three places `candidate_clip` looks, in order: the in-flight window (nearest completion
# first), then fresh clips by number, then (only when both come up empty) the whole walk. Each
# is (the rows it starts from, a condition, the order). The window is a derived table joined
# to the clips and ordered by its own columns, so the planner reads its few rows first (ordered
# by the clips' columns, PostgreSQL walked every open clip and tested each against it).
_SCOPES = {
    "window": (
        f"""(SELECT w.id, w.slots_held, w.number FROM {CLIP} w
             WHERE w.campaign_id = %(campaign)s AND w.status = %(annotating)s
               AND w.slots_held > 0 AND w.slots_held < (
                   SELECT t.annotations_per_clip FROM {CAMPAIGN} t WHERE t.id = %(campaign)s)
             ORDER BY w.slots_held DESC, w.number LIMIT %(window)s) win
            JOIN {CLIP} c ON c.id = win.id""",
        "",
        "win.slots_held DESC, win.number",
    ),
    "fresh": (CLIP + " c", "AND c.slots_held = 0", "c.number"),
    "all": (CLIP + " c", "", "c.slots_held DESC, c.number"),
}


def candidate_clip(
    user_id: int, campaign_id: int, tried: list[int], lock: str = "skip"
) -> LockedClip | None:
    """Locks and returns the open clip of the campaign nearest completion with a free slot
    that the annotator has neither labelled nor leased, with its campaign's loop settings; or
    None.

    It walks the index `clip_lease_order` (campaign, status, slots held desc, number) and
    stops at the first clip the annotator has not touched, so its cost does not grow with the
    number of open clips. An annotator far ahead of the others (DFEW's shape: everyone labels
    every clip) has touched many in-flight clips; the walk looks at the first
    `CANDIDATE_WINDOW` in-flight clips only, then at fresh clips by number, and walks all of
    them only when both come up empty, so its cost does not grow with how far ahead the
    annotator is either. With `lock="skip"` it locks the clip it returns and passes over
    locked ones (racing annotators spread over clips instead of queueing on one, but a clip
    locked for a moment by someone else's submit looks absent); with `lock="none"` it locks
    nothing (the caller then waits for that one clip, `clip_lock_if_open`). The caller checks
    the slots under the lock.
    """
    held, held_params = _in("held", HELD_OR_DONE_STATUSES)
    tried_sql, tried_params = _in("tried", tried)
    not_tried = f"AND c.id NOT IN ({tried_sql})" if tried else ""
    params = {
        "campaign": campaign_id,
        "annotating": Clip.Status.ANNOTATING,
        "user": user_id,
        "window": CANDIDATE_WINDOW,
        **held_params,
        **tried_params,
    }
    for rows, scope, order in _SCOPES.values():
        sql = f"""
            SELECT c.*, {_LOOP_SETTINGS}
            FROM {rows} JOIN {CAMPAIGN} k ON k.id = c.campaign_id
            WHERE c.campaign_id = %(campaign)s AND c.status = %(annotating)s AND k.is_active
              AND EXISTS (SELECT 1 FROM {MEMBERS} m
                          WHERE m.campaign_id = c.campaign_id AND m.user_id = %(user)s
                            AND m.role = '{ANNOTATOR_ROLE}')
              AND c.slots_held < k.annotations_per_clip {not_tried} {scope}
              AND NOT EXISTS (SELECT 1 FROM {ASSIGNMENT} a WHERE a.clip_id = c.id
                              AND a.annotator_id = %(user)s AND a.status IN ({held}))
            ORDER BY {order}
            LIMIT 1 {_for_update(of="c", skip_locked=True) if lock == "skip" else ""}
        """
        clip = _locked_clip(Clip.objects.raw(sql, params))
        if clip is not None:
            return clip
    return None


def clip_lock_if_open(clip_id: int) -> bool:
    """Waits for and takes the clip's row lock until the transaction ends; False (and no lock)
    when, once the lock is free, the clip is no longer being annotated."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {CLIP} WHERE id = %(clip)s AND status = %(annotating)s "
            f"{_for_update()}",
            {"clip": clip_id, "annotating": Clip.Status.ANNOTATING},
        )
        return cursor.fetchone() is not None


def member_campaign_ids(user_id: int) -> list[int]:
    """The open campaigns the user annotates, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT k.id FROM {CAMPAIGN} k JOIN {MEMBERS} m ON m.campaign_id = k.id "
            f"WHERE m.user_id = %(user)s AND m.role = '{ANNOTATOR_ROLE}' AND k.is_active "
            "ORDER BY k.created_at, k.id",
            {"user": user_id},
        )
        return [row[0] for row in cursor.fetchall()]


def live_assignments(clip_id: int) -> list[tuple[int, int, int, str, datetime]]:
    """(id, slot, annotator, status, expires_at) of the clip's rows that hold a slot."""
    live, live_params = _in("live", LIVE_ASSIGNMENT_STATUSES)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, slot, annotator_id, status, expires_at FROM {ASSIGNMENT} "
            f"WHERE clip_id = %(clip)s AND status IN ({live})",
            {"clip": clip_id, **live_params},
        )
        rows = cursor.fetchall()
    # SQLite hands back naive datetimes (Django's SQLite backend has a converter to aware
    # ones); PostgreSQL's driver hands back aware datetimes already.
    convert = getattr(connection.ops, "convert_datetimefield_value", None)
    if convert is None:
        return rows
    field = Assignment._meta.get_field("expires_at")
    return [
        (pk, slot, annotator, status, convert(expires, field, connection))
        for pk, slot, annotator, status, expires in rows
    ]


def clip_slots_recount(*clip_ids: int) -> None:
    """Sets each clip's `slots_held` from its assignment rows. Caller holds the clips' locks;
    called by `labeling.loop.slots` with every change to the rows, and only there."""
    if not clip_ids:
        return
    live, live_params = _in("live", LIVE_ASSIGNMENT_STATUSES)
    ids, id_params = _in("clip", clip_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {CLIP} SET slots_held = (SELECT count(*) FROM {ASSIGNMENT} a "
            f"WHERE a.clip_id = {CLIP}.id AND a.status IN ({live})) WHERE id IN ({ids})",
            {**live_params, **id_params},
        )


# A bulk load of at least this many rows refreshes PostgreSQL's statistics of its table at
# once, as its manual advises ("Populating a Database": run ANALYZE afterwards).
BULK_ANALYZE_ROWS = 500


def analyze_after_bulk_load(model, rows: int) -> None:
    """Refreshes the planner's statistics of ``model``'s table after ``rows`` were loaded in
    bulk (PostgreSQL; a no-op below ``BULK_ANALYZE_ROWS`` and on SQLite, whose planner uses no
    statistics unless asked to).

    Without it the planner keeps the statistics of the table as it was until autovacuum's
    next round, a minute or more later. Measured on a freshly registered 16,372-clip campaign
    (one annotator, in-process): `next`'s candidate query believed the campaign held one clip
    and scanned all of them for each clip of its window: PostgreSQL CPU 9.9 ms per label, wall
    38 ms; after ANALYZE 4.6 ms and 12 ms."""
    if connection.vendor != "postgresql" or rows < BULK_ANALYZE_ROWS:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def campaign_counts_rebuild(campaign_id: int) -> None:
    """Recomputes every clip's `slots_held` and every member's tally in the campaign from the
    assignment and annotation rows (after a bulk import; the same counts as the hot path's)."""
    live, live_params = _in("live", LIVE_ASSIGNMENT_STATUSES)
    params = {"campaign": campaign_id, **live_params}
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {CLIP} SET slots_held = (SELECT count(*) FROM {ASSIGNMENT} a "
            f"WHERE a.clip_id = {CLIP}.id AND a.status IN ({live})) "
            "WHERE campaign_id = %(campaign)s",
            params,
        )
        cursor.execute(f"DELETE FROM {TALLY} WHERE campaign_id = %(campaign)s", params)
        cursor.execute(
            f"INSERT INTO {TALLY} (campaign_id, annotator_id, submitted, last_submitted_at) "
            "SELECT c.campaign_id, n.annotator_id, count(*), max(n.created_at) "
            f"FROM {ANNOTATION} n JOIN {CLIP} c ON c.id = n.clip_id "
            "WHERE c.campaign_id = %(campaign)s "
            "GROUP BY c.campaign_id, n.annotator_id",
            params,
        )


def clip_of_assignment_locked(assignment_id: int, user_id: int) -> LockedClip | None:
    """Locks and returns the clip of the user's assignment, with its campaign's loop settings;
    None when the assignment is missing or not theirs."""
    return _locked_clip(
        Clip.objects.raw(
            f"SELECT c.*, {_LOOP_SETTINGS} "
            f"FROM {CLIP} c "
            f"JOIN {CAMPAIGN} k ON k.id = c.campaign_id "
            f"JOIN {ASSIGNMENT} a ON a.clip_id = c.id "
            f"WHERE a.id = %(assignment)s AND a.annotator_id = %(user)s {_for_update(of='c')}",
            {"assignment": assignment_id, "user": user_id},
        )
    )


def assignment_locked(assignment_id: int) -> Assignment:
    return _first(
        Assignment.objects.raw(
            f"SELECT * FROM {ASSIGNMENT} WHERE id = %(id)s {_for_update()}", {"id": assignment_id}
        )
    )


def label_named(campaign_id: int, name: str) -> Label | None:
    return _first(
        Label.objects.raw(
            f"SELECT * FROM {LABEL} WHERE campaign_id = %(campaign)s AND name = %(name)s",
            {"campaign": campaign_id, "name": name},
        )
    )


def annotation_count(clip_id: int) -> int:
    """The clip's valid (not invalidated) annotations."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {ANNOTATION} "
            "WHERE clip_id = %(clip)s AND invalidated_at IS NULL",
            {"clip": clip_id},
        )
        return cursor.fetchone()[0]


def clip_votes(clip_id: int) -> list[tuple[int, int]]:
    """(annotator id, label code) of the clip's valid annotations: what the adaptive stop rule
    reads in place of `annotation_count` (only in campaigns with adaptive overlap)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT n.annotator_id, l.code FROM {ANNOTATION} n JOIN {LABEL} l "
            "ON l.id = n.label_id WHERE n.clip_id = %(clip)s AND n.invalidated_at IS NULL",
            {"clip": clip_id},
        )
        return cursor.fetchall()


def label_codes(campaign_id: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT code FROM {LABEL} WHERE campaign_id = %(campaign)s ORDER BY code",
            {"campaign": campaign_id},
        )
        return [row[0] for row in cursor.fetchall()]


def labels_and_submitted(campaign_id: int, user_id: int) -> tuple[list[Label], int]:
    """The campaign's labels in code order, and how many labels this annotator submitted in it
    (from their tally: no count over their history)."""
    labels = list(
        Label.objects.raw(
            "SELECT l.*, COALESCE((SELECT t.submitted FROM "
            f"{TALLY} t WHERE t.campaign_id = %(campaign)s AND t.annotator_id = %(user)s), 0) "
            f"AS submitted FROM {LABEL} l WHERE l.campaign_id = %(campaign)s ORDER BY l.code",
            {"campaign": campaign_id, "user": user_id},
        )
    )
    return labels, (labels[0].submitted if labels else 0)


def tally_add(campaign_id: int, user_id: int, now: datetime) -> None:
    """One more submitted label for the annotator in the campaign, submitted `now` (an
    upsert)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TALLY} (campaign_id, annotator_id, submitted, last_submitted_at) "
            "VALUES (%(campaign)s, %(user)s, 1, %(now)s) "
            "ON CONFLICT (campaign_id, annotator_id) "
            f"DO UPDATE SET submitted = {TALLY}.submitted + 1, last_submitted_at = %(now)s",
            {"campaign": campaign_id, "user": user_id, "now": _when(now)},
        )


def reward_earn_label(campaign_id: int, user_id: int, clip_id: int, annotation_id: int,
                      now: datetime) -> None:  # fmt: skip
    """The label's reward at the campaign's rate in force now, in the submit's transaction (one
    statement; nothing when the rate is 0). The database copies the rate and prices it by the
    ledger's one rate-to-cents rule (``rewards.rules.RATE_TO_CENTS_SQL``, the same cents as
    ``rules.rate_to_cents``). The constraint ``reward_one_live_earning`` refuses a second."""
    cents = RATE_TO_CENTS_SQL.format(rate="k.reward_annotation")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {REWARD} (campaign_id, person_id, kind, clip_id, annotation_id, "
            "amount_cents, reason, created_at) "
            f"SELECT k.id, %(user)s, %(kind)s, %(clip)s, %(annotation)s, {cents}, '', %(now)s "
            f"FROM {CAMPAIGN} k WHERE k.id = %(campaign)s AND {cents} > 0",
            {
                "user": user_id,
                "kind": RewardKind.ANNOTATION.value,
                "clip": clip_id,
                "annotation": annotation_id,
                "now": _when(now),
                "campaign": campaign_id,
            },
        )
