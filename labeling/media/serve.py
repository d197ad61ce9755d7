"""Stored media (``/media/…``) for those allowed to see it (``labeling.access.media_may_see``:
the same rules as the API); 404 for everyone else, which says nothing about whether the file
exists.

What a browser is told about the bytes never comes from the file's own name or content: a
clip is ``video/mp4``, a poster or face sheet ``image/jpeg`` (the pipeline wrote them), and
they play or show inline; a movie source carries the type of the container its upload probed
as (its stored name's suffix is chosen from the probe, never from the uploader), and like every
other file it is sent as an attachment. Every answer says ``X-Content-Type-Options: nosniff``
and a ``sandbox`` Content-Security-Policy, so no stored file runs as a page of the site.

The bytes, from a storage on the local disk: behind nginx (``MEDIA_ACCEL_REDIRECT_PREFIX``
set) the answer is an empty 200 with ``X-Accel-Redirect``, and nginx sends the file from an
``internal`` location, ranges and all. In the embedded default Django streams the file itself,
with single-range requests (206, ``Content-Range``; 416 when the range is past the end), as
video players need to seek. From a storage without local paths (``MEDIA_STORAGE=s3``) the
answer is a 302 to the storage's URL for the file (S3: presigned, short-lived), which serves
the bytes and their ranges.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import http_date
from django.views.decorators.http import require_safe
from rest_framework import exceptions

from annotation_site.auth import TokenAuthentication
from labeling.access import CLIP_MEDIA_FOLDERS, MOVIE_FOLDER, media_may_see
from labeling.media.storage import media_local_path
from pipeline.media import VIDEO_CONTAINERS

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _caller(request):
    """The session's user, or the user of an ``Authorization: Token`` header (scripts)."""
    if request.user.is_authenticated:
        return request.user
    try:
        found = TokenAuthentication().authenticate(request)
    except exceptions.AuthenticationFailed:
        return None
    return found[0] if found else None


# Inline types for what the pipeline writes; every movie suffix the probe can choose.
_INLINE_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_MOVIE_TYPES = {suffix: kind for c in VIDEO_CONTAINERS for suffix, kind in c.types.items()}
_FILE_TYPES = {".zip": "application/zip", ".csv": "text/csv; charset=utf-8"}
SANDBOX = "sandbox; default-src 'none'; media-src 'self'; img-src 'self'"


def media_type(name: str) -> tuple[str, bool]:
    """(Content-Type, inline?) for the stored file ``name``: clip media inline with the type
    the pipeline wrote; everything else an attachment, a movie with its probed container's
    type, any other file with a type from a short list or ``application/octet-stream``."""
    suffix = os.path.splitext(name)[1].lower()
    if name.startswith(tuple(CLIP_MEDIA_FOLDERS)) and suffix in _INLINE_TYPES:
        return _INLINE_TYPES[suffix], True
    if name.startswith(MOVIE_FOLDER):
        return _MOVIE_TYPES.get(suffix, "application/octet-stream"), False
    return _FILE_TYPES.get(suffix, "application/octet-stream"), False


def _disposition(name: str, inline: bool) -> str:
    filename = os.path.basename(name)
    kind = "inline" if inline else "attachment"
    # RFC 6266: an ASCII fallback and the exact name in UTF-8.
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of a single ``bytes=`` range; None to send the whole file.

    Raises ValueError when the range cannot be satisfied (416).
    """
    match = _RANGE.match(header.strip()) if header else None
    if match is None:  # absent, multi-range or another unit: the whole file (RFC 9110 §14.2)
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise ValueError
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise ValueError
    return start, end


def _chunks(path: str, start: int, length: int):
    with open(path, "rb") as f:
        f.seek(start)
        while length > 0:
            data = f.read(min(CHUNK, length))
            if not data:
                return
            length -= len(data)
            yield data


def _stream(request, path: str) -> HttpResponse:
    stat = os.stat(path)
    size = stat.st_size
    try:
        wanted = _byte_range(request.headers.get("Range", ""), size)
    except ValueError:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, end = wanted if wanted else (0, size - 1)
    length = end - start + 1 if size else 0
    body = _chunks(path, start, length) if request.method == "GET" else iter(())
    response = StreamingHttpResponse(body, status=206 if wanted else 200)
    response["Content-Length"] = str(length)
    if wanted:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Last-Modified"] = http_date(stat.st_mtime)
    return response


def _redirect_to_storage(name: str) -> HttpResponse:
    """A 302 to where a storage without local paths serves ``name`` itself (S3: a presigned
    URL on the bucket's own origin, which answers with the type and disposition asked here)."""
    if ".." in name.split("/"):  # the local disk refuses these by path; refuse them here too
        raise Http404("No such file.")
    content_type, inline = media_type(name)
    try:
        url = default_storage.url(
            name,
            parameters={
                "ResponseContentType": content_type,
                "ResponseContentDisposition": _disposition(name, inline),
            },
        )
    except TypeError:  # a storage whose URLs take no parameters (tests' in-memory storage)
        url = default_storage.url(name)
    response = HttpResponseRedirect(url)
    # The URL is short-lived (S3 signs it for an hour): no cache may keep the redirect.
    response["Cache-Control"] = "private, no-store"
    return response


def _local_file(request, name: str, full: Path) -> HttpResponse:
    """The file on this machine's disk: handed to nginx, or streamed with ranges."""
    if settings.MEDIA_ACCEL_REDIRECT_PREFIX:
        # nginx fills in the length and ranges from the file it serves, and keeps the type,
        # disposition and caching headers of this answer.
        response = HttpResponse()
        prefix = settings.MEDIA_ACCEL_REDIRECT_PREFIX.rstrip("/")
        response["X-Accel-Redirect"] = f"{prefix}/{quote(name)}"
    elif os.path.isfile(full):
        response = _stream(request, str(full))
    else:
        raise Http404("No such file.")
    response["Accept-Ranges"] = "bytes"
    # The file is one person's to see: browsers may keep it, shared caches may not.
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_safe
def media(request, path: str):
    """``/media/<path>`` for a caller allowed to see it; 404 for anyone else."""
    name = path.lstrip("/")
    if not media_may_see(_caller(request), name):
        raise Http404("No such file.")
    try:
        full = media_local_path(name)
    except SuspiciousFileOperation as exc:  # a path outside the storage's folder
        raise Http404("No such file.") from exc
    response = _redirect_to_storage(name) if full is None else _local_file(request, name, full)
    content_type, inline = media_type(name)
    if full is not None:
        response["Content-Type"] = content_type
        response["Content-Disposition"] = _disposition(name, inline)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = SANDBOX
    response["Vary"] = "Cookie, Authorization"
    return response
