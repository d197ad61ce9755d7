"""The per-clip and per-label rows every export reads, and the per-clip CSV as PostgreSQL's
COPY writes it.

A clip's duration bucket is computed from its start and end, by the one rule
(`pipeline.aggregation.BUCKETS`) that the clip's stored copy, ``Clip.duration_bucket``
(`Clip.bucket_of`, kept in step with start and end), is written by: the exports read start
and end, so a clip stored before the copy existed is bucketed too.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection
from django.db.models import F, FilteredRelation, IntegerField, Q, QuerySet, Value

from annotation_site.errors import ApplicationError
from labeling.models import (
    Annotation,
    Campaign,
    Clip,
    ClipLabel,
    Label,
    Movie,
    Split,
    SplitClip,
)
from pipeline.aggregation import BUCKETS
from pipeline.crowd import QUALITY_METHODS
from pipeline.csv_safe import sql_neutralise


def clip_rows(campaign: Campaign, split: Split | None = None) -> QuerySet:
    """The campaign's aggregated clips as value rows, ordered by clip number, with the fold of
    ``split`` (None outside it). One query; iterate it with ``.iterator()`` for large campaigns."""
    rows = Clip.objects.filter(campaign=campaign, result__isnull=False)
    fold = Value(None, output_field=IntegerField())
    if split is not None:
        rows = rows.annotate(
            membership=FilteredRelation(
                "split_memberships", condition=Q(split_memberships__split=split)
            )
        )
        fold = F("membership__fold")
    return rows.order_by("number").values(
        "pk",
        "number",
        "movie_id",
        "start_s",
        "end_s",
        "video",
        "faces",
        movie_title=F("movie__title"),
        votes=F("result__votes"),
        distribution=F("result__distribution"),
        single_label=F("result__single_label__name"),
        n_votes=F("result__n_annotations"),
        closed_early=F("result__closed_early"),
        quality=F("result__quality"),
        fold=fold,
    )


def bucket_filter(name: str) -> Q:
    """Clips whose duration falls in a Table 2 bucket (``0-2s``, ``2-5s``, ``5s+``), as
    `pipeline.aggregation.duration_bucket` puts them (the raw duration, not the rounded one)."""
    for bucket, low, high in BUCKETS:
        if bucket == name:
            q = Q(end_s__isnull=False, end_s__gte=F("start_s") + low)
            return q if high == float("inf") else q & Q(end_s__lt=F("start_s") + high)
    valid = [bucket for bucket, _, _ in BUCKETS]
    raise ApplicationError(
        f"Unknown bucket {name!r}. Valid: {', '.join(valid)}.", {"valid_buckets": valid}
    )


def clip_csv_header(names: list[str]) -> list[str]:
    """The per-clip CSV's columns, whichever way it is written."""
    return [
        "clip",
        "movie",
        "duration_s",
        "bucket",
        *[f"votes_{n}" for n in names],
        "single_label",
        "fold",
        # How many votes the clip had (adaptive overlap closes some early), and every
        # aggregation method's label and confidence (pipeline.crowd.METHODS).
        "n_votes",
        "closed_early",
        *[f"{m}_{c}" for m in QUALITY_METHODS for c in ("label", "confidence")],
    ]


def clip_csv_copy(campaign: Campaign, split: Split | None, names: list[str]) -> Iterator[bytes]:
    """The per-clip CSV as PostgreSQL's ``COPY … TO STDOUT WITH CSV HEADER`` writes it, block by
    block: the same columns and values as the generic writer (a test holds them equal), text
    cells neutralised by ``pipeline.csv_safe``'s rule in SQL.

    PostgreSQL only. bench/export.py measured the generic writer at 4.6× this COPY's time for
    DFEW's 16,372 clips (JSON decoding and row shaping in Python); this runs near the bound.
    """
    from psycopg import sql

    votes = [
        sql.SQL("COALESCE((r.votes ->> {})::int, 0) AS {}").format(
            sql.Literal(name), sql.Identifier(f"votes_{name}")
        )
        for name in names
    ]
    buckets = sql.SQL(" ").join(
        sql.SQL("WHEN c.end_s - c.start_s >= {} AND c.end_s - c.start_s < {} THEN {}").format(
            sql.Literal(low), sql.Literal(high), sql.Literal(name)
        )
        for name, low, high in BUCKETS
    )
    query = sql.SQL(
        "COPY (SELECT c.number AS clip, {movie_cell} AS movie, "
        "round((c.end_s - c.start_s)::numeric, 3)::float8 AS duration_s, "
        "CASE {buckets} END AS bucket, {votes}, "
        # NULL, not an empty string: COPY writes NULL as an empty unquoted field, as csv does.
        "{label_cell} AS single_label, s.fold AS fold, r.n_annotations AS n_votes, "
        "r.closed_early::int AS closed_early, {quality} "
        "FROM {clip} c JOIN {result} r ON r.clip_id = c.id JOIN {movie} m ON m.id = c.movie_id "
        "LEFT JOIN {label} l ON l.id = r.single_label_id "
        "LEFT JOIN {member} s ON s.clip_id = c.id AND s.split_id = {split} "
        "WHERE c.campaign_id = {campaign} ORDER BY c.number) TO STDOUT WITH CSV HEADER"
    ).format(
        # Text cells a spreadsheet would run get a leading quote, as the Python writer does.
        movie_cell=sql.SQL(sql_neutralise("m.title")),
        label_cell=sql.SQL(sql_neutralise("l.name")),
        buckets=buckets,
        votes=sql.SQL(", ").join(votes),
        # Each method's label (a text cell: neutralised as the single label is) and confidence;
        # the method names are our own constants.
        quality=sql.SQL(", ").join(
            sql.SQL("{cell} AS {name}").format(
                cell=sql.SQL(
                    sql_neutralise(f"(r.quality -> '{m}' ->> 'label')")
                    if c == "label"
                    else f"(r.quality -> '{m}' ->> 'confidence')"
                ),
                name=sql.Identifier(f"{m}_{c}"),
            )
            for m in QUALITY_METHODS
            for c in ("label", "confidence")
        ),
        clip=sql.Identifier(Clip._meta.db_table),
        result=sql.Identifier(ClipLabel._meta.db_table),
        movie=sql.Identifier(Movie._meta.db_table),
        label=sql.Identifier(Label._meta.db_table),
        member=sql.Identifier(SplitClip._meta.db_table),
        split=sql.Literal(split.pk if split is not None else None),
        campaign=sql.Literal(campaign.pk),
    )
    # COPY hands over one row per block: send ~64 KiB at a time, not one write per row.
    buffer = bytearray()
    with connection.cursor() as cursor, cursor.cursor.copy(query) as copy:
        for block in copy:
            buffer += block
            if len(buffer) >= 1 << 16:
                yield bytes(buffer)
                buffer.clear()
    yield bytes(buffer)


def annotation_rows(campaign: Campaign) -> QuerySet:
    """One row per valid label of the campaign: clip number, annotator, label, submitted at."""
    return (
        Annotation.objects.valid()
        .filter(clip__campaign=campaign)
        .order_by("clip__number", "slot")
        .values_list("clip__number", "annotator__username", "label__name", "created_at")
    )
