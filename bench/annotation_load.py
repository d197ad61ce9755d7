"""Annotation load: concurrent annotators doing next → submit over HTTP against gunicorn.

Two shapes, back to back in one run, on one database:

* mixed (the default targets): 50 annotators against campaigns of each ``--clips`` size
  (100 and DFEW's 16,372 by default), each phase bounded by ``--seconds``. Prints labels/s,
  p50/p95 of `next` and `submit`, the server's CPU per label (gunicorn, and PostgreSQL's
  backends), and the correctness counts (clips over their ten, an annotator twice on a clip,
  labels answered 201 but not stored). Baseline, same run, same database, same size: the same
  lease-then-label transactions as raw SQL from the same number of threads, with no HTTP and no
  Django (the floor the database itself sets for this design).
* dfew: DFEW's own shape, 10 annotators each labelling every clip of a ``--dfew-clips``
  campaign; prints labels/s of the first and of the last thousand labels.

    python bench/annotation_load.py                                   # the SQLite default
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dfer python bench/annotation_load.py
    python bench/annotation_load.py --shape dfew --dfew-clips 16372

It creates (and drops, on PostgreSQL) its own database: `<name>_bench` next to DATABASE_URL's,
or a temporary SQLite file; it never writes to the database the app uses. Exit status 1 when a
correctness count is not zero.
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
    p.add_argument(
        "--clips",
        type=int,
        nargs="+",
        default=[100, 16372],
        help="campaign sizes of the mixed shape, one phase each (default 100 16372)",
    )
    p.add_argument("--seconds", type=float, default=60, help="time bound of each phase (60)")
    p.add_argument("--shape", choices=["mixed", "dfew", "both"], default="mixed")
    p.add_argument("--dfew-clips", type=int, default=16372, help="clips of the dfew shape")
    p.add_argument(
        "--dfew-seconds", type=float, default=3600, help="time bound of the dfew shape (3600)"
    )
    # As deployed (Dockerfile, docker compose): 3 processes × 4 threads. On 2 cores this did
    # 97–111 labels/s where 2 × 8 did 80–87 (GIL contention among 8 threads of one process).
    p.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (default 3)")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
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
        # The app refuses keys under 50 characters.
        "SECRET_KEY": os.environ.get("SECRET_KEY")
        or "bench-only-insecure-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "DEBUG": "0",
        "VAR_DIR": str(workdir),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "annotation_site.settings",
    }


def setup_django(env: dict) -> None:
    """Migrates the benchmark's database, collects its static files and sets Django up in
    this process on it."""
    for command in ("migrate", "collectstatic"):  # gunicorn refuses to start without static
        subprocess.run(
            [sys.executable, "manage.py", command, "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
    os.environ.update(env)
    import django

    django.setup()


def prepare(env: dict, annotators: int):
    """Migrates the benchmark's database and makes the annotators; returns their (id, token)."""
    setup_django(env)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    User = get_user_model()
    group = Group.objects.get(name="annotator")
    users = User.objects.bulk_create(
        User(username=f"bench{i:03d}", password="!") for i in range(annotators)
    )
    group.user_set.add(*users)
    return [(u.pk, Token.objects.create(user=u).key) for u in users]


def campaign_of(slug: str, clips: int, user_ids: list[int]) -> int:
    """A campaign of `clips` open clips (ten labels each) labelled by `user_ids`."""
    from django.db import connections

    from labeling import campaigns
    from labeling.media import movies

    campaign = campaigns.campaign_create(name=slug, slug=slug, min_view_seconds=0)
    campaign.annotators.add(*user_ids)
    movie = movies.movie_register_extracted(campaign=campaign, title="bench")
    movies.clips_register_extracted(
        movie=movie,
        clips=[
            movies.ExtractedClip(end_s=2.0, video=f"clips/{i:05d}.mp4") for i in range(1, clips + 1)
        ],
    )
    connections.close_all()
    return campaign.pk


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


