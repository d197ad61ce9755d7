"""Site-wide response policies that no single view should have to remember."""

from __future__ import annotations

import json
import re

from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from django.http import Http404, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.translation import gettext as _

from annotation_site.errors import API_PREFIX, json_error


class ApiNoStoreMiddleware:
    """API answers carry personal data (tokens, leases, labels, exports): no cache keeps them.

    ``no-store`` (with ``private``) keeps browsers and shared proxies from storing an answer
    that a later user of the same machine or proxy could read back.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(API_PREFIX):
            add_never_cache_headers(response)
            patch_vary_headers(response, ["Authorization", "Cookie"])
        return response


class OutOfRangeIdMiddleware:
    """An id in the URL too large for the database's integer is an unknown id: 404, not 500.

    ``<int:…>`` accepts any number of digits; SQLite raises OverflowError on one past 2**63 and
    PostgreSQL a DataError ("out of range"). Both mean no such row.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, OverflowError) or (
            isinstance(exception, DataError) and "out of range" in str(exception)
        ):
            raise Http404("No such object.") from exception
        return None


# A JSON escape that may decode to NUL or to half of a surrogate pair (a false alarm, such as
# an escaped backslash before "u0000", or a valid pair, only costs a full parse).
_SUSPECT_JSON = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
# After decoding, a surrogate code point left in a str is one that had no partner.
_SURROGATE = re.compile("[\ud800-\udfff]")
NUL = "\x00"


def _json_problem(text: str) -> str | None:
    if NUL in text:
        return "nul"
    if _SURROGATE.search(text):
        return "surrogate"
    return None


def _json_body_problem(body: bytes) -> str | None:
    """What is wrong with the strings (keys included) of a JSON body, if anything."""
    if b"\x00" in body:
        return "nul"
    if not _SUSPECT_JSON.search(body):
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON the parser accepts: the view's parser says so
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if problem := _json_problem(item):
                return problem
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _form_problem(data) -> str | None:
    for key, values in data.lists():
        if NUL in key:
            return _("a field name")
        if any(isinstance(v, str) and NUL in v for v in values):
            return _("the field “%(field)s”") % {"field": key[:60]}
    return None


class BadInputMiddleware:
    """Refuses, with a 400 that says why, a request holding text that no field can keep.

    - A NUL character (``%00``, ``\\u0000``) in the path, the query string, a header (an
      ``Authorization: Token`` key), a form field or a JSON body: PostgreSQL's text cannot
      store one and the file system cannot open a path with one, so some view would fail on it
      with a 500, or SQLite would keep it.
    - An unpaired surrogate in a JSON body (``"\\ud800x"``): Python decodes it into a str that
      cannot be encoded again, so the first hash, log line or query that encodes it fails.

    Nothing else in the request is read or changed: a body is read only when it is JSON (within
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``) or a form that Django parses anyway (the CSRF check reads
    it). A multipart body under ``/api/`` (a movie upload) is left to the view, whose serializer
    refuses NUL and whose authentication comes first. Everything else (the length of a value,
    whether a field is known) is the view's to judge. The answer is JSON in the API's error
    format under ``/api/`` and plain text elsewhere; no session, login attempt or row is
    touched.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problem = self.problem(request)
        if problem is None:
            return self.get_response(request)
        kind, where = problem
        if kind == "nul":
            message = _(
                "Refused: %(where)s holds a NUL character (U+0000, %%00), which no field accepts."
            )
        else:
            message = _(
                "Refused: %(where)s holds an unpaired surrogate (such as \\ud800), which is "
                "not a character; send text as UTF-8."
            )
        message %= {"where": where}
        if request.path.startswith(API_PREFIX):
            return json_error(message, 400)
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")

    @staticmethod
    def problem(request) -> tuple[str, str] | None:
        if NUL in request.path:
            return "nul", _("the URL")
        if (where := _form_problem(request.GET)) is not None:
            return "nul", _("the query string (%(where)s)") % {"where": where}
        for key, value in request.META.items():
            if key.startswith("HTTP_") and isinstance(value, str) and NUL in value:
                name = key[5:].replace("_", "-").title()
                return "nul", _("the header “%(header)s”") % {"header": name}
        content_type = (request.content_type or "").lower()
        if request.method == "POST" and (
            content_type == "application/x-www-form-urlencoded"
            or (content_type == "multipart/form-data" and not request.path.startswith(API_PREFIX))
        ):
            if (where := _form_problem(request.POST)) is not None:
                return "nul", where
        elif content_type == "application/json" or content_type.endswith("+json"):
            try:
                body = request.body
            except RequestDataTooBig:
                return None  # the view's parser answers 413
            if problem := _json_body_problem(body):
                return problem, _("the JSON body")
        return None
