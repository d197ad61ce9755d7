"""Celery shells: fetch, call a service or pipeline function, record. Idempotent."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from labeling.loop import services
from labeling.media import extraction
from labeling.release import dfew_export
from labeling.results import aggregation, agreement

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def assignment_expire_task() -> int:
    """Frees the slots of lapsed leases (beat runs it every minute). A re-run finds nothing."""
    expired = services.assignment_expire_stale()
    if expired:
        logger.info("expired %d lapsed leases", expired)
    return expired


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def clip_aggregate_task(clip_id: int) -> int:
    """Stores a complete clip's result from its votes (enqueued by its last label). A re-run, or
    a concurrent one, upserts the same single row; a clip no longer complete is left alone."""
    return aggregation.clips_aggregate([clip_id])


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def clip_aggregate_missing_task() -> int:
    """Beat: aggregates complete clips that have no result (a lost message, an import)."""
    written = aggregation.clips_aggregate(aggregation.clip_ids_missing_result())
    if written:
        logger.info("aggregated %d clips that had no result", written)
    return written


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def agreement_report_task(report_id: int) -> bool:
    """Computes a queued agreement report; a duplicate delivery finds it claimed and stops."""
    return agreement.agreement_report_run(report_id)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def agreement_report_periodic_task() -> int:
    """Beat: queues a report for every active campaign whose results changed since its last."""
    due = agreement.campaigns_due_for_report()
    for campaign in due:
        agreement.agreement_report_request(campaign=campaign)
    return len(due)


@shared_task(acks_late=True, soft_time_limit=6600, time_limit=7000)
def label_export_task(export_id: int) -> bool:
    """Writes a queued DFEW-format export; a duplicate delivery finds it claimed and stops.
    Its time limit stays below the Redis visibility timeout (7,200 s), so it is never
    delivered twice while it runs."""
    return dfew_export.label_export_run(export_id)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=extraction.TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
    soft_time_limit=900,
    time_limit=960,
)
def clip_extract_task(self, clip_id: int) -> bool:
    """Cuts one clip frame-exactly with its poster and face crops. The clip is claimed with a
    conditional UPDATE that records this task's id and process, so a duplicate delivery does
    nothing. A pool process killed mid-way (the OOM killer) gets its message requeued at once
    (`task_reject_on_worker_lost`), and that delivery of the same task takes its own claim
    over, its process being gone; a claim no message comes back for is ended by
    `clip_claims_sweep_task`. Transient errors retry with backoff; the last one fails the
    clip."""
    if self.request.delivery_info and self.request.delivery_info.get("redelivered"):
        logger.info("clip %s: task %s delivered again", clip_id, self.request.id)
    try:
        return extraction.clip_extract(clip_id, task_id=self.request.id or "")
    except SoftTimeLimitExceeded:
        extraction.clip_extract_fail(
            clip_id, f"took longer than {self.soft_time_limit} s", claimant=extraction.claimant()
        )
        return False
    except extraction.TRANSIENT_ERRORS as exc:
        if self.request.retries >= self.max_retries:
            extraction.clip_extract_fail(
                clip_id, f"gave up after {self.max_retries} retries: {exc}"
            )
            return False
        raise


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def clip_claims_sweep_task() -> int:
    """Beat: ends extraction claims older than the extraction's time limit, queueing their
    clips again, and removes partial outputs killed runs left (`extraction.clip_claims_sweep`).
    A second run finds nothing."""
    return extraction.clip_claims_sweep()
