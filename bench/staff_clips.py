"""The clip browser and the clip page at DFEW's size: 16,372 clips with ten votes each.

The campaign is made as ``bench/staff_pages.py`` makes its ``dfew`` one (votes imported with
``import_annotations``, aggregated, an agreement report computed); 1 % of its clips get an
annotator's report and 3 % the few-faces flag, one extractor marked every 7th clip. Then, as
a staff user through Django's test client in this process, best of ``--repeat``:

* the clip browser's first page, a page deep in the list (keyset cursor near the end) and each
  filter (status, label, rare label, agreement, extractor, flags);
* the same deep page through OFFSET instead of the cursor (what keyset paging avoids);
* one clip's page (ten votes, result, flags).

Baseline, in the same run: the raw SQL of one keyset page (``SELECT ... WHERE campaign_id = ...
AND id > ... ORDER BY id LIMIT 51`` through ``connection.cursor()``): the least any page of 50
clips must do. Each figure is printed with its ratio to it. Exits 1 when a page answers
anything but 200.

    python bench/staff_clips.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dfer python bench/staff_clips.py
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
from bench.staff_pages import best_ms, say, seed_complete  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clips", type=int, default=DFEW_CLIPS, help="clips (16372)")
    p.add_argument("--repeat", type=int, default=5, help="best of this many (5)")
    return p.parse_args()


def flag_some(campaign) -> str:
    """Reports on 1 % of the clips, the few-faces flag on 3 %, an extractor on every 7th."""
    from django.contrib.auth import get_user_model

    from labeling.models import Clip, ClipReport

    User = get_user_model()
    ids = list(Clip.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))
    reporter = User.objects.create(username="reporter", password="!")
    ClipReport.objects.bulk_create(
        ClipReport(clip_id=pk, reporter=reporter, kind="broken") for pk in ids[::100]
    )
    Clip.objects.filter(pk__in=ids[::33]).update(few_faces=True, face_ratio=0.2)
    extractor = User.objects.create(username="ed", password="!")
    Clip.objects.filter(pk__in=ids[::7]).update(proposed_by=extractor)
    return extractor.username


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dfer-bench-"))
    url = bench_database_url(workdir)
    env = bench_env(url, workdir)
    postgres = url.startswith("postgres")
    say(
        f"database: {'PostgreSQL' if postgres else 'SQLite'}; {args.clips} clips × 10 votes; "
        f"best of {args.repeat}; {os.cpu_count()} CPUs"
    )
    failed = False
    try:
        setup_django(env)
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client

        from labeling.models import Clip
        from labeling.views.staff import selectors

        settings.ALLOWED_HOSTS = ["*"]
        settings.STORAGES = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        t0 = time.perf_counter()
        campaign = seed_complete(workdir, args.clips)
        extractor = flag_some(campaign)
        say(f"seeded in {time.perf_counter() - t0:.0f} s")
        ids = list(
            Clip.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True)
        )
        deep = ids[-120]  # the cursor of a page near the end
        table = Clip._meta.db_table

        def raw_page():
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, number, status, movie_id, proposed_by_id, face_ratio FROM {table} "
                    "WHERE campaign_id = %s AND id > %s ORDER BY id LIMIT 51",
                    [campaign.pk, deep],
                )
                return cursor.fetchall()

        baseline, rows = best_ms(args.repeat, raw_page)
        say(f"baseline: raw SQL keyset page of 50: {baseline:.2f} ms ({len(rows)} rows)")

        def offset_page():
            return list(
                selectors.clip_browse_queryset(selectors.ClipFilters(campaign=campaign.pk))
                .select_related(
                    "campaign", "movie", "proposed_by", "result", "result__single_label"
                )
                .order_by("pk")[len(ids) - 120 : len(ids) - 69]
            )

        def keyset_page():
            return selectors.clip_browse(selectors.ClipFilters(campaign=campaign.pk, after=deep))

        for name, fn in (
            ("selector, keyset deep page", keyset_page),
            ("selector, OFFSET deep page", offset_page),
        ):
            ms, _ = best_ms(args.repeat, fn)
            say(f"{name:<44} {ms:8.2f} ms  {ms / baseline:6.1f}× baseline")

        User = get_user_model()
        User.objects.create_user("boss", password="bench-password-123", is_staff=True)
        client = Client()
        assert client.login(username="boss", password="bench-password-123")
        base = f"/staff/clips/?campaign={campaign.pk}"
        pages = {
            "browser, first page": base,
            "browser, deep page (cursor)": f"{base}&after={deep}",
            "browser, status=complete": f"{base}&status=complete",
            "browser, label=happy": f"{base}&label=happy",
            "browser, label=fear (rare)": f"{base}&label=fear",
            "browser, agreement=split": f"{base}&agreement=split",
            "browser, extractor": f"{base}&extractor={extractor}",
            "browser, flag=reported": f"{base}&flag=reported",
            "browser, flag=few_faces": f"{base}&flag=few_faces",
            "browser, flag=lowest": f"{base}&flag=lowest",
            "clip page (10 votes)": f"/staff/clips/{ids[len(ids) // 2]}/",
            "team page": f"/staff/campaigns/{campaign.pk}/team/",
            "overview": "/staff/overview/",
        }
        for name, path in pages.items():
            statuses = []

            def get(path=path, statuses=statuses):
                response = client.get(path)
                statuses.append(response.status_code)
                return response

            ms, _ = best_ms(args.repeat, get)
            ok = set(statuses) == {200}
            failed |= not ok
            say(
                f"{name:<44} {ms:8.2f} ms  {ms / baseline:6.1f}× baseline"
                + ("" if ok else f"  STATUS {sorted(set(statuses))}")
            )
    finally:
        teardown(url, workdir)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
