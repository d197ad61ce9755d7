"""Forty annotators race through twenty clips over HTTP against a live server.

Each annotator is a thread with its own HTTP connection; each request is served on its own
thread with its own database connection (PostgreSQL in CI, the SQLite default elsewhere).
"""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest
from django.db.models import Count
from rest_framework.authtoken.models import Token

from labeling.models import Annotation, Assignment, Clip, Role
from tests.conftest import make_clips, make_user

ANNOTATORS = 40
CLIPS = 20


def call(base: str, token: str, method: str, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.mark.django_db(transaction=True)
class AnnotationRaceTests:
    def test_every_clip_ends_with_exactly_ten_distinct_annotators(self, live_server, campaign):
        # given
        make_clips(campaign, CLIPS)
        users = [make_user(f"racer{i:02d}", Role.ANNOTATOR) for i in range(ANNOTATORS)]
        campaign.annotators.add(*users)
        tokens = [Token.objects.create(user=u).key for u in users]
        statuses: Counter = Counter()
        accepted: list[tuple[int, str, str]] = []  # (assignment, annotator, label) answered 201
        lock = threading.Lock()

        def annotate(index: int) -> None:
            rng = random.Random(index)
            token = tokens[index]
            while True:
                status, body = call(live_server.url, token, "POST", "/api/v1/tasks/next/", {})
                with lock:
                    statuses[status] += 1
                if status != 200:
                    return
                label = rng.choice(["happy", "sad", "neutral", "angry", "surprise", "fear"])
                status, _ = call(
                    live_server.url,
                    token,
                    "POST",
                    f"/api/v1/assignments/{body['assignment']}/submit/",
                    {"label": label},
                )
                with lock:
                    statuses[status] += 1
                    if status == 201:
                        accepted.append((body["assignment"], users[index].username, label))

        # when
        threads = [threading.Thread(target=annotate, args=(i,)) for i in range(ANNOTATORS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)

        # then: no server error, nothing stuck
        assert not any(t.is_alive() for t in threads)
        assert not [s for s in statuses if s >= 500], statuses
        # every clip has exactly ten annotations from ten distinct annotators, all slots 1..10
        per_clip = Annotation.objects.values("clip").annotate(
            n=Count("pk"), people=Count("annotator", distinct=True)
        )
        assert len(per_clip) == CLIPS
        assert all(row["n"] == 10 and row["people"] == 10 for row in per_clip), (
            list(per_clip),
            statuses,
        )
        assert set(Clip.objects.values_list("status", flat=True)) == {Clip.Status.COMPLETE}
        # no submitted label lost: every 201 is a stored annotation with that label
        stored = {
            (a.assignment_id, a.annotator.username, a.label.name)
            for a in Annotation.objects.select_related("annotator", "label")
        }
        assert stored == set(accepted)
        assert len(accepted) == CLIPS * 10
        assert not Assignment.objects.filter(status=Assignment.Status.LEASED).exists()
