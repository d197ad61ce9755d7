"""The annotator page in real headless Chromium (Debian's chromium + chromedriver)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from django.conf import settings

from labeling.models import Annotation, Clip
from pipeline.media import write_image, write_video
from pipeline.synthetic import render_clip
from tests.conftest import PASSWORD, chromium_paths, make_clips, need


@pytest.fixture
def browser(tmp_path):
    chromium, chromedriver = chromium_paths()
    need(bool(chromium and chromedriver), "needs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1100,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def _playable_clips(campaign, n):
    clips = make_clips(campaign, n)
    rng = np.random.default_rng(5)
    for clip, emotion in zip(clips, ["happy", "sad", "angry"], strict=False):
        frames = render_clip(emotion, 24, 128, rng)
        write_video(frames, settings.MEDIA_ROOT / clip.video.name, fps=12)
        write_image(frames[12], settings.MEDIA_ROOT / clip.poster.name)
    return clips


@pytest.mark.django_db(transaction=True)
class AnnotatePageBrowserTests:
    def test_an_annotator_labels_a_clip_with_the_keyboard_and_sees_the_next(
        self, browser, live_server, campaign, alice
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        _playable_clips(campaign, 3)
        wait = WebDriverWait(browser, 20)

        # log in
        browser.get(f"{live_server.url}/accounts/login/?next=/label/")
        browser.find_element(By.NAME, "username").send_keys("alice")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#labels button.label")))
        first = browser.find_element(By.ID, "clip-number").text
        assert first == "00001"
        assert len(browser.find_elements(By.CSS_SELECTOR, "#labels button.label")) == 7
        # the clip plays: Chromium decoded enough of the H.264 file to show frames
        wait.until(
            lambda d: (
                d.execute_script("return document.getElementById('clip-video').readyState") >= 2
            )
        )

        # label it with key 1 (happy)
        browser.find_element(By.TAG_NAME, "body").send_keys("1")
        wait.until(lambda d: d.find_element(By.ID, "clip-number").text not in ("", "–", first))
        assert browser.find_element(By.ID, "progress").text == "1"
        assert "Saved" in browser.find_element(By.ID, "notice").text
        annotation = Annotation.objects.get()
        assert (annotation.annotator, annotation.label.name, annotation.clip.number) == (
            alice,
            "happy",
            1,
        )
        # the next clip was prefetched while the first played: alice holds exactly one lease now
        second = browser.find_element(By.ID, "clip-number").text
        assert second == "00002"
        if os.environ.get("SCREENSHOTS"):
            browser.save_screenshot(os.environ["SCREENSHOTS"])

        # a held key's repeats label nothing (only a fresh press counts)
        # (as a browser sends them: a repeat every 60 ms for 1.5 s, on the focused body)
        browser.execute_script(
            "let n = 0; const t = setInterval(() => {"
            " document.body.dispatchEvent(new KeyboardEvent('keydown',"
            " {key: '3', repeat: true, bubbles: true}));"
            " if (++n === 25) clearInterval(t); }, 60);"
        )
        time.sleep(2.5)
        assert (
            Annotation.objects.count() == 1 and browser.find_element(By.ID, "progress").text == "1"
        )

        # key 2 labels the second clip "sad"
        browser.find_element(By.TAG_NAME, "body").send_keys("2")
        wait.until(lambda d: d.find_element(By.ID, "progress").text == "2")
        assert sorted(Annotation.objects.values_list("label__name", flat=True)) == ["happy", "sad"]
        assert Clip.objects.filter(assignments__annotator=alice).count() == 3
