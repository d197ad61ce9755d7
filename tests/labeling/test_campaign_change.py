"""A campaign's annotations per clip are fixed once labelling has begun (issue 21, item 10),
by one rule (``campaigns.campaign_check_change``) that the admin and the update service obey;
and the admin never links a movie's raw upload (issue 21, item 1)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from labeling import campaigns
from labeling.loop import services
from labeling.media import movies
from labeling.models import Annotation, Campaign, Clip
from tests.conftest import make_clips

MESSAGE = "annotations per clip cannot change once labelling has begun"


def campaign_form(campaign: Campaign, **changes) -> dict:
    """The admin change form of ``campaign`` as a browser posts it, with ``changes``."""
    data = {
        "name": campaign.name,
        "slug": campaign.slug,
        "description": campaign.description,
        "annotations_per_clip": campaign.annotations_per_clip,
        "single_label_min_votes": campaign.single_label_min_votes,
        "lease_minutes": campaign.lease_minutes,
        "clips_per_movie": campaign.clips_per_movie,
        "clip_min_seconds": campaign.clip_min_seconds,
        "clip_max_seconds": campaign.clip_max_seconds,
        "clip_max_height": campaign.clip_max_height,
        "min_face_ratio": campaign.min_face_ratio,
        "face_crop_size": campaign.face_crop_size,
        "face_lost_share": campaign.face_lost_share,
        "face_min_px": campaign.face_min_px,
        "min_view_seconds": campaign.min_view_seconds,
        "reward_annotation": campaign.reward_annotation,
        "reward_clip": campaign.reward_clip,
        "reward_rare_clip": campaign.reward_rare_clip,
        "reward_rare_vote": campaign.reward_rare_vote,
        "rare_label_rule": campaign.rare_label_rule,
        "aggregation_method": campaign.aggregation_method,
        "adaptive_min_votes": campaign.adaptive_min_votes,
        "adaptive_confidence": "",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "annotators": [user.pk for user in campaign.annotators.all()],
        "labels-TOTAL_FORMS": 0,
        "labels-INITIAL_FORMS": 0,
    }
    if campaign.screen_clips:
        data["screen_clips"] = "on"
    if campaign.is_active:
        data["is_active"] = "on"
    data.update(changes)
    return data


def label_one(user, label: str = "happy") -> Annotation:
    lease = services.assignment_next(user=user)
    services.annotation_submit(user=user, assignment_id=lease.pk, label_name=label)
    return Annotation.objects.get(annotator=user)


@pytest.mark.django_db
class CampaignChangeAdminTests:
    def test_ten_to_eleven_is_saved_before_labelling_and_refused_after_a_label(
        self, client, campaign, alice, admin_user
    ):
        make_clips(campaign, 2)
        client.force_login(admin_user)
        url = reverse("admin:labeling_campaign_change", args=[campaign.pk])
        # before labelling has begun, staff may change the number
        saved = client.post(url, campaign_form(campaign, annotations_per_clip=11))
        assert saved.status_code == 302, saved.content.decode()[:3000]
        campaign.refresh_from_db()
        assert campaign.annotations_per_clip == 11
        saved = client.post(url, campaign_form(campaign, annotations_per_clip=10))
        assert saved.status_code == 302
        # once one label is in, 10 -> 11 is refused on the page and nothing changes
        label_one(alice)
        refused = client.post(
            url, campaign_form(campaign, annotations_per_clip=11, name="Renamed too")
        )
        assert refused.status_code == 200
        assert MESSAGE in refused.content.decode()
        campaign.refresh_from_db()
        assert (campaign.annotations_per_clip, campaign.name) == (10, "Campaign")
        # and lowering it is refused the same way
        refused = client.post(url, campaign_form(campaign, annotations_per_clip=9))
        assert refused.status_code == 200 and MESSAGE in refused.content.decode()
        campaign.refresh_from_db()
        assert campaign.annotations_per_clip == 10
        # the rest of the campaign stays editable
        saved = client.post(url, campaign_form(campaign, name="Renamed"))
        assert saved.status_code == 302, saved.content.decode()[:3000]
        campaign.refresh_from_db()
        assert (campaign.annotations_per_clip, campaign.name) == (10, "Renamed")

    def test_a_lease_alone_has_begun_labelling_and_the_page_says_the_number_is_fixed(
        self, client, campaign, alice, admin_user
    ):
        make_clips(campaign, 1)
        client.force_login(admin_user)
        url = reverse("admin:labeling_campaign_change", args=[campaign.pk])
        assert "can no longer change once labelling has begun" in client.get(url).content.decode()
        services.assignment_next(user=alice)
        assert "Fixed: labelling has begun" in client.get(url).content.decode()
        refused = client.post(url, campaign_form(campaign, annotations_per_clip=11))
        assert refused.status_code == 200 and MESSAGE in refused.content.decode()
        campaign.refresh_from_db()
        assert campaign.annotations_per_clip == 10


@pytest.mark.django_db
class CampaignChangeServiceTests:
    def test_the_update_service_refuses_the_change_after_a_label(self, campaign, annotators):
        (clip,) = make_clips(campaign, 1)
        for user in annotators[:9]:
            label_one(user)
        campaign.annotations_per_clip = 9
        with pytest.raises(ValidationError, match=MESSAGE):
            campaigns.campaign_update(campaign=campaign)
        campaign.refresh_from_db()
        assert campaign.annotations_per_clip == 10
        # the clip still completes with ten labels, never with nine or eleven
        label_one(annotators[9])
        clip.refresh_from_db()
        assert clip.status == Clip.Status.COMPLETE
        assert Annotation.objects.filter(clip=clip).count() == 10

    def test_other_fields_change_through_the_service_after_labelling(self, campaign, alice):
        make_clips(campaign, 1)
        label_one(alice)
        campaign.lease_minutes = 20
        campaigns.campaign_update(campaign=campaign)
        campaign.refresh_from_db()
        assert (campaign.lease_minutes, campaign.annotations_per_clip) == (20, 10)


@pytest.mark.django_db
class MovieAdminSourceTests:
    def test_the_admin_shows_a_raw_upload_by_name_and_never_links_it(
        self, client, campaign, admin_user
    ):
        movie = movies.movie_register_extracted(campaign=campaign, title="Movie")
        movie.source.name = "movies/campaign/evil.html"
        movie.save(update_fields=["source"])
        client.force_login(admin_user)
        page = client.get(reverse("admin:labeling_movie_change", args=[movie.pk]))
        assert page.status_code == 200
        html = page.content.decode()
        assert "movies/campaign/evil.html" in html
        assert "/media/movies/" not in html and 'type="file"' not in html
        # movies come in only through the doors that probe them
        assert client.get(reverse("admin:labeling_movie_add")).status_code == 403
