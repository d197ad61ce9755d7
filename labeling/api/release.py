"""REST export of a campaign's labels: the clip list (filtered, cursor-paginated), the whole
campaign as CSV or JSON Lines (streamed), and every label as CSV or JSON Lines (streamed).

Staff, or users given the ``labeling.export_campaign`` permission; annotators get 403.
Streams read through a server-side cursor in chunks, so memory stays flat however large.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator

from django.db import connection
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.views import APIView

from annotation_site.errors import NotFound
from labeling import access
from labeling.api.schema import errors
from labeling.models import Campaign
from labeling.release import rows as release_rows
from labeling.release import splits
from pipeline import csv_safe
from pipeline.aggregation import BUCKETS, duration_bucket
from pipeline.crowd import METHODS, QUALITY_METHODS

CHUNK = 2000
FORMATS = ("csv", "jsonl")
ERRORS = errors(400, 404)


class CanExport(permissions.BasePermission):
    message = "Only staff or users given the export permission can export a campaign."

    def has_permission(self, request, view) -> bool:
        return access.user_can_export(request.user)


def _campaign(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(f"Campaign {campaign_id} not found.")
    return campaign


def _duration_text(seconds: float) -> float | int:
    """Seconds to 3 decimals, written as PostgreSQL writes a float8 (2.0 → 2)."""
    value = round(seconds, 3)
    return int(value) if value.is_integer() else value


def _clip_record(row: dict, names: list[str], method: str | None = None) -> dict:
    """One clip as every export shapes it. ``method`` (one of ``pipeline.crowd.METHODS``)
    gives ``single_label`` by that method, with its ``confidence``; without it the single
    label is DFEW's rule (``majority``)."""
    raw = None if row["end_s"] is None else row["end_s"] - row["start_s"]
    scored = row["quality"] or {}
    record = {
        "clip": row["number"],
        "movie": row["movie_title"],
        "duration_s": None if raw is None else _duration_text(raw),
        "bucket": duration_bucket(raw),
        "votes": {name: row["votes"].get(name, 0) for name in names},
        "distribution": {name: row["distribution"].get(name, 0.0) for name in names},
        "single_label": row["single_label"],
        "fold": row["fold"],
        "n_votes": row["n_votes"],
        "closed_early": row["closed_early"],
        "methods": {
            m: {"label": scored[m].get("label"), "confidence": scored[m].get("confidence")}
            for m in QUALITY_METHODS
            if m in scored
        },
    }
    if method is not None:
        chosen = scored.get(method, {})
        if method != "majority":
            record["single_label"] = chosen.get("label")
        record["method"] = method
        record["confidence"] = chosen.get("confidence")
    return record


def _clip_records(campaign: Campaign, split, names: list[str], method=None) -> Iterator[dict]:
    for row in release_rows.clip_rows(campaign, split).iterator(chunk_size=CHUNK):
        yield _clip_record(row, names, method)


def _method_cells(record: dict) -> list:
    return [record["n_votes"], int(record["closed_early"])] + [
        cell
        for m in QUALITY_METHODS
        for cell in (
            record["methods"].get(m, {}).get("label") or "",
            "" if record["methods"].get(m, {}).get("confidence") is None
            else record["methods"][m]["confidence"],
        )
    ]  # fmt: skip


def clip_csv_lines(campaign: Campaign, split, names: list[str], method=None) -> Iterator[str]:
    """The per-clip CSV written in Python (any database); ``release_rows.clip_csv_copy`` writes the
    same bytes on PostgreSQL. With ``method``, two more columns: ``method`` and
    ``confidence``, and ``single_label`` by that method."""
    extra = ["method", "confidence"] if method is not None else []
    return _csv_lines(
        release_rows.clip_csv_header(names) + extra,
        (
            [r["clip"], r["movie"], r["duration_s"], r["bucket"]]
            + [r["votes"][name] for name in names]
            + [r["single_label"] or "", "" if r["fold"] is None else r["fold"]]
            + _method_cells(r)
            + ([method, "" if r["confidence"] is None else r["confidence"]] if extra else [])
            for r in _clip_records(campaign, split, names, method)
        ),
    )


class _MethodField(serializers.ChoiceField):
    """``?method=``: an aggregation method; an unknown one is a 400 naming the valid ones."""

    def __init__(self, **kwargs):
        super().__init__(
            choices=METHODS,
            required=False,
            help_text="single_label by this aggregation method, with its confidence "
            "(default: the campaign's method)",
            error_messages={
                "invalid_choice": f"Unknown method {{input!r}}. Valid: {', '.join(METHODS)}."
            },
            **kwargs,
        )


def _method(campaign: Campaign, data: dict) -> str | None:
    """The method asked for, else the campaign's when it is not DFEW's rule; None: DFEW's
    rule with the export's plain columns."""
    method = data.get("method")
    if method is None and campaign.aggregation_method != "majority":
        method = campaign.aggregation_method
    return method


def _csv_lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    """CSV text in blocks of rows (one small string per block, not per cell). Text cells a
    spreadsheet would run as a formula are quoted (``pipeline.csv_safe``); numbers are not."""
    buffer = io.StringIO()
    writer = csv_safe.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for n, row in enumerate(rows, start=1):
        writer.writerow(row)
        if n % CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _stream(
    lines: Iterator[str] | Iterator[bytes], fmt: str, filename: str
) -> StreamingHttpResponse:
    content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
    response = StreamingHttpResponse(lines, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


@extend_schema_serializer(component_name="ExportFormat")
class _FormatSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS, default="csv")


