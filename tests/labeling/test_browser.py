"""The annotator page in real headless Chromium (Debian's chromium + chromedriver)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from django.conf import settings

from labeling.models import Annotation
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


def _log_in(browser, live_server, wait):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    browser.get(f"{live_server.url}/accounts/login/?next=/label/")
    browser.find_element(By.NAME, "username").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#labels button.label")))


def _text(browser, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, element_id).text


def _press(browser, key: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.TAG_NAME, "body").send_keys(key)


@pytest.mark.django_db(transaction=True)
class AnnotatePageBrowserTests:
    def test_an_annotator_labels_undoes_and_finishes_with_the_keyboard(
        self, browser, live_server, campaign, alice
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        _playable_clips(campaign, 3)
        wait = WebDriverWait(browser, 20)
        browser.set_window_size(1366, 768)
        _log_in(browser, live_server, wait)
        assert _text(browser, "clip-number") == "00001"
        assert _text(browser, "progress") == "0 of 3"
        assert len(browser.find_elements(By.CSS_SELECTOR, "#labels button.label")) == 7
        assert (
            _text(browser, "earnings")
            == "Earned today 0.00 · pending 0.00 · held 0.00 · paid 0.00 · total 0.00 CNY"
        )
        # the clip plays: Chromium decoded enough of the H.264 file to show frames
        wait.until(
            lambda d: (
                d.execute_script("return document.getElementById('clip-video').readyState") >= 2
            )
        )

        # key 1 (happy): the next clip (prefetched) is on screen at once; the label is held
        _press(browser, "1")
        wait.until(lambda d: _text(d, "clip-number") == "00002")
        assert "press Z" in _text(browser, "notice")
        assert _text(browser, "progress") == "1 of 3"
        assert not Annotation.objects.exists()

        # Z takes it back: clip 1 again, nothing stored, even after the undo window
        _press(browser, "z")
        wait.until(lambda d: _text(d, "clip-number") == "00001")
        assert "taken back" in _text(browser, "notice")
        assert _text(browser, "progress") == "0 of 3"
        time.sleep(3.5)
        assert not Annotation.objects.exists()

        # key 2 (sad) labels clip 1; the save lands in the background
        _press(browser, "2")
        wait.until(lambda d: _text(d, "clip-number") == "00002")
        wait.until(lambda d: Annotation.objects.count() == 1)
        annotation = Annotation.objects.get()
        assert (annotation.annotator, annotation.label.name, annotation.clip.number) == (
            alice,
            "sad",
            1,
        )
        # the label's reward shows up from the ledger (0.20 per label by default)
        wait.until(
            lambda d: (
                _text(d, "earnings")
                == "Earned today 0.20 · pending 0.20 · held 0.00 · paid 0.00 · total 0.20 CNY"
            )
        )
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
        assert _text(browser, "clip-number") == "00002"
        assert _text(browser, "progress") == "1 of 3"

        # keys still work after clicking a control (the loop checkbox keeps the focus)
        browser.find_element(By.ID, "loop").click()
        _press(browser, "4")
        wait.until(lambda d: _text(d, "clip-number") == "00003")

        # at 1366×768 the message, the save status and the report options are on screen
        for selector in ("#notice", "#save-status", "details.problem", "#labels"):
            bottom = browser.execute_script(
                f"return document.querySelector('{selector}').getBoundingClientRect().bottom"
            )
            assert bottom <= browser.execute_script("return window.innerHeight"), selector

        # the last clip: nothing left clears the player and the controls
        _press(browser, "5")
        wait.until(lambda d: "Nothing left" in _text(d, "notice"))
        assert _text(browser, "clip-number") == "–"
        assert not browser.find_element(By.ID, "clip-video").get_attribute("src")
        assert not browser.find_element(By.CSS_SELECTOR, ".controls").is_displayed()
        assert not browser.find_elements(By.CSS_SELECTOR, "#labels button.label")
        assert browser.find_element(By.ID, "check-again").is_displayed()
        wait.until(lambda d: Annotation.objects.count() == 3)
        assert sorted(Annotation.objects.values_list("label__name", flat=True)) == [
            "angry",
            "sad",
            "surprise",
        ]
        assert _text(browser, "progress") == "3 of 3"
        wait.until(
            lambda d: (
                _text(d, "earnings")
                == "Earned today 0.60 · pending 0.60 · held 0.00 · paid 0.00 · total 0.60 CNY"
            )
        )

    def test_too_many_open_clips_is_not_nothing_left_and_a_quick_key_is_ignored(
        self, browser, live_server, campaign, alice, settings
    ):
        from selenium.webdriver.support.ui import WebDriverWait

        settings.LABELING_MAX_OPEN_LEASES = 1
        campaign.min_view_seconds = 1.5
        campaign.save()
        _playable_clips(campaign, 2)
        wait = WebDriverWait(browser, 20)
        _log_in(browser, live_server, wait)
        # a key pressed before the clip was on screen for 1.5 s labels nothing
        _press(browser, "1")
        assert "a moment longer" in _text(browser, "notice")
        time.sleep(1.7)
        # with one open clip allowed the page could not prefetch (429): after the label it
        # says so instead of "nothing left", and shows clip 2 once the label is saved
        _press(browser, "1")
        wait.until(lambda d: "too many open clips" in _text(d, "notice"))
        wait.until(lambda d: _text(d, "clip-number") == "00002")
        assert Annotation.objects.get().clip.number == 1

    def test_a_fluent_annotator_labels_40_clips_at_0_8_s_each_without_a_too_many_notice(
        self, browser, live_server, campaign, alice
    ):
        from selenium.webdriver.support.ui import WebDriverWait

        # given 40 playable clips and the server's default open-lease cap (no override)
        clips = make_clips(campaign, 40)
        frames = render_clip("happy", 24, 96, np.random.default_rng(7))
        first = settings.MEDIA_ROOT / clips[0].video.name
        write_video(frames, first, fps=12)
        poster = settings.MEDIA_ROOT / clips[0].poster.name
        write_image(frames[12], poster)
        for clip in clips[1:]:
            (settings.MEDIA_ROOT / clip.video.name).write_bytes(first.read_bytes())
            (settings.MEDIA_ROOT / clip.poster.name).write_bytes(poster.read_bytes())
        wait = WebDriverWait(browser, 20)
        _log_in(browser, live_server, wait)
        # every text the notice line ever shows is recorded
        browser.execute_script(
            "window.noticeLog = [];"
            "new MutationObserver(() => window.noticeLog.push("
            " document.getElementById('notice').textContent))"
            ".observe(document.getElementById('notice'),"
            " {childList: true, characterData: true, subtree: true});"
        )
        # when she labels each clip 0.8 s after the previous label (a fluent pace)
        for number in range(1, 41):
            wait.until(
                lambda d, n=number: (
                    _text(d, "clip-number") == f"{n:05d}" or "too many" in _text(d, "notice")
                )
            )
            assert "too many" not in _text(browser, "notice"), f"before clip {number}"
            time.sleep(0.8)
            _press(browser, str(number % 7 + 1))
        # then all 40 labels are saved and no notice ever said "too many open clips"
        wait.until(lambda d: "Nothing left" in _text(d, "notice"))
        wait.until(lambda d: Annotation.objects.count() == 40)
        log = browser.execute_script("return window.noticeLog")
        assert not [text for text in log if "too many" in text.lower()], log
        assert sorted(Annotation.objects.values_list("clip__number", flat=True)) == list(
            range(1, 41)
        )

    def test_the_too_many_notice_clears_when_the_clip_is_on_screen(
        self, browser, live_server, campaign, alice, settings
    ):
        from selenium.webdriver.support.ui import WebDriverWait

        # given a cap lower than what the page holds (a configuration error, but possible)
        settings.LABELING_MAX_OPEN_LEASES = 1
        _playable_clips(campaign, 2)
        wait = WebDriverWait(browser, 20)
        _log_in(browser, live_server, wait)
        _press(browser, "1")
        wait.until(lambda d: "too many open clips" in _text(d, "notice"))
        # once the label is saved clip 2 is shown, and the orange notice is gone with it
        wait.until(lambda d: _text(d, "clip-number") == "00002")
        assert "too many" not in _text(browser, "notice")


@pytest.mark.django_db(transaction=True)
class RewardsPageBrowserTests:
    def test_staff_pay_out_once_and_see_the_csv_link(
        self, browser, live_server, campaign, annotators
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        from labeling.loop import services
        from labeling.models import Payout, RewardEntry
        from tests.conftest import make_user

        # given three labels worth 0.20 each
        make_clips(campaign, 1)
        for user in annotators[:3]:
            lease = services.assignment_next(user=user)
            services.annotation_submit(user=user, assignment_id=lease.pk, label_name="happy")
        make_user("boss", staff=True)
        wait = WebDriverWait(browser, 20)
        browser.get(
            f"{live_server.url}/accounts/login/?next=/staff/campaigns/{campaign.pk}/rewards/"
        )
        browser.find_element(By.NAME, "username").send_keys("boss")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
        button = wait.until(lambda d: d.find_element(By.ID, "create-payout"))
        assert button.text == "Create payout (0.60 CNY)"
        rows = browser.find_elements(By.CSS_SELECTOR, "#people tbody tr")
        assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == ["a01", "a02", "a03"]
        # when staff click it and confirm (site.js asks first)
        button.click()
        wait.until(expected_conditions.alert_is_present()).accept()
        # then the payout is listed with its CSV, and the button has nothing left to pay
        link = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#payouts a"))
        payout = Payout.objects.get()
        assert link.get_attribute("href").endswith(f"/staff/payouts/{payout.pk}.csv")
        assert "0.60 CNY" in browser.find_element(By.ID, "payouts").text
        assert not browser.find_element(By.ID, "create-payout").is_enabled()
        assert not RewardEntry.objects.filter(payout__isnull=True).exists()
