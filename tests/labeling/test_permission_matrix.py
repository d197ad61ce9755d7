"""Who may reach what: every URL of the URLconf × anonymous, annotator, reviewer, extractor, staff.

`MATRIX` is the one table: per URL name and method, the status each caller gets. A URL added
to the URLconf without a row here fails `test_every_url_is_in_the_matrix`, so none is forgotten.
The annotator (alice) is on the campaign and holds the lease the assignment URLs name; the
reviewer, the extractor and staff are not annotators. Pages send anonymous callers to the login
page (302); the API answers 401. A POST with no body may pass the permission check and then
answer 400 for the missing fields; that still shows the caller got past it.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from labeling import campaigns
from labeling.models import (
    AgreementReport,
    AnnotatorExclusion,
    Assignment,
    Clip,
    JobStatus,
    LabelExport,
    Movie,
    Payout,
    Role,
    Suggestion,
)
from ml.models import BenchmarkRun
from pipeline.face_track_file import write_track
from tests.conftest import PASSWORD, make_clips, make_user

ROLES = ("anonymous", "annotator", "reviewer", "extractor", "staff")

# name: (method, {role: status}) — the statuses in ROLES order.
MATRIX: dict[tuple[str, str], tuple[int, int, int, int, int]] = {
    # pages                                  anon annot review extract staff
    ("home", "GET"): (302, 302, 302, 302, 302),
    ("annotate", "GET"): (302, 200, 403, 403, 200),
    ("screening", "GET"): (302, 403, 200, 403, 200),
    ("screening-decide", "POST"): (302, 403, 302, 403, 302),
    ("extract", "GET"): (302, 403, 403, 200, 200),
    ("campaign-overview", "GET"): (302, 403, 403, 403, 200),
    ("campaign-agreement", "GET"): (302, 403, 403, 403, 200),
    ("campaign-agreement-report", "GET"): (302, 403, 403, 403, 200),
    ("campaign-agreement-run", "POST"): (302, 403, 403, 403, 302),
    ("campaign-release", "GET"): (302, 403, 403, 403, 200),
    ("campaign-split-create", "POST"): (302, 403, 403, 403, 302),
    ("campaign-export-create", "POST"): (302, 403, 403, 403, 302),
    ("export-download", "GET"): (302, 403, 403, 403, 200),
    ("annotator-invalidate", "POST"): (302, 403, 403, 403, 302),
    ("annotator-exclude", "POST"): (302, 403, 403, 403, 302),
    ("exclusion-revoke", "POST"): (302, 403, 403, 403, 302),
    ("campaign-overlap", "GET"): (302, 403, 403, 403, 200),
    ("campaign-rewards", "GET"): (302, 403, 403, 403, 200),
    ("campaign-payout-create", "POST"): (302, 403, 403, 403, 302),
    ("campaign-reward-hold", "POST"): (302, 403, 403, 403, 302),
    ("payout-download", "GET"): (302, 403, 403, 403, 200),
    ("benchmark-list", "GET"): (302, 403, 403, 403, 200),
    ("benchmark-file", "GET"): (302, 403, 403, 403, 200),
    ("campaign-codebook", "GET"): (302, 403, 403, 403, 200),
    ("campaign-codebook", "POST"): (302, 403, 403, 403, 400),
    ("staff-campaign-new", "GET"): (302, 403, 403, 403, 200),
    ("staff-campaign-edit", "GET"): (302, 403, 403, 403, 200),
    ("staff-team", "GET"): (302, 403, 403, 403, 200),
    ("staff-member-add", "POST"): (302, 403, 403, 403, 400),
    ("staff-member-remove", "POST"): (302, 403, 403, 403, 400),
    ("staff-invite-create", "POST"): (302, 403, 403, 403, 400),
    ("staff-members-import", "POST"): (302, 403, 403, 403, 400),
    ("staff-clips", "GET"): (302, 403, 403, 403, 200),
    ("staff-clip", "GET"): (302, 403, 403, 403, 200),
    # An invitation link is public (its signed token is the key): a stranger may open it; a
    # POST with no password makes no account (400), one from someone logged in joins them.
    ("invite-accept", "GET"): (200, 200, 200, 200, 200),
    ("invite-accept", "POST"): (400, 302, 302, 302, 302),
    ("login", "GET"): (200, 200, 200, 200, 200),
    ("logout", "POST"): (302, 302, 302, 302, 302),
    ("set_language", "POST"): (302, 302, 302, 302, 302),
    ("media", "GET"): (404, 200, 200, 200, 200),
    ("admin:index", "GET"): (302, 302, 302, 302, 200),
    # API                                    anon annot review extract staff
    ("api:auth-token", "POST"): (400, 400, 400, 400, 400),
    ("api:auth-token-rotate", "POST"): (401, 200, 200, 200, 200),
    ("api:me", "GET"): (401, 200, 200, 200, 200),
    ("api:task-next", "POST"): (401, 200, 403, 403, 204),
    ("api:assignment-submit", "POST"): (401, 201, 403, 403, 404),
    ("api:assignment-shown", "POST"): (401, 200, 403, 403, 404),
    ("api:assignment-release", "POST"): (401, 204, 403, 403, 404),
    ("api:assignment-report", "POST"): (401, 201, 403, 403, 404),
    ("api:campaign-agreement", "GET"): (401, 403, 403, 403, 200),
    ("api:campaign-agreement", "POST"): (401, 403, 403, 403, 202),
    ("api:campaign-clips", "GET"): (401, 403, 403, 403, 200),
    ("api:campaign-export", "GET"): (401, 403, 403, 403, 200),
    ("api:campaign-annotations-export", "GET"): (401, 403, 403, 403, 200),
    ("api:campaign-movies", "GET"): (401, 403, 403, 200, 200),
    ("api:movie-detail", "GET"): (401, 403, 403, 200, 200),
    ("api:movie-clips", "POST"): (401, 403, 403, 400, 400),
    ("api:clip-detail", "GET"): (401, 403, 200, 200, 200),
    ("api:clip-faces", "GET"): (401, 403, 200, 200, 200),
    ("api:movie-suggestions", "GET"): (401, 403, 403, 200, 200),
    ("api:movie-suggestions", "POST"): (401, 403, 403, 400, 400),
    ("api:suggestion-accept", "POST"): (401, 403, 403, 409, 409),  # the world's is dismissed
    ("api:suggestion-dismiss", "POST"): (401, 403, 403, 409, 409),
    ("api:suggestion-stats", "GET"): (401, 403, 403, 200, 200),
    ("api:suggestion-campaigns", "GET"): (401, 403, 403, 200, 200),
    ("api:clip-withdraw", "POST"): (401, 403, 403, 403, 409),
    ("api:schema", "GET"): (200, 200, 200, 200, 200),
    ("api:docs", "GET"): (200, 200, 200, 200, 200),
}


# Valid bodies where a POST validates its input before it checks the caller's role.
BODIES = {
    "api:assignment-submit": {"label": "happy"},
    "api:assignment-report": {"kind": "broken"},
}


def url_names(patterns=None, namespace="") -> set[str]:
    """Every named URL of the URLconf; the admin's many URLs count as its index."""
    found = set()
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                found.add("admin:index")
                continue
            inner = f"{namespace}{p.namespace}:" if p.namespace else namespace
            found |= url_names(p.url_patterns, inner)
        elif isinstance(p, URLPattern):
            assert p.name, f"unnamed URL {p.pattern}: name it and add it to MATRIX"
            found.add(namespace + p.name)
    return found


