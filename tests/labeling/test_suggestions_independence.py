"""Independence of the ten votes: nothing of a model's output reaches reviewers or annotators.

A clip that came from a suggestion goes the whole way (accepted over the API, extracted by
the real media pipeline, screened, leased) and neither the screening page, nor the labelling
page, nor the lease ``tasks/next`` hands out shows its run, its probabilities, that it was
suggested, or the emotion the model suggested."""

from __future__ import annotations

import json
import re

import pytest
from rest_framework.test import APIClient

from annotation_site.auth import token_issue
from labeling.loop import services
from labeling.media import extraction
from labeling.models import Clip, Role
from pipeline.faces import make_detector
from tests.conftest import PASSWORD, make_user
from tests.labeling.test_movies import ready_movie

RUN = "run-indep-8812"
# Values no page would show by chance, in each way a page might write them.
PROBABILITIES = {
    "happy": 0.0311,
    "sad": 0.0422,
    "neutral": 0.0533,
    "angry": 0.0644,
    "surprise": 0.0755,
    "disgust": 0.6212,
    "fear": 0.1123,
}
TELLTALES = [RUN, "indep-8812", "suggest", "Suggest", "rare_score", "probabilit"]
TELLTALES += [str(v) for v in PROBABILITIES.values()] + ["62.12", "62%", "0.62", "0,62"]


def _token(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user).key}")
    return client


def _without_csrf(html: str) -> str:
    return re.sub(r'(csrfmiddlewaretoken" value=|csrf[-_]token" content=)"[^"]*"', "", html)


def _shows_nothing_of_the_model(text: str) -> None:
    for telltale in TELLTALES:
        assert telltale not in text, telltale


@pytest.mark.django_db
class SuggestionIndependenceTests:
    def test_reviewers_and_annotators_see_nothing_of_the_model(
        self, client, campaign, alice, rita, tmp_path
    ):
        # given: a clip that came from a suggestion of disgust, extracted for real
        campaign.annotators.add(
            eve := make_user("eve", Role.EXTRACTOR), through_defaults={"role": Role.EXTRACTOR}
        )
        movie = ready_movie(campaign, tmp_path)
        client.login(username="alice", password=PASSWORD)
        label_page_before = _without_csrf(client.get("/label/").content.decode())
        extractor = _token(eve)
        posted = extractor.post(
            f"/api/v1/movies/{movie.pk}/suggestions/",
            {
                "run": RUN,
                "segments": [{"start_s": 0.5, "end_s": 2.5, "probabilities": PROBABILITIES}],
            },
            format="json",
        )
        suggestion_id = posted.json()["suggestions"][0]["id"]
        accepted = extractor.post(f"/api/v1/suggestions/{suggestion_id}/accept/")
        assert accepted.status_code == 201
        clip = Clip.objects.get()
        assert clip.suggestion.run == RUN and clip.suspected_label.name == "disgust"
        assert extraction.clip_extract(clip.pk, detector=make_detector("haar"))
        clip.refresh_from_db()
        assert clip.status == Clip.Status.SCREENING and clip.video

        # when / then: the reviewer's screening page shows the clip, nothing of the model
        client.logout()
        client.login(username="rita", password=PASSWORD)
        screening = client.get("/review/").content.decode()
        assert f'id="clip-{clip.pk}"' in screening
        _shows_nothing_of_the_model(screening)
        assert "disgust" not in screening.lower()  # no emotion is named on that page at all
        # nor the clip's API answer to a reviewer (the extractor and staff see the label)
        detail = _token(rita).get(f"/api/v1/clips/{clip.pk}/").json()
        assert detail["suspected_label"] is None
        _shows_nothing_of_the_model(json.dumps(detail))
        assert _token(eve).get(f"/api/v1/clips/{clip.pk}/").json()["suspected_label"] == "disgust"
        services.clip_screen(reviewer=rita, clip_id=clip.pk, shows_face=True, shows_emotion=True)

        # the lease an annotator gets: the clip's id, number, media and length, nothing more
        lease = _token(alice).post("/api/v1/tasks/next/", {}, format="json")
        assert lease.status_code == 200
        body = lease.json()
        assert body["clip"]["id"] == clip.pk
        assert set(body["clip"]) == {"id", "number", "video_url", "poster_url", "duration"}
        # Every clip offers the campaign's whole label set, the same list in the same order.
        assert [label["name"] for label in body.pop("labels")] == [
            "happy",
            "sad",
            "neutral",
            "angry",
            "surprise",
            "disgust",
            "fear",
        ]
        rest = json.dumps(body)
        _shows_nothing_of_the_model(rest)
        assert "disgust" not in rest.lower()

        # the labelling page is the page it was before any suggestion existed
        client.logout()
        client.login(username="alice", password=PASSWORD)
        label_page = _without_csrf(client.get("/label/").content.decode())
        _shows_nothing_of_the_model(label_page)
        assert label_page == label_page_before
