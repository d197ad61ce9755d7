import json
import re

import pytest
from django.apps import apps
from django.contrib import admin

from labeling.loop import selectors, services
from labeling.models import Annotation, Clip, Screening
from labeling.results import aggregation
from tests.conftest import PASSWORD, make_clips


def logged_in(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.django_db
class AnnotatePageTests:
    def test_it_sends_anonymous_visitors_to_log_in(self, client):
        r = client.get("/label/")
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")

    def test_it_serves_annotators_the_labelling_page(self, client, alice):
        r = logged_in(client, alice).get("/label/")
        assert r.status_code == 200
        html = r.content.decode()
        assert 'id="clip-video"' in html and "annotate.js" in html
        assert "Problem with this clip" in html

    def test_it_refuses_users_without_the_annotator_role(self, client, rita):
        assert logged_in(client, rita).get("/label/").status_code == 403

    def test_it_speaks_simplified_chinese(self, client, alice):
        client = logged_in(client, alice)
        r = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/label/"})
        assert r.status_code == 302
        html = client.get("/label/").content.decode()
        assert "这个片段有问题" in html
        strings = json.loads(re.search(r'id="i18n-strings"[^>]*>(.*?)</script>', html).group(1))
        assert strings["labels"]["happy"] == "高兴"
        assert 'lang="zh-hans"' in html

    def test_home_routes_each_role_to_its_page(self, client, alice, rita, admin_user):
        assert logged_in(client, alice).get("/")["Location"] == "/label/"
        assert logged_in(client, rita).get("/")["Location"] == "/review/"
        assert logged_in(client, admin_user).get("/")["Location"] == "/staff/overview/"


@pytest.mark.django_db
class ScreeningPageTests:
    def test_it_lists_clips_waiting_for_screening(self, client, campaign, rita):
        make_clips(campaign, 2, status=Clip.Status.SCREENING)
        make_clips(campaign, 1, start_number=3)
        html = logged_in(client, rita).get("/review/").content.decode()
        assert "clip 00001" in html and "clip 00002" in html and "clip 00003" not in html

    def test_it_opens_an_accepted_clip_for_labelling(self, client, campaign, rita):
        clip = make_clips(campaign, 1, status=Clip.Status.SCREENING)[0]
        r = logged_in(client, rita).post(f"/review/{clip.pk}/", {"verdict": "accept"})
        assert r.status_code == 302
        clip.refresh_from_db()
        assert clip.status == Clip.Status.ANNOTATING
        assert Screening.objects.get().decision == Screening.Decision.ACCEPT

    def test_it_keeps_the_reason_of_a_rejected_clip(self, client, campaign, rita):
        clip = make_clips(campaign, 1, status=Clip.Status.SCREENING)[0]
        logged_in(client, rita).post(
            f"/review/{clip.pk}/", {"verdict": "no_face", "reason": "back of the head"}
        )
        clip.refresh_from_db()
        assert clip.status == Clip.Status.REJECTED
        assert clip.status_reason == "no face; back of the head"

    def test_it_refuses_a_clip_not_in_screening(self, client, campaign, rita):
        clip = make_clips(campaign, 1)[0]
        r = logged_in(client, rita).post(f"/review/{clip.pk}/", {"verdict": "broken"}, follow=True)
        assert "not in screening" in r.content.decode()
        clip.refresh_from_db()
        assert clip.status == Clip.Status.ANNOTATING

    def test_it_refuses_annotators(self, client, campaign, alice):
        clip = make_clips(campaign, 1, status=Clip.Status.SCREENING)[0]
        client = logged_in(client, alice)
        assert client.get("/review/").status_code == 403
        assert client.post(f"/review/{clip.pk}/", {"verdict": "accept"}).status_code == 403
        clip.refresh_from_db()
        assert clip.status == Clip.Status.SCREENING


@pytest.mark.django_db
class CampaignOverviewPageTests:
    def test_it_shows_staff_the_clips_by_status_and_labels(self, client, campaign, admin_user):
        make_clips(campaign, 3)
        make_clips(campaign, 2, status=Clip.Status.REJECTED, start_number=4)
        html = logged_in(client, admin_user).get("/staff/overview/").content.decode()
        assert "Campaign" in html
        assert "0 of 30 labels collected" in html
        assert "<td>3</td>" in html and "<td>2</td>" in html and "<td>5</td>" in html

    def test_it_refuses_non_staff(self, client, alice):
        assert logged_in(client, alice).get("/staff/overview/").status_code == 403

    def test_it_counts_labels_and_annotators_once_each(
        self, client, campaign, alice, bob, annotators, admin_user
    ):
        # given: 12 annotators enrolled, 3 of them labelled one clip each
        make_clips(campaign, 2)
        for user in (alice, bob, annotators[0]):
            a = services.assignment_next(user=user)
            services.annotation_submit(user=user, assignment_id=a.pk, label_name="happy")
        (row,) = selectors.campaign_overview_list()
        assert (row["labels_collected"], row["annotators_enrolled"]) == (3, 12)
        assert row["labels_needed"] == 20 and row["annotators_active"] == 3
        assert row["clips_with_free_slot"] == 2  # 3 of clip 1's 10 slots are taken
        html = logged_in(client, admin_user).get("/staff/overview/").content.decode()
        assert "3 of 20 labels collected" in html
        # an invalidated label no longer counts; its annotator still labelled today
        aggregation.annotations_invalidate(
            staff=admin_user, annotation_ids=[Annotation.objects.get(annotator=bob).pk]
        )
        (row,) = selectors.campaign_overview_list()
        assert (row["labels_collected"], row["annotators_active"]) == (2, 3)


@pytest.mark.django_db
class ClipAdminTests:
    def test_the_admin_cannot_move_a_clip_through_its_lifecycle(self, client, campaign, admin_user):
        (clip,) = make_clips(campaign, 1, status=Clip.Status.SCREENING)
        client = logged_in(client, admin_user)
        page = client.get(f"/admin/labeling/clip/{clip.pk}/change/").content.decode()
        assert 'name="status"' not in page
        client.post(
            f"/admin/labeling/clip/{clip.pk}/change/",
            {"status": Clip.Status.COMPLETE, "number": clip.number},
        )
        clip.refresh_from_db()
        assert clip.status == Clip.Status.SCREENING


@pytest.mark.django_db
class ForbiddenPageTests:
    def test_a_refused_page_says_why_and_offers_a_way_back(self, client, alice):
        r = logged_in(client, alice).get("/staff/overview/")
        assert r.status_code == 403
        html = r.content.decode()
        assert 'id="forbidden"' in html and "Staff only." in html
        assert 'href="/"' in html and "Back to your start page" in html
        assert "You are signed in as alice." in html
        assert "app.css" in html  # styled like every other page


@pytest.mark.django_db
class AdminTests:
    def test_every_model_is_in_the_admin(self, client, admin_user):
        for model in apps.get_app_config("labeling").get_models():
            assert model in admin.site._registry, model
        client = logged_in(client, admin_user)
        for model in ("campaign", "clip", "assignment", "annotation", "screening"):
            assert client.get(f"/admin/labeling/{model}/").status_code == 200


@pytest.mark.django_db
class AdminInvariantTests:
    def test_the_admin_cannot_add_change_or_delete_labels_or_leases(self, client, admin_user):
        client = logged_in(client, admin_user)
        for model in ("annotation", "assignment"):
            assert client.get(f"/admin/labeling/{model}/add/").status_code == 403
            model_admin = admin.site._registry[apps.get_model("labeling", model)]
            request = type("R", (), {"user": admin_user})()
            assert not model_admin.has_add_permission(request)
            assert not model_admin.has_change_permission(request)
            assert not model_admin.has_delete_permission(request)

    def test_the_invalidate_action_goes_through_the_service(
        self, client, admin_user, campaign, annotators
    ):
        from labeling.models import Annotation, Assignment

        (clip,) = make_clips(campaign, 1)
        for user in annotators:
            lease = services.assignment_next(user=user)
            services.annotation_submit(user=user, assignment_id=lease.pk, label_name="sad")
        target = Annotation.objects.first()
        r = logged_in(client, admin_user).post(
            "/admin/labeling/annotation/",
            {"action": "invalidate", "_selected_action": [target.pk]},
        )
        assert r.status_code == 302
        target.refresh_from_db()
        assert target.invalidated_by == admin_user
        assert Assignment.objects.get(pk=target.assignment_id).status == "invalidated"
        clip.refresh_from_db()
        assert clip.status == Clip.Status.ANNOTATING
