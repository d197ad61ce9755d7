"""Site policy for errors, shared by every app: the one error type services raise, and the
JSON answer every API error becomes.

Services raise `ApplicationError` (or `NotFound`, `Forbidden`, `Conflict`, `TooManyOpen`);
the API maps it to a JSON 4xx, pages to a message.

Every API error is ``{"detail": "<message>", ...}`` with a 4xx status, whatever raised it.

Three layers make that hold under ``/api/``:

- `exception_handler`: DRF's hook, for what a view or serializer raises;
- `JSONParser`: the body parser, so a body nested too deeply for Python's JSON decoder (it
  raises RecursionError around 1,000 levels) is a 400 and not a 500 with a traceback;
- `bad_request`, `permission_denied`, `not_found`, `server_error`: Django's error views
  (``handler400`` … in the root URLconf), for what happens before a view runs: an unmatched URL,
  a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413). Pages keep Django's HTML answers.

A request holding a NUL character or an unpaired surrogate is refused before any of these, by
``annotation_site.middleware.BadInputMiddleware``, with `json_error` under ``/api/``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, parsers, status
from rest_framework.response import Response


class ApplicationError(Exception):
    status_code = 400

    def __init__(self, message: str, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFound(ApplicationError):
    status_code = 404


class Forbidden(ApplicationError):
    status_code = 403


class Conflict(ApplicationError):
    status_code = 409


class TooManyOpen(ApplicationError):
    status_code = 429


API_PREFIX = "/api/"


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(
            f"{key}: {_flatten(value)}" if key != "non_field_errors" else _flatten(value)
            for key, value in detail.items()
        )
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def exception_handler(exc, context):
    # Imported here: DRF's views module reads DEFAULT_PARSER_CLASSES (JSONParser, below) while
    # it loads, so this module must not import it at the top.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, **exc.extra}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": _flatten(exc.detail), "errors": exc.detail}
        response.status_code = status.HTTP_400_BAD_REQUEST
    return response


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 for a body nested too deeply to decode."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def json_error(message: str, status_code: int) -> JsonResponse:
    """An error answer in the API's format, ``{"detail": message}``, never cached."""
    response = JsonResponse({"detail": message}, status=status_code)
    response["Cache-Control"] = "no-store"
    return response


def bad_request(request, exception, template_name=defaults.ERROR_400_TEMPLATE_NAME):
    if isinstance(exception, RequestDataTooBig) and _is_api(request):
        return json_error(
            f"Request body larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if _is_api(request):
        return json_error("Bad request.", status.HTTP_400_BAD_REQUEST)
    return defaults.bad_request(request, exception, template_name)


def permission_denied(request, exception, template_name=defaults.ERROR_403_TEMPLATE_NAME):
    if _is_api(request):
        return json_error("You do not have permission to perform this action.", 403)
    return defaults.permission_denied(request, exception, template_name)


def not_found(request, exception, template_name=defaults.ERROR_404_TEMPLATE_NAME):
    if _is_api(request):
        return json_error(f"No API endpoint at {request.path}.", status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception, template_name)


def server_error(request, template_name=defaults.ERROR_500_TEMPLATE_NAME):
    if _is_api(request):
        return json_error("Server error.", status.HTTP_500_INTERNAL_SERVER_ERROR)
    return defaults.server_error(request, template_name)
