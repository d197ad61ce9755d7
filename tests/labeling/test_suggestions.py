"""A model's suggestions over the REST API: posted by an extractor's or staff's token, validated,
idempotent per run and span, accepted into a proposed clip through the marking API's own
service, dismissed, and counted per run (labeling/media/suggestions.py)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from annotation_site.auth import token_issue
from labeling import campaigns
from labeling.models import Clip, ClipLabel, Label, MediaStatus, Role, Suggestion
from tests.conftest import make_user
from tests.labeling.test_movies import ready_movie

RUN = "bench-run-17"


def probs(**given) -> dict[str, float]:
    """A distribution over DFEW's seven labels: the given ones, the rest shared equally."""
    names = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]
    rest = [n for n in names if n not in given]
    left = (1 - sum(given.values())) / len(rest)
    return {n: given.get(n, left) for n in names}


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user).key}")
    return client


@pytest.fixture
def eve(campaign):
    """An extractor on the campaign."""
    user = make_user("eve", Role.EXTRACTOR)
    campaign.annotators.add(user, through_defaults={"role": Role.EXTRACTOR})
    return user


@pytest.fixture
def movie(campaign, tmp_path):
    return ready_movie(campaign, tmp_path)  # 3 s at 25 fps


def post(client, movie, segments, run=RUN):
    return client.post(
        f"/api/v1/movies/{movie.pk}/suggestions/", {"run": run, "segments": segments}, format="json"
    )


SEGMENTS = [
    {"start_s": 0.0, "end_s": 1.0, "probabilities": probs(fear=0.5, disgust=0.1)},
    {"start_s": 1.5, "end_s": 2.9, "probabilities": probs(disgust=0.8, fear=0.1)},
]


@pytest.mark.django_db
class SuggestionPostTests:
    def test_an_extractors_token_posts_a_runs_segments_and_gets_them_ranked(self, eve, movie):
        response = post(token_client(eve), movie, SEGMENTS)
        assert response.status_code == 201, response.json()
        assert response.json()["created"] == 2
        listed = token_client(eve).get(f"/api/v1/movies/{movie.pk}/suggestions/").json()
        # Ranked by the rare labels' probabilities summed (0.9 before 0.6), computed here.
        assert [(s["start_s"], s["emotion"], s["status"]) for s in listed] == [
            (1.5, "disgust", "open"),
            (0.0, "fear", "open"),
        ]
        assert [s["rare_score"] for s in listed] == pytest.approx([0.9, 0.6])
        assert listed[0]["run"] == RUN and listed[0]["probabilities"]["disgust"] == 0.8
        assert listed[0]["clip"] is None and listed[0]["decided_by"] is None

    def test_a_retry_of_the_same_spans_stores_nothing_more(self, eve, movie):
        client = token_client(eve)
        post(client, movie, SEGMENTS)
        again = post(client, movie, [*SEGMENTS, {**SEGMENTS[0], "start_s": 0.2}])
        assert again.status_code == 201 and again.json()["created"] == 1
        third = post(client, movie, SEGMENTS)
        assert third.status_code == 200 and third.json()["created"] == 0
        assert len(third.json()["suggestions"]) == 2
        assert Suggestion.objects.count() == 3
        # Another run may suggest the same span.
        assert post(client, movie, SEGMENTS[:1], run="other").json()["created"] == 1

    def test_staff_may_post_and_the_run_filter_lists_one_run(self, admin_user, movie):
        client = token_client(admin_user)
        post(client, movie, SEGMENTS[:1])
        post(client, movie, SEGMENTS[1:], run="other")
        url = f"/api/v1/movies/{movie.pk}/suggestions/?run=other"
        assert [s["run"] for s in client.get(url).json()] == ["other"]

    @pytest.mark.parametrize(
        "segment, words",
        [
            ({"start_s": 2.0, "end_s": 1.0}, "the end must come after the start"),
            ({"start_s": 2.0, "end_s": 3.5}, "ends after the movie (3 s)"),
            ({"start_s": 0.0, "end_s": 0.2}, "clips of this campaign last 0.5–15 s"),
            ({"probabilities": {"joy": 1.0}}, "unknown labels joy"),
            ({"probabilities": {"fear": 0.5, "happy": 0.2}}, "sum to 0.7000, not 1"),
            ({"probabilities": {"fear": 1.5}}, "less than or equal to 1"),
            ({"emotion": "joy"}, "unknown emotion 'joy'"),
            ({"start_s": "soon"}, "A valid number is required"),
        ],
    )
    def test_bad_segments_get_a_clear_400_and_store_nothing(self, eve, movie, segment, words):
        good = {"start_s": 0.0, "end_s": 1.0, "probabilities": probs(fear=0.5)}
        response = post(token_client(eve), movie, [SEGMENTS[1], {**good, **segment}])
        assert response.status_code == 400
        assert words in response.json()["detail"]
        assert not Suggestion.objects.exists()

    def test_no_segments_or_no_run_is_a_400(self, eve, movie):
        client = token_client(eve)
        assert post(client, movie, []).status_code == 400
        assert post(client, movie, SEGMENTS, run="").status_code == 400
        assert not Suggestion.objects.exists()

    def test_only_staff_and_the_campaigns_extractors_reach_a_movies_suggestions(
        self, campaign, movie, alice, rita
    ):
        outsider = make_user("ed", Role.EXTRACTOR)  # an extractor of no campaign of this movie
        url = f"/api/v1/movies/{movie.pk}/suggestions/"
        assert APIClient().get(url).status_code == 401
        assert token_client(alice).get(url).status_code == 403  # annotators never see them
        assert token_client(rita).get(url).status_code == 403  # nor do reviewers
        assert token_client(outsider).get(url).status_code == 404
        assert post(token_client(outsider), movie, SEGMENTS).status_code == 404
        assert post(token_client(rita), movie, SEGMENTS).status_code == 403
        bad = APIClient()
        bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
        assert post(bad, movie, SEGMENTS).status_code == 401
        assert not Suggestion.objects.exists()


