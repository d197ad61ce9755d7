"""REST API of one's account: tokens (obtain, rotate) and ``/me/``."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import exceptions, permissions, serializers, throttling
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_site import auth
from annotation_site.errors import JSONParser
from labeling.api.schema import ERROR, errors
from labeling.models import Annotation
from labeling.rewards import earnings

_TOKEN_OUT = inline_serializer(
    "Token",
    {"token": serializers.CharField(), "expires_at": serializers.DateTimeField()},
)


_TOO_MANY = OpenApiResponse(
    response=ERROR,
    description="Too many attempts, or locked out after failed logins; Retry-After says when "
    "to try again.",
)


def _token_answer(token) -> Response:
    return Response({"token": token.key, "expires_at": token.created + settings.API_TOKEN_TTL})


class TokenApi(ObtainAuthToken):
    """POST {username, password} → {token, expires_at}."""

    parser_classes = [JSONParser]
    throttle_classes = [throttling.ScopedRateThrottle, auth.UsernameRateThrottle]
    throttle_scope = "auth-token"

    @extend_schema(
        responses={
            200: _TOKEN_OUT,
            400: OpenApiResponse(response=ERROR, description="Bad credentials."),
            429: _TOO_MANY,
        }
    )
    def post(self, request, *args, **kwargs):
        data = self.get_serializer(data=request.data)
        if not data.is_valid():
            # axes flags the request it refused (too many failures for this user or address).
            if getattr(request, "axes_locked_out", False):
                wait = auth.cool_off_seconds(request)
                raise exceptions.Throttled(wait=wait, detail=auth.lockout_message(wait))
            raise exceptions.ValidationError(data.errors)
        return _token_answer(auth.token_issue(data.validated_data["user"]))


class TokenRotateApi(APIView):
    """A new token for the caller; the one used until now stops working."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: _TOKEN_OUT, **errors()})
    def post(self, request):
        return _token_answer(auth.token_rotate(request.user))


class MeApi(APIView):
    """Who you are, how many of your labels stand, and what you have earned (amounts are
    decimal strings in the ledger's currency; only ever your own)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        annotations = serializers.IntegerField(
            help_text="Your labels that stand (not invalidated)."
        )
        earnings = inline_serializer(
            "Earnings",
            {
                "currency": serializers.CharField(help_text="ISO 4217 code, e.g. CNY."),
                **{
                    name: serializers.CharField(help_text=text)
                    for name, text in (
                        ("today", "Earned today (local day), net of reversals."),
                        ("total", "Earned in all, net of reversals: pending + paid + held."),
                        ("pending", "Not paid yet."),
                        ("paid", "Paid out."),
                        ("held", "Not paid yet and held by staff pending review."),
                    )
                },
            },
        )

    @extend_schema(responses={200: OutputSerializer, **errors()})
    def get(self, request):
        user = request.user
        return Response(
            {
                "username": user.get_username(),
                "annotations": Annotation.objects.valid().filter(annotator=user).count(),
                "earnings": earnings.earnings_of(user).as_json(),
            }
        )
