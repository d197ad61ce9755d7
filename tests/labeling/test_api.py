"""REST API v1: happy path, other annotator, outsider, bad id, wrong method, bad input."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Annotation, Assignment, Clip
from tests.conftest import PASSWORD, make_clips

NEXT = "/api/v1/tasks/next/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def submit(client, assignment_id, label="happy", **kwargs):
    return client.post(
        f"/api/v1/assignments/{assignment_id}/submit/", {"label": label}, format="json", **kwargs
    )


@pytest.mark.django_db
class AuthTokenApiTests:
    def test_it_returns_a_token_for_good_credentials(self, alice):
        r = APIClient().post(
            "/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}, format="json"
        )
        assert r.status_code == 200
        assert r.json()["token"] == Token.objects.get(user=alice).key

    def test_it_refuses_a_wrong_password_with_a_message(self, alice):
        r = APIClient().post(
            "/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json"
        )
        assert r.status_code == 400
        assert "Unable to log in" in r.json()["detail"]

    def test_it_refuses_get(self, alice):
        assert APIClient().get("/api/v1/auth/token/").status_code == 405


@pytest.mark.django_db
class TaskNextApiTests:
    def test_it_returns_the_documented_shape(self, campaign, alice):
        make_clips(campaign, 1)
        r = client_for(alice).post(NEXT, format="json")
        assert r.status_code == 200
        body = r.json()
        assert set(body) >= {"assignment", "clip", "labels", "expires_at"}
        assert set(body["clip"]) >= {"id", "video_url", "poster_url", "duration"}
        assert body["clip"]["video_url"].endswith("/media/clips/00001.mp4")
        assert body["clip"]["duration"] == 2.0
        assert [label["name"] for label in body["labels"]] == [
            "happy",
            "sad",
            "neutral",
            "angry",
            "surprise",
            "disgust",
            "fear",
        ]
        assert [label["code"] for label in body["labels"]] == [1, 2, 3, 4, 5, 6, 7]
        assert body["progress"] == {"submitted": 0, "clips": 1}
        assert body["min_view_seconds"] == 0  # the test campaign's; 0.5 s by default

    def test_it_answers_204_when_nothing_is_left(self, campaign, alice):
        assert client_for(alice).post(NEXT, format="json").status_code == 204

    def test_it_filters_by_campaign_and_hides_others(self, campaign, alice, charlie):
        make_clips(campaign, 1)
        assert (
            client_for(alice).post(NEXT, {"campaign": campaign.pk}, format="json").status_code
            == 200
        )
        r = client_for(charlie).post(NEXT, {"campaign": campaign.pk}, format="json")
        assert r.status_code == 404 and "campaign" in r.json()["detail"]

    def test_it_rejects_a_malformed_campaign(self, campaign, alice):
        r = client_for(alice).post(NEXT, {"campaign": "abc"}, format="json")
        assert r.status_code == 400 and "campaign" in r.json()["detail"]
        assert not Assignment.objects.exists()

    def test_it_rejects_a_malformed_skip(self, campaign, alice):
        r = client_for(alice).post(NEXT, {"skip": [1, "x"]}, format="json")
        assert r.status_code == 400 and "skip" in r.json()["detail"]

    def test_it_refuses_users_without_the_role(self, campaign, dave):
        assert client_for(dave).post(NEXT, format="json").status_code == 403

    def test_it_needs_credentials(self, campaign):
        r = APIClient().post(NEXT, format="json")
        assert r.status_code == 401 and r.json()["detail"]

    def test_a_get_changes_nothing_and_names_the_post(self, campaign, alice):
        make_clips(campaign, 1)
        r = client_for(alice).get(NEXT, {"campaign": campaign.pk})
        assert r.status_code == 405 and "POST /api/v1/tasks/next/" in r.json()["detail"]
        assert "GET" not in r["Allow"] and "POST" in r["Allow"]
        assert not Assignment.objects.exists()

    def test_it_never_shows_other_labels_or_aggregates(self, campaign, alice, bob):
        make_clips(campaign, 1)
        b = client_for(bob).post(NEXT, format="json").json()
        submit(client_for(bob), b["assignment"], "disgust")
        text = client_for(alice).post(NEXT, format="json").content.decode()
        assert "disgust" in text  # the label set lists it …
        body = client_for(alice).post(NEXT, format="json").json()
        # … but nothing in the response counts or attributes anyone's votes
        assert "bob" not in text
        assert set(body) == {
            "assignment",
            "campaign",
            "clip",
            "labels",
            "expires_at",
            "min_view_seconds",
            "progress",
        }
        # her own count, and the pool's size: nobody else's work
        assert body["progress"] == {"submitted": 0, "clips": 1}


@pytest.mark.django_db
class AssignmentSubmitApiTests:
    def test_it_answers_201_then_200_for_an_identical_repeat(self, campaign, alice):
        make_clips(campaign, 1)
        client = client_for(alice)
        a = client.post(NEXT, format="json").json()["assignment"]
        first = submit(client, a, "surprise")
        again = submit(client, a, "surprise")
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["annotation"] == again.json()["annotation"]
        assert Annotation.objects.count() == 1

    def test_it_answers_409_for_a_changed_label(self, campaign, alice):
        make_clips(campaign, 1)
        client = client_for(alice)
        a = client.post(NEXT, format="json").json()["assignment"]
        submit(client, a, "surprise")
        r = submit(client, a, "fear")
        assert r.status_code == 409 and "cannot be changed" in r.json()["detail"]

    def test_it_lists_valid_labels_for_an_unknown_one(self, campaign, alice):
        make_clips(campaign, 1)
        client = client_for(alice)
        a = client.post(NEXT, format="json").json()["assignment"]
        r = submit(client, a, "joy")
        assert r.status_code == 400
        assert r.json()["valid_labels"][0] == "happy" and "joy" in r.json()["detail"]
        assert not Annotation.objects.exists()

    def test_it_answers_404_for_another_annotators_assignment(self, campaign, alice, bob):
        make_clips(campaign, 1)
        a = client_for(alice).post(NEXT, format="json").json()["assignment"]
        r = submit(client_for(bob), a)
        assert r.status_code == 404
        assert not Annotation.objects.exists()

    def test_it_answers_404_for_an_unknown_assignment(self, campaign, alice):
        assert submit(client_for(alice), 999999).status_code == 404

    def test_it_answers_403_for_an_outsider(self, campaign, alice, dave):
        make_clips(campaign, 1)
        a = client_for(alice).post(NEXT, format="json").json()["assignment"]
        assert submit(client_for(dave), a).status_code == 403

    def test_it_rejects_malformed_json(self, campaign, alice):
        make_clips(campaign, 1)
        client = client_for(alice)
        a = client.post(NEXT, format="json").json()["assignment"]
        r = client.post(
            f"/api/v1/assignments/{a}/submit/", data="{label:", content_type="application/json"
        )
        assert r.status_code == 400 and "JSON parse error" in r.json()["detail"]
        assert not Annotation.objects.exists()

    def test_it_rejects_a_missing_label(self, campaign, alice):
        make_clips(campaign, 1)
        client = client_for(alice)
        a = client.post(NEXT, format="json").json()["assignment"]
        r = client.post(f"/api/v1/assignments/{a}/submit/", {}, format="json")
        assert r.status_code == 400 and "label" in r.json()["detail"]

    def test_it_needs_credentials(self, campaign, alice):
        make_clips(campaign, 1)
        a = client_for(alice).post(NEXT, format="json").json()["assignment"]
        assert submit(APIClient(), a).status_code == 401

    def test_it_refuses_get(self, campaign, alice):
        make_clips(campaign, 1)
        client = client_for(alice)
        a = client.post(NEXT, format="json").json()["assignment"]
        assert client.get(f"/api/v1/assignments/{a}/submit/").status_code == 405

    def test_session_clients_need_the_csrf_token(self, campaign, alice):
        make_clips(campaign, 1)
        client = APIClient(enforce_csrf_checks=True)
        client.login(username="alice", password=PASSWORD)
        r = client.post(NEXT, format="json")  # leasing is a POST: it needs the token too
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
        assert not Assignment.objects.exists()
        from labeling.loop import services

        a = services.assignment_next(user=alice).pk
        r = submit(client, a)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
        assert not Annotation.objects.exists()


@pytest.mark.django_db
class AssignmentReleaseApiTests:
    def test_it_answers_204_and_frees_the_slot(self, campaign, alice):
        make_clips(campaign, 1)
        client = client_for(alice)
        a = client.post(NEXT, format="json").json()["assignment"]
        assert client.post(f"/api/v1/assignments/{a}/release/").status_code == 204
        assert Assignment.objects.get(pk=a).status == Assignment.Status.RELEASED

    def test_it_answers_404_for_another_annotators_assignment(self, campaign, alice, bob):
        make_clips(campaign, 1)
        a = client_for(alice).post(NEXT, format="json").json()["assignment"]
        assert client_for(bob).post(f"/api/v1/assignments/{a}/release/").status_code == 404
        assert Assignment.objects.get(pk=a).status == Assignment.Status.LEASED

    def test_it_refuses_get(self, campaign, alice):
        assert client_for(alice).get("/api/v1/assignments/1/release/").status_code == 405


@pytest.mark.django_db
class AssignmentReportApiTests:
    def test_it_returns_the_clip_to_screening(self, campaign, alice):
        make_clips(campaign, 1)
        client = client_for(alice)
        a = client.post(NEXT, format="json").json()["assignment"]
        r = client.post(f"/api/v1/assignments/{a}/report/", {"kind": "broken"}, format="json")
        assert r.status_code == 201
        assert Clip.objects.get().status == Clip.Status.SCREENING

    def test_it_rejects_an_unknown_kind(self, campaign, alice):
        make_clips(campaign, 1)
        client = client_for(alice)
        a = client.post(NEXT, format="json").json()["assignment"]
        r = client.post(f"/api/v1/assignments/{a}/report/", {"kind": "meh"}, format="json")
        assert r.status_code == 400 and "kind" in r.json()["detail"]
        assert Clip.objects.get().status == Clip.Status.ANNOTATING

    def test_it_answers_404_for_another_annotators_assignment(self, campaign, alice, bob):
        make_clips(campaign, 1)
        a = client_for(alice).post(NEXT, format="json").json()["assignment"]
        r = client_for(bob).post(
            f"/api/v1/assignments/{a}/report/", {"kind": "broken"}, format="json"
        )
        assert r.status_code == 404
        assert Clip.objects.get().status == Clip.Status.ANNOTATING


@pytest.mark.django_db
class SchemaApiTests:
    def test_it_documents_the_endpoints(self, alice):
        r = client_for(alice).get("/api/v1/schema/", HTTP_ACCEPT="application/json")
        assert r.status_code == 200
        text = r.content.decode()
        for path in ("/api/v1/tasks/next/", "/api/v1/assignments/{assignment_id}/submit/"):
            assert path in text


@pytest.mark.django_db
class LoopFaultTests:
    """Faults found by probing the loop (issue 8), each pinned by a test."""

    def test_an_empty_skip_resumes_the_live_lease_and_a_blank_one_is_400(self, campaign, alice):
        make_clips(campaign, 2)
        client = client_for(alice)
        first = client.post(NEXT, format="json").json()
        r = client.post(NEXT, {"skip": []}, format="json")
        assert r.status_code == 200 and r.json()["assignment"] == first["assignment"]
        r = client.post(NEXT, {"skip": ""}, format="json")
        assert r.status_code == 400 and "skip" in r.json()["detail"]

    def test_a_late_submit_on_a_lease_taken_again_is_409_not_500(self, campaign, alice, bob):
        from django.utils import timezone

        # given: alice's lease on slot 1 lapses; bob takes slot 1; alice gets slot 2 of the
        # same clip; bob releases slot 1
        (clip,) = make_clips(campaign, 1)
        alice_client, bob_client = client_for(alice), client_for(bob)
        old = alice_client.post(NEXT, format="json").json()["assignment"]
        Assignment.objects.filter(pk=old).update(expires_at=timezone.now())
        bobs = bob_client.post(NEXT, format="json").json()
        assert Assignment.objects.get(pk=bobs["assignment"]).slot == 1
        new = alice_client.post(NEXT, format="json").json()["assignment"]
        assert Assignment.objects.get(pk=new).slot == 2
        assert (
            bob_client.post(f"/api/v1/assignments/{bobs['assignment']}/release/").status_code == 204
        )
        # when alice submits on the old assignment
        r = submit(alice_client, old)
        # then: 409 naming the lease to use, and nothing written
        assert r.status_code == 409 and r.json()["assignment"] == new
        assert not Annotation.objects.exists()
        assert submit(alice_client, new).status_code == 201


@pytest.mark.django_db(transaction=True)
class OpenLeaseCapRaceTests:
    def test_parallel_next_calls_never_exceed_the_open_lease_cap(self, campaign, alice, settings):
        import threading

        from django.db import connection

        from labeling.loop import services
        from tests.conftest import need

        need(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
        settings.LABELING_MAX_OPEN_LEASES = 2
        make_clips(campaign, 10)
        held = services.assignment_next(user=alice)
        start = threading.Barrier(6)

        def ask():
            try:
                start.wait()
                services.assignment_next(user=alice, skip=[held.pk])
            except Exception:  # noqa: BLE001 - TooManyOpen for the ones over the cap
                pass
            finally:
                connection.close()

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert Assignment.objects.filter(annotator=alice, status="leased").count() == 2
