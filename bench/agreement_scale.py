"""Agreement at DFEW scale: import, aggregation and the agreement report of 16,372 clips × 10.

A seeded CSV of DFEW's size (clips 1..N, each labelled by 10 of ~100 annotators of accuracy
0.5-0.95 plus a few spammers who click at random, true labels skewed like DFEW's Table 2, ≤ 20
clips per movie, durations 0.5-10 s) goes through the app's own paths:

- import: ``import_annotations FILE --campaign dfew --create --name DFEW`` through
  ``call_command`` in this process, with the command's final ``clips_aggregate`` call held back
  (its clip ids recorded) so that the import is timed without the aggregation; the time spent
  inside ``annotations_import`` is shown too. Then the same file again (without ``--create``):
  it must change nothing;
- aggregation: ``clips_aggregate`` of every complete clip, one ClipLabel each;
- report: the fast path (``campaign_votes(people=False)``, Fleiss' kappa with per-label kappas,
  ``aggregate`` and Table 2), the full ``campaign_agreement`` (1,000 bootstrap resamples,
  Krippendorff, Dawid–Skene, …) and ``report_plots``.

The baseline, measured in the same run on the same database: one raw SELECT of the campaign's
valid (clip id, label code) pairs through ``django.db.connection.cursor()``, a numpy bincount
into the N×7 count matrix and statsmodels' ``fleiss_kappa``, i.e. the least any report of the
kappa has to do. Every figure is printed with its ratio to it; the report's timings and the
baseline are the best of three, import and aggregation run once. On PostgreSQL the tables are
analysed before the report is timed, as autovacuum would have done by then (``--no-analyze``:
not). The import's time is also split by the service's own progress steps, with the CPU
seconds of this process and (on PostgreSQL) of the server's processes.

    python bench/agreement_scale.py                       # the SQLite default
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dfer_bench python bench/agreement_scale.py
    python bench/agreement_scale.py --clips 2000 --json figures.json

It creates and drops its own database: `<name>_bench` next to DATABASE_URL's, or a temporary
SQLite file; it never writes to the database the app uses. Exits 1 when a check or a target
fails; a stage that misses its target is profiled (cProfile, top entries) unless
``--profile none``.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import itertools
import json
import math
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse, urlunparse

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.annotation_load import (  # noqa: E402
    bench_database_url,
    bench_env,
    postgres_cpu,
    setup_django,
)

# DFEW's seven emotions (codes 1..7) and their shares of its single-labelled clips (Table 2).
LABELS = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]
SHARES = [20.6, 16.7, 22.5, 18.5, 12.4, 1.2, 8.1]
DFEW_CLIPS = 16372
PER_CLIP = 10
SLUG = "dfew"

# Targets (seconds, or a ratio to the baseline for the fast path).
IMPORT_TARGET_S = 15.0
AGGREGATE_TARGET_S = 30.0
FULL_REPORT_TARGET_S = 10.0
FAST_PATH_TARGET_RATIO = 2.0

STAGES = ("import", "reimport", "aggregate", "fast", "full", "plots", "bound")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--clips",
        type=int,
        default=DFEW_CLIPS,
        help=f"clips, ten labels each (default {DFEW_CLIPS})",
    )
    p.add_argument("--annotators", type=int, default=100, help="annotators (default 100)")
    p.add_argument(
        "--spammers", type=int, default=5, help="of them, who label at random (default 5)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the generated votes (default 0)")
    p.add_argument(
        "--repeat", type=int, default=3, help="best of this many for report and baseline (3)"
    )
    p.add_argument(
        "--profile",
        default="failed",
        help="stages to profile after measuring: 'failed' (default: those missing their "
        f"target), 'none', or a comma-separated list of {', '.join(STAGES)}",
    )
    p.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="on PostgreSQL, measure the report without first running ANALYZE",
    )
    p.add_argument("--keep", action="store_true", help="keep the database and the CSV")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args()
    if args.clips < 1:
        p.error("--clips must be at least 1")
    if not 0 <= args.spammers < args.annotators or args.annotators < PER_CLIP:
        p.error(f"need at least {PER_CLIP} annotators and fewer spammers than annotators")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    wanted = {s.strip() for s in args.profile.split(",") if s.strip()}
    unknown = wanted - {"failed", "none", *STAGES}
    if unknown:
        p.error(f"--profile: unknown stage(s) {', '.join(sorted(unknown))}")
    args.profile = wanted
    return args


T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {message}", flush=True)


class CheckFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


# --- the database the benchmark owns ----------------------------------------------------------


def drop_database(url: str) -> None:
    if not url.startswith(("postgres://", "postgresql://")):
        return
    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin = urlunparse(parts._replace(path="/postgres"))
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def teardown(url: str, workdir: Path) -> None:
    """After a bench that made its own database and folder: close Django's connections (if
    it was set up), drop the database, remove the folder."""
    if "django" in sys.modules:
        from django.db import connections

        connections.close_all()
    drop_database(url)
    shutil.rmtree(workdir, ignore_errors=True)


# --- the votes --------------------------------------------------------------------------------


def generate_csv(path: Path, args) -> dict:
    """Writes the CSV; returns the planted truth (per clip) and the spammers' names."""
    rng = np.random.default_rng(args.seed)
    n, k, r = args.clips, len(LABELS), args.annotators
    prior = np.array(SHARES) / sum(SHARES)
    truth = rng.choice(k, size=n, p=prior)
    accuracy = rng.uniform(0.5, 0.95, size=r)
    spammers = rng.choice(r, size=args.spammers, replace=False)
    names = [f"rater{i:03d}" for i in range(r)]
    # Ten distinct annotators per clip: the ten smallest of r uniform draws are a uniform subset.
    raters = np.argpartition(rng.random((n, r)), PER_CLIP - 1, axis=1)[:, :PER_CLIP]
    item = np.repeat(np.arange(n), PER_CLIP)
    who = raters.ravel()
    true = truth[item]
    label = true.copy()
    wrong = rng.random(len(item)) >= accuracy[who]
    for t in range(k):  # a mistake is another label, drawn by the labels' shares
        rows = np.flatnonzero(wrong & (true == t))
        others = prior.copy()
        others[t] = 0
        label[rows] = rng.choice(k, size=len(rows), p=others / others.sum())
    spam = np.isin(who, spammers)
    label[spam] = rng.integers(0, k, size=int(spam.sum()))
    # Movies of 1..20 consecutive clips; durations log-normal around 3 s within 0.5-10 s.
    sizes = rng.integers(1, 21, size=n)
    movie = np.repeat(np.arange(n), sizes)[:n]
    duration = np.clip(rng.lognormal(math.log(3.0), 0.6, size=n), 0.5, 10.0)
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["clip", "annotator", "label", "movie", "duration_s"])
        for i, a, lab in zip(item.tolist(), who.tolist(), label.tolist(), strict=True):
            out.writerow(
                [i + 1, names[a], LABELS[lab], f"movie{movie[i]:05d}", f"{duration[i]:.2f}"]
            )
    return {
        "truth": truth,
        "spammers": {names[s] for s in spammers},
        "movies": int(movie.max()) + 1,
        "rows": len(item),
    }


