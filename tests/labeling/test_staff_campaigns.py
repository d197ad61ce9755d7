"""The staff campaign pages: create a campaign with its label set and rules, change its
settings under the same rule as the admin, and the overview counting annotators as
annotators and saying what to do when there is nothing yet."""

from __future__ import annotations

import html
import re

import pytest

from labeling import campaigns
from labeling.loop import services
from labeling.models import Campaign, Role
from tests.conftest import PASSWORD, make_clips, make_user


def form_of(campaign: Campaign, **changes) -> dict:
    """The settings form as the page posts it (every field of the model form)."""
    from labeling.views.staff.forms import CampaignForm

    form = CampaignForm(instance=campaign)
    data = {}
    for name in form.fields:
        value = form.initial.get(name)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = value
    return data


@pytest.fixture
def staff(client, admin_user):
    assert client.login(username=admin_user.username, password=PASSWORD)
    return client


@pytest.mark.django_db
class CampaignCreatePageTests:
    def test_it_creates_a_campaign_with_its_labels_rules_and_screening_off(self, staff):
        # given the new-campaign form as a new user finds it (DFEW's labels filled in)
        page = staff.get("/staff/campaigns/new/").content.decode()
        assert "1 happy\n2 sad" in page
        data = form_of(Campaign(), screen_clips=False, is_active="on")
        data.update(
            name="Pilot",
            slug="pilot",
            labels="1 calm\n2 tense\n3 other",
            rare="tense",
            annotations_per_clip=5,
            single_label_min_votes=3,
            clips_per_movie=8,
            reward_annotation="0.30",
        )
        # when
        response = staff.post("/staff/campaigns/new/", data)
        # then it is made through campaign_create and staff go on to its team
        campaign = Campaign.objects.get(slug="pilot")
        assert response.status_code == 302
        assert response["Location"] == f"/staff/campaigns/{campaign.pk}/team/"
        assert list(campaign.labels.values_list("code", "name", "is_rare")) == [
            (1, "calm", False),
            (2, "tense", True),
            (3, "other", False),
        ]
        assert (campaign.annotations_per_clip, campaign.single_label_min_votes) == (5, 3)
        assert (campaign.clips_per_movie, str(campaign.reward_annotation)) == (8, "0.30")
        assert campaign.screen_clips is False

    def test_bad_labels_rules_or_rare_names_are_a_400_that_names_them(self, staff):
        base = form_of(Campaign(), name="Pilot", slug="pilot", labels="1 calm\n2 tense")
        cases = [
            ({"labels": "1 calm\ncalm"}, 'Line 2: write a code and a name, such as "1 happy".'),
            ({"labels": "1 calm\n1 other"}, "Each code and each name may appear only once."),
            ({"rare": "nope"}, "Rare labels ['nope'] are not in the label set."),
            (
                {"annotations_per_clip": 10, "single_label_min_votes": 5},
                "Votes for a single label must be more than half",
            ),
        ]
        for changes, message in cases:
            response = staff.post("/staff/campaigns/new/", {**base, **changes})
            assert response.status_code == 400, changes
            assert message in html.unescape(response.content.decode()), changes
        assert not Campaign.objects.filter(slug="pilot").exists()


@pytest.mark.django_db
class CampaignSettingsPageTests:
    def test_it_saves_settings_and_refuses_a_new_count_per_clip_once_labelling_began(
        self, staff, campaign, alice
    ):
        url = f"/staff/campaigns/{campaign.pk}/settings/"
        assert "can no longer change once labelling has begun" in staff.get(url).content.decode()
        response = staff.post(url, form_of(campaign, lease_minutes=15, screen_clips=False))
        assert response.status_code == 302
        campaign.refresh_from_db()
        assert (campaign.lease_minutes, campaign.screen_clips) == (15, False)
        # when alice has leased a clip, the count per clip is fixed
        make_clips(campaign, 1)
        assert services.assignment_next(user=alice) is not None
        refused = staff.post(url, form_of(campaign, annotations_per_clip=11, name="Renamed too"))
        assert refused.status_code == 400
        assert "cannot change once labelling has begun" in refused.content.decode()
        campaign.refresh_from_db()
        assert (campaign.annotations_per_clip, campaign.name) == (10, "Campaign")


@pytest.mark.django_db
class OverviewTests:
    def test_it_counts_annotators_as_annotators_and_the_others_apart(
        self, staff, campaign, annotators
    ):
        # given ten annotators and three extractors, as issue 20 found them ("10 of 13")
        for name in ("e1", "e2", "e3"):
            campaigns.membership_add(
                campaign=campaign, user=make_user(name, Role.EXTRACTOR), role="extractor"
            )
        campaigns.membership_add(
            campaign=campaign, user=make_user("rev", Role.REVIEWER), role="reviewer"
        )
        make_clips(campaign, 1)
        page = re.sub(r"\s+", " ", staff.get("/staff/overview/").content.decode())
        assert "0 of 10 annotators labelled in the last 24 h" in page
        assert "3 extractors · 1 reviewer" in page

    def test_an_empty_site_and_an_empty_campaign_say_what_to_do(self, staff):
        page = staff.get("/staff/overview/").content.decode()
        assert 'id="no-campaign"' in page and 'href="/staff/campaigns/new/"' in page
        campaign = campaigns.campaign_create(name="Fresh", slug="fresh")
        page = staff.get("/staff/overview/").content.decode()
        assert f'id="next-steps-{campaign.pk}"' in page
        assert f'href="/staff/campaigns/{campaign.pk}/team/"' in page
