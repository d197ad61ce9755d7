"""The screening page with a DFEW-size queue: 16,372 clips waiting for a reviewer.

The clips are registered through the app's own service (``clips_register_extracted``), a
quarter of them flagged "face lost", a tenth "small face". Then the screening page is requested
as a reviewer through Django's test client in this process, best of ``--repeat``: the first
page, the first page of a flag, the last page, and a page in the middle of a flag. Target:
every page under 300 ms (the staff pages' target, ``bench/staff_pages.py``). The baseline,
measured in the same run: one raw ``SELECT count(*)`` of the clips waiting, through
``connection.cursor()`` (the least a page that says how many clips wait must do); each page is
printed with its ratio to it, and with its SQL statement count.

    python bench/screening_queue.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dfer python bench/screening_queue.py

It creates and drops its own database. Exits 1 when a page misses the target or answers
anything but 200.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.agreement_scale import DFEW_CLIPS, teardown  # noqa: E402
from bench.annotation_load import bench_database_url, bench_env, setup_django  # noqa: E402

TARGET_MS = 300.0


def say(message: str) -> None:
    print(message, flush=True)


def best_ms(repeat: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000, result


def seed(clips: int):
    """A campaign whose ``clips`` clips all wait for screening, some with face flags."""
    from django.db.models import F

    from labeling import campaigns
    from labeling.media import movies
    from labeling.models import Clip

    campaign = campaigns.campaign_create(name="queue", slug="queue")
    movie = movies.movie_register_extracted(campaign=campaign, title="queue")
    movies.clips_register_extracted(
        movie=movie,
        clips=[movies.ExtractedClip(end_s=2.0)] * clips,
        status=Clip.Status.SCREENING,
        first_number=1,
    )
    waiting = Clip.objects.filter(campaign=campaign)
    # Flags on a share of the clips, spread over the queue's order.
    waiting.annotate(m=F("number") % 4).filter(m=0).update(face_lost=True)
    waiting.annotate(m=F("number") % 10).filter(m=0).update(face_small=True)
    return campaign


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clips", type=int, default=DFEW_CLIPS, help="clips waiting (16372)")
    p.add_argument("--repeat", type=int, default=5, help="best of this many (5)")
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dfer-bench-"))
    url = bench_database_url(workdir)
    env = bench_env(url, workdir)
    postgres = url.startswith("postgres")
    say(
        f"database: {'PostgreSQL' if postgres else 'SQLite'}; {args.clips} clips waiting; "
        f"best of {args.repeat}; {os.cpu_count()} CPUs"
    )
    try:
        setup_django(env)
        from django.conf import settings
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from annotation_site.roles import Role
        from labeling import campaigns

        settings.ALLOWED_HOSTS = ["*"]
        settings.STORAGES = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        t0 = time.perf_counter()
        seed(args.clips)
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        say(f"seeded in {time.perf_counter() - t0:.1f} s")
        reviewer = campaigns.user_create(username="rita", password="x" * 12, roles=[Role.REVIEWER])
        client = Client()
        client.force_login(reviewer)

        def baseline():
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM labeling_clip WHERE status = 'screening'")
                return cursor.fetchone()[0]

        base_ms, n = best_ms(args.repeat, baseline)
        say(f"baseline: raw count of the {n} clips waiting  {base_ms:8.2f} ms")
        last = -(-args.clips // 10)
        pages = [
            ("first page", "/review/"),
            ("face lost, first page", "/review/?flag=lost"),
            ("last page", f"/review/?page={last}"),
            ("small face, page 80", "/review/?flag=small&page=80"),
        ]
        failed = 0
        for name, path in pages:
            ms, response = best_ms(args.repeat, lambda path=path: client.get(path))
            with CaptureQueriesContext(connection) as captured:
                client.get(path)
            ok = response.status_code == 200 and ms <= TARGET_MS
            failed += not ok
            say(
                f"{name:24s} {ms:8.1f} ms  ({ms / base_ms:6.1f}× the baseline; "
                f"{len(captured)} statements; HTTP {response.status_code}; "
                f"target ≤ {TARGET_MS:.0f} ms: {'met' if ok else 'NOT met'})"
            )
        return 1 if failed else 0
    finally:
        teardown(url, workdir)


if __name__ == "__main__":
    sys.exit(main())