# --- timing -----------------------------------------------------------------------------------


def once(fn):
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def best_of(repeat: int, fn):
    best, result = float("inf"), None
    for _ in range(repeat):
        seconds, result = once(fn)
        best = min(best, seconds)
    return best, result


def profile(stage: str, fn) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(15)
    print(f"\n===== profile: {stage} (cProfile, cumulative then own time) =====")
    print(text.getvalue().strip())


# --- the stages -------------------------------------------------------------------------------


def table_counts(campaign_id: int | None) -> dict:
    from django.contrib.auth import get_user_model

    from labeling.models import Annotation, Assignment, Clip, ClipLabel, Movie

    if campaign_id is None:
        return {"users": get_user_model().objects.count()}
    return {
        "clips": Clip.objects.filter(campaign_id=campaign_id).count(),
        "complete_clips": Clip.objects.filter(campaign_id=campaign_id, status="complete").count(),
        "movies": Movie.objects.filter(campaign_id=campaign_id).count(),
        "assignments": Assignment.objects.filter(clip__campaign_id=campaign_id).count(),
        "annotations": Annotation.objects.filter(clip__campaign_id=campaign_id).count(),
        "clip_labels": ClipLabel.objects.filter(clip__campaign_id=campaign_id).count(),
        "users": get_user_model().objects.count(),
    }


