"""Site-wide response policies that no single view should have to remember."""

from __future__ import annotations

from django.db import DataError
from django.http import Http404
from django.utils.cache import add_never_cache_headers, patch_vary_headers

from labeling.api.errors import API_PREFIX


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
