"""Staff pages at DFEW scale: the server time of every staff page on a 16,372-clip campaign.

Two campaigns of DFEW's size side by side, made through the app's own services:

* ``dfew``: 16,372 clips × 10 votes imported with ``import_annotations`` (100 annotators),
  aggregated, an agreement report computed and stored, a 5-fold split made;
* ``live``: 16,372 clips open for labelling, 100 enrolled annotators, and 2,000 labels and 50
  live leases of labelling in progress.

Then each staff page (overview, agreement, release, screening, the admin's change lists and
the ml runs page) is requested as a staff user through Django's test client in this process:
the server time, best of ``--repeat``. Target: every page under 300 ms. The baseline,
measured in the same run: one raw ``SELECT count(*)`` of the campaign's annotations through
``connection.cursor()`` (the least a page that says how many labels there are must do); each
page is printed with its ratio to it.

    python bench/staff_pages.py                       # the SQLite default
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dfer python bench/staff_pages.py

It creates and drops its own database (`<name>_bench` next to DATABASE_URL's, or a temporary
SQLite file). Exits 1 when a page misses the target or answers anything but 200.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.agreement_scale import DFEW_CLIPS, generate_csv, run_import, teardown  # noqa: E402
from bench.annotation_load import bench_database_url, bench_env, setup_django  # noqa: E402

TARGET_MS = 300.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clips", type=int, default=DFEW_CLIPS, help="clips per campaign (16372)")
    p.add_argument("--repeat", type=int, default=3, help="best of this many (3)")
    return p.parse_args()


def say(message: str) -> None:
    print(message, flush=True)


def best_ms(repeat: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000, result


def seed_complete(workdir: Path, clips: int):
    """The imported, aggregated, reported and split DFEW-size campaign."""
    from labeling.models import Campaign, Clip
    from labeling.release import splits
    from labeling.results import aggregation, agreement

    csv_path = workdir / "votes.csv"
    generate_csv(csv_path, SimpleNamespace(clips=clips, annotators=100, spammers=5, seed=0))
    run_import(csv_path, "dfew", create=True)
    campaign = Campaign.objects.get(slug="dfew")
    complete = list(
        Clip.objects.filter(campaign=campaign, status=Clip.Status.COMPLETE).values_list(
            "pk", flat=True
        )
    )
    aggregation.clips_aggregate(complete)
    report = agreement.agreement_report_request(campaign=campaign, user=None)
    agreement.agreement_report_run(report.pk)
    splits.split_create(campaign=campaign, k=5, seed=0, user=None)
    return campaign


def seed_live(clips: int):
    """A DFEW-size campaign in the middle of its labelling."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from labeling import campaigns
    from labeling.loop import services
    from labeling.media import movies

    User = get_user_model()
    campaign = campaigns.campaign_create(name="live", slug="live", min_view_seconds=0)
    users = User.objects.bulk_create(
        User(username=f"live{i:03d}", password="!") for i in range(100)
    )
    Group.objects.get_or_create(name="annotator")[0].user_set.add(*users)
    campaign.annotators.add(*users)
    # Registered as the app registers clips cut elsewhere: one INSERT per 5,000 clips.
    movie = movies.movie_register_extracted(campaign=campaign, title="live")
    movies.clips_register_extracted(
        movie=movie, clips=[movies.ExtractedClip(end_s=2.0)] * clips, first_number=1
    )
    for i in range(2050):
        user = users[i % len(users)]
        lease = services.assignment_next(user=user, campaign_id=campaign.pk)
        if i < 2000:
            services.annotation_submit(user=user, assignment_id=lease.pk, label_name="happy")
    return campaign


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dfer-bench-"))
    url = bench_database_url(workdir)
    env = bench_env(url, workdir)
    postgres = url.startswith("postgres")
    say(
        f"database: {'PostgreSQL' if postgres else 'SQLite'}; two campaigns of {args.clips} "
        f"clips; best of {args.repeat}; {os.cpu_count()} CPUs"
    )
    try:
        setup_django(env)
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client

        settings.ALLOWED_HOSTS = ["*"]
        # Pages render with the sources' static names (no collectstatic manifest here).
        settings.STORAGES = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        t0 = time.perf_counter()
        done = seed_complete(workdir, args.clips)
        live = seed_live(args.clips)
        say(f"seeded in {time.perf_counter() - t0:.0f} s")
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        staff = get_user_model().objects.create(username="staff", is_staff=True, is_superuser=True)
        client = Client()
        client.force_login(staff)

        def baseline():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM labeling_annotation n JOIN labeling_clip c "
                    "ON c.id = n.clip_id WHERE c.campaign_id = %s",
                    [done.pk],
                )
                return cursor.fetchone()[0]

        base_ms, n = best_ms(args.repeat, baseline)
        say(f"baseline: raw count of the campaign's {n} annotations  {base_ms:8.1f} ms")
        pages = [
            ("overview", "/staff/overview/"),
            ("agreement (dfew)", f"/staff/campaigns/{done.pk}/agreement/"),
            ("release (dfew)", f"/staff/campaigns/{done.pk}/release/"),
            ("agreement (live)", f"/staff/campaigns/{live.pk}/agreement/"),
            ("release (live)", f"/staff/campaigns/{live.pk}/release/"),
            ("screening", "/review/"),
            ("benchmark runs", "/staff/benchmarks/"),
            *(
                (f"admin {model}", f"/admin/labeling/{model}/")
                for model in (
                    "clip",
                    "annotation",
                    "assignment",
                    "cliplabel",
                    "annotatortally",
                    "splitclip",
                )
            ),
        ]
        failed = 0
        for name, path in pages:
            ms, response = best_ms(args.repeat, lambda path=path: client.get(path))
            ok = response.status_code == 200 and ms <= TARGET_MS
            failed += not ok
            say(
                f"{name:22s} {ms:8.1f} ms  ({ms / base_ms:6.1f}× the baseline; "
                f"HTTP {response.status_code}; target ≤ {TARGET_MS:.0f} ms: "
                f"{'met' if ok else 'NOT met'})"
            )
        return 1 if failed else 0
    finally:
        teardown(url, workdir)


if __name__ == "__main__":
    sys.exit(main())