def _one(client, movie, segment=None) -> int:
    return post(client, movie, [segment or SEGMENTS[1]]).json()["suggestions"][0]["id"]


@pytest.mark.django_db
class SuggestionDecideTests:
    def test_accept_proposes_a_clip_through_the_marking_service(
        self, eve, movie, django_capture_on_commit_callbacks
    ):
        client = token_client(eve)
        suggestion_id = _one(client, movie)
        with django_capture_on_commit_callbacks() as queued:
            response = client.post(f"/api/v1/suggestions/{suggestion_id}/accept/")
        assert response.status_code == 201, response.json()
        assert len(queued) == 1  # the clip's extraction, as for a clip marked by hand
        clip = Clip.objects.get()
        assert (clip.start_s, clip.end_s, clip.suspected_label.name) == (1.5, 2.9, "disgust")
        assert (clip.status, clip.media_status, clip.proposed_by) == (
            Clip.Status.PROPOSED,
            MediaStatus.PENDING,
            eve,
        )
        assert clip.number == 1 and clip.duration_bucket == "0-2s"
        body = response.json()
        assert body["clip"]["id"] == clip.pk and body["suggestion"]["clip"] == clip.pk
        assert body["suggestion"]["status"] == "accepted"
        assert body["suggestion"]["decided_by"] == "eve"
        assert clip.suggestion.pk == suggestion_id  # it came from a suggestion

    def test_a_decided_suggestion_answers_409_and_nothing_changes(self, eve, movie):
        client = token_client(eve)
        accepted, dismissed = _one(client, movie), _one(client, movie, SEGMENTS[0])
        client.post(f"/api/v1/suggestions/{accepted}/accept/")
        client.post(f"/api/v1/suggestions/{dismissed}/dismiss/")
        for url in (
            f"/api/v1/suggestions/{accepted}/accept/",
            f"/api/v1/suggestions/{accepted}/dismiss/",
            f"/api/v1/suggestions/{dismissed}/accept/",
            f"/api/v1/suggestions/{dismissed}/dismiss/",
        ):
            response = client.post(url)
            assert response.status_code == 409, url
            assert "is already" in response.json()["detail"]
        assert Clip.objects.count() == 1
        assert Suggestion.objects.get(pk=dismissed).status == "dismissed"

    def test_an_accept_the_clip_service_refuses_leaves_the_suggestion_open(
        self, campaign, eve, movie
    ):
        campaign.clips_per_movie = 1
        campaign.save()
        client = token_client(eve)
        client.post(
            f"/api/v1/movies/{movie.pk}/clips/",
            {"segments": [{"start_s": 0, "end_s": 1}]},
            format="json",
        )
        suggestion_id = _one(client, movie)
        response = client.post(f"/api/v1/suggestions/{suggestion_id}/accept/")
        assert response.status_code == 400
        assert "allows 1 per movie" in response.json()["detail"]
        suggestion = Suggestion.objects.get(pk=suggestion_id)
        assert (suggestion.status, suggestion.clip, Clip.objects.count()) == ("open", None, 1)

    def test_dismiss_records_who_and_when(self, eve, movie):
        client = token_client(eve)
        suggestion_id = _one(client, movie)
        response = client.post(f"/api/v1/suggestions/{suggestion_id}/dismiss/")
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["decided_by"]) == ("dismissed", "eve")
        assert not Clip.objects.exists()

    def test_others_cannot_decide_and_get_wrong_method(self, eve, movie, alice, rita):
        suggestion_id = _one(token_client(eve), movie)
        outsider = make_user("ed", Role.EXTRACTOR)
        url = f"/api/v1/suggestions/{suggestion_id}/accept/"
        assert token_client(alice).post(url).status_code == 403
        assert token_client(rita).post(url).status_code == 403
        assert token_client(outsider).post(url).status_code == 404
        assert token_client(eve).post("/api/v1/suggestions/999999/accept/").status_code == 404
        assert token_client(eve).get(url).status_code == 405  # a GET decides nothing
        assert Suggestion.objects.get().status == "open"


