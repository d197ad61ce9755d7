"""`next` for an annotator far ahead of the others, at DFEW's size.

DFEW's ten annotators each labelled every clip. One who is ``--ahead`` clips ahead of everyone
else has touched every in-flight clip at the top of the lease order (most slots held first), so
a walk that checks each clip in that order passes all of them before it reaches one of theirs
to take. ``sql.candidate_clip`` looks at ``CANDIDATE_WINDOW`` in-flight clips, then at fresh
clips, and walks everything only when both come up empty.

Measured in one process, best and median of ``--repeat`` `next` + `release` pairs through the
service (``services.assignment_next``), for the far-ahead annotator and for a new one (the
baseline: nothing to walk past), with the bounded walk and with the whole walk (the previous
code's single query), in the same run on the same data, at each of the ``--ahead`` distances
(the fast annotator labels on between them).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dfer python bench/candidate_walk.py
    python bench/candidate_walk.py --clips 16372 --ahead 500 4000     # SQLite

Target: the bounded walk does not grow with the distance: the far-ahead annotator's median
`next` at the largest distance within 1.5× of that at the smallest.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.agreement_scale import DFEW_CLIPS, teardown  # noqa: E402
from bench.annotation_load import bench_database_url, bench_env, setup_django  # noqa: E402
from bench.staff_pages import say  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clips", type=int, default=DFEW_CLIPS)
    p.add_argument(
        "--ahead",
        type=int,
        nargs="+",
        default=[500, 4000],
        help="clips the fast annotator has labelled at each measurement (500 4000)",
    )
    p.add_argument("--repeat", type=int, default=30)
    return p.parse_args()


def timed_next(services, user, repeat: int) -> tuple[float, float]:
    """Best and median ms of `next` (each lease released again)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        lease = services.assignment_next(user=user)
        times.append((time.perf_counter() - t0) * 1000)
        services.assignment_release(user=user, assignment_id=lease.pk)
    return min(times), statistics.median(times)


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dfer-bench-walk-"))
    url = bench_database_url(workdir)
    env = bench_env(url, workdir)
    postgres = url.startswith("postgres")
    say(
        f"database: {'PostgreSQL' if postgres else 'SQLite'}; {args.clips} clips; one annotator "
        f"{args.ahead} clips ahead; {args.repeat} nexts each; {os.cpu_count()} CPUs"
    )
    try:
        setup_django(env)
        from django.db import connection

        from labeling import campaigns
        from labeling.loop import services, sql
        from labeling.models import Clip, Movie, Role

        campaign = campaigns.campaign_create(name="walk", slug="walk", min_view_seconds=0)
        movie = Movie.objects.create(campaign=campaign, title="walk", status="ready")
        Clip.objects.bulk_create(
            (
                Clip(campaign=campaign, movie=movie, number=i, end_s=2.0, status="annotating")
                for i in range(1, args.clips + 1)
            ),
            batch_size=5000,
        )
        ahead, new = (
            campaigns.user_create(username=name, password="x" * 12, roles=[Role.ANNOTATOR])
            for name in ("ahead", "new")
        )
        campaign.annotators.add(ahead, new)
        whole = {"all": sql._SCOPES["all"]}
        done, medians = 0, {}
        for distance in sorted(args.ahead):
            t0 = time.perf_counter()
            for _ in range(distance - done):
                lease = services.assignment_next(user=ahead)
                services.annotation_submit(user=ahead, assignment_id=lease.pk, label_name="sad")
            say(f"the fast annotator labelled {distance - done} more clips in "
                f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
            done = distance
            if postgres:
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")
            for walk, scopes in (("bounded", sql._SCOPES), ("whole", whole)):
                with mock.patch.object(sql, "_SCOPES", scopes):
                    nb, nm = timed_next(services, new, args.repeat)
                    ab, am = timed_next(services, ahead, args.repeat)
                medians[walk, distance] = am
                say(
                    f"{distance:6d} ahead, {walk:7s} walk: new annotator next {nb:6.1f} ms best, "
                    f"{nm:6.1f} ms median; the one ahead {ab:6.1f} / {am:6.1f} ms "
                    f"({am / nm:4.1f}× the new one)"
                )
        near, far = min(args.ahead), max(args.ahead)
        failed = 0
        for walk in ("bounded", "whole"):
            growth = medians[walk, far] / medians[walk, near]
            verdict = ""
            if walk == "bounded":
                ok = growth <= 1.5
                failed += not ok
                verdict = f"; target ≤ 1.5×: {'met' if ok else 'NOT met'}"
            say(f"{walk:7s} walk: {far} ahead ÷ {near} ahead = {growth:4.2f}×{verdict}")
        return 1 if failed else 0
    finally:
        teardown(url, workdir)


if __name__ == "__main__":
    sys.exit(main())