@pytest.fixture
def world(campaign, alice):
    clip = make_clips(campaign, 2)[0]
    Clip.objects.filter(pk=clip.pk).update(status=Clip.Status.SCREENING)
    clip.refresh_from_db()
    leased = Clip.objects.filter(campaign=campaign).exclude(pk=clip.pk).get()
    assignment = Assignment.objects.create(
        clip=leased,
        annotator=alice,
        slot=1,
        expires_at=timezone.now() + timezone.timedelta(minutes=10),
    )
    media = django_settings.MEDIA_ROOT / leased.video.name
    media.parent.mkdir(parents=True, exist_ok=True)
    media.write_bytes(b"video")
    track = django_settings.MEDIA_ROOT / "faces" / f"{clip.pk}.csv"
    track.parent.mkdir(parents=True, exist_ok=True)
    write_track([None], track)
    Clip.objects.filter(pk=clip.pk).update(face_track=f"faces/{clip.pk}.csv")
    export_file = django_settings.MEDIA_ROOT / "exports" / "x.zip"
    export_file.parent.mkdir(parents=True, exist_ok=True)
    export_file.write_bytes(b"zip")
    users = {
        "annotator": alice,
        "reviewer": make_user("rita", Role.REVIEWER),
        "extractor": make_user("ed", Role.EXTRACTOR),
        "staff": make_user("admin", staff=True),
    }
    # The extractor added the movie the clips come from.
    Movie.objects.filter(pk=leased.movie_id).update(created_by=users["extractor"])
    report = AgreementReport.objects.create(
        campaign=campaign, status=JobStatus.DONE, result={}, finished_at=timezone.now()
    )
    export = LabelExport.objects.create(
        campaign=campaign, status=JobStatus.DONE, file="exports/x.zip"
    )
    payout = Payout.objects.create(
        campaign=campaign, currency="CNY", total_cents=20, people=1, entries=1
    )
    suggestion = Suggestion.objects.create(
        movie_id=leased.movie_id,
        run="r",
        start_s=0,
        end_s=1,
        probabilities={"fear": 1.0},
        emotion=campaign.labels.get(name="fear"),
        rare_score=1.0,
        status=Suggestion.Status.DISMISSED,
        decided_at=timezone.now(),
    )
    invitation = campaigns.invitation_create(
        campaign=campaign, role=Role.ANNOTATOR, created_by=users["staff"]
    )
    exclusion = AnnotatorExclusion.objects.create(
        campaign=campaign, annotator=alice, reason="careless", excluded_by=users["staff"]
    )
    run_dir = django_settings.VAR_DIR / "matrix-run"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.md").write_text("# a run\n")
    run = BenchmarkRun.objects.create(
        model="c3d", loss="ce", data="", out_dir=str(run_dir), folds="1", epochs=1
    )
    kwargs = {
        "campaign_id": campaign.pk,
        "report_id": report.pk,
        "clip_id": clip.pk,
        "export_id": export.pk,
        "payout_id": payout.pk,
        "exclusion_id": exclusion.pk,
        "assignment_id": assignment.pk,
        "movie_id": clip.movie_id,
        "path": leased.video.name,
        "suggestion_id": suggestion.pk,
        "token": campaigns.invitation_token(invitation),
        "run_id": run.pk,
        "name": "results.md",
    }
    return users, kwargs