@pytest.mark.django_db
class SuggestionConstraintTests:
    def _row(self, movie, **fields) -> Suggestion:
        values = {
            "movie": movie,
            "run": RUN,
            "start_s": 0.0,
            "end_s": 1.0,
            "probabilities": probs(fear=0.5),
            "emotion": Label.objects.get(campaign=movie.campaign, name="fear"),
            "rare_score": 0.6,
        }
        return Suggestion(**{**values, **fields})

    @pytest.mark.parametrize(
        "fields",
        [
            {"end_s": 0.0},
            {"start_s": -1.0},
            {"rare_score": 1.5},
            {"status": "maybe", "decided_at": timezone.now()},
            {"status": "accepted"},  # a decision without its date
            {"decided_at": timezone.now()},  # an open one with a date
        ],
    )
    def test_the_database_refuses_what_no_service_writes(self, movie, fields):
        with pytest.raises(IntegrityError), transaction.atomic():
            self._row(movie, **fields).save()

    def test_a_clip_belongs_to_one_accepted_suggestion_only(self, eve, movie):
        client = token_client(eve)
        accepted = Suggestion.objects.get(pk=_one(client, movie))
        client.post(f"/api/v1/suggestions/{accepted.pk}/accept/")
        accepted.refresh_from_db()
        now = timezone.now()
        with pytest.raises(IntegrityError), transaction.atomic():
            self._row(movie, status="accepted", decided_at=now, clip=accepted.clip).save()
        with pytest.raises(IntegrityError), transaction.atomic():
            self._row(movie, status="dismissed", decided_at=now, clip=Clip.objects.get()).save()


def _result(clip: Clip, label: str | None) -> None:
    """The clip's final result, as the aggregation stores it, with ``label`` its single
    label (None: no emotion reached the majority)."""
    single = Label.objects.get(campaign=clip.campaign, name=label) if label else None
    ClipLabel.objects.create(
        clip=clip,
        votes={},
        distribution={},
        n_annotations=10,
        single_label=single,
        top_share=0.8,
        entropy=1.0,
    )
    Clip.objects.filter(pk=clip.pk).update(status=Clip.Status.COMPLETE)


