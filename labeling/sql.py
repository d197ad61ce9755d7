"""The reads on the labelling hot path (`next`, `submit`, token auth), written as SQL.

These run for every label of every annotator. Measured with bench/annotation_load.py on the
2-core development machine, building and compiling each ORM query cost 0.5–2.3 ms of CPU,
more than PostgreSQL spent running it, and was most of the server's CPU per label. Here the
same statements go through ``Model.objects.raw`` or a cursor. Everything else in the app uses
the ORM; writes stay ORM calls in ``services``. Table names come from the models' metadata.

Locking clauses are added only where the backend has them; on SQLite the IMMEDIATE
transaction already holds the database's write lock.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.authtoken.models import Token

from labeling.models import (
    HELD_OR_DONE_STATUSES,
    LIVE_ASSIGNMENT_STATUSES,
    Annotation,
    Assignment,
    Campaign,
    Clip,
    Label,
    Role,
)

CLIP = Clip._meta.db_table
CAMPAIGN = Campaign._meta.db_table
ASSIGNMENT = Assignment._meta.db_table
ANNOTATION = Annotation._meta.db_table
LABEL = Label._meta.db_table
MEMBERS = Campaign.annotators.through._meta.db_table
USER = get_user_model()._meta.db_table
USER_GROUPS = get_user_model().groups.through._meta.db_table
GROUP = Group._meta.db_table
TOKEN = Token._meta.db_table


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


def token_user(key: str):
    """The active user owning API token `key`, with `.role_names` set, or None."""
    flags = ", ".join(
        f"EXISTS (SELECT 1 FROM {USER_GROUPS} ug JOIN {GROUP} g ON g.id = ug.group_id "
        f"WHERE ug.user_id = u.id AND g.name = %s) AS has_{role.value}"
        for role in Role
    )
    user = _first(
        get_user_model().objects.raw(
            f"SELECT u.*, {flags} FROM {USER} u JOIN {TOKEN} t ON t.user_id = u.id "
            "WHERE t.key = %s",
            [*Role.values, key],
        )
    )
    if user is not None:
        user.role_names = {role for role in Role.values if getattr(user, f"has_{role}")}
    return user


def lock_user(user_id: int) -> None:
    """Locks the user's row until the transaction ends (a no-op lock on SQLite, whose
    IMMEDIATE transaction already serialises writers)."""
    clause = _for_update()
    if clause:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {USER} WHERE id = %s {clause}", [user_id])


def open_lease_ids(user_id: int, campaign_id: int | None, now: datetime) -> list[int]:
    """The annotator's live leases in open campaigns, oldest first."""
    sql = (
        f"SELECT a.id FROM {ASSIGNMENT} a JOIN {CLIP} c ON c.id = a.clip_id "
        f"JOIN {CAMPAIGN} k ON k.id = c.campaign_id "
        "WHERE a.annotator_id = %s AND a.status = %s AND a.expires_at > %s AND k.is_active"
    )
    params: list = [user_id, Assignment.Status.LEASED, _when(now)]
    if campaign_id is not None:
        sql += " AND c.campaign_id = %s"
        params.append(campaign_id)
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY a.leased_at, a.id", params)
        return [row[0] for row in cursor.fetchall()]