def url_of(name: str, kwargs: dict) -> str:
    """The URL of `name`, its arguments taken from the world's objects."""
    if name == "admin:index":
        return "/admin/"
    *namespaces, short = name.split(":")
    resolver = get_resolver()
    for namespace in namespaces:
        resolver = resolver.namespace_dict[namespace][1]
    possibilities = resolver.reverse_dict.getlist(short)[0][0]
    params = possibilities[0][1]
    return reverse(name, kwargs={param: kwargs[param] for param in params})


class PermissionMatrixTests:
    @pytest.mark.django_db
    def test_every_url_is_in_the_matrix(self):
        assert url_names() == {name for name, _ in MATRIX}

    @pytest.mark.django_db
    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize("name, method", list(MATRIX), ids=lambda v: str(v))
    def test_each_caller_gets_the_status_in_the_table(self, world, name, method, role):
        users, kwargs = world
        client = Client()
        if role != "anonymous":
            assert client.login(username=users[role].username, password=PASSWORD)
        url = url_of(name, kwargs)
        body = json.dumps(BODIES.get(name, {}))
        response = client.generic(method, url, body, content_type="application/json")
        expected = MATRIX[(name, method)][ROLES.index(role)]
        assert response.status_code == expected, f"{method} {url} as {role}: {response.status_code}"
