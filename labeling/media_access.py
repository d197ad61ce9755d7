"""Clip media (``/media/clips/…``, ``/media/posters/…``) for those allowed to see the clip.

Who may see a clip: staff; reviewers (they screen every campaign's clips); the extractor who
added its movie or proposed the clip; and an annotator who holds or held an assignment on it.
Movie sources (``/media/movies/…``) are for staff and extractors; any other file under
``/media/`` (exports, face crops) for staff only. Everyone else, anonymous callers included,
gets 404, which says nothing about whether the file exists.

The bytes, from a storage on the local disk: behind nginx (``MEDIA_ACCEL_REDIRECT_PREFIX``
set) the answer is an empty 200 with ``X-Accel-Redirect``, and nginx sends the file from an
``internal`` location, ranges and all. In the embedded default Django streams the file itself,
with single-range requests (206, ``Content-Range``; 416 when the range is past the end), as
video players need to seek. From a storage without local paths (``MEDIA_STORAGE=s3``) the
answer is a 302 to the storage's URL for the file (S3: presigned, short-lived), which serves
the bytes and their ranges.
"""

from __future__ import annotations

import mimetypes
import os
import re
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import http_date
from django.views.decorators.http import require_safe
from rest_framework import exceptions

from labeling import services
from labeling.api.auth import TokenAuthentication
from labeling.models import Assignment, Clip, Role
from labeling.movies import media_local_path

CLIP_MEDIA_FOLDERS = ("clips/", "posters/")
MOVIE_FOLDER = "movies/"
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


def clip_visible_q(user) -> Q | None:
    """The clips `user` may see, as a filter; None when they may see every clip."""
    if user.is_staff or services.user_has_role(user, Role.REVIEWER):
        return None
    visible = Q(pk__in=[])
    if services.user_has_role(user, Role.EXTRACTOR):
        visible |= Q(movie__created_by=user) | Q(proposed_by=user)
    if services.user_has_role(user, Role.ANNOTATOR):
        visible |= Q(Exists(Assignment.objects.filter(clip=OuterRef("pk"), annotator=user)))
    return visible


def media_may_see(user, name: str) -> bool:
    """Whether `user` may read the media file stored as `name` (in the default storage)."""
    if user is None or not user.is_active:
        return False
    if name.startswith(MOVIE_FOLDER):
        return user.is_staff or services.user_has_role(user, Role.EXTRACTOR)
    if not name.startswith(CLIP_MEDIA_FOLDERS):
        return user.is_staff
    clips = Clip.objects.filter(Q(video=name) | Q(poster=name))
    visible = clip_visible_q(user)
    if visible is not None:
        clips = clips.filter(visible)
    return clips.exists()


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
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
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
    response["Content-Type"] = content_type
    response["Content-Length"] = str(length)
    if wanted:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Last-Modified"] = http_date(stat.st_mtime)
    return response


def _redirect_to_storage(name: str) -> HttpResponse:
    """A 302 to where a storage without local paths serves ``name`` itself."""
    if ".." in name.split("/"):  # the local disk refuses these by path; refuse them here too
        raise Http404("No such file.")
    response = HttpResponseRedirect(default_storage.url(name))
    # The URL is short-lived (S3 signs it for an hour): no cache may keep the redirect.
    response["Cache-Control"] = "private, no-store"
    return response


def _local_file(request, name: str, full: Path) -> HttpResponse:
    """The file on this machine's disk: handed to nginx, or streamed with ranges."""
    if settings.MEDIA_ACCEL_REDIRECT_PREFIX:
        response = HttpResponse()
        # nginx fills in the type, length and ranges from the file it serves.
        del response["Content-Type"]
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
    response["Vary"] = "Cookie, Authorization"
    return response