def candidate_clip(
    user_id: int,
    campaign_id: int | None,
    now: datetime,
    tried: list[int],
    skip_locked: bool = True,
):
    """Locks and returns the open clip nearest completion that the annotator has neither
    labelled nor leased, with `.target` (annotations per clip) and `.lease_minutes`; or None.

    With `skip_locked`, racing annotators spread over clips instead of queueing on one, but a
    clip locked for a moment by someone else's submit looks absent; without it the query waits
    for that lock. The count is from this statement's snapshot; the caller re-counts under the
    lock.
    """
    live = "(a.status = %s OR (a.status = %s AND a.expires_at > %s))"
    live_params = [Assignment.Status.SUBMITTED, Assignment.Status.LEASED, _when(now)]
    taken = f"(SELECT count(*) FROM {ASSIGNMENT} a WHERE a.clip_id = c.id AND {live})"
    by_campaign = "AND c.campaign_id = %s" if campaign_id is not None else ""
    not_tried = f"AND c.id NOT IN ({', '.join(['%s'] * len(tried))})" if tried else ""
    held = ", ".join(["%s"] * len(HELD_OR_DONE_STATUSES))
    sql = f"""
        SELECT c.*, k.annotations_per_clip AS target, k.lease_minutes AS lease_minutes,
               {taken} AS taken
        FROM {CLIP} c JOIN {CAMPAIGN} k ON k.id = c.campaign_id
        WHERE c.status = %s AND k.is_active
          AND c.campaign_id IN (SELECT m.campaign_id FROM {MEMBERS} m WHERE m.user_id = %s)
          {by_campaign} {not_tried}
          AND NOT EXISTS (SELECT 1 FROM {ASSIGNMENT} a WHERE a.clip_id = c.id
                          AND a.annotator_id = %s AND a.status IN ({held}))
          AND {taken} < k.annotations_per_clip
        ORDER BY taken DESC, c.number, c.id
        LIMIT 1 {_for_update(of="c", skip_locked=skip_locked)}
    """
    params = [*live_params, Clip.Status.ANNOTATING, user_id]
    if campaign_id is not None:
        params.append(campaign_id)
    params += [*tried, user_id, *HELD_OR_DONE_STATUSES, *live_params]
    return _first(Clip.objects.raw(sql, params))


def live_assignments(clip_id: int) -> list[tuple[int, int, int, str, datetime]]:
    """(id, slot, annotator, status, expires_at) of the clip's leased and submitted rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, slot, annotator_id, status, expires_at FROM {ASSIGNMENT} "
            "WHERE clip_id = %s AND status IN (%s, %s)",
            [clip_id, *LIVE_ASSIGNMENT_STATUSES],
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


def clip_of_assignment_locked(assignment_id: int, user_id: int):
    """Locks and returns the clip of the user's assignment, with `.target` and
    `.lease_minutes`; None when the assignment is missing or not theirs."""
    return _first(
        Clip.objects.raw(
            f"SELECT c.*, k.annotations_per_clip AS target, k.lease_minutes AS lease_minutes "
            f"FROM {CLIP} c "
            f"JOIN {CAMPAIGN} k ON k.id = c.campaign_id "
            f"JOIN {ASSIGNMENT} a ON a.clip_id = c.id "
            f"WHERE a.id = %s AND a.annotator_id = %s {_for_update(of='c')}",
            [assignment_id, user_id],
        )
    )


def assignment_locked(assignment_id: int) -> Assignment:
    return _first(
        Assignment.objects.raw(
            f"SELECT * FROM {ASSIGNMENT} WHERE id = %s {_for_update()}", [assignment_id]
        )
    )


def label_named(campaign_id: int, name: str) -> Label | None:
    return _first(
        Label.objects.raw(
            f"SELECT * FROM {LABEL} WHERE campaign_id = %s AND name = %s", [campaign_id, name]
        )
    )


def annotation_count(clip_id: int) -> int:
    """The clip's valid (not invalidated) annotations."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {ANNOTATION} WHERE clip_id = %s AND invalidated_at IS NULL",
            [clip_id],
        )
        return cursor.fetchone()[0]


def labels_and_submitted(campaign_id: int, user_id: int) -> tuple[list[Label], int]:
    """The campaign's labels in code order, and how many labels this annotator submitted in it."""
    labels = list(
        Label.objects.raw(
            f"SELECT l.*, (SELECT count(*) FROM {ANNOTATION} n JOIN {CLIP} c ON c.id = n.clip_id "
            "WHERE n.annotator_id = %s AND c.campaign_id = %s) AS submitted "
            f"FROM {LABEL} l WHERE l.campaign_id = %s ORDER BY l.code",
            [user_id, campaign_id, campaign_id],
        )
    )
    return labels, (labels[0].submitted if labels else 0)
