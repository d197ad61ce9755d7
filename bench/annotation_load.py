"""Annotation load: N concurrent annotators doing next → submit over HTTP against gunicorn.

Prints annotations/s, p50/p95 latency of `next` and `submit`, the server's CPU time per
annotation (gunicorn, and PostgreSQL's backends where it is PostgreSQL), and the correctness
counts: clips over their ten, an annotator twice on one clip, submissions answered 201 but
not stored. The baseline, measured in the same run on the same database: the same
lease-then-label transactions issued as raw SQL by the same number of threads, with no HTTP
and no Django, i.e. the floor the database itself sets.

    python bench/annotation_load.py                       # the SQLite default
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dfer_bench python bench/annotation_load.py

It creates (and drops, on PostgreSQL) its own database: `<name>_bench` next to DATABASE_URL's,
or a temporary SQLite file; it never writes to the database the app uses.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LABELS = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--annotators", type=int, default=50, help="concurrent annotators (default 50)")
    p.add_argument("--clips", type=int, default=100, help="clips, ten labels each (default 100)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    p.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker (default 8)")
    p.add_argument(
        "--worker-class", default="gthread", help="gunicorn worker class (gthread, sync)"
    )
    p.add_argument("--port", type=int, default=0, help="port for gunicorn (default: a free one)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return p.parse_args()


# --- the database the benchmark owns ----------------------------------------------------------


def bench_database_url(workdir: Path) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{workdir / 'bench.sqlite3'}"
    parts = urlparse(url)
    name = (parts.path.lstrip("/") or "dfer") + "_bench"
    admin = urlunparse(parts._replace(path="/postgres"))
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(parts._replace(path=f"/{name}"))


def bench_env(url: str, workdir: Path) -> dict:
    """The environment of the app under benchmark: its own database and var folder."""
    return {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-insecure-key"),
        "DEBUG": "0",
        "VAR_DIR": str(workdir),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "annotation_site.settings",
    }


def setup_django(env: dict) -> None:
    """Migrates the benchmark's database and sets Django up in this process on it."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    os.environ.update(env)
    import django

    django.setup()


def prepare(env: dict, args) -> tuple[list[str], int, int]:
    """Migrates and seeds two identical campaigns: one for the app, one for the baseline."""
    setup_django(env)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from labeling import services
    from labeling.models import Clip, Movie

    User = get_user_model()
    group = Group.objects.get(name="annotator")
    users = User.objects.bulk_create(
        User(username=f"bench{i:03d}", password="!") for i in range(args.annotators)
    )
    group.user_set.add(*users)
    tokens = [Token.objects.create(user=u).key for u in users]
    campaign_ids = []
    for slug in ("bench-app", "bench-sql"):
        campaign = services.campaign_create(name=slug, slug=slug, min_view_seconds=0)
        campaign.annotators.add(*users)
        movie = Movie.objects.create(campaign=campaign, title="bench", status="ready")
        Clip.objects.bulk_create(
            Clip(
                campaign=campaign,
                movie=movie,
                number=i,
                end_s=2.0,
                video=f"clips/{i:05d}.mp4",
                status=Clip.Status.ANNOTATING,
            )
            for i in range(1, args.clips + 1)
        )
        campaign_ids.append(campaign.pk)
    from django.db import connections

    connections.close_all()
    return tokens, campaign_ids[0], campaign_ids[1]


# --- the app over HTTP ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(env: dict, args) -> tuple[subprocess.Popen, int]:
    port = args.port or free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "annotation_site.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--worker-class",
            args.worker_class,
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("gunicorn did not start within 30 s")


def cpu_seconds(processes) -> float:
    """User + system CPU time of the processes that are still alive."""
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def server_cpu(proc: subprocess.Popen) -> float:
    parent = psutil.Process(proc.pid)
    return cpu_seconds([parent, *parent.children(recursive=True)])


def postgres_cpu() -> float:
    return cpu_seconds(
        p for p in psutil.process_iter(["username"]) if p.info["username"] == "postgres"
    )


