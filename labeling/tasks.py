"""Celery shells: fetch, call a service or pipeline function, record. Idempotent."""

from __future__ import annotations

import logging

from celery import shared_task

from labeling import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def assignment_expire_task() -> int:
    """Frees the slots of lapsed leases (beat runs it every minute). A re-run finds nothing."""
    expired = services.assignment_expire_stale()
    if expired:
        logger.info("expired %d lapsed leases", expired)
    return expired
