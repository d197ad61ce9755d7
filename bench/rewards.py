"""The rewards ledger at DFEW scale: 16,372 clips × 10 labels, each label's reward in the ledger.

A campaign of DFEW's shape is imported with ``import_annotations`` (10 annotators who each
label every clip, as DFEW's did), its clips given to 20 extractors, and every label given its
reward the way ``annotation_submit`` does it (one INSERT … SELECT per label there; here one
for all of them, as setup). Then, in this process, each measured best of ``--repeat``:

- aggregation of all 16,372 clips with the ledger kept in step (``clips_aggregate``, which
  now also writes the clip, rare-clip and rare-vote entries under the same clip locks)
  against the same aggregation with ``ledger.clips_sync`` switched off: the ledger's cost;
- the staff rewards page, ``GET /api/v1/me/`` of an annotator with 16,372 labels, the payout
  (``payout_create`` over all 163,720 + entries) and its CSV, against the baseline: one raw
  ``SELECT person_id, sum(amount_cents) … GROUP BY person_id`` of the campaign's ledger
  through ``connection.cursor()``, the least a page of per-person totals must do.

Target (the house's): every staff page and API answer under 300 ms at this size. It checks
the sums: ledger = payout = CSV, to the cent.

    python bench/rewards.py                       # the SQLite default
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dfer python bench/rewards.py

It creates and drops its own database. Exits 1 when a target is missed or a sum disagrees.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.agreement_scale import DFEW_CLIPS, generate_csv, run_import, teardown  # noqa: E402
from bench.annotation_load import bench_database_url, bench_env, setup_django  # noqa: E402
from bench.staff_pages import best_ms, say  # noqa: E402

TARGET_MS = 300.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clips", type=int, default=DFEW_CLIPS, help="clips (16372)")
    p.add_argument("--repeat", type=int, default=3, help="best of this many (3)")
    return p.parse_args()


def seed(workdir: Path, clips: int):
    """DFEW's shape, imported; 20 extractors; every label's reward in the ledger."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from labeling.loop import sql
    from labeling.models import Campaign, Clip, RewardKind

    csv_path = workdir / "votes.csv"
    generate_csv(csv_path, SimpleNamespace(clips=clips, annotators=10, spammers=1, seed=0))
    run_import(csv_path, "dfew", create=True)
    campaign = Campaign.objects.get(slug="dfew")
    Campaign.objects.filter(pk=campaign.pk).update(reward_rare_vote=Decimal("0.10"))
    User = get_user_model()
    extractors = User.objects.bulk_create(User(username=f"ext{i:02d}") for i in range(20))
    ids = list(Clip.objects.filter(campaign=campaign).values_list("pk", flat=True))
    for i, extractor in enumerate(extractors):
        Clip.objects.filter(pk__in=ids[i::20]).update(proposed_by=extractor)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {sql.REWARD} (campaign_id, person_id, kind, clip_id, annotation_id, "
            "amount_cents, reason, created_at) "
            "SELECT c.campaign_id, n.annotator_id, %(kind)s, n.clip_id, n.id, 20, '', n.created_at "
            f"FROM {sql.ANNOTATION} n JOIN {sql.CLIP} c ON c.id = n.clip_id "
            "WHERE c.campaign_id = %(campaign)s AND n.invalidated_at IS NULL",
            {"kind": RewardKind.ANNOTATION.value, "campaign": campaign.pk},
        )
    return campaign, ids


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dfer-bench-rewards-"))
    url = bench_database_url(workdir)
    env = bench_env(url, workdir)
    postgres = url.startswith("postgres")
    say(
        f"database: {'PostgreSQL' if postgres else 'SQLite'}; {args.clips} clips × 10 labels; "
        f"best of {args.repeat}; {os.cpu_count()} CPUs"
    )
    failed = 0
    try:
        setup_django(env)
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.db.models import Count, Sum
        from django.test import Client

        from labeling.models import Annotation, ClipLabel, RewardEntry, RewardKind
        from labeling.results import aggregation
        from labeling.rewards import ledger, payouts

        settings.ALLOWED_HOSTS = ["*"]
        settings.STORAGES = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        t0 = time.perf_counter()
        campaign, ids = seed(workdir, args.clips)
        say(f"seeded in {time.perf_counter() - t0:.0f} s: {RewardEntry.objects.count()} entries")
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")

        # Aggregation: without the ledger, then with it (the entries it writes once).
        with mock.patch.object(ledger, "clips_sync", lambda *a, **k: ledger.SyncResult(0, 0)):
            t0 = time.perf_counter()
            aggregation.clips_aggregate(ids)
            without = time.perf_counter() - t0
        ClipLabel.objects.filter(clip__campaign=campaign).delete()
        t0 = time.perf_counter()
        aggregation.clips_aggregate(ids)
        with_ledger = time.perf_counter() - t0
        t0 = time.perf_counter()
        aggregation.clips_aggregate(ids)  # again: nothing new is written
        again = time.perf_counter() - t0
        kinds = dict(
            RewardEntry.objects.values("kind").annotate(n=Count("pk")).values_list("kind", "n")
        )
        say(
            f"aggregate {len(ids)} clips: without the ledger {without:6.2f} s, with it "
            f"{with_ledger:6.2f} s ({with_ledger / without:4.2f}×), again {again:6.2f} s; "
            f"entries by kind {kinds}"
        )
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")

        def baseline():
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT person_id, sum(amount_cents) FROM {RewardEntry._meta.db_table} "
                    "WHERE campaign_id = %s GROUP BY person_id",
                    [campaign.pk],
                )
                return cursor.fetchall()

        base_ms, rows = best_ms(args.repeat, baseline)
        say(f"baseline: raw per-person sums of the ledger ({len(rows)} people)  {base_ms:8.1f} ms")

        staff = get_user_model().objects.create(username="staff", is_staff=True, is_superuser=True)
        busiest = Annotation.objects.values("annotator").annotate(n=Count("pk")).order_by("-n")[0]
        annotator = get_user_model().objects.get(pk=busiest["annotator"])
        staff_client, own_client = Client(), Client()
        staff_client.force_login(staff)
        own_client.force_login(annotator)
        checks = [
            ("rewards page", staff_client, f"/staff/campaigns/{campaign.pk}/rewards/"),
            (f"/api/v1/me/ ({annotator.username})", own_client, "/api/v1/me/"),
            ("admin reward entries", staff_client, "/admin/labeling/rewardentry/"),
        ]
        for name, client, path in checks:
            ms, response = best_ms(args.repeat, lambda c=client, p=path: c.get(p))
            ok = response.status_code == 200 and ms <= TARGET_MS
            failed += not ok
            say(
                f"{name:26s} {ms:8.1f} ms  ({ms / base_ms:6.1f}× the baseline; HTTP "
                f"{response.status_code}; target ≤ {TARGET_MS:.0f} ms: {'met' if ok else 'NOT met'})"
            )

        ledger_total = Decimal(RewardEntry.objects.aggregate(s=Sum("amount_cents"))["s"]) / 100
        t0 = time.perf_counter()
        payout = payouts.payout_create(staff=staff, campaign_id=campaign.pk)
        pay_ms = (time.perf_counter() - t0) * 1000
        csv_ms, text = best_ms(args.repeat, lambda: payouts.payout_csv(payout))
        csv_sum = sum(Decimal(r["amount"]) for r in csv.DictReader(io.StringIO(text)))
        agree = ledger_total == payout.total == csv_sum
        failed += not agree
        say(
            f"payout of {payout.entries} entries to {payout.people} people: {pay_ms:8.1f} ms "
            f"({pay_ms / base_ms:6.1f}× the baseline); its CSV {csv_ms:6.1f} ms; "
            f"ledger {ledger_total} = payout {payout.total} = CSV {csv_sum}: "
            f"{'agree' if agree else 'DISAGREE'}"
        )
        rare = RewardEntry.objects.filter(kind=RewardKind.RARE_CLIP).count()
        say(f"rare clips found (disgust, fear single labels): {rare}")
        return 1 if failed else 0
    finally:
        teardown(url, workdir)


if __name__ == "__main__":
    sys.exit(main())