def run_http(port: int, tokens: list[str], campaign_id: int):
    statuses: Counter = Counter()
    latencies: dict[str, list[float]] = {"next": [], "submit": []}
    accepted: list[int] = []
    lock = threading.Lock()

    def annotator(index: int) -> None:
        rng = random.Random(index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Token {tokens[index]}", "Content-Type": "application/json"}

        def call(method, path, body=None):
            t0 = time.perf_counter()
            conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None), time.perf_counter() - t0

        while True:
            status, body, dt = call("POST", "/api/v1/tasks/next/", {"campaign": campaign_id})
            with lock:
                statuses[status] += 1
                latencies["next"].append(dt)
            if status != 200:
                break
            status, _, dt = call(
                "POST",
                f"/api/v1/assignments/{body['assignment']}/submit/",
                {"label": rng.choice(LABELS)},
            )
            with lock:
                statuses[status] += 1
                latencies["submit"].append(dt)
                if status == 201:
                    accepted.append(body["assignment"])
        conn.close()

    threads = [threading.Thread(target=annotator, args=(i,)) for i in range(len(tokens))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, statuses, latencies, accepted


def correctness(campaign_id: int, accepted: list[int]) -> dict:
    from django.db.models import Count

    from labeling.models import Annotation

    rows = Annotation.objects.filter(clip__campaign_id=campaign_id)
    per_clip = rows.values("clip").annotate(n=Count("pk"), people=Count("annotator", distinct=True))
    stored = set(rows.values_list("assignment_id", flat=True))
    return {
        "annotations": rows.count(),
        "clips_over_ten": sum(1 for r in per_clip if r["n"] > 10),
        "repeated_annotator_on_a_clip": sum(r["n"] - r["people"] for r in per_clip),
        "lost_submissions": len(set(accepted) - stored),
    }


# --- baseline: the same transactions as raw SQL --------------------------------------------------

NEXT_SQL = """
SELECT c.id FROM labeling_clip c
WHERE c.campaign_id = %(campaign)s AND c.status = 'annotating'
  AND NOT EXISTS (SELECT 1 FROM labeling_assignment a WHERE a.clip_id = c.id
                  AND a.annotator_id = %(user)s AND a.status IN ('leased', 'submitted'))
  AND (SELECT count(*) FROM labeling_assignment a WHERE a.clip_id = c.id
       AND a.status IN ('leased', 'submitted')) < 10
ORDER BY (SELECT count(*) FROM labeling_assignment a WHERE a.clip_id = c.id
          AND a.status IN ('leased', 'submitted')) DESC, c.number
LIMIT 1 {lock}
"""


def run_sql_baseline(url: str, user_ids: list[int], campaign_id: int, label_id: int):
    postgres = url.startswith("postgres")
    lock = "FOR UPDATE OF c SKIP LOCKED" if postgres else ""

    def connect():
        if postgres:
            import psycopg

            return psycopg.connect(url, autocommit=True)
        import sqlite3

        conn = sqlite3.connect(urlparse(url).path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def q(sql: str) -> str:
        return sql if postgres else sql.replace("%(", ":").replace(")s", "")

    begin = "BEGIN" if postgres else "BEGIN IMMEDIATE"
    done = [0]
    mutex = threading.Lock()

    def annotator(user_id: int) -> None:
        conn = connect()
        while True:
            conn.execute(begin)
            row = conn.execute(
                q(NEXT_SQL.format(lock=lock)), {"campaign": campaign_id, "user": user_id}
            ).fetchone()
            if row is None:
                conn.execute("COMMIT")
                break
            clip = row[0]
            slots = {
                r[0]
                for r in conn.execute(
                    q(
                        "SELECT slot FROM labeling_assignment WHERE clip_id = %(clip)s AND status IN ('leased','submitted')"
                    ),
                    {"clip": clip},
                ).fetchall()
            }
            if len(slots) >= 10:
                # The count in NEXT_SQL predates a commit that filled the clip (the app
                # re-checks under the lock the same way); try again.
                conn.execute("COMMIT")
                continue
            slot = min(set(range(1, 11)) - slots)
            now = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime())
            cur = conn.execute(
                q(
                    "INSERT INTO labeling_assignment (clip_id, annotator_id, slot, status, leased_at, expires_at) "
                    "VALUES (%(clip)s, %(user)s, %(slot)s, 'leased', %(now)s, %(now)s) RETURNING id"
                ),
                {"clip": clip, "user": user_id, "slot": slot, "now": now},
            )
            assignment = cur.fetchone()[0]
            conn.execute("COMMIT")
            conn.execute(begin)
            conn.execute(
                q(
                    "SELECT id FROM labeling_clip WHERE id = %(clip)s"
                    + (" FOR UPDATE" if postgres else "")
                ),
                {"clip": clip},
            )
            conn.execute(
                q(
                    "UPDATE labeling_assignment SET status = 'submitted', finished_at = %(now)s WHERE id = %(a)s"
                ),
                {"a": assignment, "now": now},
            )
            conn.execute(
                q(
                    "INSERT INTO labeling_annotation (assignment_id, clip_id, annotator_id, label_id, slot, created_at) "
                    "VALUES (%(a)s, %(clip)s, %(user)s, %(label)s, %(slot)s, %(now)s)"
                ),
                {
                    "a": assignment,
                    "clip": clip,
                    "user": user_id,
                    "label": label_id,
                    "slot": slot,
                    "now": now,
                },
            )
            conn.execute("COMMIT")
            with mutex:
                done[0] += 1
        conn.close()

    threads = [threading.Thread(target=annotator, args=(u,)) for u in user_ids]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, done[0]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def main() -> None:
    args = parse_args()
    # Fifty client threads share one GIL: hand it over quickly when a response arrives, so the
    # load generator does not add its own queueing to the latencies it measures.
    sys.setswitchinterval(0.0005)
    workdir = Path(tempfile.mkdtemp(prefix="dfer-bench-"))
    url = bench_database_url(workdir)
    env = bench_env(url, workdir)
    postgres = url.startswith("postgres")
    print(
        f"database: {'PostgreSQL' if postgres else 'SQLite'} ({url.rsplit('/', 1)[-1]}); "
        f"{args.annotators} annotators, {args.clips} clips × 10 labels; "
        f"gunicorn {args.workers} workers × {args.threads} threads; {os.cpu_count()} CPUs"
    )
    tokens, app_campaign, sql_campaign = prepare(env, args)

    server, port = start_gunicorn(env, args)
    try:
        cpu0, pg0 = server_cpu(server), postgres_cpu() if postgres else 0.0
        client0 = time.process_time()
        elapsed, statuses, latencies, accepted = run_http(port, tokens, app_campaign)
        client_cpu = time.process_time() - client0
        cpu = server_cpu(server) - cpu0
        pg = (postgres_cpu() - pg0) if postgres else 0.0
    finally:
        server.terminate()
        server.wait(timeout=30)

    checks = correctness(app_campaign, accepted)
    n = checks["annotations"]
    from django.contrib.auth import get_user_model

    from labeling.models import Label

    user_ids = list(get_user_model().objects.order_by("pk").values_list("pk", flat=True))
    label_id = Label.objects.get(campaign_id=sql_campaign, name="happy").pk
    from django.db import connections

    connections.close_all()
    base_elapsed, base_n = run_sql_baseline(url, user_ids, sql_campaign, label_id)

    figures = {
        "database": "postgresql" if postgres else "sqlite",
        "annotators": args.annotators,
        "annotations": n,
        "annotations_per_s": n / elapsed,
        "next_p50_ms": pct(latencies["next"], 50),
        "next_p95_ms": pct(latencies["next"], 95),
        "submit_p50_ms": pct(latencies["submit"], 50),
        "submit_p95_ms": pct(latencies["submit"], 95),
        "server_cpu_ms_per_annotation": cpu / n * 1000 if n else float("nan"),
        "postgres_cpu_ms_per_annotation": pg / n * 1000 if n and postgres else None,
        "client_cpu_ms_per_annotation": client_cpu / n * 1000 if n else float("nan"),
        "http_statuses": dict(sorted(statuses.items())),
        **checks,
        "baseline_raw_sql_annotations_per_s": base_n / base_elapsed,
    }
    figures["ratio_to_raw_sql"] = (
        figures["annotations_per_s"] / figures["baseline_raw_sql_annotations_per_s"]
    )

    print(
        f"annotations/s            {figures['annotations_per_s']:8.1f}   "
        f"(raw-SQL baseline, same run: {figures['baseline_raw_sql_annotations_per_s']:.1f}/s; "
        f"ratio {figures['ratio_to_raw_sql']:.2f})"
    )
    print(f"next   p50 / p95 (ms)    {figures['next_p50_ms']:8.1f} / {figures['next_p95_ms']:.1f}")
    print(
        f"submit p50 / p95 (ms)    {figures['submit_p50_ms']:8.1f} / {figures['submit_p95_ms']:.1f}"
    )
    print(
        f"server CPU / annotation  {figures['server_cpu_ms_per_annotation']:8.2f} ms (gunicorn)"
        + (
            f"; PostgreSQL backends {figures['postgres_cpu_ms_per_annotation']:.2f} ms"
            if postgres
            else ""
        )
        + f"; load generator {figures['client_cpu_ms_per_annotation']:.2f} ms"
    )
    print(f"HTTP statuses            {figures['http_statuses']}")
    print(
        f"correctness              annotations {n} (expected {args.clips * 10}), clips over ten "
        f"{checks['clips_over_ten']}, repeated annotator on a clip "
        f"{checks['repeated_annotator_on_a_clip']}, lost submissions {checks['lost_submissions']}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    violations = (
        checks["clips_over_ten"]
        + checks["repeated_annotator_on_a_clip"]
        + checks["lost_submissions"]
    )
    if postgres:
        from django.db import connections

        connections.close_all()
    sys.exit(1 if violations or n != args.clips * 10 else 0)


if __name__ == "__main__":
    main()
