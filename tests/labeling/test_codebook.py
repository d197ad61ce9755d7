"""The codebook: the service that saves it (all or nothing), the staff page that edits it (staff
only, bad input 400), and the example clip an annotator may watch."""

from __future__ import annotations

import time

import pytest

from annotation_site.errors import ApplicationError
from labeling import campaigns, codebook
from labeling.models import CampaignGuide, Clip, LabelGuide, MediaStatus, Role
from tests.conftest import PASSWORD, make_clips, make_user
from tests.labeling import test_browser

browser = test_browser.browser  # the headless Chromium fixture


def _labels(campaign) -> dict[str, int]:
    return dict(campaign.labels.values_list("name", "pk"))


@pytest.mark.django_db
class CodebookSaveTests:
    def test_it_saves_instructions_descriptions_and_an_example_clip(self, campaign):
        clip = make_clips(campaign, 1)[0]
        ids = _labels(campaign)
        book = codebook.codebook_save(
            campaign=campaign,
            instructions="  Label the main face.  ",
            labels={ids["happy"]: ("Smile.", clip.number), ids["sad"]: ("", None)},
        )
        assert book.instructions == "Label the main face."
        happy, sad = book.entries[0], book.entries[1]
        assert (happy.name, happy.description, happy.example_number) == ("happy", "Smile.", 1)
        assert happy.example_video == clip.video.name
        assert (sad.description, sad.example_number, sad.example_video) == ("", None, "")
        assert len(book.entries) == 7  # every label, saved or not

    def test_a_rerun_with_the_same_input_changes_nothing(self, campaign):
        ids = _labels(campaign)
        for _ in range(2):
            codebook.codebook_save(
                campaign=campaign, instructions="x", labels={ids["fear"]: ("Eyes.", None)}
            )
        assert CampaignGuide.objects.count() == 1 and LabelGuide.objects.count() == 1

    @pytest.mark.parametrize(
        "problem, message",
        [
            ("long_instructions", "at most 5000"),
            ("long_description", "at most 1000"),
            ("unknown_clip", "no clip 00099"),
            ("other_campaign_clip", "no clip 00001"),
            ("clip_without_video", "has no video yet"),
            ("other_campaign_label", "is not one of this campaign's"),
        ],
    )
    def test_bad_input_is_refused_and_changes_nothing(self, campaign, problem, message):
        ids = _labels(campaign)
        codebook.codebook_save(
            campaign=campaign, instructions="Before.", labels={ids["happy"]: ("Before.", None)}
        )
        other = campaigns.campaign_create(name="Other", slug="other")
        labels: dict = {ids["happy"]: ("After.", None)}
        instructions = "After."
        if problem == "long_instructions":
            instructions = "x" * 5001
        elif problem == "long_description":
            labels = {ids["happy"]: ("x" * 1001, None)}
        elif problem == "unknown_clip":
            labels = {ids["happy"]: ("After.", 99)}
        elif problem == "other_campaign_clip":
            make_clips(other, 1)  # clip 00001 of the other campaign; none in this one
            labels = {ids["happy"]: ("After.", 1)}
        elif problem == "clip_without_video":
            clip = make_clips(campaign, 1)[0]
            Clip.objects.filter(pk=clip.pk).update(media_status=MediaStatus.PENDING, video="")
            labels = {ids["happy"]: ("After.", clip.number)}
        else:
            labels = {**labels, other.labels.get(name="sad").pk: ("After.", None)}
        with pytest.raises(ApplicationError, match=message):
            codebook.codebook_save(campaign=campaign, instructions=instructions, labels=labels)
        book = codebook.codebook_of(campaign)
        assert (book.instructions, book.entries[0].description) == ("Before.", "Before.")

    def test_the_annotators_page_reads_only_their_open_campaigns(self, campaign, alice):
        campaigns.campaign_create(name="Not hers", slug="not-hers")
        guides = codebook.guides_for_annotator(alice)
        assert [g.name for g in guides] == ["Campaign"]
        assert codebook.guides_for_annotator(alice, campaign_id=campaign.pk + 1) == []