@pytest.mark.django_db
class SuggestionStatsTests:
    def test_it_counts_decisions_per_run_and_precision_once_results_exist(
        self, campaign, eve, movie
    ):
        client = token_client(eve)
        spans = [(0.0, 0.6), (0.6, 1.2), (1.2, 1.8), (1.8, 2.4), (2.4, 3.0)]
        ids = [
            _one(client, movie, {"start_s": a, "end_s": b, "probabilities": probs(disgust=0.9)})
            for a, b in spans
        ]
        _one(client, movie, {"start_s": 0, "end_s": 1, "probabilities": probs(fear=0.9)})
        post(client, movie, [SEGMENTS[0]], run="other")
        for i in ids[:3]:
            client.post(f"/api/v1/suggestions/{i}/accept/")
        client.post(f"/api/v1/suggestions/{ids[3]}/dismiss/")

        stats = client.get(f"/api/v1/suggestions/stats/?run={RUN}").json()
        assert stats == [
            {
                "run": RUN,
                "suggested": 6,
                "accepted": 3,
                "dismissed": 1,
                "ignored": 2,
                "judged": 0,
                "hits": 0,
                "precision": None,
            }
        ]
        # Final labels: disgust (a hit), happy (a miss); the third clip is rejected (a miss).
        clips = [Suggestion.objects.get(pk=i).clip for i in ids[:3]]
        _result(clips[0], "disgust")
        _result(clips[1], "happy")
        Clip.objects.filter(pk=clips[2].pk).update(status=Clip.Status.REJECTED)
        (row,) = client.get(f"/api/v1/suggestions/stats/?run={RUN}").json()
        assert (row["judged"], row["hits"], row["precision"]) == (3, 1, pytest.approx(1 / 3))
        every = client.get("/api/v1/suggestions/stats/").json()
        assert [(r["run"], r["suggested"]) for r in every] == [(RUN, 6), ("other", 1)]

    def test_stats_cover_only_the_callers_campaigns(self, campaign, eve, movie, tmp_path, rita):
        post(token_client(eve), movie, SEGMENTS)
        other = campaigns.campaign_create(name="Other", slug="other")
        ed = make_user("ed", Role.EXTRACTOR)
        other.annotators.add(ed, through_defaults={"role": Role.EXTRACTOR})
        assert token_client(ed).get("/api/v1/suggestions/stats/").json() == []
        assert token_client(rita).get("/api/v1/suggestions/stats/").status_code == 403


@pytest.mark.django_db
class SuggestionCampaignsTests:
    def test_an_extractor_finds_their_campaign_by_slug_with_its_rare_labels(self, campaign, eve):
        campaigns.campaign_create(name="Other", slug="other")
        client = token_client(eve)
        (found,) = client.get("/api/v1/suggestions/campaigns/?slug=campaign").json()
        assert (found["id"], found["clip_max_seconds"]) == (campaign.pk, 15.0)
        assert [label["name"] for label in found["labels"] if label["is_rare"]] == [
            "disgust",
            "fear",
        ]
        assert client.get("/api/v1/suggestions/campaigns/?slug=other").json() == []


@pytest.mark.django_db(transaction=True)
class SuggestionRaceTests:
    def test_of_eight_concurrent_decisions_exactly_one_wins(self, live_server, campaign, tmp_path):
        """Eight threads, each on its own connection, accept or dismiss one suggestion at once
        (PostgreSQL in CI, the SQLite default elsewhere): one decision stands, seven get 409,
        and at most one clip is made."""
        import threading

        from tests.labeling.test_race import call

        eve = make_user("eve", Role.EXTRACTOR)
        campaign.annotators.add(eve, through_defaults={"role": Role.EXTRACTOR})
        movie = ready_movie(campaign, tmp_path)
        token = token_issue(eve).key
        suggestion_id = _one(token_client(eve), movie)
        answers: list[int] = []
        start = threading.Barrier(8)

        def decide(i: int) -> None:
            start.wait()
            action = "accept" if i % 2 else "dismiss"
            status, _ = call(
                live_server.url, token, "POST", f"/api/v1/suggestions/{suggestion_id}/{action}/"
            )
            answers.append(status)

        threads = [threading.Thread(target=decide, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers).count(409) == 7 and sum(a in (200, 201) for a in answers) == 1
        suggestion = Suggestion.objects.get()
        assert Clip.objects.count() == (1 if suggestion.status == "accepted" else 0)
        assert suggestion.clip_id == (Clip.objects.get().pk if Clip.objects.exists() else None)
