"""The extractor page: who sees it, what it hands its script, and no inline code (CSP)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from labeling import campaigns
from labeling.models import Role
from tests.conftest import PASSWORD, make_user
from tests.labeling import test_browser

browser = test_browser.browser  # the headless Chromium fixture
TEMPLATE = Path(__file__).resolve().parents[2] / "labeling/templates/labeling/extract.html"


@pytest.mark.django_db
class ExtractPageTests:
    def test_an_extractor_gets_the_page_with_the_campaigns_limits_and_labels(
        self, client, campaign
    ):
        campaign.annotators.add(
            make_user("eve", Role.EXTRACTOR), through_defaults={"role": Role.EXTRACTOR}
        )
        campaigns.campaign_create(name="Other lab's", slug="other")  # eve is not on it
        client.login(username="eve", password=PASSWORD)
        response = client.get("/extract/")
        assert response.status_code == 200
        html = response.content.decode()
        data = re.search(
            r'<script id="campaigns-data" type="application/json">(.*?)</script>', html
        )
        (entry,) = json.loads(data.group(1))
        assert (entry["id"], entry["clips_per_movie"], entry["clip_max_seconds"]) == (
            campaign.pk,
            20,
            15.0,
        )
        assert [label["name"] for label in entry["labels"]][:2] == ["happy", "sad"]
        assert "labeling/extract.js" in html

    def test_annotators_get_403_and_strangers_the_login(self, client, alice):
        assert client.get("/extract/").status_code == 302
        client.login(username="alice", password=PASSWORD)
        assert client.get("/extract/").status_code == 403

    def test_the_template_has_no_inline_script_or_handler(self):
        text = TEMPLATE.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, tag
        assert not re.search(r"\son[a-z]+\s*=", text)

    def test_the_script_is_served_and_wires_its_keys(self):
        script = Path(finders.find("labeling/extract.js")).read_text()
        for key in ('"i"', '"o"', '"arrowleft"', '"arrowright"', '"enter"'):
            assert key in script
        assert "/api/v1/movies/${movie.id}/clips/" in script


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class ExtractPageBrowserTests:
    def test_an_extractor_marks_a_segment_with_keys_and_sends_it(
        self, browser, live_server, campaign, tmp_path
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import WebDriverWait

        from labeling.media import movies
        from labeling.models import Clip
        from tests.labeling.test_movies import movie_file

        eve = make_user("eve", Role.EXTRACTOR)
        campaign.annotators.add(eve, through_defaults={"role": Role.EXTRACTOR})
        movie = movies.movie_register_path(campaign=campaign, path=movie_file(tmp_path), user=eve)
        movies.movie_probe(movie.pk)
        wait = WebDriverWait(browser, 30)
        browser.get(f"{live_server.url}/accounts/login/?next=/extract/")
        browser.find_element(By.NAME, "username").send_keys("eve")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
        wait.until(
            lambda d: (
                d.execute_script("return document.getElementById('movie-video').readyState") >= 1
            )
        )
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys("i")  # on frame 0
        # Play past 0.6 s and pause (the test server's media answers are not seekable, so no
        # frame steps here: they set currentTime, which the app's /media/ ranges allow).
        browser.execute_script("document.getElementById('movie-video').play();")
        wait.until(
            lambda d: (
                d.execute_script("return document.getElementById('movie-video').currentTime") > 0.6
            )
        )
        browser.execute_script("document.getElementById('movie-video').pause();")
        shown = browser.execute_script("return document.getElementById('movie-video').currentTime")
        body.send_keys("o", "3", Keys.ENTER)  # out after the frame shown, suspected neutral, add
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#segments tr")) == 1)
        browser.find_element(By.ID, "send").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#clips tr")) == 1)
        clip = Clip.objects.get()
        # In on frame 0; out just after the frame on screen, on the 25 fps grid.
        assert (clip.start_s, clip.suspected_label.name) == (0.0, "neutral")
        assert clip.end_s == pytest.approx((int(shown * 25 + 1e-4) + 1) / 25)
        assert clip.proposed_by == eve and clip.media_status == "pending"
