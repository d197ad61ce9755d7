"""The choices several models share: roles (defined site-wide, in ``annotation_site.roles``),
background-job and media states."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from annotation_site.roles import Role  # noqa: F401  (labeling.models.Role, as ever)


class JobStatus(models.TextChoices):
    """The lifecycle of a background job row (agreement reports, exports)."""

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class MediaStatus(models.TextChoices):
    """A clip's extraction job (labeling/media/extraction.py); empty for clips that came with no job
    (imported votes, rows made before the media pipeline)."""

    NONE = "", _("No extraction")
    PENDING = "pending", _("Pending")
    EXTRACTING = "extracting", _("Extracting")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")