def run_import(csv_path: Path, slug: str, create: bool) -> tuple[float, dict]:
    """The command in this process, its closing clips_aggregate call held back (ids recorded)."""
    from django.core.management import call_command

    from labeling.management.commands import import_annotations as command
    from labeling.results import aggregation

    seen: dict = {"stages": []}
    service = command.annotations_import

    def timed_service(**kwargs):
        # The service's own progress steps, timestamped: where the import's time goes.
        report = kwargs["progress"]

        def step(stage: str) -> None:
            seen["stages"].append((stage, time.perf_counter()))
            report(stage)

        seconds, summary = once(lambda: service(**{**kwargs, "progress": step}))
        seen.update(service_s=seconds, summary=summary, service_end=time.perf_counter())
        return summary

    def held_back(clip_ids, *, progress=None):
        seen["aggregate_ids"] = sorted(clip_ids)
        return 0

    argv = [str(csv_path), "--campaign", slug]
    if create:
        argv += ["--create", "--name", "DFEW"]
    out = io.StringIO()
    cpu0, pg0 = time.process_time(), postgres_cpu()
    with (
        mock.patch.object(command, "annotations_import", timed_service),
        mock.patch.object(aggregation, "clips_aggregate", held_back),
    ):
        start = time.perf_counter()
        seconds, _ = once(
            lambda: call_command("import_annotations", *argv, stdout=out, stderr=io.StringIO())
        )
    end = time.perf_counter()
    seen.update(python_cpu_s=time.process_time() - cpu0, postgres_cpu_s=postgres_cpu() - pg0)
    marks = [
        ("command start, campaign", start),
        *seen["stages"],
        ("commit, command's output", seen["service_end"]),
    ]
    seen["breakdown"] = [
        (stage, later - at)
        for (stage, at), (_, later) in zip(marks, [*marks[1:], ("end", end)], strict=True)
    ]
    return seconds, seen


def fast_path(campaign):
    """Kappa, per-label kappa and Table 2 only: the votes without people, then numpy."""
    from labeling.results.agreement import campaign_votes
    from pipeline.aggregation import aggregate, table2
    from pipeline.agreement import fleiss, vote_counts

    votes = campaign_votes(campaign, people=False)
    counts = vote_counts(votes.item, votes.label, len(votes.clip_ids), len(votes.label_names))
    kappa = fleiss(counts)
    result = aggregate(counts, campaign.single_label_min_votes)
    table = table2(result.single, votes.durations, votes.label_names)
    return votes, counts, kappa, result, table