class CampaignClipsApi(APIView):
    """A campaign's aggregated clips, filtered, in pages (cursor pagination by clip number)."""

    permission_classes = [permissions.IsAuthenticated, CanExport]

    @extend_schema_serializer(component_name="ClipQuery")
    class FilterSerializer(serializers.Serializer):
        split = serializers.IntegerField(required=False, min_value=1)
        label = serializers.CharField(required=False, help_text="single label name")
        single = serializers.BooleanField(required=False, allow_null=True, default=None)
        fold = serializers.IntegerField(required=False, min_value=1, help_text="needs split")
        bucket = serializers.ChoiceField(choices=[b for b, _, _ in BUCKETS], required=False)
        movie = serializers.IntegerField(required=False, min_value=1, help_text="movie id")
        method = _MethodField()

        def validate(self, data):
            if "fold" in data and "split" not in data:
                raise serializers.ValidationError("fold needs split (a split id).")
            return data

    @extend_schema_serializer(component_name="ClipResult")
    class OutputSerializer(serializers.Serializer):
        clip = serializers.IntegerField()
        movie = serializers.CharField()
        duration_s = serializers.FloatField(allow_null=True)
        bucket = serializers.CharField(allow_null=True)
        votes = serializers.DictField(child=serializers.IntegerField())
        distribution = serializers.DictField(child=serializers.FloatField())
        single_label = serializers.CharField(allow_null=True)
        fold = serializers.IntegerField(allow_null=True)
        n_votes = serializers.IntegerField()
        closed_early = serializers.BooleanField()
        methods = serializers.DictField(child=serializers.DictField())
        method = serializers.CharField(required=False)
        confidence = serializers.FloatField(required=False, allow_null=True)

    # What the answer is: the cursor paginator's envelope around a page of rows.
    PageSerializer = inline_serializer(
        name="ClipResultPage",
        fields={
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": OutputSerializer(many=True),
        },
    )

    class Pagination(CursorPagination):
        ordering = "number"
        page_size = 100
        page_size_query_param = "page_size"
        max_page_size = 1000

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: PageSerializer, **ERRORS},
    )
    def get(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        split = splits.split_for(campaign, f.get("split"))
        rows = release_rows.clip_rows(campaign, split)
        if "label" in f:
            rows = rows.filter(result__single_label__name=f["label"])
        if f.get("single") is not None:
            rows = rows.filter(result__single_label__isnull=not f["single"])
        if "fold" in f:
            rows = rows.filter(membership__fold=f["fold"])
        if "bucket" in f:
            rows = rows.filter(release_rows.bucket_filter(f["bucket"]))
        if "movie" in f:
            rows = rows.filter(movie_id=f["movie"])
        paginator = self.Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        names = list(campaign.labels.order_by("code").values_list("name", flat=True))
        method = _method(campaign, f)
        data = self.OutputSerializer(
            [_clip_record(row, names, method) for row in page], many=True
        ).data
        return paginator.get_paginated_response(data)


class CampaignExportApi(APIView):
    """The whole campaign, one row per aggregated clip, streamed as CSV or JSON Lines. CSV
    columns: clip, movie, duration_s, bucket, votes_<label> for each label, single_label (empty
    when none), fold (of ``split``; empty outside it or without one), n_votes, closed_early
    (1: adaptive overlap closed it before all its votes), <method>_label and
    <method>_confidence per quality-aware method; with ``?method=`` (or a campaign whose method
    is not DFEW's rule) single_label by that method, then method and confidence."""

    permission_classes = [permissions.IsAuthenticated, CanExport]

    @extend_schema_serializer(component_name="ExportQuery")
    class FilterSerializer(_FormatSerializer):
        split = serializers.IntegerField(required=False, min_value=1)
        method = _MethodField()

    @extend_schema(
        parameters=[FilterSerializer],
        responses={(200, "text/csv"): OpenApiTypes.STR, **ERRORS},
    )
    def get(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        fmt = filters.validated_data["format"]
        split = splits.split_for(campaign, filters.validated_data.get("split"))
        names = list(campaign.labels.order_by("code").values_list("name", flat=True))
        method = _method(campaign, filters.validated_data)
        if fmt == "csv" and connection.vendor == "postgresql" and method is None:
            return _stream(
                release_rows.clip_csv_copy(campaign, split, names), fmt, f"{campaign.slug}-clips"
            )
        if fmt == "jsonl":
            lines = (
                json.dumps(r, ensure_ascii=False) + "\n"
                for r in _clip_records(campaign, split, names, method)
            )
        else:
            lines = clip_csv_lines(campaign, split, names, method)
        return _stream(lines, fmt, f"{campaign.slug}-clips")


class CampaignAnnotationsExportApi(APIView):
    """Every valid label of the campaign, one row each (clip, annotator, label, submitted_at),
    streamed as CSV or JSON Lines, for those who aggregate the votes themselves."""

    permission_classes = [permissions.IsAuthenticated, CanExport]

    @extend_schema(
        parameters=[_FormatSerializer],
        responses={(200, "text/csv"): OpenApiTypes.STR, **ERRORS},
    )
    def get(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        filters = _FormatSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        fmt = filters.validated_data["format"]
        rows = release_rows.annotation_rows(campaign).iterator(chunk_size=CHUNK)
        header = ["clip", "annotator", "label", "submitted_at"]
        if fmt == "jsonl":
            lines = (
                json.dumps(dict(zip(header, (c, a, lab, t.isoformat()), strict=True))) + "\n"
                for c, a, lab, t in rows
            )
        else:
            lines = _csv_lines(header, ([c, a, lab, t.isoformat()] for c, a, lab, t in rows))
        return _stream(lines, fmt, f"{campaign.slug}-annotations")
