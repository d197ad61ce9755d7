"""REST API for an extractor's sent segments: withdraw a clip before its extraction starts."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import access
from labeling.api.schema import errors
from labeling.media import movies


class _Extractor(permissions.BasePermission):
    message = "Only extractors and staff withdraw clips."

    def has_permission(self, request, view) -> bool:
        return access.can_extract(request.user)


class ClipWithdrawApi(APIView):
    """POST: withdraw a clip that waits for its extraction (``movies.clip_withdraw``): the
    clip's extractor or staff; 409 once its extraction has started."""

    permission_classes = [permissions.IsAuthenticated, _Extractor]

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "ClipWithdrawn",
                {"withdrawn": serializers.IntegerField(), "number": serializers.IntegerField()},
            ),
            **errors(403, 404, 409),
        },
    )
    def post(self, request, clip_id: int):
        number = movies.clip_withdraw(user=request.user, clip_id=clip_id)
        return Response({"withdrawn": clip_id, "number": number})
