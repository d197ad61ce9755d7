"""The reviewer's screening page (issue 20, "Screening shows the crops"; issue 19, item 5): the
face crops beside the video, the face ratio and flags and a filter by flag, a count of what
waits, pages; verdicts by keys with a confirmation and undo, in real headless Chromium at a
person's pace, on a desktop and at 390 × 844."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import Clip, Screening
from pipeline.face_sheets import write_face_sheet
from pipeline.face_track_file import TrackFrame, write_track
from pipeline.media import write_image, write_video
from pipeline.synthetic import render_clip
from tests.conftest import PASSWORD, make_clips
from tests.labeling.test_browser import browser  # noqa: F401  (the Chromium fixture)

FACE = TrackFrame((20, 20, 60, 60), 0.9, None, False)


def screening_clips(campaign, n: int, start_number: int = 1) -> list[Clip]:
    return make_clips(campaign, n, status=Clip.Status.SCREENING, start_number=start_number)


def with_faces(clip: Clip, no_face: set[int], frames: int = 12, **flags) -> None:
    """Gives the clip a playable video, a face sheet and a track without a face in the frames
    ``no_face``, and the flags given."""
    rng = np.random.default_rng(clip.pk)
    video = render_clip("happy", frames, 96, rng)
    root = settings.MEDIA_ROOT
    write_video(video, root / clip.video.name, fps=12)
    write_image(video[frames // 2], root / clip.poster.name)
    write_face_sheet(list(video), root / f"faces/{clip.pk}.jpg")
    track = [None if i in no_face else FACE for i in range(frames)]
    write_track(track, root / f"faces/{clip.pk}.csv")
    Clip.objects.filter(pk=clip.pk).update(
        faces=f"faces/{clip.pk}.jpg",
        face_track=f"faces/{clip.pk}.csv",
        n_frames=frames,
        face_ratio=1 - len(no_face) / frames,
        **flags,
    )


def articles(html: str) -> list[str]:
    return re.findall(r'<article class="card screening" id="clip-(\d+)"', html)


@pytest.mark.django_db
class ScreeningPageTests:
    def test_it_shows_a_page_of_the_queue_the_count_and_the_pages(self, client, campaign, rita):
        clips = screening_clips(campaign, 23)
        client.force_login(rita)
        html = client.get("/review/").content.decode()
        assert articles(html) == [str(c.pk) for c in clips[:10]]
        assert '<strong id="waiting-count">23</strong>' in html
        assert "Page 1 of 3" in html
        last = client.get("/review/?page=3").content.decode()
        assert articles(last) == [str(c.pk) for c in clips[20:]]
        # a page past the end is the last one
        assert articles(client.get("/review/?page=99").content.decode()) == articles(last)

    def test_the_crops_ratio_and_flags_are_beside_the_video(self, client, campaign, rita):
        (clip,) = screening_clips(campaign, 1)
        with_faces(clip, {3, 4, 5}, face_lost=True, face_small=True)
        client.force_login(rita)
        html = client.get("/review/").content.decode()
        assert f'src="/media/faces/{clip.pk}.jpg"' in html
        assert f'data-track="/api/v1/clips/{clip.pk}/faces/"' in html
        assert '<strong class="face-ratio">75 %</strong>' in html
        assert '<span class="flag flag-lost">face lost</span>' in html
        assert '<span class="flag flag-small">small face</span>' in html
        assert "flag-second" not in html

    def test_the_filter_keeps_the_clips_with_the_flag_and_counts_each_flag(
        self, client, campaign, rita
    ):
        clips = screening_clips(campaign, 5)
        Clip.objects.filter(pk__in=[clips[1].pk, clips[3].pk]).update(face_second=True)
        Clip.objects.filter(pk=clips[4].pk).update(few_faces=True)
        client.force_login(rita)
        html = client.get("/review/?flag=second").content.decode()
        assert articles(html) == [str(clips[1].pk), str(clips[3].pk)]
        assert '<span id="matching-count">2</span>' in html
        assert "Second face (2)</a>" in html and "Few faces (1)</a>" in html
        assert "Face lost (0)</a>" in html and "All (5)</a>" in html
        assert 'href="/review/?flag=second" data-flag="second" aria-current="true"' in html

    def test_an_unknown_flag_or_page_is_400_with_the_reason(self, client, campaign, rita):
        screening_clips(campaign, 1)
        client.force_login(rita)
        response = client.get("/review/?flag=blurry")
        assert response.status_code == 400
        assert "Unknown face flag &#x27;blurry&#x27;; one of few, lost, second, small." in (
            response.content.decode()
        )
        response = client.get("/review/?page=x")
        assert response.status_code == 400
        assert "The page number must be a whole number." in response.content.decode()

    def test_the_page_costs_the_same_queries_for_20_or_200_waiting_clips(
        self, client, campaign, rita
    ):
        client.force_login(rita)

        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                assert client.get("/review/?flag=few").status_code == 200
            return len(captured)

        screening_clips(campaign, 20)
        Clip.objects.update(few_faces=True)
        small = queries()
        screening_clips(campaign, 180, start_number=21)
        Clip.objects.update(few_faces=True)
        assert queries() == small

    def test_the_pages_script_gets_the_verdict_and_what_waits_as_json(self, client, campaign, rita):
        first, second = screening_clips(campaign, 2)
        client.force_login(rita)
        json = {"HTTP_ACCEPT": "application/json"}
        response = client.post(f"/review/{first.pk}/", {"verdict": "accept"}, **json)
        assert response.json() == {"clip": first.pk, "status": "annotating", "waiting": 1}
        # decided already (another reviewer, another tab): refused with the reason
        again = client.post(f"/review/{first.pk}/", {"verdict": "no_face"}, **json)
        assert again.status_code == 409 and "not in screening" in again.json()["detail"]
        bad = client.post(f"/review/{second.pk}/", {"verdict": "maybe"}, **json)
        assert bad.status_code == 400 and bad.json()["detail"] == "Choose a verdict."
        assert Screening.objects.count() == 1
        # the form without script is sent back to the queue, its filter kept
        form = client.post(f"/review/{second.pk}/", {"verdict": "broken", "flag": "lost"})
        assert form.status_code == 302 and form["Location"] == "/review/?flag=lost"
        assert Clip.objects.get(pk=second.pk).status == Clip.Status.REJECTED


# --- in Chromium -----------------------------------------------------------------------------

PACE_S = 1.0  # a reviewer's pause between two actions


def _log_in(driver, live_server, wait, url="/review/"):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    driver.get(f"{live_server.url}/accounts/login/?next={url}")
    driver.find_element(By.NAME, "username").send_keys("rita")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
    wait.until(ec.presence_of_element_located((By.ID, "screening")))


def _press(driver, key: str) -> None:
    from selenium.webdriver.common.by import By

    time.sleep(PACE_S)
    driver.find_element(By.TAG_NAME, "body").send_keys(key)


def _current(driver) -> str:
    return driver.execute_script(
        "const c = document.querySelector('article.current'); return c ? c.dataset.number : '';"
    )


def _notice(driver) -> str:
    return driver.execute_script("return document.getElementById('notice').textContent")


@pytest.mark.django_db(transaction=True)
class ScreeningPageBrowserTests:
    def test_a_reviewer_decides_undoes_and_sees_the_crops_with_the_keyboard(
        self,
        browser,  # noqa: F811
        live_server,
        campaign,
        rita,
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        # given three clips waiting, the first without a face in frames 3-5
        clips = screening_clips(campaign, 3)
        with_faces(clips[0], {3, 4, 5}, face_lost=True)
        for clip in clips[1:]:
            with_faces(clip, set())
        wait = WebDriverWait(browser, 20)
        browser.set_window_size(1366, 768)
        _log_in(browser, live_server, wait)
        assert _current(browser) == "00001"
        assert browser.find_element(By.ID, "waiting-count").text == "3"
        # the crops are shown beside the video, the no-face frames marked on them
        wait.until(
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, f"#clip-{clips[0].pk} .sheet-marks .none"))
                == 3
            )
        )
        caption = browser.find_element(By.CSS_SELECTOR, f"#clip-{clips[0].pk} figcaption")
        assert caption.text.endswith("3 frames without the face (marked)")
        sheet = browser.find_element(By.CSS_SELECTOR, f"#clip-{clips[0].pk} .sheet img")
        video = browser.find_element(By.CSS_SELECTOR, f"#clip-{clips[0].pk} video")
        assert sheet.location["x"] > video.location["x"] + video.size["width"] - 1
        wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", sheet) > 0)

        # A accepts clip 1: a visible confirmation, clip 2 is current, nothing stored yet
        _press(browser, "a")
        assert "Clip 00001: Face and emotion: open for labelling. Press Z to undo." in _notice(
            browser
        )
        assert browser.find_element(By.ID, "undo").is_displayed()
        assert _current(browser) == "00002"
        assert not Screening.objects.exists()

        # Z takes it back: clip 1 is current again and nothing is stored after the window
        _press(browser, "z")
        assert "verdict taken back" in _notice(browser)
        assert _current(browser) == "00001"
        time.sleep(3.5)
        assert not Screening.objects.exists()

        # A, then F on clip 2 a moment later: both stored, the count follows
        _press(browser, "a")
        _press(browser, "f")
        wait.until(lambda d: Screening.objects.count() == 2)
        wait.until(lambda d: d.find_element(By.ID, "waiting-count").text == "1")
        statuses = dict(Clip.objects.values_list("number", "status"))
        assert statuses == {1: "annotating", 2: "rejected", 3: "screening"}
        assert Clip.objects.get(number=2).status_reason == "no face"
        # J/K move between the open clips only; typing a note never decides
        assert _current(browser) == "00003"
        _press(browser, "k")
        assert _current(browser) == "00003"
        note = browser.find_element(By.CSS_SELECTOR, f"#clip-{clips[2].pk} input[name=reason]")
        note.send_keys("aaa fe\n")
        time.sleep(3.5)
        assert Screening.objects.count() == 2
        _press(browser, "b")
        wait.until(lambda d: d.find_element(By.ID, "page-done").is_displayed())
        assert Clip.objects.get(number=3).status_reason == "broken video; aaa fe"
        assert browser.find_element(By.ID, "waiting-count").text == "0"

    def test_on_a_phone_the_reviewer_filters_taps_a_verdict_and_undoes_it(
        self,
        browser,  # noqa: F811
        live_server,
        campaign,
        rita,
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        clips = screening_clips(campaign, 3)
        for i, clip in enumerate(clips):
            with_faces(clip, set(), face_small=i == 1)
        wait = WebDriverWait(browser, 20)
        browser.set_window_size(390, 844)
        _log_in(browser, live_server, wait)
        assert len(browser.find_elements(By.CSS_SELECTOR, "article.screening")) == 3
        # the filter: only the small-face clip
        time.sleep(PACE_S)
        browser.find_element(By.CSS_SELECTOR, ".flag-filter a[data-flag=small]").click()
        wait.until(lambda d: "flag=small" in d.current_url)
        cards = browser.find_elements(By.CSS_SELECTOR, "article.screening")
        assert [c.get_attribute("data-number") for c in cards] == ["00002"]
        # nothing wider than the phone; the crops under the video, not beside it
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390
        sheet = browser.find_element(By.CSS_SELECTOR, "article.screening .sheet")
        video = browser.find_element(By.CSS_SELECTOR, "article.screening video")
        assert sheet.location["y"] >= video.location["y"] + video.size["height"] - 1
        # a tap on a verdict, then on Undo: nothing stored
        time.sleep(PACE_S)
        button = browser.find_element(By.CSS_SELECTOR, "article.screening button[value=no_face]")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()
        undo = browser.find_element(By.ID, "undo")
        assert undo.is_displayed() and "Press Z to undo" in _notice(browser)
        time.sleep(PACE_S)
        undo.click()
        assert "taken back" in _notice(browser)
        time.sleep(3.5)
        assert not Screening.objects.exists()
        # tapped again and left alone: stored after the window, the count down by one
        browser.find_element(By.CSS_SELECTOR, "article.screening button[value=accept]").click()
        wait.until(lambda d: Screening.objects.count() == 1)
        wait.until(lambda d: d.find_element(By.ID, "waiting-count").text == "2")
        assert Clip.objects.get(number=2).status == Clip.Status.ANNOTATING
