"""What the OpenAPI schema says about errors: every 4xx answer is ``{"detail": "..."}``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR = inline_serializer(
    "Error",
    {
        "detail": serializers.CharField(help_text="What went wrong, for a person to read."),
    },
)

_MEANING = {
    400: "Bad input; the message says which field and why. Nothing changed.",
    401: "No credentials, or a bad token.",
    403: "Your role may not do this.",
    404: "No such object, or not yours.",
    405: "Wrong method.",
    409: "Conflicts with the object's state; the message says how.",
    429: "Too many open leases: submit or release one first.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema responses for the given error statuses (401 and 403 are always possible)."""
    return {
        code: OpenApiResponse(response=ERROR, description=_MEANING[code])
        for code in sorted({401, 403, *codes})
    }


def document_not_found(result: dict, generator, request, public) -> dict:
    """drf-spectacular hook: every operation with a path parameter may answer 404.

    An unknown id, and a path whose parameter is no id at all (which no URL matches), both
    answer ``404 {"detail"}`` (annotation_site/errors.py), whatever the view documents.
    """
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        if "{" not in path:
            continue
        for operation in operations.values():
            operation["responses"].setdefault(
                "404",
                {
                    "content": {"application/json": {"schema": error}},
                    "description": _MEANING[404],
                },
            )
    return result