def lower_bound(campaign_id: int, codes: np.ndarray):
    """One raw SELECT through a DB-API cursor, a bincount, statsmodels' Fleiss kappa."""
    from django.db import connection
    from statsmodels.stats.inter_rater import fleiss_kappa

    from labeling.models import Annotation, Clip, Label

    sql = (
        f"SELECT a.clip_id, l.code FROM {Annotation._meta.db_table} a "
        f"JOIN {Label._meta.db_table} l ON l.id = a.label_id "
        f"JOIN {Clip._meta.db_table} c ON c.id = a.clip_id "
        "WHERE c.campaign_id = %s AND c.status = %s AND a.invalidated_at IS NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign_id, "complete"])
        rows = cursor.fetchall()
    pairs = np.fromiter(
        itertools.chain.from_iterable(rows), dtype=np.int64, count=2 * len(rows)
    ).reshape(-1, 2)
    k = len(codes)
    clip = pairs[:, 0] - pairs[:, 0].min()
    label = np.searchsorted(codes, pairs[:, 1])
    counts = np.bincount(clip * k + label, minlength=(int(clip.max()) + 1) * k).reshape(-1, k)
    counts = counts[counts.any(axis=1)]  # rows in clip-id order, as campaign_votes has them
    return counts, float(fleiss_kappa(counts, method="fleiss"))


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dfer-bench-"))
    url = bench_database_url(workdir)
    env = bench_env(url, workdir)
    postgres = url.startswith("postgres")
    say(
        f"database: {'PostgreSQL' if postgres else 'SQLite'} ({url.rsplit('/', 1)[-1]}); "
        f"{args.clips} clips × {PER_CLIP} labels by {args.annotators} annotators "
        f"({args.spammers} spammers); {os.cpu_count()} CPUs"
    )
    try:
        return measure(args, workdir, url, env, postgres)
    except CheckFailed as exc:
        print(f"CHECK FAILED: {exc}", flush=True)
        return 1
    finally:
        if postgres and "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if args.keep:
            say(f"kept: the database {url.rsplit('/', 1)[-1]} and {workdir}")
        else:
            drop_database(url)
            shutil.rmtree(workdir, ignore_errors=True)


def measure(args, workdir: Path, url: str, env: dict, postgres: bool) -> int:
    say("migrating")
    setup_django(env)
    from labeling.models import Campaign, ClipLabel
    from labeling.results.aggregation import clips_aggregate
    from labeling.results.agreement import campaign_agreement
    from pipeline.plots import report_plots

    csv_path = workdir / "dfew_votes.csv"
    seconds, planted = once(lambda: generate_csv(csv_path, args))
    say(
        f"generated {csv_path.name}: {planted['rows']} rows, {planted['movies']} movies, "
        f"{csv_path.stat().st_size / 1e6:.1f} MB in {seconds:.1f} s"
    )

    # 1. Import, aggregation held back.
    say("importing (import_annotations --create, via call_command, aggregation held back)")
    import_s, seen = run_import(csv_path, SLUG, create=True)
    summary = seen["summary"]
    campaign = Campaign.objects.get(slug=SLUG)
    counts_after_import = table_counts(campaign.pk)
    say(
        f"imported in {import_s:.2f} s ({seen['service_s']:.2f} s in annotations_import): "
        f"{summary.imported} labels, {summary.clips_created} clips, {summary.movies_created} "
        f"movies, {summary.accounts_created} accounts; {len(summary.complete_clip_ids)} complete"
    )
    check(summary.imported == planted["rows"], f"imported {summary.imported} of {planted['rows']}")
    check(counts_after_import["annotations"] == planted["rows"], "annotation rows differ from CSV")
    check(counts_after_import["clips"] == args.clips, "clip count differs from --clips")
    check(counts_after_import["movies"] == planted["movies"], "movie count differs from the CSV")
    check(
        counts_after_import["complete_clips"] == args.clips == len(summary.complete_clip_ids),
        "not every clip is complete",
    )
    check(seen["aggregate_ids"] == summary.complete_clip_ids, "command passed other ids")
    print(
        "           where it went: "
        + "; ".join(f"{stage} {seconds:.2f} s" for stage, seconds in seen["breakdown"])
    )
    print(
        f"           CPU: this process {seen['python_cpu_s']:.2f} s"
        + (f", PostgreSQL {seen['postgres_cpu_s']:.2f} s" if postgres else "")
    )

    # 2. Aggregation of every complete clip.
    say(f"aggregating {len(seen['aggregate_ids'])} complete clips (clips_aggregate)")
    aggregate_s, written = once(lambda: clips_aggregate(seen["aggregate_ids"]))
    results = set(
        ClipLabel.objects.filter(clip__campaign=campaign).values_list("clip_id", flat=True)
    )
    say(f"aggregated in {aggregate_s:.2f} s: {written} results written")
    check(written == args.clips, f"clips_aggregate wrote {written} results, not {args.clips}")
    check(results == set(summary.complete_clip_ids), "not one ClipLabel per complete clip")

    # 3. The same file again changes nothing.
    say("importing the same file again (no --create)")
    before = table_counts(campaign.pk)
    reimport_s, again = run_import(csv_path, SLUG, create=False)
    after = table_counts(campaign.pk)
    say(
        f"re-imported in {reimport_s:.2f} s: {again['summary'].imported} imported, "
        f"{again['summary'].skipped_existing} already present"
    )
    check(after == before, f"the second import changed counts: {before} -> {after}")
    check(again["summary"].imported == 0, "the second import imported labels")
    check(again["summary"].skipped_existing == planted["rows"], "not every row skipped")

    # 4. Report and baseline, interleaved so both see the same cache state. On PostgreSQL the
    # tables are analysed first, as autovacuum would have done by the time anyone asks for a
    # report (the import itself does not); --no-analyze measures before that.
    if postgres and args.analyze:
        from django.db import connection

        seconds, _ = once(lambda: connection.cursor().execute("ANALYZE"))
        say(f"ANALYZE (the planner's statistics, as autovacuum keeps them) {seconds:.2f} s")
    campaign = Campaign.objects.get(slug=SLUG)
    codes = np.array(sorted(campaign.labels.values_list("code", flat=True)), dtype=np.int64)
    say(f"report fast path and the raw-SQL baseline, best of {args.repeat}")
    fast_s = bound_s = float("inf")
    for _ in range(args.repeat):
        seconds, (bound_counts, bound_kappa) = once(lambda: lower_bound(campaign.pk, codes))
        bound_s = min(bound_s, seconds)
        seconds, fast = once(lambda: fast_path(campaign))
        fast_s = min(fast_s, seconds)
    votes, fast_counts, fast_kappa, fast_result, fast_table = fast
    say(f"fast path {fast_s:.3f} s, baseline {bound_s:.3f} s")
    say(f"full report (campaign_agreement), best of {args.repeat}")
    full_s, report = best_of(args.repeat, lambda: campaign_agreement(campaign))
    say(f"full report {full_s:.3f} s")
    say(f"plots (report_plots), best of {args.repeat}")
    plots_s, plots = best_of(args.repeat, lambda: report_plots(report))
    say(f"plots {plots_s:.3f} s ({sum(len(s) for s in plots.values()) / 1e3:.0f} kB of SVG)")

    check(np.array_equal(bound_counts, fast_counts), "baseline and report count different votes")
    check(bound_kappa == fast_kappa.kappa, f"kappa {fast_kappa.kappa} != baseline {bound_kappa}")
    check(report["fleiss_kappa"] == round(bound_kappa, 4), "the report's kappa is not the bound's")
    check(report["table2"] == fast_table, "the report's Table 2 differs from the fast path's")
    n_single = int((fast_result.single >= 0).sum())
    check(report["n_single_labelled"] == n_single, "single-labelled counts differ")
    stored_single = ClipLabel.objects.filter(
        clip__campaign=campaign, single_label__isnull=False
    ).count()
    check(stored_single == n_single, f"{stored_single} stored single labels, report {n_single}")

    # Against the planted truth: single labels, and the spammers among the flagged.
    single = fast_result.single
    truth = planted["truth"][votes.clip_numbers - 1]
    right = float((single[single >= 0] == truth[single >= 0]).mean()) if n_single else math.nan
    flagged = {a["annotator"] for a in report["annotators"] if a["flagged"]}
    caught = len(flagged & planted["spammers"])

    # Issue 22: every aggregation method on the campaign's votes, on one core, beside DFEW's
    # rule in the same run (bench/overlap.py's time_methods).
    from bench.overlap import time_methods
    from labeling.results.agreement import campaign_votes

    v = campaign_votes(campaign)
    method_s = time_methods(v.item, v.rater, v.label, len(v.clip_ids), len(v.rater_names),
                            len(v.label_names), 7, repeat=args.repeat)  # fmt: skip
    rows = [
        *[
            (
                f"method {m} (1 core)",
                t,
                "≤ 10 s" if m != "majority" else "",
                (t <= 10) if m != "majority" else None,
            )
            for m, t in method_s.items()
        ],
        (
            "import (command, no aggregation)",
            import_s,
            f"< {IMPORT_TARGET_S:g} s",
            import_s < IMPORT_TARGET_S,
        ),
        ("  of which annotations_import", seen["service_s"], "", None),
        ("re-import, same file (no change)", reimport_s, "", None),
        (
            "aggregation (clips_aggregate)",
            aggregate_s,
            f"< {AGGREGATE_TARGET_S:g} s",
            aggregate_s < AGGREGATE_TARGET_S,
        ),
        (
            "report fast path (kappa, Table 2)",
            fast_s,
            f"≤ {FAST_PATH_TARGET_RATIO:g}× bound",
            fast_s <= FAST_PATH_TARGET_RATIO * bound_s,
        ),
        (
            "full report (campaign_agreement)",
            full_s,
            f"< {FULL_REPORT_TARGET_S:g} s",
            full_s < FULL_REPORT_TARGET_S,
        ),
        ("plots (report_plots)", plots_s, "", None),
        ("baseline: raw SQL + bincount + κ", bound_s, "", None),
    ]
    print()
    print(f"{'stage':<36}{'seconds':>9}{'× bound':>10}   {'target':<14}result")
    for name, seconds, target, ok in rows:
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        print(f"{name:<36}{seconds:9.3f}{seconds / bound_s:10.1f}   {target:<14}{verdict}")
    ci = report["fleiss_kappa_ci"]
    print()
    print(
        f"Fleiss' kappa {report['fleiss_kappa']} ({report['landis_koch']}), 95% CI "
        f"[{ci[0]}, {ci[1]}] from {report['bootstrap']['resamples']} resamples; "
        f"baseline kappa {bound_kappa:.6f} (equal)"
    )
    print(
        f"single-labelled clips {n_single} of {report['n_clips']} "
        f"({100 * n_single / report['n_clips']:.1f}%, ≥ {campaign.single_label_min_votes} of "
        f"{PER_CLIP} votes); {100 * right:.1f}% of them match the planted truth"
    )
    print(
        f"flagged annotators {len(flagged)} of {len(report['annotators'])} "
        f"(planted spammers caught: {caught} of {len(planted['spammers'])})"
    )
    print(f"Krippendorff's alpha {report['krippendorff_alpha']}")

    verdicts = {name: ok for name, _, _, ok in rows if ok is not None}
    figures = {
        "database": "postgresql" if postgres else "sqlite",
        "clips": args.clips,
        "annotations": planted["rows"],
        "annotators": args.annotators,
        "spammers": args.spammers,
        "seed": args.seed,
        "repeat": args.repeat,
        "import_s": import_s,
        "import_service_s": seen["service_s"],
        "import_breakdown_s": dict(seen["breakdown"]),
        "import_python_cpu_s": seen["python_cpu_s"],
        "import_postgres_cpu_s": seen["postgres_cpu_s"] if postgres else None,
        "analyzed": bool(postgres and args.analyze),
        "reimport_s": reimport_s,
        "aggregate_s": aggregate_s,
        "report_fast_path_s": fast_s,
        "report_full_s": full_s,
        "plots_s": plots_s,
        "aggregation_method_s": method_s,
        "baseline_raw_sql_s": bound_s,
        "ratios_to_baseline": {
            "import": import_s / bound_s,
            "reimport": reimport_s / bound_s,
            "aggregate": aggregate_s / bound_s,
            "report_fast_path": fast_s / bound_s,
            "report_full": full_s / bound_s,
            "plots": plots_s / bound_s,
        },
        "targets": {
            "import_s": IMPORT_TARGET_S,
            "aggregate_s": AGGREGATE_TARGET_S,
            "report_fast_path_ratio": FAST_PATH_TARGET_RATIO,
            "report_full_s": FULL_REPORT_TARGET_S,
        },
        "pass": verdicts,
        "fleiss_kappa": report["fleiss_kappa"],
        "fleiss_kappa_ci": ci,
        "baseline_kappa": bound_kappa,
        "krippendorff_alpha": report["krippendorff_alpha"],
        "n_single_labelled": n_single,
        "single_labels_matching_truth": right,
        "flagged_annotators": sorted(flagged),
        "spammers_caught": caught,
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))

    # Profiles, after every figure is taken, of the stages asked for (or that missed a target).
    wanted = set(args.profile)
    if "failed" in wanted:
        skip = len(method_s)  # the methods' rows come first
        by_row = {
            rows[skip][0]: "import",
            rows[skip + 3][0]: "aggregate",
            rows[skip + 4][0]: "fast",
            rows[skip + 5][0]: "full",
        }
        wanted |= {by_row[name] for name, ok in verdicts.items() if not ok and name in by_row}
    runs = {
        "import": lambda: run_import(csv_path, f"{SLUG}-profile", create=True),
        "reimport": lambda: run_import(csv_path, SLUG, create=False),
        "aggregate": lambda: clips_aggregate(seen["aggregate_ids"]),
        "fast": lambda: fast_path(campaign),
        "full": lambda: campaign_agreement(campaign),
        "plots": lambda: report_plots(report),
        "bound": lambda: lower_bound(campaign.pk, codes),
    }
    for stage in STAGES:
        if stage in wanted:
            say(f"profiling {stage}")
            profile(stage, runs[stage])
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