@pytest.mark.django_db
class CodebookPageTests:
    URL = "/staff/campaigns/{}/codebook/"

    def test_staff_see_the_form_with_every_label(self, client, campaign, admin_user):
        client.login(username="admin", password=PASSWORD)
        response = client.get(self.URL.format(campaign.pk))
        assert response.status_code == 200
        html = response.content.decode()
        assert 'name="instructions"' in html
        for label in campaign.labels.all():
            assert f'name="description-{label.pk}"' in html
            assert f'name="example-{label.pk}"' in html

    def test_staff_save_it_and_get_the_form_back_with_a_confirmation(
        self, client, campaign, admin_user
    ):
        clip = make_clips(campaign, 1)[0]
        ids = _labels(campaign)
        client.login(username="admin", password=PASSWORD)
        response = client.post(
            self.URL.format(campaign.pk),
            {
                "instructions": "Label the speaker.",
                f"description-{ids['sad']}": "Lowered lip corners.",
                f"example-{ids['sad']}": f"{clip.number:05d}",
            },
            follow=True,
        )
        assert response.status_code == 200
        assert "Codebook saved." in response.content.decode()
        sad = LabelGuide.objects.get(label_id=ids["sad"])
        assert (sad.description, sad.example_clip_id) == ("Lowered lip corners.", clip.pk)
        assert CampaignGuide.objects.get().instructions == "Label the speaker."

    @pytest.mark.parametrize(
        "field, value, message",
        [
            ("example", "twelve", "is not a clip number"),
            ("example", "42", "no clip 00042"),
            ("description", "x" * 1001, "at most 1000"),
        ],
    )
    def test_bad_input_answers_400_with_the_reason_and_saves_nothing(
        self, client, campaign, admin_user, field, value, message
    ):
        ids = _labels(campaign)
        client.login(username="admin", password=PASSWORD)
        response = client.post(
            self.URL.format(campaign.pk),
            {"instructions": "Kept?", f"{field}-{ids['happy']}": value},
        )
        assert response.status_code == 400
        assert message in response.content.decode()
        assert "Kept?" in response.content.decode()  # the form comes back as sent
        assert not CampaignGuide.objects.exists() and not LabelGuide.objects.exists()

    def test_a_post_without_the_form_answers_400(self, client, campaign, admin_user):
        client.login(username="admin", password=PASSWORD)
        assert client.post(self.URL.format(campaign.pk), {}).status_code == 400
        assert not CampaignGuide.objects.exists()

    def test_others_get_403_strangers_the_login_and_unknown_campaigns_404(
        self, client, campaign, alice, admin_user
    ):
        url = self.URL.format(campaign.pk)
        assert client.get(url).status_code == 302
        for user in (alice, make_user("ed", Role.EXTRACTOR), make_user("rita", Role.REVIEWER)):
            client.login(username=user.username, password=PASSWORD)
            assert client.get(url).status_code == 403
            assert client.post(url, {"instructions": "no"}).status_code == 403
        assert not CampaignGuide.objects.exists()
        client.login(username="admin", password=PASSWORD)
        assert client.get(self.URL.format(campaign.pk + 100)).status_code == 404


@pytest.mark.django_db
class ExampleClipMediaTests:
    def test_an_annotator_of_the_campaign_may_watch_the_example_and_no_one_else(
        self, client, campaign, alice, charlie, settings
    ):
        clip = make_clips(campaign, 1)[0]
        path = settings.MEDIA_ROOT / clip.video.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"video")
        url = f"/media/{clip.video.name}"
        client.login(username="alice", password=PASSWORD)
        assert client.get(url).status_code == 404  # not an example yet, not leased
        ids = _labels(campaign)
        codebook.codebook_save(campaign=campaign, instructions="", labels={ids["happy"]: ("", 1)})
        assert client.get(url).status_code == 200
        client.login(username="charlie", password=PASSWORD)  # an annotator of no campaign
        assert client.get(url).status_code == 404


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class CodebookPageBrowserTests:
    def test_staff_write_the_codebook_and_a_wrong_clip_number_is_shown_at_the_top(
        self, browser, live_server, campaign, admin_user, alice
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import WebDriverWait

        clips = test_browser._playable_clips(campaign, 3)
        ids = _labels(campaign)
        wait = WebDriverWait(browser, 20)
        browser.get(
            f"{live_server.url}/accounts/login/?next=/staff/campaigns/{campaign.pk}/codebook/"
        )
        browser.find_element(By.NAME, "username").send_keys("admin")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
        wait.until(lambda d: d.find_elements(By.ID, "instructions"))
        browser.find_element(By.ID, "instructions").send_keys("Label the face that speaks.")
        time.sleep(0.5)
        browser.find_element(By.ID, f"description-{ids['surprise']}").send_keys("Raised brows.")
        time.sleep(0.5)
        browser.find_element(By.ID, f"example-{ids['surprise']}").send_keys("3")
        time.sleep(0.5)
        browser.find_element(By.ID, "save-codebook").click()
        wait.until(lambda d: "Codebook saved." in d.find_element(By.TAG_NAME, "body").text)
        # a wrong number: 400, the reason at the top, the text typed kept
        field = browser.find_element(By.ID, f"example-{ids['fear']}")
        field.send_keys("77")
        time.sleep(0.5)
        browser.find_element(By.ID, "save-codebook").click()
        wait.until(lambda d: d.find_elements(By.ID, "problem"))
        assert "no clip 00077" in browser.find_element(By.ID, "problem").text
        assert browser.find_element(By.ID, f"example-{ids['fear']}").get_attribute("value") == "77"
        assert LabelGuide.objects.get(label_id=ids["surprise"]).example_clip_id == clips[2].pk
        assert not LabelGuide.objects.get(label_id=ids["fear"]).example_clip_id