def run_http(port: int, tokens: list[str], campaign_id: int, seconds: float):
    """Each annotator labels until nothing is left or the time is up. Returns the elapsed
    time, HTTP statuses, latencies, and (time, assignment) of every label answered 201."""
    statuses: Counter = Counter()
    latencies: dict[str, list[float]] = {"next": [], "submit": []}
    accepted: list[tuple[float, int]] = []
    lock = threading.Lock()
    t0 = time.perf_counter()
    deadline = t0 + seconds

    def annotator(index: int) -> None:
        rng = random.Random(index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Token {tokens[index]}", "Content-Type": "application/json"}

        def call(method, path, body=None):
            t = time.perf_counter()
            conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None), time.perf_counter() - t

        while time.perf_counter() < deadline:
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
                    accepted.append((time.perf_counter() - t0, body["assignment"]))
        conn.close()

    threads = [threading.Thread(target=annotator, args=(i,)) for i in range(len(tokens))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, statuses, latencies, accepted


def correctness(campaign_id: int, accepted: list[tuple[float, int]]) -> dict:
    from django.db.models import Count

    from labeling.models import Annotation

    rows = Annotation.objects.filter(clip__campaign_id=campaign_id)
    per_clip = rows.values("clip").annotate(n=Count("pk"), people=Count("annotator", distinct=True))
    stored = set(rows.values_list("assignment_id", flat=True))
    return {
        "annotations": rows.count(),
        "clips_over_ten": sum(1 for r in per_clip if r["n"] > 10),
        "repeated_annotator_on_a_clip": sum(r["n"] - r["people"] for r in per_clip),
        "lost_submissions": len({a for _, a in accepted} - stored),
    }


# --- baseline: the same transactions as raw SQL --------------------------------------------------

# The app's design without the app: the open clip nearest completion off the index on
# (campaign, status, slots_held desc, number), its slots re-read under the lock, the lease and
# the held count written in the same transaction; then the label.
NEXT_SQL = """
SELECT c.id FROM labeling_clip c
WHERE c.campaign_id = %(campaign)s AND c.status = 'annotating' AND c.slots_held < 10
  AND NOT EXISTS (SELECT 1 FROM labeling_assignment a WHERE a.clip_id = c.id
                  AND a.annotator_id = %(user)s
                  AND a.status IN ('leased', 'submitted', 'invalidated'))
ORDER BY c.slots_held DESC, c.number
LIMIT 1 {lock}
"""
SLOTS_SQL = (
    "SELECT slot FROM labeling_assignment WHERE clip_id = %(clip)s "
    "AND status IN ('leased', 'submitted')"
)
LEASE_SQL = (
    "INSERT INTO labeling_assignment (clip_id, annotator_id, slot, status, leased_at, "
    "expires_at) VALUES (%(clip)s, %(user)s, %(slot)s, 'leased', %(now)s, %(now)s) RETURNING id"
)
HELD_SQL = "UPDATE labeling_clip SET slots_held = slots_held + 1 WHERE id = %(clip)s"
SUBMIT_SQL = (
    "UPDATE labeling_assignment SET status = 'submitted', finished_at = %(now)s WHERE id = %(a)s"
)
LABEL_SQL = (
    "INSERT INTO labeling_annotation (assignment_id, clip_id, annotator_id, label_id, slot, "
    "created_at, invalidation_reason) "
    "VALUES (%(a)s, %(clip)s, %(user)s, %(label)s, %(slot)s, %(now)s, '')"
)


def run_sql_baseline(url, user_ids: list[int], campaign_id: int, label_id: int, seconds: float):
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
    t0 = time.perf_counter()
    deadline = t0 + seconds

    def annotator(user_id: int) -> None:
        conn = connect()
        while time.perf_counter() < deadline:
            conn.execute(begin)
            row = conn.execute(
                q(NEXT_SQL.format(lock=lock)), {"campaign": campaign_id, "user": user_id}
            ).fetchone()
            if row is None:
                conn.execute("COMMIT")
                break
            clip = row[0]
            slots = {r[0] for r in conn.execute(q(SLOTS_SQL), {"clip": clip}).fetchall()}
            if len(slots) >= 10:
                conn.execute("COMMIT")
                continue
            slot = min(set(range(1, 11)) - slots)
            now = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime())
            args = {"clip": clip, "user": user_id, "slot": slot, "now": now}
            assignment = conn.execute(q(LEASE_SQL), args).fetchone()[0]
            conn.execute(q(HELD_SQL), args)
            conn.execute("COMMIT")
            conn.execute(begin)
            conn.execute(
                q("SELECT id FROM labeling_clip WHERE id = %(clip)s" + (" FOR UPDATE" * postgres)),
                args,
            )
            conn.execute(q(SUBMIT_SQL), {"a": assignment, "now": now})
            conn.execute(q(LABEL_SQL), {**args, "a": assignment, "label": label_id})
            conn.execute("COMMIT")
            with mutex:
                done[0] += 1
        conn.close()

    threads = [threading.Thread(target=annotator, args=(u,)) for u in user_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, done[0]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def http_phase(env, args, tokens, campaign_id, seconds, postgres) -> dict:
    """One phase of labelling over HTTP against a fresh gunicorn; its figures."""
    server, port = start_gunicorn(env, args)
    try:
        cpu0, pg0 = server_cpu(server), postgres_cpu() if postgres else 0.0
        client0 = time.process_time()
        elapsed, statuses, latencies, accepted = run_http(port, tokens, campaign_id, seconds)
        client_cpu = time.process_time() - client0
        cpu = server_cpu(server) - cpu0
        pg = (postgres_cpu() - pg0) if postgres else 0.0
    finally:
        server.terminate()
        server.wait(timeout=30)
    checks = correctness(campaign_id, accepted)
    n = len(accepted)
    return {
        "labels": n,
        "elapsed_s": elapsed,
        "labels_per_s": n / elapsed,
        "next_p50_ms": pct(latencies["next"], 50),
        "next_p95_ms": pct(latencies["next"], 95),
        "submit_p50_ms": pct(latencies["submit"], 50),
        "submit_p95_ms": pct(latencies["submit"], 95),
        "server_cpu_ms_per_label": cpu / n * 1000 if n else float("nan"),
        "postgres_cpu_ms_per_label": pg / n * 1000 if n and postgres else None,
        "client_cpu_ms_per_label": client_cpu / n * 1000 if n else float("nan"),
        "http_statuses": dict(sorted(statuses.items())),
        "accepted_times": [t for t, _ in accepted],
        **checks,
    }


def violations(figures: dict) -> int:
    return (
        figures["clips_over_ten"]
        + figures["repeated_annotator_on_a_clip"]
        + figures["lost_submissions"]
    )


def mixed_shape(env, args, users, url, postgres) -> tuple[dict, int]:
    from labeling.models import Label

    ids = [pk for pk, _ in users]
    tokens = [token for _, token in users]
    results, bad = {}, 0
    for size in args.clips:
        app = campaign_of(f"bench-app-{size}", size, ids)
        raw = campaign_of(f"bench-sql-{size}", size, ids)
        figures = http_phase(env, args, tokens, app, args.seconds, postgres)
        label = Label.objects.get(campaign_id=raw, name="happy").pk
        from django.db import connections

        connections.close_all()
        base_elapsed, base_n = run_sql_baseline(url, ids, raw, label, args.seconds)
        figures["baseline_raw_sql_labels_per_s"] = base_n / base_elapsed
        figures["ratio_to_raw_sql"] = (
            figures["labels_per_s"] / figures["baseline_raw_sql_labels_per_s"]
        )
        figures.pop("accepted_times")
        bad += violations(figures)
        results[size] = figures
        print(f"\n{size} open clips, {len(ids)} annotators, at most {args.seconds:g} s")
        print(
            f"  labels/s               {figures['labels_per_s']:8.1f}   (raw-SQL baseline, same "
            f"run and size: {figures['baseline_raw_sql_labels_per_s']:.1f}/s; ratio "
            f"{figures['ratio_to_raw_sql']:.2f})"
        )
        print(
            f"  next p50 / p95 (ms)    {figures['next_p50_ms']:8.1f} / {figures['next_p95_ms']:.1f}"
        )
        print(
            f"  submit p50 / p95 (ms)  {figures['submit_p50_ms']:8.1f} / "
            f"{figures['submit_p95_ms']:.1f}"
        )
        print(
            f"  server CPU / label     {figures['server_cpu_ms_per_label']:8.2f} ms (gunicorn)"
            + (
                f"; PostgreSQL backends {figures['postgres_cpu_ms_per_label']:.2f} ms"
                if postgres
                else ""
            )
            + f"; load generator {figures['client_cpu_ms_per_label']:.2f} ms"
        )
        print(f"  HTTP statuses          {figures['http_statuses']}")
        print(
            f"  correctness            labels {figures['labels']}, clips over ten "
            f"{figures['clips_over_ten']}, repeated annotator on a clip "
            f"{figures['repeated_annotator_on_a_clip']}, lost submissions "
            f"{figures['lost_submissions']}"
        )
    if len(args.clips) > 1:
        small, large = min(args.clips), max(args.clips)
        ratio = results[large]["labels_per_s"] / results[small]["labels_per_s"]
        results["size_ratio"] = ratio
        print(
            f"\nlabels/s at {large} clips / at {small} clips, same run: {ratio:.2f} "
            f"(target ≥ 0.80: {'met' if ratio >= 0.8 else 'NOT met'}); "
            f"at {large}: {results[large]['labels_per_s']:.0f}/s (target ≥ 100: "
            f"{'met' if results[large]['labels_per_s'] >= 100 else 'NOT met'}), "
            f"{results[large]['server_cpu_ms_per_label']:.1f} ms CPU (target ≤ 15: "
            f"{'met' if results[large]['server_cpu_ms_per_label'] <= 15 else 'NOT met'})"
        )
    return results, bad


def dfew_shape(env, args, users, postgres) -> tuple[dict, int]:
    """Ten annotators, every one labelling every clip; first and last thousand labels."""
    users = users[:10]
    campaign = campaign_of("bench-dfew", args.dfew_clips, [pk for pk, _ in users])
    figures = http_phase(env, args, [t for _, t in users], campaign, args.dfew_seconds, postgres)
    times = figures.pop("accepted_times")
    window = min(1000, len(times) // 2)
    first = window / (times[window - 1] - 0) if window else float("nan")
    last = window / (times[-1] - times[-window - 1]) if window else float("nan")
    figures.update(first_thousand_per_s=first, last_thousand_per_s=last, window=window)
    figures["last_to_first"] = last / first if window else float("nan")
    expected = args.dfew_clips * 10
    print(f"\nDFEW shape: 10 annotators × {args.dfew_clips} clips (all of them each)")
    print(
        f"  labels                 {figures['labels']} of {expected} in "
        f"{figures['elapsed_s']:.0f} s ({figures['labels_per_s']:.1f}/s)"
    )
    print(
        f"  first {window} labels/s  {first:8.1f}; last {window}: {last:.1f} "
        f"(ratio {figures['last_to_first']:.2f})"
    )
    print(
        f"  server CPU / label     {figures['server_cpu_ms_per_label']:8.2f} ms; next p50 / p95 "
        f"{figures['next_p50_ms']:.1f} / {figures['next_p95_ms']:.1f} ms"
    )
    print(
        f"  correctness            clips over ten {figures['clips_over_ten']}, repeated "
        f"annotator on a clip {figures['repeated_annotator_on_a_clip']}, lost submissions "
        f"{figures['lost_submissions']}"
    )
    return figures, violations(figures)


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
        f"gunicorn {args.workers} workers × {args.threads} threads; {os.cpu_count()} CPUs"
    )
    users = prepare(env, max(args.annotators, 10))
    figures: dict = {"database": "postgresql" if postgres else "sqlite"}
    bad = 0
    if args.shape in ("mixed", "both"):
        figures["mixed"], n = mixed_shape(env, args, users[: args.annotators], url, postgres)
        bad += n
    if args.shape in ("dfew", "both"):
        figures["dfew"], n = dfew_shape(env, args, users, postgres)
        bad += n
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    from django.db import connections

    connections.close_all()
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
